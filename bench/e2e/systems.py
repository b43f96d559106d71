"""One server through every phase: start, connect and subscribe clients, load steps, convergence.

A failing phase is recorded in the run's errors; the phases that do not need it go on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from icsbridge.mapping.document import ItemEntry

from . import clients as cl
from .children import Child, ChildError, child_env, python_command
from .items import Items, ident
from .meter import Meter, rss_mib
from .network import BeaconSink, epics_env, free_port
from .results import SystemRun
from .softioc import FASTEST, Load, SoftIoc, load_for
from .steps import Churn, Scanning, Source, Timing, converge, overload, step

T = TypeVar("T")

SERVING = {
    "ca": r"serving \d+ PVs over Channel Access",
    "ua": r"serving \d+ variables over OPC UA",
}
"""The bridge's log lines that say a protocol is served."""


@dataclass(frozen=True, slots=True)
class Budget:
    """Seconds each phase may take, growing with the number of items."""

    items: int

    def start(self) -> float:
        return 60 + self.items / 1000

    def connect(self) -> float:
        return 30 + self.items / 2000

    def subscribe(self) -> float:
        return 30 + self.items / 1000


@dataclass(frozen=True, slots=True)
class Plan:
    """What every run of a size shares."""

    items: Items
    loads: list[float]
    timing: Timing
    folder: Path
    sink: BeaconSink

    def watched(self) -> list[ItemEntry]:
        """Items whose final values are checked: active in both systems' last step."""
        return self.items.watched(load_for(max(self.loads), len(self.items.churned)).records)


def attempt(run: SystemRun, phase: str, work: Callable[..., T], *args: Any) -> T | None:
    """`work(*args)`, or None with the failure recorded under `phase`."""
    try:
        return work(*args)
    except (ChildError, OSError, KeyError, ValueError) as exc:
        run.errors.append(f"{phase}: {exc}")
        return None


@contextlib.contextmanager
def stopping(first: Child) -> Iterator[list[Child]]:
    """A list of children, starting with `first`, all stopped when the block ends."""
    children = [first]
    try:
        yield children
    finally:
        for child in reversed(children):
            child.stop()


def whole(run: SystemRun, phase: str, answer: dict[str, Any], done: str, of: str) -> bool:
    """Whether a client did `done` for all `of`; if not, say so (the bench goes on with those)."""
    if answer[done] >= answer[of]:
        return True
    run.errors.append(f"{phase}: {answer[done]:,} of {answer[of]:,}; measuring with those")
    return False


def subscribe_ca(
    run: SystemRun, env: dict[str, str], plan: Plan, children: list[Child]
) -> Child | None:
    """A libca client connected and subscribed to every PV it could connect, or None."""
    budget = Budget(run.items)
    ca = attempt(run, "CA client", cl.start_ca, env)
    if ca is None:
        return None
    children.append(ca)
    files = plan.items.write(plan.folder, "ca")
    command = f"connect {files.every} {budget.connect()}"
    answer = attempt(run, "CA connect", ca.ask, command, budget.connect() + 30)
    if not answer or not answer["connected"]:
        return None
    if whole(run, "CA connect", answer, "connected", "of"):
        run.connect_seconds = answer["seconds"]
    answer = attempt(
        run, "CA subscribe", ca.ask, f"subscribe {budget.subscribe()}", budget.subscribe() + 30
    )
    if not answer:
        return None
    if whole(run, "CA initial values", answer, "initial", "subscribed"):
        run.ca_subscribe_seconds = answer["seconds"]
    return ca


def subscribe_ua(run: SystemRun, endpoint: str, plan: Plan, children: list[Child]) -> Child | None:
    """A node-opcua client monitoring every variable it could, or None."""
    ua = attempt(run, "UA client", cl.start_ua, endpoint)
    if ua is None:
        return None
    children.append(ua)
    timeout = Budget(run.items).subscribe()
    files = plan.items.write(plan.folder, "ua")
    interval = plan.timing.publishing
    command = f"subscribe {files.every} {plan.items.namespace} {timeout} {interval}"
    answer = attempt(run, "UA subscribe", ua.ask, command, timeout + 60)
    if not answer:
        return None
    if answer["bad"]:
        run.errors.append(f"UA subscribe: {answer['bad']:,} monitored items refused")
    if whole(run, "UA initial values", answer, "initial", "subscribed"):
        run.ua_subscribe_seconds = answer["seconds"]
    return ua


def exercise(
    run: SystemRun, server: Child, clients: dict[str, Child], source: Source, plan: Plan
) -> None:
    """Every load step, the overload ratio, then convergence once the load stops."""
    watched = plan.watched()
    for name, client in clients.items():
        churned = plan.items.write(plan.folder, name).churned
        attempt(run, f"{name} track", client.ask, f"track {churned}", 30)
        watch = " ".join(ident(name, entry) for entry in watched)
        attempt(run, f"{name} watch", client.ask, f"watch {watch}", 10)
    pids = {name: client.process.pid for name, client in clients.items()}
    meter = Meter(server.process.pid, pids, source.pid)
    for rate in plan.loads:
        run.steps.append(step(rate, source, clients, meter, plan.timing))
    overload(run)
    run.convergence = attempt(run, "convergence", converge, source, clients, watched) or {}


def run_bridge(sim: Child, url: str, mapping: Path, plan: Plan) -> SystemRun:
    """`icsbridge serve` against the simulator, with a libca and a node-opcua client."""
    run = SystemRun("bridge", len(plan.items.entries))
    env = child_env(epics_env(free_port(), plan.sink.port))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/"
    command = python_command(
        "-m", "icsbridge", "serve", "--ics", url, "--mapping", str(mapping),
        "--opcua-endpoint", endpoint, "--opcua-state", str(plan.folder / "opcua"),
    )  # fmt: skip
    with stopping(Child("bridge", command, env, patterns=SERVING)) as children:
        bridge = children[0]
        for protocol in SERVING:
            found = attempt(
                run, f"start {protocol}", bridge.wait_for, protocol, Budget(run.items).start()
            )
            if found:
                run.start_seconds[protocol] = found[0]
        clients: dict[str, Child | None] = {}
        if "ca" in run.start_seconds:
            clients["ca"] = subscribe_ca(run, env, plan, children)
        if "ua" in run.start_seconds:
            clients["ua"] = subscribe_ua(run, endpoint, plan, children)
        run.rss_mib = rss_mib(bridge.process.pid)
        subscribed = {name: client for name, client in clients.items() if client}
        if subscribed:
            exercise(run, bridge, subscribed, Churn(sim), plan)
    return run


def run_softioc(plan: Plan) -> SystemRun:
    """An epicscorelibs softIoc with the same records, with a libca client."""
    run = SystemRun("softIoc", len(plan.items.entries))
    pool = [entry.pv for entry in plan.items.churned]
    loads = {rate: load_for(rate, len(pool)) for rate in plan.loads}
    run.rate_cap = Load(len(pool), FASTEST).rate
    env = child_env(epics_env(free_port(), plan.sink.port))
    folder = plan.folder / "softioc"
    folder.mkdir(exist_ok=True)
    ioc = SoftIoc(plan.items.names, pool, list(loads.values()), folder, env)
    with stopping(ioc.child) as children:
        if attempt(run, "start", ioc.started, Budget(run.items).start()) is None:
            return run
        run.start_seconds["ca"] = time.monotonic() - ioc.child.started
        ca = subscribe_ca(run, env, plan, children)
        run.rss_mib = rss_mib(ioc.child.process.pid)
        if ca:
            exercise(run, ioc.child, {"ca": ca}, Scanning(ioc, loads), plan)
    return run
