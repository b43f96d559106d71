"""The bench's output: rich tables for people, JSON with every raw figure and the machine."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from .children import ROOT
from .clients import HARNESS
from .results import Size, Step, SystemRun

PACKAGES = ("icsbridge", "caproto", "asyncua", "websockets", "pyepics", "epicscorelibs")


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    """What the figures were measured on and with."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    node_opcua = HARNESS / "node_modules" / "node-opcua" / "package.json"
    versions = {name: importlib.metadata.version(name) for name in PACKAGES}
    if node_opcua.is_file():
        versions["node-opcua"] = json.loads(node_opcua.read_text())["version"]
    dirty = bool(_run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "icsbridge"]))
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "node": _run([shutil.which("node") or "node", "--version"]),
        "versions": versions,
        "git_commit": _run(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "icsbridge_modified": dirty,
        "load_average_at_start": os.getloadavg(),
    }


def summary(facts: dict[str, Any]) -> str:
    """One line on the machine: the figures are only as quiet as it is."""
    load = ", ".join(f"{value:.2f}" for value in facts["load_average_at_start"])
    modified = " (modified)" if facts["icsbridge_modified"] else ""
    return (
        f"{facts['cpus']} CPUs ({facts['cpu_model']}), {facts['memory_gib']} GiB, "
        f"load average {load}; Python {facts['python']}, node {facts['node'] or '–'}; "
        f"icsbridge {facts['git_commit'][:10]}{modified}"
    )


def write_json(path: Path, sizes: list[Size], meta: dict[str, Any]) -> None:
    """Every raw figure, the options and the machine, as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "sizes": [dataclasses.asdict(size) for size in sizes]}
    path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")


def _n(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def _ratio(bridge: float | None, softioc: float | None) -> str:
    return "–" if not bridge or not softioc else f"{bridge / softioc:.2f}"


def _flow(step: Step, client: str) -> list[str]:
    flow = step.flows.get(client)
    if flow is None:
        return ["–", "–", "–"]
    return [_rate(flow.rate), _n(flow.p50_ms, 1), _n(flow.p99_ms, 1)]


def _check(run: SystemRun, client: str) -> str:
    found = run.convergence.get(client)
    if found is None:
        return "–"
    newest = {True: "newest", False: "STALE", None: "?"}[found.newest]
    return f"{_n(found.seconds)} {newest}"


def startup_table(size: Size) -> Table:
    """Per system: start, memory, connect and subscribe times, convergence, overload."""
    table = Table(title=_title(size), title_justify="left")
    for column in (
        "system", "start CA s", "start UA s", "RSS MiB", "CA connect s", "CA initial s",
        "UA subscribe s", "CA converged s", "UA converged s", "CA overload", "UA overload",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "system" else "right")
    for run in size.runs:
        table.add_row(
            run.system,
            _n(run.start_seconds.get("ca")),
            _n(run.start_seconds.get("ua")),
            _n(run.rss_mib, 0),
            _n(run.connect_seconds),
            _n(run.ca_subscribe_seconds),
            _n(run.ua_subscribe_seconds),
            _check(run, "ca"),
            _check(run, "ua"),
            _n(run.overload_ratio.get("ca")),
            _n(run.overload_ratio.get("ua")),
        )
    bridge, softioc = _pair(size)
    if bridge and softioc:
        table.add_row(
            "bridge/softIoc",
            _ratio(bridge.start_seconds.get("ca"), softioc.start_seconds.get("ca")),
            "",
            _ratio(bridge.rss_mib, softioc.rss_mib),
            _ratio(bridge.connect_seconds, softioc.connect_seconds),
            _ratio(bridge.ca_subscribe_seconds, softioc.ca_subscribe_seconds),
            *[""] * 5,
            style="bold",
        )
    return table


def load_table(size: Size) -> Table:
    """Per load and system: offered and delivered rates, latency, CPU, memory, machine load."""
    table = Table(title=f"{size.items:,} items: load steps", title_justify="left")
    for column in (
        "load/s", "system", "offered/s", "CA/s", "CA p50 ms", "CA p99 ms", "UA/s", "UA p50 ms",
        "UA p99 ms", "CPU %", "RSS MiB", "clients CPU %", "iCS sim CPU %", "sys CPU %",
        "load avg",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "system" else "right")
    bridge, softioc = _pair(size)
    for index, target in enumerate(_loads(size)):
        steps = {run.system: run.steps[index] for run in size.runs if index < len(run.steps)}
        for system, found in steps.items():
            table.add_row(_rate(target), system, *_step_cells(found))
        if bridge and softioc and len(steps) == 2:
            ours, theirs = steps["bridge"], steps["softIoc"]
            table.add_row(
                "",
                "bridge/softIoc",
                _ratio(ours.offered, theirs.offered),
                *[_ratio(_ca(ours, key), _ca(theirs, key)) for key in ("rate", "p50_ms", "p99_ms")],
                *[""] * 3,
                _ratio(_used(ours, "cpu_percent"), _used(theirs, "cpu_percent")),
                *[""] * 5,
                style="bold",
                end_section=True,
            )
    return table


def _ca(step: Step, key: str) -> float | None:
    flow = step.flows.get("ca")
    return None if flow is None else getattr(flow, key)


def _used(step: Step, key: str) -> float | None:
    return None if step.resources is None else getattr(step.resources, key)


def _step_cells(step: Step) -> list[str]:
    if step.error:
        return [f"error: {step.error.splitlines()[0][:60]}", *[""] * 12]
    clients = step.resources and step.resources.clients_cpu_percent.values()
    return [
        _rate(step.offered),
        *_flow(step, "ca"),
        *_flow(step, "ua"),
        _n(_used(step, "cpu_percent"), 0),
        _n(_used(step, "rss_mib"), 0),
        "/".join(f"{cpu:.0f}" for cpu in clients) if clients else "–",
        _n(_used(step, "source_cpu_percent"), 0),
        _n(_used(step, "system_cpu_percent"), 0),
        _n(_used(step, "load_average"), 2),
    ]


def _title(size: Size) -> str:
    shape = f"{size.modules} module(s) × {size.channels} channels"
    return (
        f"{size.items:,} items ({shape}, {size.churned:,} churned), "
        f"discover {_n(size.discover_seconds)} s"
    )


def _pair(size: Size) -> tuple[SystemRun | None, SystemRun | None]:
    runs = {run.system: run for run in size.runs}
    return runs.get("bridge"), runs.get("softIoc")


def _loads(size: Size) -> list[float]:
    return max(([step.target for step in run.steps] for run in size.runs), key=len, default=[])


def show(console: Console, size: Size) -> None:
    """Print the tables of one size and its errors."""
    console.print(startup_table(size))
    console.print(load_table(size))
    for run in size.runs:
        if run.rate_cap:
            console.print(f"{run.system}: highest rate it can offer {_rate(run.rate_cap)}/s")
    for error in size.errors + [f"{r.system}: {e}" for r in size.runs for e in r.errors]:
        console.print(f"[red]error[/red] {error.splitlines()[0]}")
