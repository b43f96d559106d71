"""Discovery against the simulator over a real WebSocket, and refreshing a mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsbridge.catalog import catalog
from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping import document
from icsbridge.mapping.check import problems
from icsbridge.mapping.generate import discover_file
from icsbridge.model import ItemKey

from conftest import make_client


def served_keys(sim: Simulator) -> set[str]:
    """Every item instance the simulator has, commands included."""
    return {
        str(ItemKey(*path, spec.name))
        for path in sim.model.paths()
        for spec in catalog()
        if spec.level is path.level and sim.model.spec(path, spec.name) is not None
    }


@pytest.mark.parametrize(
    "topology", [Topology.default(), Topology.uniform(64, 16)], ids=["default", "64x16"]
)
async def test_discovery_writes_a_valid_mapping_of_everything_served(
    topology: Topology, tmp_path: Path, no_task_leaks: None
) -> None:
    path = tmp_path / "ics.yaml"
    async with Simulator(topology, time_scale=50).serve() as sim:
        async with make_client(sim, heartbeat=1.0) as client:
            report = await discover_file(client, path, progress=lambda done, total: None)
        served = served_keys(sim)
    mapping = document.load(path)
    assert problems(mapping) == []
    mapped = {str(item.key) for item in mapping.items}
    assert report.items == len(mapped) == len(mapping.items)
    assert mapped == served
    assert len(mapping.modules) == sum(len(line.modules) for line in topology.lines)


async def test_a_module_type_kind_and_options_are_found(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "ics.yaml"
    async with make_client(sim) as client:
        await discover_file(client, path)
    modules = {module.address: module for module in document.load(path).modules}
    flex = modules[3]
    assert flex.type == "EHS F 16 60n" and flex.channels == 16
    assert set(flex.options) == {"channel_ramp", "vct", "hv_mode", "polarity", "arc", "stack"}
    assert modules[4].kind == "lv" and modules[4].voltage_nominal == 8.0
    assert modules[1].voltage_nominal == -3000.0 and modules[1].serial == "4712400"


async def test_rediscovery_keeps_aliases_comments_and_reports_changes(
    tmp_path: Path, no_task_leaks: None
) -> None:
    path = tmp_path / "ics.yaml"
    small = Topology.uniform(2, 8)
    async with Simulator(small, time_scale=50).serve() as sim, make_client(sim) as client:
        await discover_file(client, path)
    text = path.read_text()
    text = text.replace("aliases: {}", "aliases:\n  # the drift chamber\n  0.1.3: DRIFT3")
    text = text.replace("disabled: []", "disabled: ['0.*.*.Control.emergency']  # no EMCY")
    text = text.replace(
        "overrides: {}", "overrides:\n  0.1.3.Control.voltageSet: {drive_high: 2000}"
    )
    path.write_text(text)
    bigger = Topology.uniform(3, 8)
    async with Simulator(bigger, time_scale=50).serve() as sim, make_client(sim) as client:
        report = await discover_file(client, path)
    text = path.read_text()
    assert "# the drift chamber" in text and "# no EMCY" in text
    mapping = document.load(path)
    assert mapping.aliases == {"0.1.3": "DRIFT3"}
    voltage_set = next(i for i in mapping.items if str(i.key) == "0.1.3.Control.voltageSet")
    assert voltage_set.pv == "ISEG:5230000:0:1:3:VoltageSet"  # serial from the iCS config
    assert voltage_set.aliases == ["ISEG:5230000:DRIFT3:VoltageSet"]
    assert voltage_set.drive_high == 2000 and voltage_set.high == 6000  # uniform: 6 kV
    emergency = [i for i in mapping.items if i.item == "Control.emergency"]
    assert emergency and all(i.disabled for i in emergency)
    assert report.vanished == []
    assert report.appeared and all(key.startswith("0.2.") for key in report.appeared)
