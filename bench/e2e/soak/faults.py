"""The three ways the soak breaks the iCS link, their limits, and how they are injected.

- closed: the simulator aborts every socket (`drop`), like a pulled cable; the bridge sees
  the connection end at once.
- silent: the simulator sends nothing for a while (`silent on`, then `off`) and keeps its
  sockets open; the bridge loses the link after 3 silent heartbeat intervals.
- stopped: the simulator's process is stopped (SIGSTOP) for longer than that, then resumed
  (SIGCONT): whatever the bridge sent meanwhile, writes too, waits in its socket.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import StrEnum

from ..children import Child

MISSED_HEARTBEATS = 3
"""Silent heartbeat intervals after which the bridge counts the link as lost."""
CLOSED_LIMIT = 3.0
"""Seconds a closed link may take to show as bad."""
MARGIN = 3.0
"""Seconds beyond the bridge's silence limit a silent or stopped iCS may take to show."""
GOOD_LIMIT = 5.0
"""Seconds after the link is ready again within which everything must be good."""
LONGER = 4.0
"""Seconds a silent or stopped iCS lasts beyond the bridge's silence limit."""


class Kind(StrEnum):
    """A way to break the link."""

    CLOSED = "closed"
    SILENT = "silent"
    STOPPED = "stopped"


KINDS = (Kind.CLOSED, Kind.SILENT, Kind.STOPPED)
"""The order the soak's minutes go through."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How long each fault lasts and how soon clients must see it, for one heartbeat."""

    heartbeat: float

    @property
    def silence(self) -> float:
        """Seconds without a frame after which the bridge counts the link as lost."""
        return self.heartbeat * MISSED_HEARTBEATS

    def outage(self, kind: Kind) -> float:
        """Seconds the fault lasts before the simulator talks again (0: it talks at once)."""
        return 0.0 if kind is Kind.CLOSED else self.silence + LONGER

    def bad(self, kind: Kind) -> float:
        """Seconds from the fault within which every item must show as bad."""
        return CLOSED_LIMIT if kind is Kind.CLOSED else self.silence + MARGIN

    @property
    def good(self) -> float:
        """Seconds from the link being ready again within which every item must be good."""
        return GOOD_LIMIT


class Injector:
    """Breaks and mends the link through the simulator driver and signals to its process."""

    def __init__(self, sim: Child) -> None:
        self.sim = sim
        self.stopped = False

    def begin(self, kind: Kind) -> float:
        """Start a fault; the time it began."""
        began = time.time()
        match kind:
            case Kind.CLOSED:
                self.sim.ask("drop", 10)
            case Kind.SILENT:
                self.sim.ask("silent on", 10)
            case Kind.STOPPED:
                os.kill(self.sim.process.pid, signal.SIGSTOP)
                self.stopped = True
        return began

    def end(self, kind: Kind) -> float:
        """Let the simulator talk again; the time it did."""
        ended = time.time()
        match kind:
            case Kind.SILENT:
                self.sim.ask("silent off", 10)
            case Kind.STOPPED:
                self.resume()
        return ended

    def resume(self) -> None:
        """Continue the simulator's process if it is stopped."""
        if self.stopped and self.sim.process.poll() is None:
            os.kill(self.sim.process.pid, signal.SIGCONT)
        self.stopped = False
