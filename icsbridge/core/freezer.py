"""Long-lived objects taken out of the garbage collector's reach soon after they are made.

A full collection walks every object the collector tracks. With 100k client subscriptions
(CA) or monitored items (OPC UA) each one stopped the event loop for about half a second,
again and again as updates aged objects into the oldest generation. A face calls `soon()`
whenever clients subscribe; a second after, everything alive is frozen (`gc.freeze`), once
per burst. Frozen objects are still freed by reference counting when their client goes.

Under load the bridge makes and drops several objects for every record it takes in; with
Python's default threshold (a young collection every 700 allocations) the collector ran
in the middle of each frame it decoded, and cost a sixth of the decoding time.
`collect_rarely` raises the threshold to where the young objects are mostly gone again.
"""

from __future__ import annotations

import asyncio
import gc

YOUNG = 10_000
"""Allocations between two young collections (Python's default: 700)."""

DELAY = 1.0
"""Seconds from a new subscription to the freeze, so that one burst gives one freeze."""


def collect_rarely() -> None:
    """Collect the young generation every `YOUNG` allocations, for this process."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


class Freezer:
    """Freezes what is alive a moment after the first of a burst of `soon()` calls."""

    def __init__(self, delay: float = DELAY) -> None:
        self.delay = delay
        self._due: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        """Freeze in `delay` seconds, unless a freeze is due already."""
        if self._due is None:
            self._due = asyncio.get_running_loop().call_later(self.delay, self._freeze)

    def cancel(self) -> None:
        """Drop a freeze that is due."""
        if self._due is not None:
            self._due.cancel()
            self._due = None

    def _freeze(self) -> None:
        self._due = None
        gc.freeze()
