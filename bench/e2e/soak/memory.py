"""Resident memory of every process the soak started, sampled every few seconds.

Each process is measured on its own (not as a tree): the bridge and its OPC UA process
separately. Growth compares the median of the samples in a window just after the warm-up
with the median of the last window of the run, so one busy sample does not decide it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import psutil

from ..meter import MIB


@dataclass(frozen=True, slots=True)
class Growth:
    """How one process's memory moved from after the warm-up to the end."""

    start_mib: float
    end_mib: float

    @property
    def percent(self) -> float:
        """Growth in % of the start."""
        return 100 * (self.end_mib - self.start_mib) / self.start_mib


class Memory:
    """RSS samples of named processes."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        """(time, MiB per process name) in time order."""

    def watch(self, name: str, pid: int) -> None:
        """Sample the process `pid` as `name` from now on."""
        self.pids[name] = pid

    def sample(self, now: float) -> None:
        """Read every process's RSS now (a process that is gone is left out)."""
        sizes = {}
        for name, pid in self.pids.items():
            try:
                sizes[name] = psutil.Process(pid).memory_info().rss / MIB
            except psutil.Error:
                continue
        self.samples.append((now, sizes))

    def at(self, moment: float) -> dict[str, float]:
        """The last sample taken at or before `moment` (empty before the first)."""
        found: dict[str, float] = {}
        for when, sizes in self.samples:
            if when > moment:
                break
            found = sizes
        return found

    def median(self, name: str, start: float, end: float) -> float | None:
        """Median MiB of process `name` over samples in [start, end)."""
        values = [s[name] for when, s in self.samples if start <= when < end and name in s]
        return statistics.median(values) if values else None

    def growth(self, warm: float, end: float, window: float) -> dict[str, Growth]:
        """Per process: median of [warm, warm + window) against that of [end - window, end)."""
        found = {}
        for name in self.pids:
            first = self.median(name, warm, warm + window)
            last = self.median(name, end - window, end)
            if first and last:
                found[name] = Growth(first, last)
        return found
