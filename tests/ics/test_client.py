"""The client against the simulated iCS over a real WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from icsbridge.ics.client import (
    IcsClient,
    LinkDown,
    LinkState,
    LoginRefused,
    WriteRejected,
    WriteTimeout,
)
from icsbridge.ics.protocol import Command, Request, Selector
from icsbridge.ics.sim.server import Simulator
from icsbridge.model import CRATE_ADDRESS, ItemKey, ItemPath

from conftest import eventually, make_client, wait_until

CHANNEL = ItemPath(0, 0, 1)


def key(path: ItemPath, item: str) -> ItemKey:
    return ItemKey(*path, item)


def set_items(sim: Simulator) -> list[tuple[ItemPath | Selector, str, str]]:
    """Every setItem the simulator received, as (selector, item, value)."""
    return [
        (packet.selector, packet.item, packet.value)
        for message in sim.received
        if isinstance(message, Request)
        for packet in message.packets
        if packet.command is Command.SET_ITEM
    ]


async def test_login_is_ready(client: IcsClient) -> None:
    assert client.state is LinkState.READY


async def test_bad_password_is_refused_clearly(sim: Simulator) -> None:
    with pytest.raises(LoginRefused, match="refused the login of user 'admin'"):
        async with IcsClient(sim.url, "admin", "wrong"):
            pass


async def test_unreachable_ics_fails_clearly(no_task_leaks: None) -> None:
    with pytest.raises(LinkDown, match="cannot connect"):
        async with IcsClient("ws://127.0.0.1:9", "admin", "password"):
            pass


async def test_wildcard_subscribe_returns_one_record_per_object(
    sim: Simulator, client: IcsClient
) -> None:
    channels = {
        ItemPath(line.line, module.address, channel)
        for line in sim.topology.lines
        for module in line.modules
        for channel in range(module.channels)
    }
    updates = await client.subscribe([(Selector("*", "*", "*"), "Status.voltageMeasure")])
    assert sorted(u.key.path for u in updates) == sorted(channels)
    assert all(isinstance(u.value, float) and u.unit == "V" for u in updates)


async def test_subscribe_all_fills_the_cache_with_every_level(client: IcsClient) -> None:
    await client.subscribe_all()
    levels = {u.key.path.level for u in client.cache.values()}
    assert {"system", "crate", "module", "channel"} <= {str(level) for level in levels}
    crate_power = client.cache.get(ItemKey(0, CRATE_ADDRESS, None, "Control.power"))
    assert crate_power is not None and crate_power.value is True


async def test_set_voltage_switch_on_and_the_measured_voltage_ramps(client: IcsClient) -> None:
    measured = key(CHANNEL, "Status.voltageMeasure")
    steps: list[float] = []
    client.cache.subscribe(
        lambda updates: steps.extend(u.value for u in updates if u.key == measured)
    )
    module = ItemKey(CHANNEL.line, CHANNEL.address, None, "Control.voltageRampspeed")
    assert await client.set_item(module, 0.2) == 0.2  # % of 6 kV per second: 42 s to 500 V
    assert await client.set_item(key(CHANNEL, "Control.voltageSet"), 500.0) == 500.0
    assert await client.set_item(key(CHANNEL, "Control.on"), True) is True
    await client.subscribe([(Selector(*CHANNEL), "Status.voltageMeasure")])
    await wait_until(client, measured, lambda v: abs(v - 500.0) < 1.0)
    rising = [v for v in steps if 5.0 < v < 495.0]
    assert len(rising) >= 3, f"no ramp seen, only {steps}"
    assert rising == sorted(rising)


async def test_a_set_above_nominal_is_refused_with_an_input_error(
    client: IcsClient, sim: Simulator
) -> None:
    vset = key(CHANNEL, "Control.voltageSet")
    await client.set_item(vset, 100.0)
    nominal = sim.model.value(key(CHANNEL, "Status.voltageNominal"))
    with pytest.raises(WriteRejected, match="input error"):
        await client.set_item(vset, nominal * 2)
    assert client.cache.get(vset).value == 100.0
    assert client.cache.get(key(CHANNEL, "Event.inputError")).value is True


async def test_write_while_link_down_fails_at_once_and_sends_nothing(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.05) as client:
        vset = key(CHANNEL, "Control.voltageSet")
        await client.set_item(vset, 10.0)
        sim.faults.silent = True
        await client.wait_for_state(LinkState.LOST)
        before = set_items(sim)
        with pytest.raises(LinkDown):
            await client.set_item(vset, 20.0)
        assert set_items(sim) == before
        sim.faults.silent = False
        await client.wait_for_state(LinkState.READY)


async def test_after_a_dropped_link_the_client_resyncs_and_writes_nothing(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        await client.subscribe([(Selector(0, "*", "*"), "Control.voltageSet")])
        await client.set_item(key(CHANNEL, "Control.voltageSet"), 42.0)
        writes = set_items(sim)
        logins = sum(type(m).__name__ == "Login" for m in sim.received)
        states: list[LinkState] = []
        client.on_state(states.append)
        sim.faults.drop_all()
        await client.wait_for_state(LinkState.LOST)
        await client.wait_for_state(LinkState.READY)
        assert states[:1] == [LinkState.LOST] and states[-1] is LinkState.READY
        assert sum(type(m).__name__ == "Login" for m in sim.received) == logins + 1
        assert set_items(sim) == writes, "a write was replayed after reconnecting"
        assert client.cache.get(key(CHANNEL, "Control.voltageSet")).value == 42.0


async def test_a_silent_link_counts_as_lost(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.05, missed_heartbeats=3) as client:
        loop = asyncio.get_running_loop()
        sim.faults.silent = True
        silent_since = loop.time()
        await client.wait_for_state(LinkState.LOST)
        waited = loop.time() - silent_since
        assert waited >= 0.15 - 0.06  # not before 3 intervals without a frame
        sim.faults.silent = False
        await client.wait_for_state(LinkState.READY)


async def test_a_login_that_is_never_answered_is_tried_again(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.05) as client:
        sim.faults.silent = True  # the next login is taken, but its reply is lost
        sim.faults.drop_all()
        await client.wait_for_state(LinkState.CONNECTING)
        await eventually(lambda: sum(type(m).__name__ == "Login" for m in sim.received) >= 2)
        sim.faults.silent = False  # pushes to the orphan session flow again
        await client.wait_for_state(LinkState.READY)


async def test_a_quiet_link_is_silent_before_it_is_lost(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.1) as client:
        seen: list[tuple[LinkState, bool]] = []
        client.on_state(lambda state: seen.append((state, client.silent)))
        sim.faults.silent = True
        await client.wait_for_state(LinkState.LOST)
        assert seen[:2] == [(LinkState.READY, True), (LinkState.LOST, False)]
        sim.faults.silent = False
        await client.wait_for_state(LinkState.READY)


async def test_nothing_is_sent_to_a_silent_ics(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.2, missed_heartbeats=20) as client:
        await client.subscribe_all()  # as the bridge does: a write then sends its setItem only
        silent = asyncio.Event()
        client.on_state(lambda state: client.silent and silent.set())
        sim.faults.silent = True
        await silent.wait()
        with pytest.raises(LinkDown, match="is silent: nothing sent"):
            await client.set_item(ItemKey(0, 2, 1, "Control.voltageSet"), 12.0)
        with pytest.raises(WriteTimeout, match="unconfirmed"):  # switching off always goes out
            await client.set_item(ItemKey(0, 2, 1, "Control.on"), False, timeout=0.2)
        sent = [p for m in sim.received if isinstance(m, Request) for p in m.packets]
        assert [p.item for p in sent if p.command is Command.SET_ITEM] == ["Control.on"]
        sim.faults.silent = False


async def test_a_stall_of_this_process_is_no_silence_of_the_ics(sim: Simulator) -> None:
    async with make_client(sim, heartbeat=0.1, missed_heartbeats=3) as client:
        await client.subscribe([(Selector(0, "*", "*"), "Status.voltageMeasure")])
        seen: list[tuple[LinkState, bool]] = []
        client.on_state(lambda state: seen.append((state, client.silent)))
        time.sleep(1.0)  # the event loop stalls for three silence limits
        stalled = asyncio.get_running_loop().time()
        await eventually(lambda: client.last_frame_time > stalled)
        await client.subscribe([(Selector(0, "*", "*"), "Status.currentMeasure")])
        assert seen == [] and client.state is LinkState.READY
