"""The client driving the simulated hardware: trips, emergency, clears, and faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from icsbridge.catalog import ModuleKind
from icsbridge.ics.client import (
    IcsClient,
    LinkState,
    WriteRejected,
    WriteTimeout,
    WriteUnconfirmed,
)
from icsbridge.ics.protocol import Command, Packet, Request
from icsbridge.ics.sim.server import Simulator
from icsbridge.model import CRATE_ADDRESS, ItemKey, ItemPath

from conftest import eventually, make_client, wait_until

MODULE = ItemPath(0, 0)  # 8 channels, 6 kV, 60 MOhm loads: 10 uA at 600 V
CRATE = ItemPath(0, CRATE_ADDRESS)


def key(path: ItemPath, item: str) -> ItemKey:
    return ItemKey(*path, item)


def value(client: IcsClient, path: ItemPath, item: str) -> object:
    update = client.cache.get(key(path, item))
    assert update is not None, f"{path}.{item} never arrived"
    return update.value


@pytest.fixture
async def hw(sim: Simulator) -> AsyncIterator[IcsClient]:
    """A client subscribed to every item of the simulator."""
    async with make_client(sim) as client:
        await client.subscribe_all()
        yield client


async def switch_on(client: IcsClient, channel: ItemPath, volts: float) -> None:
    await client.set_item(key(channel, "Control.voltageSet"), volts)
    await client.set_item(key(channel, "Control.on"), True)


async def arm_trip(client: IcsClient, channel: ItemPath, action: int) -> None:
    """Trip at 5 uA after 100 ms with `action`; the 60 MOhm load draws that at 300 V."""
    await client.set_item(key(channel, "Control.currentSet"), 5e-6)
    await client.set_item(key(channel, "Setup.delayedTripTime"), 100)
    await client.set_item(key(channel, "Setup.delayedTripAction"), action)


async def cycles(client: IcsClient, count: int) -> None:
    """Wait until the simulator has run `count` more cycles (its heartbeat counter)."""
    heartbeat = key(ItemPath(), "Status.heartBeat")
    start = value(client, ItemPath(), "Status.heartBeat")
    await wait_until(client, heartbeat, lambda n: n >= start + count)


def set_packets(sim: Simulator) -> list[Packet]:
    return [
        packet
        for message in sim.received
        if isinstance(message, Request)
        for packet in message.packets
        if packet.command is Command.SET_ITEM
    ]


def record_voltages(client: IcsClient, channel: ItemPath) -> list[float]:
    seen: list[float] = []
    wanted = key(channel, "Status.voltageMeasure")
    client.cache.subscribe(lambda updates: seen.extend(u.value for u in updates if u.key == wanted))
    return seen


async def test_trip_action_0_latches_the_event_and_keeps_the_channel_on(hw: IcsClient) -> None:
    channel = ItemPath(0, 0, 0)
    await arm_trip(hw, channel, 0)
    await switch_on(hw, channel, 600.0)
    await wait_until(hw, key(channel, "Event.currentTrip"), bool)
    assert value(hw, channel, "Control.on") is True
    assert value(hw, channel, "Error.currentTrip") is False
    assert value(hw, channel, "Status.constantCurrent") is True


async def test_trip_action_1_ramps_the_channel_down(hw: IcsClient) -> None:
    channel = ItemPath(0, 0, 1)
    await hw.set_item(key(MODULE, "Control.voltageRampspeed"), 0.1)  # 6 V/s: 50 s from 300 V
    await arm_trip(hw, channel, 1)
    await switch_on(hw, channel, 600.0)
    await wait_until(hw, key(channel, "Error.currentTrip"), bool)
    after_trip = record_voltages(hw, channel)
    await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: abs(v) < 1.0)
    assert value(hw, channel, "Control.on") is False
    assert any(20.0 < v < 280.0 for v in after_trip), f"no ramp down in {after_trip}"


async def test_trip_action_2_switches_off_without_ramp(hw: IcsClient) -> None:
    channel = ItemPath(0, 0, 2)
    await arm_trip(hw, channel, 2)
    await switch_on(hw, channel, 600.0)
    await wait_until(hw, key(channel, "Error.currentTrip"), bool)
    after_trip = record_voltages(hw, channel)
    await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: abs(v) < 1.0)
    assert all(abs(v) < 1.0 for v in after_trip), f"ramped down: {after_trip}"
    assert value(hw, channel, "Status.runningState") == "error"


async def test_trip_action_3_switches_the_whole_module_off(hw: IcsClient) -> None:
    tripping, neighbour = ItemPath(0, 0, 3), ItemPath(0, 0, 4)
    await switch_on(hw, neighbour, 100.0)
    await wait_until(hw, key(neighbour, "Status.voltageMeasure"), lambda v: v > 99.0)
    await arm_trip(hw, tripping, 3)
    await switch_on(hw, tripping, 600.0)
    await wait_until(hw, key(tripping, "Error.currentTrip"), bool)
    await wait_until(hw, key(neighbour, "Status.voltageMeasure"), lambda v: abs(v) < 1.0)
    assert value(hw, neighbour, "Status.on") is False
    assert value(hw, MODULE, "Status.runningState") == "error"
    assert value(hw, CRATE, "Status.errorCounter") >= 1


async def test_trip_action_4_is_no_trip_at_all(hw: IcsClient) -> None:
    channel = ItemPath(0, 0, 5)
    await arm_trip(hw, channel, 4)
    await switch_on(hw, channel, 600.0)
    await wait_until(hw, key(channel, "Status.constantCurrent"), bool)
    await cycles(hw, 3)
    assert value(hw, channel, "Event.currentTrip") is False
    assert value(hw, channel, "Control.on") is True


async def test_emergency_drops_at_once_and_locks_switch_on(hw: IcsClient) -> None:
    channel = ItemPath(0, 0, 6)
    await switch_on(hw, channel, 300.0)
    await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: v > 299.0)
    after = record_voltages(hw, channel)
    await hw.set_item(key(channel, "Control.emergency"), True)
    await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: abs(v) < 1.0)
    assert all(abs(v) < 1.0 for v in after)
    assert value(hw, channel, "Status.emergency") is True
    await hw.set_item(key(channel, "Control.on"), True)
    await cycles(hw, 3)
    assert abs(value(hw, channel, "Status.voltageMeasure")) < 1.0, "switched on in emergency"
    await hw.set_item(key(channel, "Control.emergency"), False)
    await hw.set_item(key(channel, "Control.clearAll"), True)
    await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: v > 299.0)


@pytest.mark.parametrize("level", ["channel", "module", "crate"])
async def test_clear_commands_clear_the_latches_below(hw: IcsClient, level: str) -> None:
    channel = ItemPath(0, 0, 7)
    await arm_trip(hw, channel, 2)
    await switch_on(hw, channel, 600.0)
    await wait_until(hw, key(channel, "Error.currentTrip"), bool)
    await hw.set_item(key(channel, "Setup.delayedTripAction"), 4)
    target = {"channel": channel, "module": MODULE, "crate": CRATE}[level]
    await hw.set_item(key(target, "Control.clearErrors"), True)
    await wait_until(hw, key(channel, "Error.currentTrip"), lambda v: v is False)
    assert value(hw, channel, "Event.currentTrip") is True, "clearErrors cleared an event"
    await hw.set_item(key(target, "Control.clearEvents"), True)
    await wait_until(hw, key(channel, "Event.currentTrip"), lambda v: v is False)
    await wait_until(hw, key(CRATE, "Status.errorCounter"), lambda n: n == 0)


async def test_a_set_between_limit_and_nominal_comes_back_clamped(hw: IcsClient) -> None:
    channel = ItemPath(0, 1, 0)  # -3 kV module with its limit at 90 %
    confirmed = await hw.set_item(key(channel, "Control.voltageSet"), 2900.0)
    assert confirmed == pytest.approx(2700.0)


async def test_forced_trip_and_inhibit_switch_channels_off(sim: Simulator, hw: IcsClient) -> None:
    tripped, inhibited = ItemPath(0, 2, 0), ItemPath(0, 2, 1)
    for channel in (tripped, inhibited):
        await switch_on(hw, channel, 100.0)
        await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: v > 99.0)
    sim.faults.force_trip(tripped)
    sim.faults.set_inhibit(inhibited, True)
    await wait_until(hw, key(tripped, "Status.currentTrip"), bool)
    await wait_until(hw, key(inhibited, "Status.externalInhibitActive"), bool)
    for channel in (tripped, inhibited):
        await wait_until(hw, key(channel, "Status.voltageMeasure"), lambda v: abs(v) < 1.0)


async def test_values_reported_in_kv_and_microamps_arrive_in_volts_and_amps(
    sim: Simulator, hw: IcsClient
) -> None:
    channel = ItemPath(0, 2, 2)
    sim.faults.output_units = {"V": "kV", "A": "µA"}
    assert await hw.set_item(key(channel, "Control.voltageSet"), 250.0) == 250.0
    assert await hw.set_item(key(channel, "Control.currentSet"), 1e-3) == pytest.approx(1e-3)
    update = hw.cache.get(key(channel, "Control.voltageSet"))
    assert update.unit == "V"


async def test_a_burst_of_pushes_reaches_the_cache_whole(sim: Simulator, hw: IcsClient) -> None:
    counted = 0

    def count(updates: object) -> None:
        nonlocal counted
        counted += len(updates)  # type: ignore[arg-type]

    hw.cache.subscribe(count)
    sim.faults.burst(5000)
    await cycles(hw, 2)
    assert counted >= 5000
    assert hw.state is LinkState.READY


async def test_a_refused_write_raises_and_changes_nothing(sim: Simulator, hw: IcsClient) -> None:
    channel = ItemPath(0, 2, 3)
    await hw.set_item(key(channel, "Control.voltageSet"), 50.0)
    sim.faults.refuse_writes = True
    with pytest.raises(WriteRejected, match="refused"):
        await hw.set_item(key(channel, "Control.voltageSet"), 60.0)
    assert sim.model.value(key(channel, "Control.voltageSet")) == 50.0


async def test_delayed_replies_within_the_timeout_still_confirm(
    sim: Simulator, hw: IcsClient
) -> None:
    sim.faults.reply_delay = 0.05
    assert await hw.set_item(key(ItemPath(0, 2, 4), "Control.voltageSet"), 70.0) == 70.0


async def test_replies_later_than_the_timeout_fail_the_write(sim: Simulator, hw: IcsClient) -> None:
    sim.faults.reply_delay = 0.5
    with pytest.raises(WriteTimeout):
        await hw.set_item(key(ItemPath(0, 2, 5), "Control.voltageSet"), 80.0, timeout=0.1)


async def test_a_write_in_flight_when_the_link_drops_is_unconfirmed_never_sent_again(
    sim: Simulator, hw: IcsClient
) -> None:
    sim.faults.reply_delay = 0.5
    write = asyncio.create_task(hw.set_item(key(ItemPath(0, 2, 6), "Control.voltageSet"), 9.0))
    await eventually(lambda: any(p.item == "Control.voltageSet" for p in set_packets(sim)))
    sim.faults.drop_all()
    with pytest.raises(WriteUnconfirmed, match="unconfirmed: the iCS may still apply it"):
        await write
    sim.faults.reply_delay = 0.0
    await hw.wait_for_state(LinkState.READY)
    assert [p.value for p in set_packets(sim) if p.item == "Control.voltageSet"] == ["9"]


WRITE_VALUES = {
    "Control.serviceStart": "opc",
    "Control.serviceStop": "opc",
    "Control.serviceRestart": "opc",
    "Control.installFirmware": "firmware.bin",
    "Control.connect": "can0",
    "Control.disconnect": "can0",
}
"""Values for the write-only text commands; every other item is written with its own value."""


@pytest.mark.parametrize(
    "path",
    [ItemPath(), CRATE, ItemPath(0, 3), ItemPath(0, 3, 0)],
    ids=["system", "crate", "module", "channel"],
)
async def test_every_writable_item_takes_a_confirmed_write(
    sim: Simulator, hw: IcsClient, path: ItemPath
) -> None:
    kind, options = ModuleKind.HV, ()
    for line, module in sim.topology.modules():
        if (line, module.address) == (path.line, path.address):
            kind, options = module.kind, module.options
    specs = [
        spec
        for spec in hw.cache.catalog.level(path.level, kind, options)
        if spec.access.writable and spec.name != "Control.logout"
    ]
    assert specs
    for spec in specs:
        current = hw.cache.get(key(path, spec.name))
        if spec.access.readable:
            assert current is not None, f"{spec.name} was never reported"
            wanted = current.value
        else:
            wanted = WRITE_VALUES.get(spec.name, True)
        confirmed = await hw.set_item(key(path, spec.name), wanted)
        assert confirmed == pytest.approx(wanted), spec.name
    assert hw.state is LinkState.READY
