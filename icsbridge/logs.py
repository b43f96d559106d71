"""How icsbridge logs: one format for every process of the bridge, quieter libraries, text
from peers escaped, and repeated warnings throttled with a count.

A peer controls much of what the bridge logs: a CA client's user and host names, an iCS's
item names and values, an OPC UA session's user name. Every line goes out through
`EscapingFormatter`, so no peer can break a line or forge one; and a warning a peer can
provoke at will goes through a `Throttle`, so no peer can flood the log.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

QUIET_LIBRARIES = ("asyncua",)
"""Libraries whose INFO lines (one per standard node at OPC UA start) only show with -vv."""

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """The text with line breaks and other control characters as Python escapes."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


class EscapingFormatter(logging.Formatter):
    """A formatter whose messages are one line each, whatever text they hold.

    Tracebacks, which the bridge's own code makes, keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


def configure(verbose: int) -> None:
    """Log to standard error: INFO by default, DEBUG with -v, libraries' INFO with -vv."""
    level = logging.WARNING - 10 * verbose if verbose else logging.INFO
    logging.basicConfig(level=level, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter(FORMAT))
    if verbose < 2:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


class Throttle:
    """Logs one kind of event at most `burst` times per `period` seconds, and counts the rest.

    The first line after a quiet spell says how many were left out before it.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.WARNING,
        period: float = 10.0,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.level = level
        self.period = period
        self.burst = burst
        self.clock = clock
        self.count = 0
        """Events seen in all, logged or not."""
        self._window = -float("inf")
        self._logged = 0
        self._left_out = 0

    def __call__(self, message: str, *args: object) -> None:
        """Log `message % args`, unless this kind of event was logged `burst` times lately."""
        self.count += 1
        now = self.clock()
        if now - self._window >= self.period:
            self._window, self._logged = now, 0
        if self._logged >= self.burst:
            self._left_out += 1
            return
        self._logged += 1
        if not self.logger.isEnabledFor(self.level):
            return
        suffix = ""
        if self._left_out:
            suffix = f" ({self._left_out} more like it left out before)"
            self._left_out = 0
        if self._logged == self.burst:
            suffix += f" (more like it held back for up to {self.period:g} s, and counted)"
        self.logger.log(self.level, message + suffix, *args)
