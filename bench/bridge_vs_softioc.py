"""The bridge end to end against a real EPICS softIoc, at growing sizes and loads.

    python bench/bridge_vs_softioc.py [--items 1000,10000,100000]
        [--loads 2000,10000,20000,50000,100000,250000] [--window 5] [--settle 1.5] [--json PATH]
    python bench/bridge_vs_softioc.py --quick        (a smoke run in well under a minute)

Per size: a simulated iCS of about N items, `icsbridge discover`, `icsbridge serve` (CA and
OPC UA), a libca and a node-opcua client subscribed to every item, then simulator churn
stepped through the loads; the same CA figures for a softIoc with as many records and the
same rates. Everything runs on 127.0.0.1; see bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from e2e.clients import ensure_node_opcua
from e2e.report import machine, show, summary, write_json
from e2e.sizes import measure_size
from e2e.steps import PUBLISHING, Timing
from rich.console import Console

RESULTS = Path(__file__).resolve().parent / "results"
WIDTH = 160
"""Columns of the tables when the output is not a terminal (a file, a pipe)."""
QUICK = {"items": "1000", "loads": "2000,10000", "window": 2.0, "settle": 1.0}


def numbers(text: str) -> list[int]:
    """A comma-separated list of numbers, `k` allowed for thousands (e.g. 2k,10000)."""
    return [int(float(part.lower().removesuffix("k")) * (1000 if "k" in part.lower() else 1))
            for part in text.split(",") if part]  # fmt: skip


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="1000,10000,100000", help="sizes, comma-separated")
    parser.add_argument(
        "--loads", default="2000,10000,20000,50000,100000,250000", help="changes/s, comma-separated"
    )
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per load")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before each window")
    parser.add_argument(
        "--ua-publishing",
        type=float,
        default=PUBLISHING,
        help="OPC UA publishing interval, ms (short, so latency shows the bridge)",
    )
    parser.add_argument(
        "--churned",
        type=int,
        help="channel readings the load moves (default: all, 4 per channel)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: " + str(QUICK))
    parser.add_argument("--json", type=Path, help="result file (default bench/results/...)")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # children are killed at exit
    args = arguments()
    console = Console()
    if not console.is_terminal:
        console.width = WIDTH
    began = time.monotonic()
    meta: dict[str, Any] = {
        "machine": machine(),
        "options": {k: str(v) for k, v in vars(args).items()},
    }
    console.print(summary(meta["machine"]))
    if problem := ensure_node_opcua():
        console.print(f"[red]no OPC UA client:[/red] {problem}")
    loads = [float(rate) for rate in numbers(args.loads)]
    timing = Timing(settle=args.settle, window=args.window, publishing=args.ua_publishing)
    console.print(
        f"OPC UA client publishing every {timing.publishing:g} ms: UA latency includes the "
        "wait for the next publish"
    )
    sizes = []
    for requested in numbers(args.items):
        console.rule(f"about {requested:,} items")
        size = measure_size(requested, loads, timing, args.churned)
        sizes.append(size)
        show(console, size)
    meta["duration_seconds"] = time.monotonic() - began
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.json or RESULTS / f"bridge_vs_softioc-{stamp}.json"
    write_json(path, sizes, meta)
    console.print(f"{meta['duration_seconds']:.0f} s; every figure in {path}")


if __name__ == "__main__":
    main()
