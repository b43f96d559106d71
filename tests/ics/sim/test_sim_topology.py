"""Topologies: YAML loading, validation, the shipped default and scale runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from icsbridge.catalog import ModuleKind, ModuleOption, catalog
from icsbridge.ics.sim import ModuleConfig, Topology
from icsbridge.model import Level

EXAMPLE = """
lines:
  - line: 0
    crate: {serial: 5230102, firmware_name: CC24, firmware_release: "2.6.3"}
    modules:
      - {address: 0, type: "EHS 8060n", firmware_name: E08F2, serial: 4712345, channels: 8,
         voltage_nominal: 6000, current_nominal: 0.001, options: [module_ramp], load: 60.0e6}
      - {address: 4, type: "MPV 8008", kind: lv, firmware_name: W08C0, serial: 4799001,
         channels: 8, voltage_nominal: 8, current_nominal: 5, load: 2.0}
"""


def module(**fields: object) -> dict[str, object]:
    return {
        "address": 0,
        "serial": 1,
        "channels": 8,
        "voltage_nominal": 1000,
        "current_nominal": 1e-3,
        **fields,
    }


def test_parse_example() -> None:
    topology = Topology.parse(EXAMPLE)
    (line,) = topology.lines
    assert line.crate.firmware_name == "CC24"
    hv, lv = line.modules
    assert hv.kind is ModuleKind.HV and hv.options == (ModuleOption.MODULE_RAMP,)
    assert lv.kind is ModuleKind.LV and lv.load_of(7) == 2.0
    assert topology.counts() == (1, 2, 16)


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert Topology.load(path) == Topology.parse(EXAMPLE)


def test_defaults_of_a_module() -> None:
    config = ModuleConfig.model_validate(module())
    assert config.options == (ModuleOption.MODULE_RAMP,)
    assert config.voltage_limit_percent == config.current_limit_percent == 100


def test_per_channel_load() -> None:
    config = ModuleConfig.model_validate(module(load=[float(n + 1) for n in range(8)]))
    assert config.load_of(3) == 4.0


@pytest.mark.parametrize(
    "fields",
    [
        {"channels": 4},
        {"channels": 49},
        {"address": 64},
        {"voltage_nominal": 0},
        {"current_nominal": 0},
        {"load": [1.0, 2.0]},
        {"load": -5.0},
        {"voltage_limit_percent": 120},
        {"options": ["warp_drive"]},
        {"colour": "blue"},
    ],
)
def test_invalid_module(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModuleConfig.model_validate(module(**fields))


def test_addresses_unique_per_line() -> None:
    with pytest.raises(ValidationError, match="not unique"):
        Topology.model_validate({"lines": [{"line": 0, "modules": [module(), module()]}]})


def test_negative_polarity_allowed() -> None:
    assert ModuleConfig.model_validate(module(voltage_nominal=-3000)).voltage_nominal == -3000


def test_default_topology_mixes_modules() -> None:
    topology = Topology.default()
    modules = [config for _, config in topology.modules()]
    assert {m.channels for m in modules} >= {8, 16, 48}
    assert {m.kind for m in modules} == {ModuleKind.HV, ModuleKind.LV}


def test_default_topology_carries_every_optional_item() -> None:
    items = catalog()
    modules = [config for _, config in Topology.default().modules()]
    for level in (Level.MODULE, Level.CHANNEL):
        present = {spec.name for m in modules for spec in items.level(level, m.kind, m.options)}
        assert present == {spec.name for spec in items if spec.level is level}


def test_uniform() -> None:
    topology = Topology.uniform(64, 16)
    assert topology.counts() == (1, 64, 1024)
    assert Topology.uniform(100, 8).counts() == (2, 100, 800)
