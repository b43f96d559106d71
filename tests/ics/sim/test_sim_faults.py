"""Fault injection: what a test can make the simulator do wrong, seen on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from icsbridge.ics.protocol import Command, Request
from icsbridge.ics.sim import QUIET, Simulator, Topology
from icsbridge.model import ItemKey, ItemPath

from conftest import eventually

Envelope = dict[str, Any]
CH0 = {"l": "0", "a": "0", "c": "0"}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(Topology.default(), time_scale=100.0, noise=QUIET).serve() as s:
        yield s


@pytest.fixture
async def ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.url, max_size=None) as client:
        yield client


async def envelopes(ws: ClientConnection, timeout: float = 2.0) -> list[Envelope]:
    data = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return data if isinstance(data, list) else [data]


async def wait_for(ws: ClientConnection, kind: str, item: str = "") -> Envelope:
    """The next envelope of a kind (holding `item`, if given), skipping others."""
    async with asyncio.timeout(2.0):
        while True:
            for envelope in await envelopes(ws):
                if envelope.get("t") == kind and (not item or value(envelope, item) is not None):
                    return envelope


def value(envelope: Envelope, item: str) -> str | None:
    for event in envelope.get("c") or []:
        if (
            isinstance(event, dict)
            and isinstance(event.get("d"), dict)
            and (event["d"].get("i") == item)
        ):
            return str(event["d"]["v"])
    return None


async def login(ws: ClientConnection) -> str:
    await ws.send(json.dumps({"i": "", "t": "login", "c": {"l": "admin", "p": "password"}}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    return str(reply["i"])


async def send(
    ws: ClientConnection,
    session: str,
    command: str,
    item: str,
    v: str = "",
    u: str = "",
    path: dict[str, str] = CH0,
) -> None:
    await ws.send(
        json.dumps(
            {
                "i": session,
                "t": "request",
                "r": "websocket",
                "c": [{"c": command, "p": {"p": path, "i": item, "v": v, "u": u}}],
            }
        )
    )


async def test_silent_sends_nothing(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    sim.faults.silent = True
    await ws.send(json.dumps({"i": session, "t": "heartbeat", "c": []}))
    await send(ws, session, "getItem", "Status.on")
    with pytest.raises(TimeoutError):
        while True:
            await envelopes(ws, timeout=0.3)
    sim.faults.silent = False
    await ws.send(json.dumps({"i": session, "t": "heartbeat", "c": []}))
    await wait_for(ws, "heartbeat")


async def test_drop_all_aborts_sockets(sim: Simulator, ws: ClientConnection) -> None:
    await login(ws)
    async with connect(sim.url) as other:
        await login(other)
        sim.faults.drop_all()
        for client in (ws, other):
            with pytest.raises(ConnectionClosedError) as closed:
                await wait_for(client, "never")
            assert closed.value.rcvd is None
    await eventually(lambda: not sim.service.sessions)
    async with connect(sim.url) as again:
        assert await login(again)


async def test_reply_delay(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    sim.faults.reply_delay = 0.3
    loop = asyncio.get_running_loop()
    begin = loop.time()
    await send(ws, session, "getItem", "Status.on")
    await wait_for(ws, "response")
    assert loop.time() - begin >= 0.3


async def test_refuse_writes(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    sim.faults.refuse_writes = True
    await send(ws, session, "setItem", "Control.voltageSet", "100", "V")
    trigger = await wait_for(ws, "trigger")
    assert trigger["trigger"] == "false"
    assert sim.model.value(ItemKey(0, 0, 0, "Control.voltageSet")) == 0.0


async def test_client_sent_no_set_item(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await send(ws, session, "getItem", "Status.on")
    await wait_for(ws, "response")
    packets = [p for m in sim.received if isinstance(m, Request) for p in m.packets]
    assert packets and all(p.command is not Command.SET_ITEM for p in packets)


async def test_output_units_switch(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    sim.faults.output_units = {"V": "kV", "A": "µA"}
    await send(ws, session, "getItem", "Status.voltageNominal")
    record = (await wait_for(ws, "response"))["c"][0]["d"]
    assert (record["v"], record["u"]) == ("6", "kV")
    await send(ws, session, "getItem", "Status.currentNominal")
    record = (await wait_for(ws, "response"))["c"][0]["d"]
    assert (record["v"], record["u"]) == ("1000", "µA")
    with pytest.raises(ValueError, match="not a unit of"):
        sim.faults.output_units = {"V": "mA"}


async def test_output_units_at_start() -> None:
    simulator = Simulator(Topology.default(), noise=QUIET, output_units={"A": "nA"})
    async with simulator.serve() as sim, connect(sim.url) as ws:
        session = await login(ws)
        await send(ws, session, "getItem", "Control.currentSet")
        record = (await wait_for(ws, "response"))["c"][0]["d"]
        assert (record["v"], record["u"]) == ("1000000", "nA")


async def test_burst(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await send(ws, session, "getItem", "Status.voltageMeasure", path={"l": "0", "a": "*", "c": "*"})
    await wait_for(ws, "response")
    sim.faults.burst(500)
    async with asyncio.timeout(2.0):
        while True:
            (envelope, *_) = await envelopes(ws)
            if len(envelope["c"]) == 500:
                break
    assert {e["d"]["i"] for e in envelope["c"]} == {"Status.voltageMeasure"}


async def test_force_trip_and_inhibit_are_pushed(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await send(ws, session, "getItem", "Event.currentTrip")
    await wait_for(ws, "response")
    await send(ws, session, "getItem", "Status.externalInhibitActive")
    await wait_for(ws, "response")
    sim.faults.force_trip(ItemPath(0, 0, 0))
    assert value(await wait_for(ws, "info", "Event.currentTrip"), "Event.currentTrip") == "1"
    sim.faults.set_inhibit(ItemPath(0, 0), True)
    envelope = await wait_for(ws, "info", "Status.externalInhibitActive")
    assert value(envelope, "Status.externalInhibitActive") == "1"
