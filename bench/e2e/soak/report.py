"""The soak's output: per minute what broke and how the bridge took it, memory, the checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from .checks import Check
from .memory import Growth
from .timeline import Fault, Timeline

OUTCOMES = ("confirmed", "refused", "down", "unconfirmed")
"""The write outcomes shown in their own column; any other counts as failed."""


def minute_rows(timeline: Timeline, minutes: int) -> list[dict[str, Any]]:
    """Per minute of the soak: its fault, writes by outcome, log lines, memory at its end."""
    log = timeline.system.log
    faults = {fault.minute: fault for fault in timeline.faults}
    rows = []
    for minute in range(minutes):
        start = timeline.began + 60 * minute
        writes = [w for w in timeline.writes if start <= w["start"] < start + 60]
        ended = Counter(w["outcome"] if w["outcome"] in OUTCOMES else "failed" for w in writes)
        fault = faults.get(minute)
        rows.append(
            {
                "minute": minute,
                "fault": fault and fault_json(fault),
                "writes": {o: ended[o] for o in (*OUTCOMES, "failed")}
                | {"late": sum(w.get("late", False) for w in writes)},
                "log_lines": log.lines[minute],
                "log_warnings": log.warnings[minute],
                "rss_mib": timeline.memory.at(start + 60),
            }
        )
    return rows


def recorded(
    timeline: Timeline, rows: list[dict[str, Any]], growth: dict[str, Growth]
) -> dict[str, Any]:
    """Everything the run recorded, as JSON: minutes, memory, log, link PV, writes."""
    log = timeline.system.log
    return {
        "began": timeline.began,
        "minutes": rows,
        "memory": {
            "growth": {n: asdict(g) | {"percent": g.percent} for n, g in growth.items()},
            "samples": timeline.memory.samples,
        },
        "log": {
            "file": str(log.path),
            "lines": dict(log.lines),
            "warnings": dict(log.warnings),
            "late": [line.text for line in log.late],
        },
        "link_pv": timeline.link,
        "writes": timeline.writes,
        "set_items": len(timeline.set_items),
    }


def fault_json(fault: Fault) -> dict[str, Any]:
    """A fault with its times relative to its start."""
    return {
        "kind": str(fault.kind),
        "began": fault.began,
        "outage_s": fault.ended - fault.began,
        "ready_s": None if fault.ready is None else fault.ready - fault.ended,
        "ready_pv_s": None if fault.ready_pv is None else fault.ready_pv - fault.ended,
        "verdicts": {
            face: {check: asdict(v) for check, v in verdicts.items()}
            for face, verdicts in fault.verdicts.items()
        },
    }


def _verdict(verdicts: dict[str, Any] | None, check: str) -> str:
    if not verdicts:
        return "–"
    found = verdicts[check]
    if not found["watched"]:
        return "–"
    worst = "–" if found["worst"] is None else f"{found['worst']:.1f}"
    failed = found["late"] + found["missing"] + found["early"]
    return f"[red]{worst} ✗{failed}/{found['watched']}[/red]" if failed else worst


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def minutes_table(rows: list[dict[str, Any]]) -> Table:
    """Per minute: the fault, times to bad and good per face, writes, log lines."""
    table = Table(title="per minute: faults, writes, log", title_justify="left")
    columns = (
        "min",
        "fault",
        "ready s",
        "bad CA s",
        "bad UA s",
        "good CA s",
        "good UA s",
        "confirmed",
        "refused",
        "down",
        "unconf.",
        "late",
        "failed",
        "log lines",
        "warn+",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "fault" else "right")
    for row in rows:
        fault = row["fault"] or {}
        verdicts = fault.get("verdicts", {})
        writes = row["writes"]
        failed = f"[red]{writes['failed']}[/red]" if writes["failed"] else "0"
        table.add_row(
            str(row["minute"]),
            fault.get("kind", "–"),
            _s(fault.get("ready_s")),
            _verdict(verdicts.get("CA"), "bad"),
            _verdict(verdicts.get("OPC UA"), "bad"),
            _verdict(verdicts.get("CA"), "good"),
            _verdict(verdicts.get("OPC UA"), "good"),
            *(str(writes[o]) for o in ("confirmed", "refused", "down", "unconfirmed", "late")),
            failed,
            str(row["log_lines"]),
            str(row["log_warnings"]),
        )
    return table


def memory_table(rows: list[dict[str, Any]], growth: dict[str, Growth]) -> Table:
    """Per minute: RSS of every process at its end; then the growth after warm-up."""
    names = list(growth) or sorted({name for row in rows for name in row["rss_mib"]})
    table = Table(title="per minute: resident memory, MiB", title_justify="left")
    table.add_column("min", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(str(row["minute"]), *(_s(row["rss_mib"].get(name)) for name in names))
    table.add_row(
        "growth",
        *(f"{growth[n].percent:+.1f} %" if n in growth else "–" for n in names),
        style="bold",
    )
    return table


def checks_table(checks: list[Check]) -> Table:
    """Every check, passed or failed, with what it found."""
    table = Table(title="checks", title_justify="left")
    table.add_column("", justify="left")
    table.add_column("check", justify="left")
    table.add_column("found", justify="left", overflow="fold")
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
        table.add_row(mark, check.name, check.detail)
    return table


def show(
    console: Console, rows: list[dict[str, Any]], growth: dict[str, Growth], checks: list[Check]
) -> None:
    """Print the tables."""
    console.print(minutes_table(rows))
    console.print(memory_table(rows, growth))
    console.print(checks_table(checks))
