"""The bridge's iCS link as a face in a process of its own sees it, through a `pipe`.

A `Mirror` is a `faces.Link` (values, state, silence) and a `faces.ItemWriter`: its cache
follows the bridge's `Values` messages, its state the `LinkChange` ones, and a write goes
to the bridge's one write path and ends with the bridge's answer. A write while the pipe
is gone fails at once; nothing is queued.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

from icsbridge.ics.cache import Latest, Update
from icsbridge.ics.client import LinkDown, LinkState
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey

from . import pipe


class Mirror:
    """The link and the write path of the bridge, for a face in another process."""

    def __init__(self, keys: Sequence[ItemKey], send: Callable[[pipe.Message], None]) -> None:
        self.cache = Latest()
        self._keys = keys
        self._send = send
        self._state = LinkState.LOST
        self._silent = False
        self._listeners: list[Callable[[LinkState], None]] = []
        self._writes: dict[int, asyncio.Future[Value]] = {}
        self._idents = itertools.count()
        self._open = True

    @property
    def state(self) -> LinkState:
        """The bridge's link state."""
        return self._state

    @property
    def silent(self) -> bool:
        """Whether the iCS has been quiet too long, short of a lost link."""
        return self._silent

    def on_state(self, listener: Callable[[LinkState], None]) -> Callable[[], None]:
        """Call `listener` on every change of state or of `silent`; returns the stopper."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def take(self, message: pipe.Message) -> None:
        """Follow one message of the bridge."""
        match message:
            case pipe.Values(rows):
                self.cache.put(self._updates(rows))
            case pipe.LinkChange(state, silent):
                self._state, self._silent = state, silent
                for listener in list(self._listeners):
                    listener(state)
            case pipe.Written(ident, value, error):
                future = self._writes.pop(ident, None)
                if future is not None and not future.done():
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(value)  # type: ignore[arg-type]

    def start(self, message: pipe.Start) -> None:
        """Take the state and values of the bridge's first message."""
        self.take(message.link)
        self.take(pipe.Values(message.values))

    def _updates(self, rows: list[pipe.Row]) -> list[Update]:
        keys = self._keys
        return [Update(keys[index], value, unit, time) for index, value, unit, time in rows]

    async def write(self, key: ItemKey, value: object, *, who: str, via: str) -> Value:
        """Write one item through the bridge; return the value the iCS confirmed."""
        if not self._open:
            raise LinkDown("the bridge is gone")
        ident = next(self._idents)
        future: asyncio.Future[Value] = asyncio.get_running_loop().create_future()
        self._writes[ident] = future
        self._send(pipe.Write(ident, key, value, who, via))
        return await future

    def close(self) -> None:
        """The pipe is gone: fail the writes in flight, refuse new ones, mark the link lost."""
        self._open = False
        for future in self._writes.values():
            if not future.done():
                future.set_exception(LinkDown("the bridge is gone"))
        self._writes.clear()
        self.take(pipe.LinkChange(LinkState.LOST, False))
