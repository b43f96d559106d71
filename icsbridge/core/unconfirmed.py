"""Writes that went out without a confirmation, watched until the iCS shows their fate.

Such a write ended "unconfirmed: the iCS may still apply it", and the link it went out on
was reset. From the next resync on, for `WATCH` seconds, every value the iCS reports of
the item is compared with the one written: a match is logged as applied late and counted;
a write whose value never shows is logged as not applied. A later write of the same item
that the iCS confirms ends the watch; one that never went out (the link down) does not.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient, LinkState
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey

log = logging.getLogger("icsbridge.core.writes")  # the write log: one logger for every write

WATCH = 60.0
"""Seconds from the resync during which a late application is still told."""

KEPT = 1000
"""Unconfirmed writes watched at most; only a link that fails write after write has more."""


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """A write that went out without a confirmation."""

    key: ItemKey
    name: str
    who: str
    via: str
    old: object
    sent: Value


def same(reported: object, sent: Value) -> bool:
    """Whether a value the iCS reports is the one written (floats to the iCS's rounding)."""
    if isinstance(reported, float) and isinstance(sent, int | float):
        return math.isclose(reported, sent, rel_tol=1e-6, abs_tol=1e-9)
    return reported == sent


class LateWatch:
    """Watches the unconfirmed writes of one client's link; counts those applied late."""

    def __init__(self, client: IcsClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.count = 0
        """Writes that went out and were never confirmed."""
        self.late = 0
        """Of those, writes whose value the iCS reported after the link's reset."""
        self._watched: dict[ItemKey, tuple[Unconfirmed, float]] = {}
        self._first_due = math.inf
        """The earliest end of a watch: until then no batch looks for ended ones."""
        client.on_state(self._resynced)
        client.cache.subscribe(self._take)

    def add(self, write: Unconfirmed) -> None:
        """Watch a write that just ended unconfirmed."""
        self.count += 1
        self._watched.pop(write.key, None)
        if len(self._watched) >= KEPT:
            self._settle(self._watched.pop(next(iter(self._watched)))[0], "not watched further")
        self._watched[write.key] = (write, math.inf)

    def forget(self, key: ItemKey) -> None:
        """The iCS confirmed a newer write of the item: stop watching for an older one."""
        self._watched.pop(key, None)

    def _resynced(self, state: LinkState) -> None:
        if state is not LinkState.READY or not self._watched:
            return
        until = self.clock() + WATCH
        cache = self.client.cache
        for key, (write, _) in list(self._watched.items()):
            now = cache.get(key)
            if now is not None and self._applied(write, now.value):
                continue
            self._watched[key] = (write, until)
        self._first_due = min(self._first_due, until)

    def _take(self, updates: Sequence[Update]) -> None:
        watched = self._watched
        if not watched or self.client.state is not LinkState.READY:
            return
        for update in updates:
            found = watched.get(update.key)
            if found is not None:
                self._applied(found[0], update.value)
        now = self.clock()
        if now < self._first_due:
            return
        for write, _ in [found for found in watched.values() if found[1] < now]:
            del watched[write.key]
            self._settle(write, f"not applied within {WATCH:g} s of the resync")
        self._first_due = min((until for _, until in watched.values()), default=math.inf)

    def _applied(self, write: Unconfirmed, reported: Value) -> bool:
        """Log and count the write as applied late if the iCS reports its value."""
        if not same(reported, write.sent):
            return False
        del self._watched[write.key]
        if same(write.old, write.sent):
            self._settle(write, "not told apart from the value before")
            return True
        self.late += 1
        log.warning(
            "write %s by %s via %s: %r, reported unconfirmed, applied late: the iCS reports %r",
            write.name, write.who, write.via, write.sent, reported,
        )  # fmt: skip
        return True

    def _settle(self, write: Unconfirmed, outcome: str) -> None:
        log.info(
            "write %s by %s via %s: %r, reported unconfirmed, %s",
            write.name, write.who, write.via, write.sent, outcome,
        )  # fmt: skip
