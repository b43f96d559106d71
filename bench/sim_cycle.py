"""Milliseconds one physics cycle of the simulator takes, idle and with every channel ramping.

    python bench/sim_cycle.py [--modules 64] [--channels 16] [--cycles 9] [--json results.json]

A uniform topology; each cycle is `advance` plus draining the changes it made, as the
simulated iCS does once per `Setup.cycleTime`. Prints the median and the slowest cycle.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from saving import save

from icsbridge.ics.protocol import Selector
from icsbridge.ics.sim import SimModel, Topology
from icsbridge.model import ItemKey


def cycles(model: SimModel, count: int, first: int) -> list[float]:
    """Seconds each of `count` cycles took, from simulated second `first` on."""
    spans = []
    for second in range(first, first + count):
        began = time.perf_counter()
        model.advance(float(second))
        model.drain_changes()
        spans.append(time.perf_counter() - began)
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=9)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    model = SimModel(Topology.uniform(args.modules, args.channels))
    idle = cycles(model, args.cycles, 1)
    model.write(Selector(0, "*", "*"), "Control.voltageSet", "3", "kV")
    model.write(Selector(0, "*", "*"), "Control.on", "1", "")
    ramping = cycles(model, args.cycles, 1 + args.cycles)
    last = ItemKey(0, args.modules - 1, args.channels - 1, "Status.ramping")
    result = {
        "modules": args.modules,
        "channels": args.channels,
        "still_ramping": model.value(last),
        "idle_ms": [span * 1000 for span in idle],
        "ramping_ms": [span * 1000 for span in ramping],
        "load_average_1min": os.getloadavg()[0],
    }
    for name, spans in (("idle", idle), ("all ramping", ramping)):
        print(
            f"{args.modules} × {args.channels} channels, {name}: one cycle "
            f"{statistics.median(spans) * 1000:.1f} ms (slowest {max(spans) * 1000:.1f} ms)"
        )
    print(
        f"still ramping at the end: {result['still_ramping']}; "
        f"load average {result['load_average_1min']:.2f}"
    )
    save(result, args.json)


if __name__ == "__main__":
    main()
