"""The iCS object tree: lines, crates, modules and channels, and the keys of their items."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import NamedTuple

CRATE_ADDRESS = 1000
"""Address of the first crate controller on a line; module addresses are 0..63."""


class Level(StrEnum):
    """The level of an object in the tree, and so of the items it carries."""

    SYSTEM = "system"
    CRATE = "crate"
    MODULE = "module"
    CHANNEL = "channel"


class ItemPath(NamedTuple):
    """One concrete object: `None` marks a level the path does not reach."""

    line: int | None = None
    address: int | None = None
    channel: int | None = None

    @property
    def level(self) -> Level:
        """The level of the object this path names."""
        if self.line is None:
            return Level.SYSTEM
        if self.channel is not None:
            return Level.CHANNEL
        if self.address is not None and self.address >= CRATE_ADDRESS:
            return Level.CRATE
        return Level.MODULE

    def __str__(self) -> str:
        return ".".join(str(part) for part in self if part is not None)

    @property
    def order(self) -> tuple[int, int, int]:
        """A sort key: system first, then by line, address and channel."""
        return (
            -1 if self.line is None else self.line,
            -1 if self.address is None else self.address,
            -1 if self.channel is None else self.channel,
        )


class ItemKey(NamedTuple):
    """One item of one object, as the cache and the adapters key it."""

    line: int | None
    address: int | None
    channel: int | None
    item: str

    @classmethod
    def interned(
        cls, line: int | None, address: int | None, channel: int | None, item: str
    ) -> ItemKey:
        """The key with its item name interned, as every long-lived key is: keys made
        apart then compare without comparing their text."""
        return cls(line, address, channel, sys.intern(item))

    @property
    def path(self) -> ItemPath:
        """The object this item belongs to."""
        return ItemPath(self.line, self.address, self.channel)

    def __str__(self) -> str:
        path = str(self.path)
        return f"{path}.{self.item}" if path else self.item
