"""How many item updates per second the iCS delivers."""

from __future__ import annotations

from collections.abc import Sequence

from icsbridge.ics.cache import Update


class UpdateRate:
    """Item updates per second, counted from the cache's batches."""

    def __init__(self) -> None:
        self.total = 0
        self._last_total = 0
        self._last_time = 0.0
        self.per_second = 0.0

    def count(self, updates: Sequence[Update]) -> None:
        """Subscriber that counts updates."""
        self.total += len(updates)

    def sample(self, now: float) -> float:
        """Updates per second since the previous sample."""
        if self._last_time:
            self.per_second = (self.total - self._last_total) / max(now - self._last_time, 1e-9)
        self._last_total, self._last_time = self.total, now
        return self.per_second
