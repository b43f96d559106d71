"""Crates, modules and channels against the simulated iCS: the tree, gets, sets and clears."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simulated import connected, simulator, until

from icsbridge.compat.icsClientPython3 import LinkDown, WriteRejected, connection
from icsbridge.model import ItemPath

from conftest import SimThread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with simulator() as running:
        yield running


@pytest.fixture
def conn(sim: SimThread) -> Iterator[connection]:
    with connected(sim) as made:
        yield made


def test_the_tree_is_the_hardware(sim: SimThread, conn: connection) -> None:
    (line,) = sim.sim.topology.lines
    assert [repr(c) for c in conn.crates] == ["0.1000"] and conn.getCrates() == conn.crates
    assert [repr(m) for m in conn.modules] == [f"0.{m.address}" for m in line.modules]
    assert [len(m.channels) for m in conn.getModules()] == [m.channels for m in line.modules]
    module = conn.modules[1]
    channel = module.channels[15]
    assert repr(channel) == "0.1.15"
    assert (channel.connection, channel.module, channel.line, channel.address, channel.index) == (
        conn,
        module,
        0,
        1,
        15,
    )
    assert (module.connection, module.line, module.address) == (conn, 0, 1)
    assert (conn.crates[0].line, conn.crates[0].address) == (0, 1000)
    with pytest.raises(AttributeError, match="read-only"):
        channel.index = 3


def test_getters_return_typed_values_from_the_cache(conn: connection) -> None:
    crate, module, lv = conn.crates[0], conn.modules[0], conn.modules[4]
    channel = module.channels[0]
    assert crate.getStatusFirmwareName() == "CC24" and crate.getControlPower() is True
    assert module.getStatusFirmwareName() == "E08F2" and module.getStatusSerialNumber() == "4712345"
    temperature = module.getStatusTemperature()
    assert isinstance(temperature, float) and 0 < temperature < 85
    assert channel.getStatusVoltageNominal() == 6000.0 and channel.getStatusOn() is False
    assert channel.getStatusRunningState() == "off" and channel.getSetupDelayedTripTime() == 100
    assert lv.channels[0].getStatusTrip() is None  # an item LV channels do not have


def test_a_set_returns_the_confirmed_value_and_the_channel_ramps(conn: connection) -> None:
    module = conn.modules[0]
    channel = module.channels[2]
    assert module.setControlVoltageRampSpeed(20.0) == 20.0
    assert channel.setControlVoltageSet("150") == 150.0
    assert channel.setControlVoltageSet(200) == 200.0 and channel.getControlVoltageSet() == 200.0
    assert channel.setControlOn(1) is True
    until(lambda: (channel.getStatusVoltageMeasure() or 0.0) > 100.0)
    assert channel.setControlOn(0) is False


def test_module_items_read_and_write(conn: connection) -> None:
    module = conn.modules[2]
    assert module.setControlKill(1) is True and module.getControlKill() is True
    assert module.setSetupAdcSampleRate(60) == 60 and module.getSetupAdcSampleRate() == 60
    assert module.getStatusIsAlive() is True and module.getStatusRunningState() == "off"


def test_a_value_above_nominal_is_refused(conn: connection) -> None:
    channel = conn.modules[0].channels[3]
    with pytest.raises(WriteRejected, match="input error"):
        channel.setControlVoltageSet(7000.0)
    assert channel.getControlVoltageSet() == 0.0


def test_a_write_the_ics_refuses_raises(sim: SimThread, conn: connection) -> None:
    sim.sim.faults.refuse_writes = True
    try:
        with pytest.raises(WriteRejected, match="refused"):
            conn.modules[0].channels[4].setControlVoltageSet(10.0)
    finally:
        sim.sim.faults.refuse_writes = False


def test_wrong_values_fail_before_anything_is_sent(sim: SimThread, conn: connection) -> None:
    channel = conn.modules[0].channels[5]
    sent = len(sim.set_items())
    with pytest.raises(ValueError, match=r"Control\.on"):
        channel.setControlOn("maybe")
    with pytest.raises(TypeError, match=r"Control\.voltageSet"):
        channel.setControlVoltageSet([100])  # type: ignore[list-item]
    assert len(sim.set_items()) == sent


def test_clear_all_drops_a_latched_trip(sim: SimThread, conn: connection) -> None:
    channel = conn.modules[2].channels[5]
    sim.call(lambda: sim.sim.faults.force_trip(ItemPath(0, 2, 5)))
    until(lambda: channel.getEventTrip() and channel.getErrorTrip())
    assert channel.getStatusErrorCounter()
    assert channel.setControlClearAll(1) == 1
    until(lambda: not channel.getEventCurrentTrip() and not channel.getErrorCurrentTrip())
    until(lambda: channel.getStatusErrorCounter() == 0)


def test_crate_power_switches_to_standby_and_back() -> None:
    with simulator() as sim, connected(sim) as conn:
        crate, module = conn.crates[0], conn.modules[0]
        assert crate.setControlPower(0) is False
        until(lambda: crate.getStatusPower() is False and module.getStatusIsAlive() is False)
        assert module.channels[0].getStatusRunningState() == "disabled"
        assert crate.setControlPower(1) is True
        until(lambda: crate.getStatusPower() is True and module.getStatusIsAlive() is True)


def test_a_lost_link_fails_writes_at_once_and_reads_keep_the_last_value(
    sim: SimThread, conn: connection
) -> None:
    channel = conn.modules[0].channels[6]
    nominal = channel.getStatusVoltageNominal()
    sim.sim.faults.silent = True
    try:
        sim.call(sim.sim.faults.drop_all)
        until(lambda: conn.getStatusConnectionStatus() != "Configured")
        with pytest.raises(LinkDown, match="nothing sent"):
            channel.setControlOn(1)
        assert channel.getStatusVoltageNominal() == nominal
    finally:
        sim.sim.faults.silent = False
    until(lambda: conn.getStatusConnectionStatus() == "Configured")
