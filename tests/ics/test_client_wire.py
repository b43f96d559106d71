"""The client against a scripted iCS that sends what the simulator never would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from icsbridge.ics.client import IcsClient, LinkDown, LinkState
from icsbridge.ics.protocol import Selector
from icsbridge.model import ItemKey

Script = Callable[[ServerConnection, dict[str, object]], Awaitable[None]]

RECORD = {
    "e": "itemUpdated",
    "d": {
        "p": {"l": "0", "a": "3", "c": "5"},
        "i": "Status.voltageMeasure",
        "v": "1.2",
        "u": "kV",
        "t": "1700000000.0000",
    },
}


async def _login_then(ws: ServerConnection, script: Script, logins: list[int]) -> None:
    async for frame in ws:
        message = json.loads(frame)
        if message["t"] == "login":
            logins.append(1)
            await ws.send(
                json.dumps({"i": f"abc-{len(logins)}", "t": "trigger", "c": [], "trigger": "true"})
            )
        else:
            await script(ws, message)


@pytest.fixture
async def scripted(no_task_leaks: None) -> AsyncIterator[Callable[[Script], Awaitable[str]]]:
    """Start a WebSocket server on 127.0.0.1 that answers requests with a script."""
    servers = []

    async def start(script: Script) -> str:
        logins: list[int] = []
        server = await serve(lambda ws: _login_then(ws, script, logins), "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_malformed_frames_are_skipped_and_the_link_stays_up(
    scripted: Callable[[Script], Awaitable[str]],
) -> None:
    async def script(ws: ServerConnection, message: dict[str, object]) -> None:
        if message["t"] == "request":
            await ws.send("{not json")
            await ws.send(json.dumps({"t": "teleport", "c": []}))
            await ws.send(json.dumps([{"i": "abc-1", "t": "response", "c": [RECORD]}]))

    async with IcsClient(await scripted(script), "admin", "password") as client:
        updates = await client.subscribe([(Selector(0, 3, 5), "Status.voltageMeasure")])
        assert [u.value for u in updates] == [1200.0]
        assert client.malformed.count == 2
        assert client.state is LinkState.READY


async def test_a_session_error_makes_the_client_log_in_again(
    scripted: Callable[[Script], Awaitable[str]],
) -> None:
    expired = asyncio.Event()

    async def script(ws: ServerConnection, message: dict[str, object]) -> None:
        if message["t"] == "request" and not expired.is_set():
            expired.set()
            await ws.send(
                json.dumps(
                    {
                        "i": "",
                        "t": "info",
                        "c": [{"e": "connection-error", "d": {"m": "session expired"}}],
                    }
                )
            )
        elif message["t"] == "request":
            await ws.send(json.dumps([{"i": "abc-2", "t": "response", "c": [RECORD]}]))

    async with IcsClient(
        await scripted(script), "admin", "password", reconnect=(0.01, 0.05)
    ) as client:
        states: list[LinkState] = []
        client.on_state(states.append)
        with pytest.raises(LinkDown):
            await client.subscribe([(Selector(0, 3, 5), "Status.voltageMeasure")])
        await client.wait_for_state(LinkState.READY)
        assert LinkState.LOST in states
        assert client.cache.get(ItemKey(0, 3, 5, "Status.voltageMeasure")).value == 1200.0


async def test_no_login_reply_fails_the_first_connect(
    scripted: Callable[[Script], Awaitable[str]], no_task_leaks: None
) -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    server = await serve(silent, "127.0.0.1", 0)
    try:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(LinkDown, match="no login reply"):
            async with IcsClient(url, "admin", "password", heartbeat=0.05):
                pass
    finally:
        server.close()
        await server.wait_closed()
