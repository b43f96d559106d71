"""The client's picture of the iCS: the latest value of every item it has heard of."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from time import time as wall_clock
from typing import NamedTuple

from icsbridge.catalog import Catalog, ItemSpec, catalog
from icsbridge.ics.protocol import ItemRecord, ProtocolError
from icsbridge.ics.values import Decoder, Value, decoder
from icsbridge.logs import Throttle
from icsbridge.model import ItemKey

log = logging.getLogger(__name__)


class Update(NamedTuple):
    """One item value as the iCS reported it: base unit, iCS time stamp."""

    key: ItemKey
    value: Value
    unit: str
    time: float | None


Subscriber = Callable[[Sequence[Update]], None]


def newest(updates: Iterable[Update]) -> list[Update]:
    """The last of these updates of each item: what a face that fell behind still sends."""
    return list({update.key: update for update in updates}.values())


class Latest:
    """Latest `Update` per item key; subscribers see every update, batch by batch."""

    def __init__(self) -> None:
        self._entries: dict[ItemKey, Update] = {}
        self._subscribers: list[Subscriber] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: ItemKey) -> Update | None:
        """The latest update of an item, or None if the iCS never reported it."""
        return self._entries.get(key)

    def values(self) -> list[Update]:
        """Every item's latest update."""
        return list(self._entries.values())

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every batch of updates; returns the unsubscribe function."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def put(self, updates: list[Update]) -> None:
        """Take updates as they are and pass them on to subscribers."""
        entries = self._entries
        for update in updates:
            entries[update.key] = update
        self._notify(updates)

    def _notify(self, updates: list[Update]) -> None:
        if updates:
            for subscriber in self._subscribers:
                subscriber(updates)


EARLIEST = 631_152_000.0
"""1990-01-01 in UNIX seconds: the EPICS epoch, before which no CA time stamp exists."""
LATEST = float(1 << 32)
"""2106-02-07 in UNIX seconds: where 32-bit time stamps end."""
MAX_STRANGE_DECODERS = 4096
"""Decoders kept beyond the catalog's items: a peer that invents names cannot grow them."""


class Cache(Latest):
    """The items' latest values, decoded from the iCS's records.

    A record is taken or left out on its own: one that does not decode is counted in
    `dropped` and logged (a few lines per period, however many come). A time stamp no
    face can show (before 1990, after 2106: an iCS whose clock starts at 1970 after a
    power cut) is replaced by the time of arrival, counted in `restamped`. Once `admit`
    names the items to keep, records of any other item are counted in `strangers` and
    not retained.
    """

    def __init__(self, items: Catalog | None = None) -> None:
        super().__init__()
        self._catalog = items or catalog()
        self._decoders: dict[tuple[str, str], tuple[Decoder, str]] = {}
        self._admitted: dict[ItemKey, ItemKey] | None = None
        self.dropped = Throttle(log)
        self.restamped = Throttle(log)
        self.strangers = Throttle(log)

    @property
    def catalog(self) -> Catalog:
        """The catalog the cache decodes values with."""
        return self._catalog

    def spec(self, key: ItemKey) -> ItemSpec | None:
        """The catalog spec of an item key, if the catalog knows it."""
        return self._catalog.get(key.path.level, key.item)

    def admit(self, keys: Iterable[ItemKey]) -> None:
        """Keep only these items from now on (the mapping's); forget any other."""
        self._admitted = {key: key for key in keys}  # a plain tuple finds its key
        for key in [key for key in self._entries if key not in self._admitted]:
            del self._entries[key]

    def apply(self, records: Iterable[ItemRecord]) -> list[Update]:
        """Take records from the iCS into the cache and pass them on to subscribers."""
        entries = self._entries
        decoders = self._decoders
        admitted = self._admitted
        arrival: float | None = None
        updates: list[Update] = []
        for record in records:
            path = record.path
            item = record.item
            known = entries.get((path[0], path[1], path[2], item))  # type: ignore[call-overload]
            if known is not None:  # the key it had (a plain tuple finds it): no key to make
                key = known.key
            elif admitted is None:
                key = ItemKey.interned(path[0], path[1], path[2], item)
            else:
                key = admitted.get((path[0], path[1], path[2], item))  # type: ignore[call-overload]
                if key is None:
                    self.strangers("left out records of items not served, such as %s", path)
                    continue
            try:
                convert, unit = decoders[item, record.unit]
                value = convert(record.value)
            except (KeyError, ValueError) as exc:
                try:
                    convert, unit = self._decoder(record)
                    value = convert(record.value)
                except (ProtocolError, ValueError) as error:
                    reason = error if isinstance(exc, KeyError) else exc
                    self.dropped(
                        "dropped %s = %.40r %.10r: %s", key, record.value, record.unit, reason
                    )
                    continue
            time = record.time
            if time is not None and not EARLIEST <= time < LATEST:
                arrival = arrival or wall_clock()
                self.restamped(
                    "%s: time stamp %.6g is before 1990 or after 2106; stamped on arrival",
                    key,
                    time,
                )
                time = arrival
            update = Update(key, value, unit, time)
            entries[key] = update
            updates.append(update)
        self._notify(updates)
        return updates

    def _decoder(self, record: ItemRecord) -> tuple[Decoder, str]:
        spec = self._catalog.get(record.path.level, record.item)
        found = decoder(spec.type if spec else None, record.unit)
        if spec is not None or len(self._decoders) < MAX_STRANGE_DECODERS:
            self._decoders[record.item, record.unit] = found
        return found
