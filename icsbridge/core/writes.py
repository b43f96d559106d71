"""The one write path of every adapter: check locally, write through the iCS, log it.

A write is refused here, and never reaches the iCS, when the item is unknown, disabled or
read-only, when the bridge runs read-only, or when the value has the wrong type or lies
outside the item's drive limits or states. Otherwise it goes out at once as a setItem
and completes with the value the iCS confirmed, or fails: nothing is queued.

A write that went out but was never confirmed ends "unconfirmed: the iCS may still apply
it", the link it went out on is reset, and `unconfirmed.LateWatch` tells whether the iCS
applied it after all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from icsbridge.catalog import ValueType
from icsbridge.core.unconfirmed import LateWatch, Unconfirmed
from icsbridge.ics import values
from icsbridge.ics.client import IcsClient, WriteUnconfirmed
from icsbridge.ics.values import Value
from icsbridge.mapping.document import ItemEntry
from icsbridge.model import ItemKey

log = logging.getLogger(__name__)


class WriteRefused(Exception):
    """A write that the bridge refused before sending anything to the iCS."""


class TypeRefused(WriteRefused):
    """A value of the wrong type for the item."""


class RangeRefused(WriteRefused):
    """A value outside the item's drive limits or states."""


class AccessRefused(WriteRefused):
    """A write to a read-only item, or any write while the bridge is read-only."""


def coerce(entry: ItemEntry, value: object) -> Value:
    """The value typed as the item's iCS type; raises `TypeRefused`."""
    try:
        return values.coerce(entry.type, value)
    except TypeError:
        raise TypeRefused(f"{entry.pv}: {value!r:.40} is not a {entry.type.value}") from None


def check_range(entry: ItemEntry, value: Value) -> None:
    """Raise `RangeRefused` unless the value is within the item's limits and states."""
    if entry.states and entry.type is not ValueType.BOOL:
        wire = str(int(value)) if entry.type is ValueType.INT else str(value)
        if wire not in entry.states:
            raise RangeRefused(f"{entry.pv}: {value!r} is not one of {sorted(entry.states)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if entry.drive_low is not None and value < entry.drive_low:
        raise RangeRefused(f"{entry.pv}: {value!r} is below the limit {entry.drive_low:g}")
    if entry.drive_high is not None and value > entry.drive_high:
        raise RangeRefused(f"{entry.pv}: {value!r} is above the limit {entry.drive_high:g}")


class Writer:
    """Checks and sends the writes of every adapter through one client."""

    def __init__(
        self,
        client: IcsClient,
        entries: Mapping[ItemKey, ItemEntry],
        *,
        read_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.client = client
        self.entries = entries
        self.read_only = read_only
        self.timeout = timeout
        self.unconfirmed = LateWatch(client)
        """The writes that ended unconfirmed, and those of them the iCS applied late."""

    def check(self, key: ItemKey, value: object) -> tuple[ItemEntry, Value]:
        """The entry and the typed value of an acceptable write; raises `WriteRefused`."""
        entry = self.entries.get(key)
        if entry is None or entry.disabled:
            raise AccessRefused(f"{key}: no such item in the mapping")
        if self.read_only:
            raise AccessRefused(f"{entry.pv}: the bridge is read-only")
        if not entry.access.writable:
            raise AccessRefused(f"{entry.pv}: read-only item")
        typed = coerce(entry, value)
        check_range(entry, typed)
        return entry, typed

    async def write(self, key: ItemKey, value: object, *, who: str, via: str) -> Value:
        """Write one item for `who` (user@host) through adapter `via`; return the confirmed value.

        Raises `WriteRefused` (nothing sent) or the client's `IcsError` (sent or link down).
        Every outcome is logged: item, who, adapter, old and new value, result.
        """
        entry = self.entries.get(key)
        name = subject(entry) if entry else str(key)
        try:
            entry, typed = self.check(key, value)
        except WriteRefused as exc:
            log.warning("write %s by %s via %s: %r refused: %s", name, who, via, value, exc)
            raise
        before = self.client.cache.get(key)
        old = None if before is None else before.value
        try:
            confirmed = await self.client.set_item(key, typed, timeout=self.timeout)
        except WriteUnconfirmed as exc:
            self.unconfirmed.add(Unconfirmed(key, name, who, via, old, typed))
            log.warning("write %s by %s via %s: %r -> %r %s", name, who, via, old, typed, exc)
            raise
        except Exception as exc:
            log.warning(
                "write %s by %s via %s: %r -> %r failed: %s", name, who, via, old, typed, exc
            )
            raise
        self.unconfirmed.forget(key)  # the iCS holds a newer value now
        log.info(
            "write %s by %s via %s: %r -> %r confirmed %r", name, who, via, old, typed, confirmed
        )
        return confirmed


def subject(entry: ItemEntry) -> str:
    """How the write log names an item: its PV name and its key (the OPC UA NodeId)."""
    return f"{entry.pv} ({entry.key})"
