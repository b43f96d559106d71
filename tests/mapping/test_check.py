"""`icsbridge check`: every problem reported, the shipped mapping current and clean."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping.check import check_file
from icsbridge.mapping.generate import discover_file

from conftest import make_client

SHIPPED = Path(__file__).parents[2] / "mappings" / "default.yaml"
REGENERATE = "icsbridge discover --simulate -o mappings/default.yaml"


async def _discover(topology: Topology, path: Path, origin: str | None = None) -> None:
    async with (
        Simulator(topology, time_scale=50).serve() as sim,
        make_client(sim) as client,
    ):
        await discover_file(client, path, origin=origin)


@pytest.fixture(scope="module")
def small_mapping(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The text of a discovered mapping of a two-module topology."""
    path = tmp_path_factory.mktemp("mapping") / "small.yaml"
    asyncio.run(_discover(Topology.uniform(2, 8), path))
    return path.read_text()


def _break(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_a_clean_mapping_has_no_problems(small_mapping: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(small_mapping)
    assert check_file(path) == []


def test_every_problem_is_reported(small_mapping: str, tmp_path: Path) -> None:
    text = small_mapping
    text = _break(text, '"item": "Control.voltageSet"', '"item": "Control.voltageSett"')
    text = _break(
        text, '"pv": "ISEG:5230000:0:0:1:VoltageSet"', '"pv": "ISEG:5230000:0:0:0:VoltageSet"'
    )
    text = _break(text, '"pv": "ISEG:5230000:0:1:2:CurrentSet"', '"pv": "ISEG 0:1:2/CurrentSet"')
    text = _break(text, '"pv": "ISEG:5230000:0:1:3:CurrentSet"', '"pv": "' + "X" * 60 + '"')
    text = _break(text, "overrides: {}", "overrides: {0.7.0.Control.on: {precision: 2}}")
    text = _break(text, "aliases: {}", "aliases: {0.9.9: GHOST}")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    found = "\n".join(check_file(path))
    assert "0.0.0.Control.voltageSett: unknown item at channel level" in found
    assert "ISEG:5230000:0:0:0:VoltageSet: PV name used 2 times" in found
    assert "characters outside A-Z a-z 0-9 _ : -:  /" in found
    assert "60 characters, more than 59" in found
    assert "override of 0.7.0.Control.on: no such item" in found
    assert "alias of 0.9.9: no such object" in found


def test_schema_errors_are_reported_with_their_place(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\nnaming: {preset: iseg}\nitems: [{item: x}]\n")
    found = "\n".join(check_file(path))
    assert "naming" in found and "serial" in found
    assert "items.0.pv: Field required" in found


def test_check_and_schema_commands(small_mapping: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(small_mapping)
    ok = subprocess.run(
        [sys.executable, "-m", "icsbridge", "check", str(path)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "no problems" in ok.stdout
    path.write_text(small_mapping.replace('"access": "rw"', '"access": "sometimes"', 1))
    bad = subprocess.run(
        [sys.executable, "-m", "icsbridge", "check", str(path)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "access" in bad.stdout
    schema = subprocess.run(
        [sys.executable, "-m", "icsbridge", "schema"], capture_output=True, text=True
    )
    assert '"ItemEntry"' in schema.stdout and '"nodeid"' in schema.stdout


async def test_the_shipped_mapping_is_current(tmp_path: Path, no_task_leaks: None) -> None:
    fresh = tmp_path / "default.yaml"
    await _discover(Topology.default(), fresh, origin="simulator")
    assert SHIPPED.read_text() == fresh.read_text(), f"out of date: run `{REGENERATE}`"
    assert check_file(SHIPPED) == []
