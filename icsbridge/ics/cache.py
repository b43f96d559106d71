"""The client's picture of the iCS: the latest value of every item it has heard of."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from icsbridge.catalog import Catalog, ItemSpec, catalog
from icsbridge.ics.protocol import ItemRecord, ProtocolError
from icsbridge.ics.values import Decoder, Value, decoder
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


class Cache(Latest):
    """The items' latest values, decoded from the iCS's records."""

    def __init__(self, items: Catalog | None = None) -> None:
        super().__init__()
        self._catalog = items or catalog()
        self._decoders: dict[tuple[str, str], tuple[Decoder, str]] = {}

    @property
    def catalog(self) -> Catalog:
        """The catalog the cache decodes values with."""
        return self._catalog

    def spec(self, key: ItemKey) -> ItemSpec | None:
        """The catalog spec of an item key, if the catalog knows it."""
        return self._catalog.get(key.path.level, key.item)

    def apply(self, records: Iterable[ItemRecord]) -> list[Update]:
        """Take records from the iCS into the cache and pass them on to subscribers.

        A record whose value does not decode is logged and dropped; the rest still apply.
        """
        entries = self._entries
        decoders = self._decoders
        updates: list[Update] = []
        for record in records:
            path = record.path
            item = record.item
            try:
                convert, unit = decoders[item, record.unit]
                value = convert(record.value)
            except (KeyError, ValueError) as exc:
                try:
                    convert, unit = self._decoder(record)
                    value = convert(record.value)
                except (ProtocolError, ValueError):
                    log.warning(
                        "dropped %s.%s = %r %r: %s", path, item, record.value, record.unit, exc
                    )
                    continue
            known = entries.get((path[0], path[1], path[2], item))  # type: ignore[call-overload]
            if known is not None:  # the key it had (a plain tuple finds it): no key to make
                key = known.key
            else:
                key = ItemKey.interned(path[0], path[1], path[2], item)
            update = Update(key, value, unit, record.time)
            entries[key] = update
            updates.append(update)
        self._notify(updates)
        return updates

    def _decoder(self, record: ItemRecord) -> tuple[Decoder, str]:
        spec = self._catalog.get(record.path.level, record.item)
        found = decoder(spec.type if spec else None, record.unit)
        self._decoders[record.item, record.unit] = found
        return found
