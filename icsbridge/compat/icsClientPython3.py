"""The API of iseg's icsClientPython3 module, open and on any Python: a drop-in for scripts.

    from icsbridge.compat import icsClientPython3

    connection = icsClientPython3.connect("lab", "ws://10.0.0.5:8080", "admin", "password")
    for module in connection.modules:
        for channel in module.channels:
            print(channel, channel.getStatusVoltageMeasure())

Calls are synchronous; the iCS link runs on an event loop in a thread of each connection.
`connect` logs in, subscribes to every item and returns once the cache holds their values.
Getters read that live cache (no round trip): typed values (float, int, bool, text) in
base units (V, A, °C, ms, %/s), None for an item the iCS never reported. Setters write at
once and return the value the iCS confirmed, or raise `IcsError` (refused, not confirmed in
time, link down); nothing is ever queued. `help(channel)` lists every item.
"""

from __future__ import annotations

import atexit

from icsbridge import __version__
from icsbridge.compat.connection import connect, connection, findConnection, getConnections
from icsbridge.compat.objects import channel, crate, module
from icsbridge.ics.client import (
    IcsError,
    LinkDown,
    LoginRefused,
    WriteRejected,
    WriteTimeout,
    WriteUnconfirmed,
)

__all__ = [
    "IcsError",
    "LinkDown",
    "LoginRefused",
    "WriteRejected",
    "WriteTimeout",
    "WriteUnconfirmed",
    "channel",
    "connect",
    "connection",
    "crate",
    "findConnection",
    "getConnections",
    "getVersion",
    "module",
]


def getVersion() -> str:
    """The version of this module: icsbridge's."""
    return __version__


@atexit.register
def _disconnect_all() -> None:
    for open_connection in getConnections():
        open_connection.disconnect()
