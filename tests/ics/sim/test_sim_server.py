"""The simulator on the wire: a raw WebSocket client against a running `Simulator`."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from icsbridge.ics.protocol import Command, Request
from icsbridge.ics.sim import QUIET, Simulator, Topology, run

from conftest import eventually

TIME_SCALE = 100.0
"""Simulated seconds per wall second: a 1 s cycle takes 10 ms."""

Envelope = dict[str, Any]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(Topology.default(), time_scale=TIME_SCALE, noise=QUIET).serve() as s:
        yield s


@pytest.fixture
async def ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.url, max_size=None) as client:
        yield client


def packet(
    command: str, path: tuple[str, str, str], item: str, v: str = "", u: str = ""
) -> Envelope:
    line, address, channel = path
    return {
        "c": command,
        "p": {"p": {"l": line, "a": address, "c": channel}, "i": item, "v": v, "u": u},
    }


def request(session: str, *packets: Envelope, mode: str = "websocket") -> str:
    return json.dumps({"i": session, "t": "request", "r": mode, "c": list(packets)})


async def receive(ws: ClientConnection, timeout: float = 2.0) -> list[Envelope]:
    data = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return data if isinstance(data, list) else [data]


async def until(
    ws: ClientConnection, wanted: Callable[[Envelope], bool], timeout: float = 2.0
) -> tuple[list[Envelope], Envelope]:
    """Read envelopes until one is wanted; return the ones before it and it."""
    before: list[Envelope] = []
    async with asyncio.timeout(timeout):
        while True:
            for envelope in await receive(ws, timeout):
                if wanted(envelope):
                    return before, envelope
                before.append(envelope)


def kind(name: str) -> Callable[[Envelope], bool]:
    return lambda envelope: envelope.get("t") == name


def has(item: str, path: tuple[str, str, str] | None = None) -> Callable[[Envelope], bool]:
    return lambda envelope: bool(record(envelope, item, path))


def record(envelope: Envelope, item: str, path: tuple[str, str, str] | None = None) -> Envelope:
    """The data of the first record of `item` (at `path`) in an envelope, or {}."""
    for event in envelope.get("c") or []:
        data = event.get("d") if isinstance(event, dict) else None
        if (
            isinstance(data, dict)
            and data.get("i") == item
            and (path is None or (data["p"]["l"], data["p"]["a"], data["p"]["c"]) == path)
        ):
            return data
    return {}


async def login(ws: ClientConnection, mode: str = "websocket") -> str:
    await ws.send(
        json.dumps(
            {"i": "", "t": "login", "c": {"l": "admin", "p": "password", "t": ""}, "r": mode}
        )
    )
    reply = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    assert isinstance(reply, dict) and reply["trigger"] == "true"
    return str(reply["i"])


CH0 = ("0", "0", "0")


async def test_login(ws: ClientConnection) -> None:
    await ws.send(
        json.dumps(
            {"i": "", "t": "login", "c": {"l": "admin", "p": "password", "t": ""}, "r": "websocket"}
        )
    )
    reply = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    assert reply["t"] == "trigger" and reply["trigger"] == "true"
    assert re.fullmatch(r"[0-9a-f]{13}-\d+", reply["i"])
    assert await login(ws) != reply["i"]


async def test_login_refused(ws: ClientConnection) -> None:
    await ws.send(
        json.dumps(
            {"i": "", "t": "login", "c": {"l": "admin", "p": "wrong", "t": ""}, "r": "websocket"}
        )
    )
    reply = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    assert reply == {"i": "", "t": "trigger", "c": [], "trigger": "false", "r": "websocket"}


async def test_wildcard_get_item(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(
        request(
            session,
            packet("getItem", ("0", "*", "*"), "Status.voltageNominal"),
            packet("getItem", ("0", "*", ""), "Status.runningState"),
        )
    )
    _, response = await until(ws, kind("response"))
    records = [event["d"] for event in response["c"]]
    paths = [(d["p"]["l"], d["p"]["a"], d["p"]["c"], d["i"]) for d in records]
    assert len(paths) == len(set(paths)) == 96 + 6
    assert {p[1] for p in paths if p[3] == "Status.runningState"} == {
        "0",
        "1",
        "2",
        "3",
        "4",
        "1000",
    }
    first = record(response, "Status.voltageNominal", ("0", "1", "3"))
    assert first["v"] == "-3000" and first["u"] == "V"
    assert re.fullmatch(r"\d+\.\d{4}", first["t"])


async def test_unknown_item_gives_empty_response(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getItem", CH0, "Status.warp")))
    _, response = await until(ws, kind("response"))
    assert response["c"] == []


async def test_set_item_trigger_then_push(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getItem", CH0, "Control.voltageSet")))
    await until(ws, kind("response"))
    await ws.send(
        request(
            session,
            packet("setItem", CH0, "Control.voltageSet", "1.5", "kV"),
            packet("getItem", CH0, "Status.voltageNominal"),
        )
    )
    before, trigger = await until(ws, kind("trigger"))
    assert not any(record(e, "Control.voltageSet") for e in before)
    assert trigger == {"i": session, "t": "trigger", "c": [], "trigger": "true", "r": "websocket"}
    response = (await receive(ws))[0]
    assert response["t"] == "response" and record(response, "Status.voltageNominal")
    _, push = await until(ws, has("Control.voltageSet"))
    assert push["t"] == "info"
    assert record(push, "Control.voltageSet") | {"t": ""} == {
        "p": {"l": "0", "a": "0", "c": "0"},
        "i": "Control.voltageSet",
        "v": "1500",
        "u": "V",
        "t": "",
    }
    sent = [m for m in sim.received if isinstance(m, Request)]
    assert sent[-1].packets[0].command is Command.SET_ITEM


async def test_clamped_value_is_pushed(ws: ClientConnection) -> None:
    session = await login(ws)
    path = ("0", "1", "2")
    await ws.send(request(session, packet("getItem", path, "Control.voltageSet")))
    await until(ws, kind("response"))
    await ws.send(request(session, packet("setItem", path, "Control.voltageSet", "2900", "V")))
    await until(ws, kind("trigger"))
    _, push = await until(ws, has("Control.voltageSet"))
    assert record(push, "Control.voltageSet")["v"] == "2700"


async def test_input_error_is_pushed_to_writer(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("setItem", CH0, "Control.voltageSet", "7", "kV")))
    _, trigger = await until(ws, kind("trigger"))
    assert trigger["trigger"] == "true"
    _, push = await until(ws, has("Event.inputError"))
    assert record(push, "Event.inputError", CH0)["v"] == "1"
    assert record(push, "Status.inputError", CH0)["v"] == "1"


async def test_rejected_set_item(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(
        request(
            session,
            packet("setItem", CH0, "Control.voltageSet", "1", "V"),
            packet("setItem", CH0, "Status.voltageMeasure", "1", "V"),
        )
    )
    _, trigger = await until(ws, kind("trigger"))
    assert trigger["trigger"] == "false"


async def test_invalid_session_keeps_socket(ws: ClientConnection) -> None:
    await ws.send(request("bogus-1", packet("getItem", CH0, "Status.on")))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    assert reply == {
        "i": "bogus-1",
        "t": "info",
        "c": [{"e": "connection-error", "d": {"m": "invalid session"}}],
    }
    assert await login(ws)


async def test_heartbeat_echo(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(json.dumps({"i": session, "t": "heartbeat", "c": [], "r": "websocket"}))
    _, echo = await until(ws, kind("heartbeat"))
    assert echo == {"i": session, "t": "heartbeat", "c": [], "r": "websocket"}


async def test_system_items_pushed_every_cycle(ws: ClientConnection) -> None:
    await login(ws)
    _, first = await until(ws, has("Status.heartBeat"))
    _, second = await until(ws, has("Status.heartBeat"))
    beats = [int(record(e, "Status.heartBeat")["v"]) for e in (first, second)]
    assert beats[1] > beats[0]
    assert record(second, "System.time")["p"] == {"l": "", "a": "", "c": ""}


async def test_connected_clients_reach_every_session(sim: Simulator, ws: ClientConnection) -> None:
    await login(ws)
    async with connect(sim.url) as other:
        await login(other)
        await until(ws, lambda e: record(e, "Status.connectedClients").get("v") == "2")


async def test_push_reaches_every_subscriber(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    async with connect(sim.url) as other:
        watcher = await login(other)
        await other.send(request(watcher, packet("getItem", CH0, "Control.voltageSet")))
        await until(other, kind("response"))
        await ws.send(request(session, packet("setItem", CH0, "Control.voltageSet", "10", "V")))
        _, push = await until(other, has("Control.voltageSet"))
        assert record(push, "Control.voltageSet")["v"] == "10"


async def test_ramp_over_the_wire(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(
        request(
            session,
            packet("getItem", CH0, "Status.voltageMeasure"),
            packet("getItem", CH0, "Status.runningState"),
        )
    )
    await until(ws, kind("response"))
    await ws.send(
        request(
            session,
            packet("setItem", CH0, "Control.voltageSet", "600", "V"),
            packet("setItem", CH0, "Control.on", "1", ""),
        )
    )
    await until(ws, lambda e: record(e, "Status.runningState").get("v") == "info")
    await until(ws, lambda e: record(e, "Status.voltageMeasure").get("v") == "600")


async def test_malformed_frames_are_ignored(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send("{not json")
    await ws.send(json.dumps({"i": session, "t": "teleport", "c": []}))
    await ws.send(json.dumps([1, 2]))
    await ws.send(json.dumps({"i": session, "t": "heartbeat", "c": [], "r": "websocket"}))
    await until(ws, kind("heartbeat"))


async def test_logout_closes_socket(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(json.dumps({"i": session, "t": "logout", "c": {}, "r": "websocket"}))
    with pytest.raises(ConnectionClosedOK):
        await until(ws, lambda e: False)
    assert session not in sim.service.sessions


async def test_control_logout_closes_socket(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("setItem", ("", "", ""), "Control.logout", "1")))
    _, trigger = await until(ws, kind("trigger"))
    assert trigger["trigger"] == "true"
    with pytest.raises(ConnectionClosedOK):
        await until(ws, lambda e: False)


async def test_closing_socket_ends_sessions(sim: Simulator) -> None:
    async with connect(sim.url) as client:
        session = await login(client)
        assert session in sim.service.sessions
    await eventually(lambda: session not in sim.service.sessions)


async def test_xhr_session_polls(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws, "xhr")
    await ws.send(request(session, packet("getItem", CH0, "Control.voltageSet"), mode="xhr"))
    await until(ws, kind("response"))
    await ws.send(
        request(session, packet("setItem", CH0, "Control.voltageSet", "42", "V"), mode="xhr")
    )
    await until(ws, kind("trigger"))
    found: Envelope = {}
    async with asyncio.timeout(2):
        while not found:
            await ws.send(request(session, packet("getUpdate", ("", "", ""), ""), mode="xhr"))
            frames = await receive(ws)
            assert [e["t"] for e in frames] == ["response"], "xhr sessions get no pushes"
            found = record(frames[0], "Control.voltageSet")
    assert found["v"] == "42"


async def test_session_id_item_is_per_session(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getItem", ("", "", ""), "Status.sessionId")))
    _, response = await until(ws, kind("response"))
    assert record(response, "Status.sessionId")["v"] == session


async def test_get_update_in_websocket_mode_is_empty(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getUpdate", ("", "", ""), "")))
    _, response = await until(ws, kind("response"))
    assert response["c"] == []


async def test_scripts(ws: ClientConnection) -> None:
    session = await login(ws)

    async def script(**content: Any) -> list[Envelope]:
        await ws.send(json.dumps({"i": session, "t": "script", "c": content, "r": "websocket"}))
        _, reply = await until(ws, kind("script"))
        return list(reply["c"])

    (available,) = await script(c="availableScripts")
    assert [s["name"] for s in available["d"]] == ["logger.py", "ramp.py"]
    assert available["d"][0] == {
        "name": "logger.py",
        "status": "stopped",
        "autostart": "false",
        "hostIds": [],
    }
    (started,) = await script(c="startScript", n="logger.py", t="")
    assert started["e"] == "scriptStatus" and started["d"] == "running"
    script_id = started["i"]
    (running,) = await script(c="runningScripts")
    assert [s["name"] for s in running["d"]] == ["logger.py"]
    (data,) = await script(c="scriptCommand", i=script_id, d={"say": "hi"})
    assert data == {"e": "scriptData", "d": {"say": "hi"}, "n": "logger.py", "i": script_id}
    (auto,) = await script(c="autoScript", n="ramp.py", v="enable")
    assert auto == {"e": "autoScripts", "d": ["ramp.py"]}
    (stopped,) = await script(c="killScript", i=script_id)
    assert stopped["d"] == "stopped"
    (status,) = await script(c="scriptStatus", n="logger.py")
    assert status["d"] == "stopped"
    (error,) = await script(c="startScript", n="missing.py")
    assert error["e"] == "error"
    (error,) = await script(c="teleport", n="ramp.py")
    assert error["e"] == "error"


async def test_config(ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(json.dumps({"i": session, "t": "getConfig", "c": [], "r": "websocket"}))
    _, reply = await until(ws, kind("getConfig"))
    assert reply["file"] == "iCSConfig.xml"
    assert "<iCSconfig>" in base64.b64decode(reply["d"]).decode()
    await ws.send(
        json.dumps(
            {"i": session, "t": "setConfig", "f": "x.xml", "c": [], "d": "", "r": "websocket"}
        )
    )
    _, trigger = await until(ws, kind("trigger"))
    assert trigger["trigger"] == "false"


async def test_run_logs_where_it_listens(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="icsbridge.ics.sim.server")
    task = asyncio.create_task(run(Topology.uniform(2, 8), port=0, time_scale=TIME_SCALE))
    try:
        await eventually(lambda: "listening on" in caplog.text)
        found = re.search(r"listening on (ws://\S+) \((.*)\)", caplog.text)
        assert found is not None
        assert found.group(2) == "1 lines, 2 modules, 16 channels"
        async with connect(found.group(1)) as client:
            assert await login(client)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_stop_closes_clients(sim: Simulator, ws: ClientConnection) -> None:
    await login(ws)
    await sim.stop()
    with pytest.raises(ConnectionClosed):
        await until(ws, lambda e: False)


async def test_churn_sends_fresh_readings_to_subscribers(
    sim: Simulator, ws: ClientConnection
) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getItem", ("0", "*", "*"), "Status.voltageMeasure")))
    _, response = await until(ws, kind("response"))
    before = {record_key(event["d"]): event["d"]["v"] for event in response["c"]}
    sent_at = time.time()
    sim.churn = 2000.0
    first: dict[tuple[str, str, str, str], str] = {}
    channel_items = set()
    async with asyncio.timeout(5.0):
        while len(first) < len(before):
            for envelope in await receive(ws):
                for event in envelope.get("c") or []:
                    data = event["d"]
                    if data["p"]["c"]:
                        channel_items.add(data["i"])
                        assert float(data["t"]) >= sent_at - 0.01
                        first.setdefault(record_key(data), data["v"])
    sim.churn = 0.0
    assert channel_items == {"Status.voltageMeasure"}  # only what the session asked for
    assert first.keys() == before.keys()
    assert all(float(first[key]) != float(before[key]) for key in first)
    assert sim.churned >= len(before)


async def test_churn_stops_at_zero(sim: Simulator, ws: ClientConnection) -> None:
    session = await login(ws)
    await ws.send(request(session, packet("getItem", ("0", "*", "*"), "Status.currentMeasure")))
    await until(ws, kind("response"))
    sim.churn = 5000.0
    await until(ws, has("Status.currentMeasure"))
    sim.churn = 0.0
    stopped = sim.churned
    await until(ws, has("Status.heartBeat"))  # a whole physics cycle later
    await until(ws, has("Status.heartBeat"))
    assert sim.churned == stopped


def record_key(data: Envelope) -> tuple[str, str, str, str]:
    return (data["p"]["l"], data["p"]["a"], data["p"]["c"], data["i"])
