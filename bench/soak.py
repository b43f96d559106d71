"""The chaos soak: the bridge under churn, its iCS link broken every minute, clients coming
and going, confirmed writes from both faces; memory, log and every write checked.

    python bench/soak.py                  # 60 minutes
    python bench/soak.py --minutes 4      # one fault of each kind

A simulated iCS of about 20k items churning 10k changes/s in its own process; `icsbridge
serve` with a 2 s heartbeat and a 3 s write timeout; 50 CA clients and 10 OPC UA sessions
monitoring random subsets and leaving again; writes over CA and OPC UA a few times a second.
Every minute after the first the link breaks: closed, silent, stopped, in turn. Prints a
table per minute and the checks, writes every figure as JSON and the bridge's log beside it,
and exits with status 1 if a check failed. See bench/README.md for the checks.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from e2e.children import ChildError
from e2e.report import machine, summary
from e2e.soak.bridge_log import BridgeLog
from e2e.soak.checks import all_checks, annotate
from e2e.soak.faults import Limits
from e2e.soak.report import minute_rows, recorded, show
from e2e.soak.system import Plan, System
from e2e.soak.timeline import Died, Timeline
from rich.console import Console
from saving import save

RESULTS = Path(__file__).resolve().parent / "results"
WIDTH = 160
"""Columns of the tables when the output is not a terminal."""
WARM_UP = 300.0
"""The longest warm-up, seconds: memory grows freely until then (or 10 % of the run)."""


def pair(kind: type[float] | type[int]) -> Any:
    """An argparse type: two numbers, comma-separated."""
    return lambda text: tuple(kind(part) for part in text.split(","))


def arguments() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--minutes", type=int, default=60, help="length of the run (faults from minute 1 on)")
    add("--items", type=int, default=20_000, help="about this many iCS items")
    add("--churn", type=float, default=10_000, help="changes/s the simulated iCS pushes")
    add("--heartbeat", type=float, default=2.0, help="the bridge's --heartbeat, s")
    add("--write-timeout", type=float, default=3.0, help="the bridge's --write-timeout, s")
    add("--ca-clients", type=int, default=50)
    add("--ca-processes", type=int, default=2, help="processes the CA clients share")
    add("--ca-pvs", type=pair(int), default=(20, 400), help="PVs a CA client monitors: MIN,MAX")
    add("--ca-life", type=pair(float), default=(15, 90), help="seconds a CA client stays")
    add("--ca-keep-every", type=int, default=5, help="every Nth CA client keeps its circuit")
    add("--ua-sessions", type=int, default=10)
    add("--ua-variables", type=pair(int), default=(20, 400), help="monitored per session")
    add("--ua-life", type=pair(float), default=(20, 120), help="seconds a session stays")
    add("--write-rate", type=float, default=2.0, help="writes/s per face")
    add("--invalid-every", type=int, default=10, help="every Nth write is out of its limits")
    add("--sample", type=float, default=5.0, help="seconds between memory samples")
    add("--warm-up", type=float, help="seconds (default: 10 %% of the run, at most 5 minutes)")
    add("--memory-limit", type=float, default=5.0, help="%% RSS growth allowed after warm-up")
    add("--log-limit", type=int, default=600, help="bridge log lines allowed in a minute")
    add("--seed", type=int, default=1)
    add("--json", type=Path, help="result file (default bench/results/soak-DATE.json)")
    return parser.parse_args()


def plan_of(args: argparse.Namespace) -> Plan:
    """What the soak runs, from the command line."""
    return Plan(
        items=args.items,
        churn=args.churn,
        heartbeat=args.heartbeat,
        write_timeout=args.write_timeout,
        ca_clients=args.ca_clients,
        ca_processes=args.ca_processes,
        ca_sizes=args.ca_pvs,
        ca_lives=args.ca_life,
        ca_keep_every=args.ca_keep_every,
        ua_sessions=args.ua_sessions,
        ua_sizes=args.ua_variables,
        ua_lives=args.ua_life,
        write_rate=args.write_rate,
        invalid_every=args.invalid_every,
        seed=args.seed,
    )


def soak(
    args: argparse.Namespace, log: BridgeLog, console: Console
) -> tuple[Timeline, dict[str, Any], str | None] | None:
    """Start everything, run the minutes, stop everything: the timeline, what the session
    processes say they did, and why the run ended early, if it did. None if nothing started."""
    plan = plan_of(args)
    died = None
    with tempfile.TemporaryDirectory(prefix="icsbridge-soak-") as folder:
        system = System(plan, Path(folder), log)
        try:
            system.start()
            console.print(
                f"{len(system.items.entries):,} items, churn {plan.churn:,.0f}/s; bridge log "
                f"{log.path}; {args.minutes} minutes from now"
            )
            timeline = Timeline(system, Limits(args.heartbeat), args.sample)
            try:
                timeline.run(args.minutes)
                timeline.finish(plan.write_timeout + 15)
            except (Died, ChildError) as exc:
                died = str(exc).splitlines()[0]
            return timeline, timeline.stats(), died
        except ChildError as exc:
            console.print(f"[red]could not start:[/red] {exc}")
            return None
        finally:
            system.stop()
            log.close()


def main() -> int:
    """Run the soak, print and save what it found; the exit status."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # children are killed at exit
    args = arguments()
    console = Console()
    if not console.is_terminal:
        console.width = WIDTH
    facts = machine()
    console.print(summary(facts))
    path = args.json or RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    log = BridgeLog(path.with_suffix(".log"))
    ran = soak(args, log, console)
    if ran is None:
        return 2
    timeline, stats, died = ran
    warm = args.warm_up if args.warm_up is not None else min(WARM_UP, 6.0 * args.minutes)
    end = timeline.began + 60 * args.minutes
    growth = timeline.memory.growth(timeline.began + warm, end, min(60.0, warm))
    annotate(timeline.writes, timeline.set_items, log)
    rows = minute_rows(timeline, args.minutes)
    checks = all_checks(
        timeline,
        growth,
        memory_limit=args.memory_limit,
        log_limit=args.log_limit,
        stats=stats,
        died=died,
    )
    show(console, rows, growth, checks)
    result = {
        "machine": facts,
        "options": {k: str(v) for k, v in vars(args).items()},
        "plan": asdict(plan_of(args)),
        "warm_up_s": warm,
        "clients": stats,
        "checks": [asdict(check) for check in checks],
    }
    save(result | recorded(timeline, rows, growth), str(path))
    failed = [check for check in checks if not check.ok]
    verdict = "[red]FAILED[/red]" if failed else "[green]passed[/green]"
    console.print(f"{verdict}: {len(checks) - len(failed)} of {len(checks)} checks; {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
