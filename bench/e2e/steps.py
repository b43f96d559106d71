"""Load steps: set a rate, let it settle, count what every client receives in a window."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from icsbridge.mapping.document import ItemEntry

from .children import Child, ChildError
from .items import ident, key_text
from .meter import Meter
from .results import Convergence, Flow, Step, SystemRun
from .softioc import Load, SoftIoc

QUIET_GAP = 2.0
"""Seconds without any change after which a client counts as caught up."""
QUIET_TIMEOUT = 60.0

PUBLISHING = 20.0
"""The OPC UA client's publishing interval, ms: short, so that latency shows the bridge; a
client asking for P ms adds up to P ms (P/2 on average) to every value."""


@dataclass(frozen=True, slots=True)
class Timing:
    """How long each load step lasts, and how often the OPC UA client wants notifications."""

    settle: float
    window: float
    publishing: float = PUBLISHING
    """The OPC UA subscription's publishing interval, ms."""


class Source(Protocol):
    """What makes the changes: the simulator's churn, or the softIoc's scanning records."""

    pid: int | None
    """The process making the changes, if it is not the server."""

    def offer(self, rate: float) -> None:
        """Change items at `rate` per second from now on (0: stop)."""

    def count(self) -> float:
        """Changes made so far at the current rate."""

    def values(self, entries: list[ItemEntry]) -> dict[str, Any] | None:
        """Current values by item key, or None where the clients read them from the server."""


class Churn:
    """The simulator's churn, through its driver."""

    def __init__(self, sim: Child) -> None:
        self.sim = sim
        self.pid = sim.process.pid

    def offer(self, rate: float) -> None:
        self.sim.ask(f"churn {rate}", 10)

    def count(self) -> float:
        return float(self.sim.ask("count", 10)["churned"])

    def values(self, entries: list[ItemEntry]) -> dict[str, Any] | None:
        return self.sim.ask("values " + " ".join(key_text(e) for e in entries), 10)


class Scanning:
    """The softIoc's calc records, scanning as planned for each rate."""

    def __init__(self, ioc: SoftIoc, plans: dict[float, Load]) -> None:
        self.ioc = ioc
        self.plans = plans
        self.load: Load | None = None
        self.pid = None

    def offer(self, rate: float) -> None:
        self.load = self.plans[rate] if rate else None
        self.ioc.offer(self.load)

    def count(self) -> float:
        return self.ioc.processed() * self.load.records if self.load else 0.0

    def values(self, entries: list[ItemEntry]) -> dict[str, Any] | None:
        return None


def step(
    rate: float, source: Source, clients: dict[str, Child], meter: Meter, timing: Timing
) -> Step:
    """Offer `rate`, settle, then measure one window."""
    result = Step(rate)
    try:
        source.offer(rate)
        time.sleep(timing.settle)
        meter.start()
        began, before = time.monotonic(), source.count()
        for client in clients.values():
            client.ask("window", 10)
        time.sleep(timing.window)
        reports = {name: client.ask("report", 60) for name, client in clients.items()}
        result.offered = (source.count() - before) / (time.monotonic() - began)
        result.resources = meter.stop()
        result.flows = {name: Flow.of(report) for name, report in reports.items()}
    except ChildError as exc:
        result.error = str(exc)
    return result


def overload(run: SystemRun) -> None:
    """Per client, the rate delivered at the highest load over the best rate delivered."""
    if not run.steps:
        return
    last = run.steps[-1]
    for name, flow in last.flows.items():
        best = max(s.flows[name].rate for s in run.steps if name in s.flows)
        if best:
            run.overload_ratio[name] = flow.rate / best


def converge(
    source: Source, clients: dict[str, Child], watched: list[ItemEntry]
) -> dict[str, Convergence]:
    """Stop the load; per client the seconds until it holds the newest values and churned
    items stopped changing (QUIET_GAP without a change), None if not within QUIET_TIMEOUT."""
    source.offer(0)
    stopped = time.time()
    deadline = time.monotonic() + QUIET_TIMEOUT
    truth = source.values(watched)
    newest = _newest(clients, truth, watched, deadline)
    left = max(0.0, deadline - time.monotonic())
    for client in clients.values():
        client.send(f"quiet {QUIET_GAP} {left}\n")
    result = {}
    for name, client in clients.items():
        quiet = client.reply(left + 30)
        done = name in newest and quiet["quiet"]
        seconds = max(0.0, newest.get(name, 0.0) - stopped, quiet["last"] - stopped)
        result[name] = Convergence(seconds if done else None, name in newest)
    return result


def _newest(
    clients: dict[str, Child],
    truth: dict[str, Any] | None,
    watched: list[ItemEntry],
    deadline: float,
) -> dict[str, float]:
    """When each client's watched values first equal the truth (None: its own fresh reads)."""
    found: dict[str, float] = {}
    while len(found) < len(clients) and time.monotonic() < deadline:
        for name, client in clients.items():
            if name in found:
                continue
            answer = client.ask("check", 30)
            expected = answer["read"]
            if truth is not None:
                expected = {ident(name, entry): truth[key_text(entry)] for entry in watched}
            if same(answer["monitored"], expected):
                found[name] = time.time()
        time.sleep(0.1)
    return found


def same(values: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Every expected value is there and equal (floats to 1e-9 relative)."""
    return bool(expected) and all(
        isinstance(values.get(key), int | float) and math.isclose(values[key], value, rel_tol=1e-9)
        for key, value in expected.items()
    )
