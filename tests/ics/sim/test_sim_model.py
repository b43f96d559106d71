"""The simulator model's items: initial values, selection, and how writes are taken."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from icsbridge.catalog import ModuleKind, ValueType, catalog
from icsbridge.ics.protocol import Selector
from icsbridge.ics.sim import QUIET, Outcome, SimModel, Topology
from icsbridge.model import ItemKey, ItemPath, Level

CH = ItemPath(0, 0, 0)
MODULE = ItemPath(0, 0)
CRATE = ItemPath(0, 1000)
SYSTEM = ItemPath()
LV = ItemPath(0, 2, 0)


def small() -> Topology:
    """The small test topology: 1 kV module ramp, 2 kV channel ramp, 8 V LV, -3 kV."""
    return Topology.load(Path(__file__).with_name("small_topology.yaml"))


@pytest.fixture
def model() -> SimModel:
    return SimModel(small(), noise=QUIET)


def value(model: SimModel, path: ItemPath, item: str) -> object:
    return model.value(ItemKey(*path, item))


def test_every_readable_item_has_a_typed_value() -> None:
    model = SimModel(Topology.default())
    types = {ValueType.BOOL: bool, ValueType.INT: int, ValueType.FLOAT: float, ValueType.TEXT: str}
    count = 0
    for path in model.paths():
        for key in model.select(path, ""):
            spec = model.spec(path, key.item)
            assert spec is not None and spec.access.readable
            assert type(model.value(key)) is types[spec.type], key
            count += 1
    assert count > 5000


def test_items_follow_catalog_by_kind_and_options(model: SimModel) -> None:
    items = catalog()
    lv = {spec.name for spec in items.level(Level.CHANNEL, ModuleKind.LV) if spec.access.readable}
    assert {key.item for key in model.select(LV, "")} == lv
    assert model.spec(CH, "Control.voltageRampspeedUp") is None
    assert model.spec(ItemPath(0, 1, 0), "Control.voltageRampspeedUp") is not None


def test_initial_values(model: SimModel) -> None:
    assert value(model, SYSTEM, "Setup.cycleTime") == 1000
    assert value(model, SYSTEM, "Status.runningStateIcs") == "ok"
    assert value(model, CRATE, "Status.firmwareName") == "CC24"
    assert value(model, CRATE, "Status.power") is True
    assert value(model, MODULE, "Status.serialNumber") == "10"
    assert value(model, MODULE, "Control.voltageRampspeed") == 5.0
    assert value(model, CH, "Status.voltageNominal") == 1000.0
    assert value(model, CH, "Status.voltageLimit") == 900.0
    assert value(model, CH, "Status.currentLimit") == pytest.approx(0.9e-3)
    assert value(model, CH, "Setup.delayedTripTime") == 100
    assert value(model, CH, "Status.runningState") == "off"
    assert 25 <= float(value(model, MODULE, "Status.temperature")) <= 35  # type: ignore[arg-type]


def test_write_only_items_are_not_readable(model: SimModel) -> None:
    assert ItemKey(*CH, "Control.clearAll") not in model.select(CH, "")
    assert model.select(CH, "Control.clearAll") == []
    with pytest.raises(KeyError):
        model.value(ItemKey(*CH, "Control.clearAll"))


def test_wildcards(model: SimModel) -> None:
    channels = model.select(Selector(0, "*", "*"), "Status.voltageNominal")
    assert len(channels) == 32 and len(set(channels)) == 32
    tops = model.select(Selector(0, "*", None), "Status.runningState")
    assert {key.address for key in tops} == {0, 1, 2, 3, 1000}
    ramps = model.select(Selector("*", "*", None), "Control.voltageRampspeed")
    assert [key.address for key in ramps] == [0, 3]
    every = model.select(Selector(0, 0, "*"), "*")
    assert len(every) == 8 * len(model.select(CH, ""))
    assert model.select(Selector(3, "*", "*"), "Status.on") == []


def test_heart_beat_and_clients(model: SimModel) -> None:
    model.set_clients(2)
    model.advance(1.0)
    model.advance(2.0)
    assert value(model, SYSTEM, "Status.heartBeat") == 2
    assert value(model, SYSTEM, "Status.connectedClients") == 2
    assert str(value(model, SYSTEM, "System.time")).startswith("1970-01-01T00:00:02")


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("0.5", "kV", 500.0),
        ("500", "V", 500.0),
        ("500", "", 500.0),
        ("250000", "mV", 250.0),
    ],
)
def test_voltage_units(model: SimModel, text: str, unit: str, expected: float) -> None:
    result = model.write(CH, "Control.voltageSet", text, unit)
    assert result.outcome is Outcome.ACCEPTED
    assert value(model, CH, "Control.voltageSet") == pytest.approx(expected)


@pytest.mark.parametrize("unit", ["µA", "μA", "uA"])
def test_current_micro_spellings(model: SimModel, unit: str) -> None:
    assert model.write(CH, "Control.currentSet", "50", unit).outcome is Outcome.ACCEPTED
    assert value(model, CH, "Control.currentSet") == pytest.approx(50e-6)


@pytest.mark.parametrize(("text", "unit"), [("0.05", "mA"), ("50000", "nA"), ("5e-5", "A")])
def test_current_units(model: SimModel, text: str, unit: str) -> None:
    assert model.write(CH, "Control.currentSet", text, unit).accepted
    assert value(model, CH, "Control.currentSet") == pytest.approx(50e-6)


def test_clamp_between_limit_and_nominal(model: SimModel) -> None:
    result = model.write(CH, "Control.voltageSet", "950", "V")
    assert result.outcome is Outcome.CLAMPED and result.value == 900.0
    assert value(model, CH, "Control.voltageSet") == 900.0
    assert model.write(CH, "Control.currentSet", "1", "mA").value == pytest.approx(0.9e-3)
    assert value(model, CH, "Status.inputError") is False


@pytest.mark.parametrize(
    ("item", "text"),
    [
        ("Control.voltageSet", "1001"),
        ("Control.voltageSet", "-5"),
        ("Control.currentSet", "0.002"),
        ("Setup.delayedTripAction", "7"),
        ("Setup.delayedTripTime", "0"),
    ],
)
def test_input_error(model: SimModel, item: str, text: str) -> None:
    before = value(model, CH, item)
    model.drain_changes()
    result = model.write(CH, item, text, "")
    assert result.outcome is Outcome.INPUT_ERROR and result.accepted
    assert result.input_errors == (CH,) and result.keys == ()
    assert value(model, CH, item) == before
    assert value(model, CH, "Status.inputError") is True
    assert value(model, CH, "Event.inputError") is True
    assert ItemKey(*CH, item) not in model.drain_changes()
    model.write(CH, item, str(before), "")
    assert value(model, CH, "Status.inputError") is False
    assert value(model, CH, "Event.inputError") is True


def test_per_channel_ramp_speed_bounds(model: SimModel) -> None:
    path = ItemPath(0, 1, 0)
    assert model.write(path, "Control.voltageRampspeedUp", "20", "V/s").outcome is Outcome.ACCEPTED
    assert model.write(path, "Control.voltageRampspeedUp", "1", "kV/s").outcome is (
        Outcome.INPUT_ERROR
    )


@pytest.mark.parametrize(
    ("path", "item", "text", "unit", "reason"),
    [
        (CH, "Control.warp", "1", "", "unknown item"),
        (ItemPath(0, 9, 0), "Control.on", "1", "", "no object"),
        (CH, "Status.voltageMeasure", "1", "", "read-only"),
        (CH, "Control.voltageSet", "lots", "V", "bad value"),
        (CH, "Control.voltageSet", "1", "furlong", "unknown unit"),
        (CH, "Control.voltageSet", "1", "mA", "does not fit"),
        (MODULE, "Control.voltageRampspeed", "50", "%/s", "out of range"),
        (MODULE, "Setup.adcSampleRate", "55", "", "out of range"),
        (SYSTEM, "Setup.cycleTime", "10", "ms", "out of range"),
        (CRATE, "Control.voltageSet", "1", "V", "unknown item"),
    ],
)
def test_rejected(
    model: SimModel, path: ItemPath, item: str, text: str, unit: str, reason: str
) -> None:
    result = model.write(path, item, text, unit)
    assert result.outcome is Outcome.REJECTED and not result.accepted
    assert reason in result.reason


def test_accepted_write_is_a_change_even_if_unchanged(model: SimModel) -> None:
    model.drain_changes()
    model.write(CH, "Control.voltageSet", "0", "V")
    assert ItemKey(*CH, "Control.voltageSet") in model.drain_changes()
    assert model.drain_changes() == []


def test_wildcard_write(model: SimModel) -> None:
    result = model.write(Selector(0, 0, "*"), "Control.voltageSet", "100", "V")
    assert len(result.keys) == 8
    assert {value(model, ItemPath(0, 0, n), "Control.voltageSet") for n in range(8)} == {100.0}


def test_module_and_system_writes(model: SimModel) -> None:
    assert model.write(MODULE, "Control.voltageRampspeed", "10", "%/s").accepted
    assert model.write(MODULE, "Control.adjustment", "0", "").accepted
    assert value(model, MODULE, "Status.adjustment") is False
    assert model.write(SYSTEM, "Setup.cycleTime", "500", "ms").accepted
    assert model.cycle_time == 0.5
    assert model.write(SYSTEM, "Control.logout", "1", "").accepted


def test_noise_is_reproducible() -> None:
    def run(seed: int) -> list[object]:
        model = SimModel(small(), seed=seed)
        model.advance(1.0)
        return [
            model.value(key) for key in model.select(Selector(0, "*", "*"), "Status.voltageMeasure")
        ]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert all(abs(float(v)) < 1.0 for v in run(1))  # type: ignore[arg-type]


def test_churn_gives_every_move_its_own_value(model: SimModel) -> None:
    """A reading moved twice in one go is sent twice, each time with the value it then had."""
    moves = model.churn(1000)
    assert len(moves) == 1000 == model.churned
    last: dict[ItemKey, object] = {}
    for key, moved in moves:
        assert key not in last or moved != last[key], key
        last[key] = moved
    assert last == {key: model.value(key) for key in last}
    assert len(last) < len(moves)  # readings came round more than once


def test_a_limited_churn_moves_only_the_first_readings(model: SimModel) -> None:
    everything = list(dict.fromkeys(key for key, _ in model.churn(1000)))
    model.limit_churn(3)
    moved = Counter(key for key, _ in model.churn(30))
    assert moved == dict.fromkeys(everything[:3], 10)
