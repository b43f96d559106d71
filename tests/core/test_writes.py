"""The local checks of the one write path: what is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsbridge.core.writes import AccessRefused, RangeRefused, TypeRefused, Writer
from icsbridge.ics.client import IcsClient
from icsbridge.mapping import document
from icsbridge.model import ItemKey

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
ENTRIES = {entry.key: entry for entry in document.load(MAPPING).items}
CLIENT = IcsClient("ws://127.0.0.1:9", "admin", "password")  # never connected: checks only


def writer(read_only: bool = False) -> Writer:
    return Writer(CLIENT, ENTRIES, read_only=read_only)


@pytest.mark.parametrize(
    ("key", "value", "typed"),
    [
        (ItemKey(0, 2, 0, "Control.voltageSet"), 500, 500.0),
        (ItemKey(0, 2, 0, "Control.on"), 1, True),
        (ItemKey(0, 2, 0, "Setup.delayedTripAction"), 3.0, 3),
        (ItemKey(None, None, None, "Control.serviceRestart"), "opc", "opc"),
    ],
)
def test_acceptable_values_are_typed_for_the_ics(
    key: ItemKey, value: object, typed: object
) -> None:
    entry, checked = writer().check(key, value)
    assert checked == typed and type(checked) is type(typed)
    assert entry.key == key


@pytest.mark.parametrize(
    ("key", "value", "refusal", "reason"),
    [
        (ItemKey(0, 2, 0, "Control.voltageSet"), 500.5, RangeRefused, "above the limit 500"),
        (ItemKey(0, 2, 0, "Control.voltageSet"), -1, RangeRefused, "below the limit 0"),
        (ItemKey(0, 2, 0, "Control.voltageSet"), float("nan"), TypeRefused, "not a float"),
        (ItemKey(0, 2, 0, "Control.voltageSet"), "500", TypeRefused, "not a float"),
        (ItemKey(0, 2, 0, "Control.on"), 2, TypeRefused, "not a bool"),
        (ItemKey(0, 2, 0, "Setup.delayedTripAction"), 7, RangeRefused, "not one of"),
        (ItemKey(None, None, None, "Control.serviceStart"), "ftp", RangeRefused, "not one of"),
        (ItemKey(0, 2, 0, "Status.voltageMeasure"), 1.0, AccessRefused, "read-only item"),
        (ItemKey(0, 9, 0, "Control.voltageSet"), 1.0, AccessRefused, "no such item"),
    ],
)
def test_refusals_name_their_reason(
    key: ItemKey, value: object, refusal: type[Exception], reason: str
) -> None:
    with pytest.raises(refusal, match=reason):
        writer().check(key, value)


def test_a_read_only_bridge_refuses_everything() -> None:
    with pytest.raises(AccessRefused, match="the bridge is read-only"):
        writer(read_only=True).check(ItemKey(0, 2, 0, "Control.voltageSet"), 1.0)
