"""The bridge's standard error during the soak: kept in a file, counted per minute, searched.

Every line is handled as it is read (`Child(on_stderr=...)`), stamped with the time it was
read: lines per minute of the soak, warnings and errors among them, the moments the iCS
link became ready, and the lines that report a write applied late.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

READY = re.compile(r"iCS link \S+: ready\s*$")
"""The bridge's line when its iCS link is ready (logged in, subscribed, resynced)."""
LEVEL = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ")
LATE = "applied late"
WRITE = re.compile(r"\bwrite (\S+) \((\S+)\)")
"""A write's line: its PV name and item key."""
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


@dataclass(frozen=True, slots=True)
class LateLine:
    """A line of the bridge saying that an unconfirmed write was applied after all."""

    time: float
    pv: str
    key: str
    numbers: tuple[float, ...]
    """Every number after the item key: one of them is the value written."""
    text: str


def late_line(when: float, text: str) -> LateLine | None:
    """The late application a log line reports, or None if it reports none."""
    if LATE not in text or not (match := WRITE.search(text)):
        return None
    numbers = tuple(float(number) for number in NUMBER.findall(text[match.end() :]))
    return LateLine(when, match.group(1), match.group(2), numbers, text)


class BridgeLog:
    """The bridge's log lines, as they come (safe to call from the reading thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("w", encoding="utf-8", buffering=1)
        self.lock = threading.Lock()
        self.began = 0.0
        self.lines: Counter[int] = Counter()
        """Lines per minute of the soak; minute -1 is the start-up before it."""
        self.warnings: Counter[int] = Counter()
        self.ready: list[float] = []
        self.late: list[LateLine] = []

    def start(self, began: float) -> None:
        """Count minutes from `began` (time.time()) on."""
        self.began = began

    def minute(self, when: float) -> int:
        """The soak's minute at `when`: -1 before it began."""
        return int((when - self.began) // 60) if self.began and when >= self.began else -1

    def line(self, text: str) -> None:
        """One line of the bridge's standard error."""
        now = time.time()
        minute = self.minute(now)
        with self.lock:
            self.file.write(text + "\n")
            self.lines[minute] += 1
            if LEVEL.match(text):
                self.warnings[minute] += 1
            if READY.search(text):
                self.ready.append(now)
            if late := late_line(now, text):
                self.late.append(late)

    def ready_after(self, moment: float) -> float | None:
        """When the link was first ready after `moment`, if it was."""
        with self.lock:
            return next((when for when in self.ready if when > moment), None)

    def close(self) -> None:
        """Close the file."""
        with self.lock:
            self.file.close()
