"""Loading a mapping file: the same entries as validating each line, compact, errors placed."""

from __future__ import annotations

import gc
import json
import pickle
import tracemalloc
from pathlib import Path

import pytest
from pydantic import ValidationError

from icsbridge.mapping import build, document
from icsbridge.mapping.check import check_file
from icsbridge.mapping.document import ItemEntry

SHIPPED = Path(__file__).parents[2] / "mappings" / "default.yaml"
MOST_BYTES_PER_ENTRY = 1500
"""Memory a loaded entry may hold; validating each line into its own objects takes 2300."""


@pytest.fixture(scope="module")
def text() -> str:
    """The text of the shipped mapping file."""
    return SHIPPED.read_text("utf-8")


def _item_lines(text: str) -> list[str]:
    _, tail = document.split(text)
    return [line[4:] for line in tail.partition("\nitems:\n")[2].splitlines()]


def _broken(text: str, index: int, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` in the item line at `index`."""
    line = _item_lines(text)[index]
    assert old in line, old
    return text.replace(line, line.replace(old, new, 1), 1)


def test_loaded_entries_equal_entries_validated_line_by_line(text: str) -> None:
    loaded = document.parse(text).items
    alone = [ItemEntry.model_validate(json.loads(line)) for line in _item_lines(text)]
    assert loaded == alone
    assert [entry.model_fields_set for entry in loaded] == [e.model_fields_set for e in alone]


def test_a_mapping_file_loads_and_dumps_unchanged(text: str) -> None:
    assert document.dump(document.load_settings(text), document.parse(text)) == text


def test_generated_entries_equal_the_loaded_ones(text: str) -> None:
    mapping = document.parse(text)
    assert build.items(mapping) == mapping.items


def test_a_mapping_crosses_to_another_process_unchanged(text: str) -> None:
    mapping = document.parse(text)
    assert pickle.loads(pickle.dumps(mapping)) == mapping


def test_entries_cannot_be_changed_in_place(text: str) -> None:
    entry = document.parse(text).items[0]
    with pytest.raises(ValidationError, match="frozen"):
        entry.pv = "OTHER"


def test_a_loaded_entry_is_compact(text: str) -> None:
    gc.collect()
    tracemalloc.start()
    try:
        mapping = document.parse(text)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(mapping.items) < MOST_BYTES_PER_ENTRY


def test_an_invalid_item_line_fails_naming_the_line(text: str) -> None:
    broken = _broken(text, 2, '"access": "', '"access": "sometimes')
    with pytest.raises(ValidationError) as failure:
        document.parse(broken)
    assert [error["loc"] for error in failure.value.errors()] == [("items", 2, "access")]


def test_check_reports_every_bad_line_and_setting(text: str, tmp_path: Path) -> None:
    broken = _broken(text, 2, '"access": "', '"access": "sometimes')
    broken = _broken(broken, 40, '"pv": ', '"pv": 7, "pvv": ')
    broken = broken.replace("namespace: urn:icsbridge", "namespace: [urn]", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken, "utf-8")
    found = check_file(path)
    assert [problem.split(": ")[1] for problem in found] == [
        "namespace",
        "items.2.access",
        "items.40.pv",
        "items.40.pvv",
    ]
    assert "items.40.pvv: Extra inputs are not permitted" in "\n".join(found)
