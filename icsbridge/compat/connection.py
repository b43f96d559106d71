"""Named connections to iCS servers: system items, crates and modules, raw frames, scripts."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from icsbridge.compat.objects import IcsObject, crate, module
from icsbridge.compat.scripts import ScriptCommands
from icsbridge.compat.session import Session
from icsbridge.ics.client import LinkState
from icsbridge.mapping.discover import ConfigFacts, describe
from icsbridge.model import ItemPath, Level

DEFAULT_PORT = 8080

STATUS = {
    LinkState.READY: "Configured",
    LinkState.CONNECTING: "Connecting",
    LinkState.LOST: "Connection lost",
}
"""`getStatusConnectionStatus()` by link state; "Disconnected" once `disconnect()` ran."""


class connection(ScriptCommands, IcsObject, level=Level.SYSTEM):
    """A logged-in connection to one iCS, as `connect` makes it; help() lists its items."""

    def __init__(self, name: str, session: Session) -> None:
        super().__init__(session, ItemPath())
        self._name = name
        cache = session.client.cache
        found = describe(cache.values(), cache.catalog, ConfigFacts(None, {}))
        self._crates = [crate(self, session, c.line, c.address) for c in found.crates]
        self._modules = [
            module(self, session, m.line, m.address, m.channels) for m in found.modules
        ]

    def __repr__(self) -> str:
        return self._name

    @property
    def name(self) -> str:
        """The name the connection was made with."""
        return self._name

    @property
    def crates(self) -> list[crate]:
        """The crates of the iCS, by line."""
        return list(self._crates)

    @property
    def modules(self) -> list[module]:
        """The modules of the iCS, by line and address."""
        return list(self._modules)

    def getCrates(self) -> list[crate]:
        """The crates of the iCS, by line."""
        return self.crates

    def getModules(self) -> list[module]:
        """The modules of the iCS, by line and address."""
        return self.modules

    def getStatusConnectionName(self) -> str:
        """The name the connection was made with."""
        return self._name

    def getStatusConnectionStatus(self) -> str:
        """`Configured` while the link is ready; else `Connecting`, `Connection lost` or
        `Disconnected`."""
        if not self._session.loop.running:
            return "Disconnected"
        return STATUS[self._session.client.state]

    def rawCommand(self, json_string: str) -> str:
        """Send a JSON frame as it is and return the frame that answers it, as text.

        An empty session id (`"i": ""`) is filled in; a wrong one ends the session, and
        the link reconnects. See `IcsClient.raw` for the frames and their answers.
        """
        return self._session.call(self._session.client.raw(json_string))

    def disconnect(self) -> None:
        """Log out and stop the connection's thread; its objects keep their last values."""
        with _lock:
            if _connections.get(self._name) is self:
                del _connections[self._name]
        self._session.close()


_connections: dict[str, connection] = {}
_lock = threading.Lock()


def ics_url(address: str) -> str:
    """The WebSocket URL of an address given as a URL, `host:port` or `host` (port 8080)."""
    if "://" in address:
        return address
    url = f"ws://{address}"
    return url if urlsplit(url).port else f"{url}:{DEFAULT_PORT}"


def connect(name: str, address: str, login: str, password: str, **options: Any) -> connection | str:
    """Log in to the iCS at `address` and return the connection, once every value is cached.

    Returns the string `error`, as iseg's module does, when a connection of that name is
    open already. Raises `LoginRefused` or `LinkDown` when the login fails. `options` go to
    `IcsClient` (heartbeat, write_timeout, ...).
    """
    with _lock:
        if name in _connections:
            return "error"
        session = Session.open(name, ics_url(address), login, password, **options)
        try:
            made = connection(name, session)
        except BaseException:
            session.close()
            raise
        _connections[name] = made
    return made


def getConnections() -> list[connection]:
    """Every open connection, in the order they were made."""
    with _lock:
        return list(_connections.values())


def findConnection(name: str) -> connection | None:
    """The open connection of that name, or None."""
    with _lock:
        return _connections.get(name)
