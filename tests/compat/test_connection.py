"""Connections: connect, find, disconnect, system items and raw frames, over a real WebSocket."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from simulated import FAST, connected, simulator, until

from icsbridge.compat.connection import ics_url
from icsbridge.compat.icsClientPython3 import (
    LinkDown,
    LoginRefused,
    connect,
    connection,
    findConnection,
    getConnections,
)
from icsbridge.ics.protocol import Logout, ProtocolError, Request

from conftest import SimThread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with simulator() as running:
        yield running


def loop_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("icsClientPython3")]


def test_connect_returns_a_ready_connection_that_can_be_found(sim: SimThread) -> None:
    with connected(sim, "lab") as conn:
        assert (conn.name, repr(conn), conn.getStatusConnectionName()) == ("lab", "lab", "lab")
        assert conn.getStatusConnectionStatus() == "Configured"
        assert getConnections() == [conn] and findConnection("lab") is conn
        assert findConnection("other") is None


def test_a_name_in_use_gives_error_as_iseg_does(sim: SimThread) -> None:
    with connected(sim, "lab") as first:
        assert connect("lab", sim.url, "admin", "password") == "error"
        with connected(sim, "second") as second:
            assert getConnections() == [first, second]
            assert second.getStatusConnectedClients() == 2


def test_a_refused_login_raises_and_leaves_nothing_behind(sim: SimThread) -> None:
    with pytest.raises(LoginRefused, match="'admin'"):
        connect("lab", sim.url, "admin", "wrong", **FAST)
    assert getConnections() == [] and loop_threads() == []


def test_an_unreachable_ics_raises(sim: SimThread) -> None:
    with pytest.raises(LinkDown, match="cannot connect"):
        connect("lab", "127.0.0.1:9", "admin", "password")
    assert loop_threads() == []


def test_disconnect_logs_out_and_ends_the_thread(sim: SimThread) -> None:
    with connected(sim, "lab") as conn:
        assert loop_threads() == ["icsClientPython3 lab"]
        channel = conn.modules[0].channels[0]
        conn.disconnect()
        assert loop_threads() == [] and getConnections() == []
        assert conn.getStatusConnectionStatus() == "Disconnected"
        until(lambda: isinstance(sim.sim.received[-1], Logout))
        assert channel.getStatusVoltageNominal() == 6000.0
        with pytest.raises(LinkDown, match="disconnected"):
            channel.setControlOn(1)
    assert loop_threads() == []  # a second disconnect is harmless


def test_system_items_are_methods_of_the_connection(sim: SimThread) -> None:
    with connected(sim) as conn:
        assert conn.getStatusConnectedClients() == 1
        assert isinstance(conn.getSystemTime(), str) and conn.getStatusSessionId()
        assert conn.setSetupCycleTime(500) == 500 and conn.getSetupCycleTime() == 500
        assert conn.setSetupCycleTime(1000) == 1000


def frame(command: str, item: str, value: str = "") -> str:
    """A request for channel 0.0.7, as an iseg script writes it, with the session left empty."""
    path = {"l": "0", "a": "0", "c": "7"}
    packet = {"c": command, "p": {"p": path, "i": item, "v": value, "u": "V" if value else ""}}
    return json.dumps({"i": "", "t": "request", "r": "websocket", "c": [packet]})


def test_raw_command_returns_the_reply_frame(sim: SimThread) -> None:
    with connected(sim) as conn:
        reply = json.loads(conn.rawCommand(frame("getItem", "Status.on")))
        assert reply[0]["t"] == "response" and reply[0]["c"][0]["d"]["v"] == "0"
        trigger = json.loads(conn.rawCommand(frame("setItem", "Control.voltageSet", "12.5")))
        assert trigger[0]["trigger"] == "true"
        sent = [m for m in sim.sim.received if isinstance(m, Request)][-1]
        assert sent.session == conn.getStatusSessionId()
        until(lambda: conn.modules[0].channels[7].getControlVoltageSet() == 12.5)
        with pytest.raises(ProtocolError):
            conn.rawCommand('{"t": "logout", "c": {}}')


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("ws://10.0.0.5:8080", "ws://10.0.0.5:8080"),
        ("10.0.0.5:8081", "ws://10.0.0.5:8081"),
        ("10.0.0.5", "ws://10.0.0.5:8080"),
        ("[::1]", "ws://[::1]:8080"),
    ],
)
def test_addresses_as_iseg_scripts_give_them(address: str, url: str) -> None:
    assert ics_url(address) == url


def test_the_connection_has_the_classes_of_the_manual() -> None:
    assert isinstance(connection, type) and connection.__name__ == "connection"
