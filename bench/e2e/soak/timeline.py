"""The soak's minutes: a fault every minute, and between faults the chores that watch it all.

While it waits, the soak samples memory, collects the writes that ended and the setItems
the simulator received (never while it is stopped), the link PV's changes, and checks that
no process died. A fault: open a window in every session process, break the link, mend it
after its outage, wait for the link to be ready again, wait out the limits, then ask every
session process for its verdicts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..children import ChildError
from .faults import KINDS, Injector, Kind, Limits
from .memory import Memory
from .system import System
from .windows import Verdict

FAULT_AT = 5.0
"""Seconds into its minute a fault begins."""
CHORES = 5.0
"""Seconds between two collections of writes, setItems and link changes."""
READY_TIMEOUT = 60.0
"""Seconds the link may take to be ready again after a fault ends."""
SETTLE = 1.0
"""Seconds waited beyond a check's limit before asking for verdicts."""
ASK = 30.0
"""Seconds a child may take to answer."""


class Died(RuntimeError):
    """A process of the soak ended on its own."""


@dataclass(slots=True)
class Fault:
    """One fault and what the clients saw of it."""

    minute: int
    kind: Kind
    began: float
    ended: float
    ready: float | None = None
    """When the bridge logged the link ready again."""
    ready_pv: float | None = None
    """When the link PV read "ready" again (as one CA client saw it)."""
    verdicts: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    """Per face ("CA", "OPC UA"): the bad and the good verdict."""


@dataclass(slots=True)
class Timeline:
    """The run: its faults, the writes, what the simulator received, memory, link changes."""

    system: System
    limits: Limits
    sample: float
    memory: Memory = field(default_factory=Memory)
    faults: list[Fault] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    set_items: list[dict[str, Any]] = field(default_factory=list)
    link: list[tuple[float, str]] = field(default_factory=list)
    began: float = 0.0
    pending: int = 0
    injector: Injector = field(init=False)
    _sampled: float = 0.0
    _collected: float = 0.0

    def __post_init__(self) -> None:
        self.injector = Injector(self.system.sim)
        for name, pid in self.system.pids.items():
            self.memory.watch(name, pid)

    def chores(self) -> None:
        """Whatever is due: a memory sample, collecting, checking for dead processes."""
        now = time.time()
        if now - self._sampled >= self.sample:
            self._sampled = now
            self.memory.sample(now)
        if now - self._collected >= CHORES:
            self._collected = now
            self.collect()
        if dead := self.system.dead():
            raise Died(", ".join(dead))

    def collect(self) -> None:
        """The writes that ended, the simulator's setItems and the link PV's changes."""
        answer = self.system.writers.ask("results", ASK)
        self.writes += answer["writes"]
        self.pending = int(answer["pending"])
        if not self.injector.stopped:
            self.set_items += self.system.sim.ask("received", ASK)["set_items"]
        self.link += [tuple(change) for change in self.system.ca[0].ask("link", ASK)["changes"]]

    def wait_until(self, moment: float) -> None:
        """Do the chores until `moment` (time.time())."""
        while (left := moment - time.time()) > 0:
            self.chores()
            time.sleep(min(0.25, left))

    def run(self, minutes: int) -> None:
        """Every minute after the first, one fault; kinds in turn."""
        self.began = time.time()
        self.system.log.start(self.began)
        self.memory.sample(self.began)
        try:
            for minute in range(1, minutes):
                self.wait_until(self.began + 60 * minute + FAULT_AT)
                self.faults.append(self.fault(minute, KINDS[(minute - 1) % len(KINDS)]))
            self.wait_until(self.began + 60 * minutes)
        finally:
            self.injector.resume()

    def fault(self, minute: int, kind: Kind) -> Fault:
        """Break the link one way, mend it, and judge what the clients saw."""
        for child in self.system.sessions:
            child.ask("open", ASK)
        began = self.injector.begin(kind)
        try:
            self.wait_until(began + self.limits.outage(kind))
        finally:
            ended = self.injector.end(kind) if kind is not Kind.CLOSED else began
        fault = Fault(minute, kind, began, ended)
        deadline = ended + READY_TIMEOUT
        while fault.ready is None and time.time() < deadline:
            self.wait_until(time.time() + 0.25)
            fault.ready = self.system.log.ready_after(ended)
        settled = max(began + self.limits.bad(kind), (fault.ready or ended) + self.limits.good)
        self.wait_until(settled + SETTLE)
        self.collect()
        fault.ready_pv = next((t for t, s in self.link if s == "ready" and t > ended), None)
        ask = f"judge {began} {self.limits.bad(kind)} {fault.ready or 0} {self.limits.good}"
        for face, children in (("CA", self.system.ca), ("OPC UA", [self.system.ua])):
            merged = {"bad": Verdict(), "good": Verdict()}
            for child in children:
                for check, verdict in child.ask(ask, ASK).items():
                    merged[check].merge(Verdict(**verdict))
            fault.verdicts[face] = merged
        return fault

    def finish(self, timeout: float) -> None:
        """Stop writing, wait for the writes still out, collect the last of everything."""
        self.system.writers.ask("pause", ASK)
        deadline = time.time() + timeout
        self.collect()
        while self.pending and time.time() < deadline:
            self.wait_until(time.time() + 1)
            self.collect()
        self.wait_until(time.time() + CHORES)
        self.collect()

    def stats(self) -> dict[str, Any]:
        """What each session process says it did."""
        found = {}
        for child in self.system.sessions:
            try:
                found[child.name] = child.ask("stats", ASK)
            except ChildError as exc:
                found[child.name] = {"error": str(exc)}
        return found
