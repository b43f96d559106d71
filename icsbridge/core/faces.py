"""What a face (Channel Access, OPC UA) needs of the bridge: the link it mirrors, the writes.

The iCS client and its cache are one implementation; `mirror.Mirror`, the same link seen
from a face served in a process of its own, is the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from icsbridge.ics.cache import Update
from icsbridge.ics.client import LinkState
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey


class Values(Protocol):
    """The latest value of every item, and every change of them."""

    def get(self, key: ItemKey) -> Update | None:
        """The latest update of an item, or None if the iCS never reported it."""

    def values(self) -> list[Update]:
        """Every item's latest update."""

    def subscribe(self, subscriber: Callable[[Sequence[Update]], None]) -> Callable[[], None]:
        """Call `subscriber` with every batch of updates; returns the unsubscribe function."""


class Link(Protocol):
    """The iCS link as a face sees it: its values and its state."""

    @property
    def cache(self) -> Values:
        """The items' values."""

    @property
    def state(self) -> LinkState:
        """Connecting, ready or lost."""

    @property
    def silent(self) -> bool:
        """Whether the iCS has been quiet too long, short of a lost link."""

    def on_state(self, listener: Callable[[LinkState], None]) -> Callable[[], None]:
        """Call `listener` on every change of state or of `silent`; returns the stopper."""


class ItemWriter(Protocol):
    """The one write path: checked locally, confirmed by the iCS, logged."""

    async def write(self, key: ItemKey, value: object, *, who: str, via: str) -> Value:
        """Write one item; return the confirmed value or raise why not."""
