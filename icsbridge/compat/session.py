"""One iCS client, subscribed to everything, on a loop thread of its own, for synchronous use."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from icsbridge.compat.loop import LoopThread
from icsbridge.ics.client import IcsClient
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey

T = TypeVar("T")

MARGIN = 5.0
"""Seconds a synchronous call waits beyond the client's own timeout for the same work."""


class Session:
    """A logged-in `IcsClient` whose cache holds every item; calls block until done."""

    def __init__(self, client: IcsClient, loop: LoopThread) -> None:
        self.client = client
        self.loop = loop

    @classmethod
    def open(cls, name: str, url: str, user: str, password: str, **options: Any) -> Session:
        """Log in, subscribe to every item and return once the cache holds their values.

        `options` go to `IcsClient`. Raises `LoginRefused` or `LinkDown` when that fails.
        """
        loop = LoopThread(f"icsClientPython3 {name}")
        session = cls(IcsClient(url, user, password, **options), loop)
        try:
            loop.call(session._start(), session.client.reply_timeout + session.client.silence_limit)
        except BaseException:
            loop.stop()
            raise
        return session

    async def _start(self) -> None:
        await self.client.start()
        try:
            await self.client.subscribe_all()
        except BaseException:
            await self.client.close()
            raise

    def value(self, key: ItemKey) -> Value | None:
        """The cached value of an item; None if the iCS never reported it."""
        update = self.client.cache.get(key)
        return None if update is None else update.value

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the client on its loop and return its result."""
        return self.loop.call(work, self.client.write_timeout + MARGIN)

    def write(self, key: ItemKey, value: Value) -> Value:
        """Write an item and return the value the iCS confirmed (see `IcsClient.set_item`)."""
        return self.call(self.client.set_item(key, value))

    def close(self) -> None:
        """Log out, close the link and end the loop thread; again is harmless."""
        if self.loop.running:
            self.call(self.client.close())
            self.loop.stop()
