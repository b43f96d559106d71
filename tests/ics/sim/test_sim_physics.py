"""The simulator's physics, driven with explicit simulated times."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icsbridge.ics.protocol import Selector
from icsbridge.ics.sim import QUIET, Outcome, SimModel, Topology
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey, ItemPath

CH = ItemPath(0, 0, 0)
CH1 = ItemPath(0, 0, 1)
MODULE = ItemPath(0, 0)
CRATE = ItemPath(0, 1000)
FLEX = ItemPath(0, 1, 0)
LV = ItemPath(0, 2, 0)
NEG = ItemPath(0, 3, 0)


def small() -> Topology:
    """The small test topology: 1 kV module ramp, 2 kV channel ramp, 8 V LV, -3 kV."""
    return Topology.load(Path(__file__).with_name("small_topology.yaml"))


@pytest.fixture
def m() -> SimModel:
    return SimModel(small(), noise=QUIET)


def get(model: SimModel, path: ItemPath, item: str) -> Value:
    return model.value(ItemKey(*path, item))


def put(model: SimModel, path: ItemPath | Selector, item: str, text: str, unit: str = "") -> None:
    result = model.write(path, item, text, unit)
    assert result.outcome is Outcome.ACCEPTED, result


def switch_on(model: SimModel, path: ItemPath, volts: float) -> None:
    put(model, path, "Control.voltageSet", str(volts), "V")
    put(model, path, "Control.on", "1")


def test_module_ramp_reaches_set_point_on_time(m: SimModel) -> None:
    m.advance(2.0)
    switch_on(m, CH, 500)
    assert get(m, CH, "Status.ramping") is True
    assert get(m, CH, "Status.voltageRampUp") is True
    assert get(m, CH, "Event.voltageRampUp") is True
    assert get(m, CH, "Status.runningState") == "info"
    m.advance(7.0)
    assert get(m, CH, "Status.voltageMeasure") == 250.0
    assert get(m, MODULE, "Status.runningState") == "info"
    assert get(m, CRATE, "Status.runningState") == "info"
    m.advance(11.99)
    assert get(m, CH, "Status.voltageMeasure") == pytest.approx(499.5)
    assert get(m, CH, "Event.endOfRamp") is False
    m.advance(12.0)
    assert get(m, CH, "Status.voltageMeasure") == 500.0
    assert get(m, CH, "Status.currentMeasure") == pytest.approx(50e-6)
    assert get(m, CH, "Status.ramping") is False
    assert get(m, CH, "Status.constantVoltage") is True
    assert get(m, CH, "Event.endOfRamp") is True
    assert get(m, CH, "Status.runningState") == "ok"
    assert get(m, MODULE, "Status.runningState") == "ok"
    assert get(m, CRATE, "Status.on") is True


def test_module_ramp_speed_in_percent(m: SimModel) -> None:
    put(m, MODULE, "Control.voltageRampspeed", "10", "%/s")
    switch_on(m, CH, 500)
    m.advance(5.0)
    assert get(m, CH, "Status.voltageMeasure") == 500.0


def test_channel_ramp_speeds_up_and_down(m: SimModel) -> None:
    put(m, FLEX, "Control.voltageRampspeedUp", "20", "V/s")
    put(m, FLEX, "Control.voltageRampspeedDown", "40", "V/s")
    switch_on(m, FLEX, 200)
    m.advance(5.0)
    assert get(m, FLEX, "Status.voltageMeasure") == 100.0
    m.advance(10.0)
    assert get(m, FLEX, "Event.endOfRamp") is True
    put(m, FLEX, "Control.clearEvents", "1")
    put(m, FLEX, "Control.on", "0")
    assert get(m, FLEX, "Status.voltageRampDown") is True
    assert get(m, FLEX, "Status.on") is False
    m.advance(12.5)
    assert get(m, FLEX, "Status.voltageMeasure") == 100.0
    assert get(m, FLEX, "Status.runningState") == "info"
    m.advance(15.0)
    assert get(m, FLEX, "Status.voltageMeasure") == 0.0
    assert get(m, FLEX, "Event.endOfRamp") is True
    assert get(m, FLEX, "Status.runningState") == "off"


def test_set_point_change_while_on_ramps(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(10.0)
    put(m, CH, "Control.voltageSet", "300", "V")
    assert get(m, CH, "Status.voltageRampDown") is True
    m.advance(14.0)
    assert get(m, CH, "Status.voltageMeasure") == 300.0
    assert get(m, CH, "Status.on") is True


@given(st.lists(st.floats(min_value=0.0, max_value=30.0), max_size=12))
@settings(max_examples=40, deadline=None)
def test_result_does_not_depend_on_time_slicing(times: list[float]) -> None:
    model = SimModel(small(), noise=QUIET)
    put(model, CH, "Control.currentSet", "20", "µA")
    put(model, CH, "Setup.delayedTripAction", "1")
    put(model, CH1, "Control.voltageSet", "700", "V")
    put(model, Selector(0, 0, "*"), "Control.on", "1")
    switch_on(model, CH, 500)
    for t in sorted(times):
        model.advance(t)
    model.advance(30.0)
    assert get(model, CH, "Error.currentTrip") is True
    assert get(model, CH, "Status.voltageMeasure") == 0.0
    assert get(model, CH1, "Status.voltageMeasure") == 700.0


# --- regulation and trips -------------------------------------------------------------


def start_overload(m: SimModel, action: int) -> None:
    """Iset 20 µA into 10 MΩ: the ramp to 500 V hits constant current at 200 V at t = 4 s."""
    put(m, CH, "Control.currentSet", "20", "µA")
    put(m, CH, "Setup.delayedTripAction", str(action))
    switch_on(m, CH1, 100)
    switch_on(m, CH, 500)
    m.advance(4.05)
    assert get(m, CH, "Status.voltageMeasure") == 200.0
    assert get(m, CH, "Status.currentMeasure") == pytest.approx(20e-6)
    assert get(m, CH, "Status.constantCurrent") is True
    assert get(m, CH, "Event.constantCurrent") is True
    assert get(m, CH, "Event.currentTrip") is False


def test_trip_action_0_event_only(m: SimModel) -> None:
    start_overload(m, 0)
    m.advance(4.2)
    assert get(m, CH, "Event.currentTrip") is True
    assert get(m, CH, "Status.currentTrip") is True
    assert get(m, CH, "Error.currentTrip") is False
    assert get(m, CH, "Status.voltageMeasure") == 200.0
    assert get(m, CH, "Status.on") is True
    assert get(m, CH, "Status.runningState") == "ok"


def test_trip_action_1_ramps_down(m: SimModel) -> None:
    start_overload(m, 1)
    m.advance(4.2)
    assert get(m, CH, "Error.currentTrip") is True
    assert get(m, CH, "Control.on") is False
    assert get(m, CH, "Status.voltageMeasure") == pytest.approx(195.0)
    assert get(m, CH, "Status.voltageRampDown") is True
    assert get(m, CH, "Status.runningState") == "error"
    m.advance(10.0)
    assert get(m, CH, "Status.voltageMeasure") == 0.0
    assert get(m, CH1, "Status.voltageMeasure") == 100.0


def test_trip_action_2_switches_off_at_once(m: SimModel) -> None:
    start_overload(m, 2)
    m.advance(4.2)
    assert get(m, CH, "Status.currentTrip") is True
    assert get(m, CH, "Error.currentTrip") is True
    assert get(m, CH, "Status.voltageMeasure") == 0.0
    assert get(m, CH, "Status.ramping") is False
    assert get(m, CH1, "Status.voltageMeasure") == 100.0


def test_trip_action_3_switches_module_off(m: SimModel) -> None:
    start_overload(m, 3)
    m.advance(4.2)
    assert get(m, CH, "Error.currentTrip") is True
    assert get(m, CH1, "Error.currentTrip") is False
    for path in (CH, CH1):
        assert get(m, path, "Status.voltageMeasure") == 0.0
        assert get(m, path, "Control.on") is False
    assert get(m, MODULE, "Status.runningState") == "error"


def test_trip_action_4_regulates_without_event(m: SimModel) -> None:
    start_overload(m, 4)
    m.advance(60.0)
    assert get(m, CH, "Event.currentTrip") is False
    assert get(m, CH, "Status.constantCurrent") is True
    assert get(m, CH, "Status.voltageMeasure") == 200.0


def test_trip_time(m: SimModel) -> None:
    put(m, CH, "Setup.delayedTripTime", "1000", "ms")
    start_overload(m, 2)
    m.advance(4.999)
    assert get(m, CH, "Status.voltageMeasure") == 200.0
    m.advance(5.001)
    assert get(m, CH, "Status.voltageMeasure") == 0.0


def test_lowering_current_set_regulates_at_once(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(20.0)
    put(m, CH, "Control.currentSet", "10", "µA")
    assert get(m, CH, "Status.voltageMeasure") == 100.0
    assert get(m, CH, "Status.constantCurrent") is True
    assert get(m, CH, "Status.constantVoltage") is False


def test_kill_trips_at_once(m: SimModel) -> None:
    put(m, MODULE, "Control.kill", "1")
    put(m, CH, "Control.currentSet", "20", "µA")
    switch_on(m, CH, 500)
    m.advance(4.0001)
    assert get(m, CH, "Error.currentTrip") is True
    assert get(m, CH, "Status.voltageMeasure") == 0.0


def test_kill_switched_on_while_regulating(m: SimModel) -> None:
    start_overload(m, 4)
    put(m, MODULE, "Control.kill", "1")
    assert get(m, CH, "Status.currentTrip") is True
    assert get(m, CH, "Status.voltageMeasure") == 0.0


# --- emergency, latches, clears ---------------------------------------------------------


def test_emergency_locks_until_released_and_cleared(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(10.0)
    put(m, CH, "Control.emergency", "1")
    assert get(m, CH, "Status.voltageMeasure") == 0.0
    assert get(m, CH, "Status.emergency") is True
    assert get(m, CH, "Event.emergency") is True
    assert get(m, CH, "Error.emergency") is True
    put(m, CH, "Control.on", "1")
    m.advance(12.0)
    assert get(m, CH, "Status.on") is False
    put(m, CH, "Control.clearAll", "1")
    m.advance(13.0)
    assert get(m, CH, "Status.on") is False, "still in emergency: the latch comes back"
    put(m, CH, "Control.emergency", "0")
    assert get(m, CH, "Status.emergency") is False
    assert get(m, CH, "Status.on") is False, "released but the emergency event still blocks"
    put(m, CH, "Control.clearAll", "1")
    assert get(m, CH, "Status.on") is True
    m.advance(23.0)
    assert get(m, CH, "Status.voltageMeasure") == 500.0


def test_blocking_event_prevents_switch_on_until_cleared(m: SimModel) -> None:
    start_overload(m, 2)
    m.advance(5.0)
    put(m, CH, "Control.currentSet", "100", "µA")
    put(m, CH, "Control.on", "1")
    m.advance(6.0)
    assert get(m, CH, "Status.on") is False
    assert get(m, CH, "Control.on") is True
    put(m, CH, "Control.clearEvents", "1")
    assert get(m, CH, "Status.on") is True
    assert get(m, CH, "Status.currentTrip") is False
    assert get(m, CH, "Error.currentTrip") is True
    m.advance(16.0)
    assert get(m, CH, "Status.voltageMeasure") == 500.0


def test_event_mask_decides_what_blocks(m: SimModel) -> None:
    put(m, CH, "Control.channelEventMask", "0")
    start_overload(m, 2)
    m.advance(5.0)
    put(m, CH, "Control.on", "1")
    assert get(m, CH, "Status.on") is True


def test_clear_cascades_from_module_and_crate(m: SimModel) -> None:
    m.force_trip(MODULE)
    m.force_trip(FLEX)
    assert get(m, MODULE, "Status.errorCounter") == 8
    assert get(m, CRATE, "Status.errorCounter") == 9
    assert get(m, CRATE, "Status.eventCounter") == 9
    put(m, MODULE, "Control.clearErrors", "1")
    assert get(m, CH1, "Error.currentTrip") is False
    assert get(m, CH1, "Event.currentTrip") is True
    assert get(m, MODULE, "Status.errorCounter") == 0
    assert get(m, MODULE, "Status.eventCounter") == 8
    assert get(m, FLEX, "Error.currentTrip") is True
    put(m, CRATE, "Control.clearAll", "1")
    for path in (CH, CH1, FLEX):
        assert get(m, path, "Event.currentTrip") is False
        assert get(m, path, "Error.currentTrip") is False
    assert get(m, CRATE, "Status.eventCounter") == 0
    assert get(m, CRATE, "Status.runningState") == "off"


def test_channel_clear_leaves_siblings(m: SimModel) -> None:
    m.force_trip(MODULE)
    put(m, CH, "Control.clearAll", "1")
    assert get(m, CH, "Status.errorCounter") == 0
    assert get(m, CH1, "Status.errorCounter") == 1
    assert get(m, MODULE, "Status.errorCounter") == 7


def test_aggregation_precedence(m: SimModel) -> None:
    switch_on(m, CH, 100)
    m.advance(5.0)
    assert get(m, MODULE, "Status.runningState") == "ok"
    switch_on(m, CH1, 500)
    assert get(m, MODULE, "Status.runningState") == "info"
    m.force_trip(ItemPath(0, 0, 2))
    assert get(m, MODULE, "Status.runningState") == "error"
    assert get(m, CRATE, "Status.runningState") == "error"
    assert get(m, ItemPath(0, 1), "Status.runningState") == "off"


# --- crate power, inhibit, LV, polarity -------------------------------------------------


def test_crate_standby_and_back(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(20.0)
    put(m, CRATE, "Control.power", "0")
    assert get(m, CRATE, "Status.power") is False
    assert get(m, CRATE, "Status.isAlive") is True
    assert get(m, CRATE, "Status.on") is False
    assert get(m, MODULE, "Status.isAlive") is False
    assert get(m, CH, "Status.runningState") == "disabled"
    assert get(m, MODULE, "Status.runningState") == "disabled"
    assert get(m, CRATE, "Status.runningState") == "disabled"
    assert get(m, CH, "Status.voltageMeasure") == 0.0
    assert m.write(CH, "Control.on", "1", "").outcome is Outcome.REJECTED
    put(m, CRATE, "Control.power", "1")
    assert get(m, MODULE, "Status.isAlive") is True
    assert get(m, CH, "Status.runningState") == "off"
    assert get(m, CRATE, "Status.runningState") == "off"
    assert get(m, CH, "Control.on") is False


def test_inhibit_switches_off_and_latches(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(20.0)
    m.set_inhibit(CH, True)
    assert get(m, CH, "Status.externalInhibitActive") is True
    assert get(m, CH, "Event.externalInhibitActive") is True
    assert get(m, CH, "Error.externalInhibitActive") is True
    assert get(m, CH, "Status.voltageMeasure") == 0.0
    m.set_inhibit(CH, False)
    assert get(m, CH, "Status.externalInhibitActive") is False
    put(m, CH, "Control.on", "1")
    assert get(m, CH, "Status.on") is False
    put(m, CH, "Control.clearAll", "1")
    assert get(m, CH, "Status.on") is True


def test_inhibit_action_0_only_latches(m: SimModel) -> None:
    put(m, CH, "Setup.externalInhibitAction", "0")
    switch_on(m, CH, 500)
    m.advance(20.0)
    m.set_inhibit(MODULE, True)
    assert get(m, CH, "Event.externalInhibitActive") is True
    assert get(m, CH, "Error.externalInhibitActive") is False
    assert get(m, CH, "Status.voltageMeasure") == 500.0


def test_force_trip_uses_ramp_down_action(m: SimModel) -> None:
    put(m, CH, "Setup.delayedTripAction", "1")
    switch_on(m, CH, 500)
    m.advance(20.0)
    m.force_trip(CH)
    m.advance(21.0)
    assert get(m, CH, "Status.voltageMeasure") == 450.0
    assert get(m, CH, "Error.currentTrip") is True


def test_lv_channel(m: SimModel) -> None:
    switch_on(m, LV, 5)
    m.advance(0.5)
    assert get(m, LV, "Status.voltageMeasure") == 4.0
    m.advance(1.0)
    assert get(m, LV, "Status.voltageMeasure") == 5.0
    assert get(m, LV, "Status.currentMeasure") == 2.5
    assert get(m, LV, "Status.voltageTerminalMeasure") == pytest.approx(5.05)
    assert get(m, LV, "Status.on") is True
    assert get(m, LV, "Status.runningState") == "ok"
    assert m.write(LV, "Control.voltageSet", "9", "V").outcome is Outcome.INPUT_ERROR
    assert get(m, LV, "Event.inputError") is True
    put(m, LV, "Control.on", "0")
    m.advance(3.0)
    assert get(m, LV, "Status.voltageMeasure") == 0.0


def test_negative_polarity(m: SimModel) -> None:
    assert get(m, NEG, "Status.voltageNominal") == -3000.0
    assert get(m, NEG, "Status.voltageLimit") == -3000.0
    switch_on(m, NEG, 1500)
    m.advance(20.0)
    assert get(m, NEG, "Status.voltageMeasure") == -1500.0
    assert get(m, NEG, "Status.currentMeasure") == pytest.approx(-50e-6)


def test_crate_on_while_output_above_63_volts(m: SimModel) -> None:
    switch_on(m, CH, 500)
    m.advance(20.0)
    put(m, CH, "Control.on", "0")
    m.advance(28.0)
    assert get(m, CH, "Status.voltageMeasure") == 100.0
    assert get(m, CRATE, "Status.on") is True
    m.advance(29.0)
    assert get(m, CRATE, "Status.on") is False
