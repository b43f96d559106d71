"""The simulated iCS for the bench, in a process of its own, its load set through stdin.

    python bench/e2e/sim_driver.py MODULES CHANNELS READINGS

A quiet uniform topology (no noise: only churn moves values) on a free port of 127.0.0.1;
churn moves every channel reading (READINGS 0), or the first READINGS of them.
Prints `{"url": ...}` once listening, then answers each command line with one JSON line:

- `churn RATE`: push RATE channel readings per second from now on -> `churned`, `time`.
- `count` -> `churned` (readings churn has sent so far) and `time` (time.time()).
- `values KEY...`: current values of items `line.address.channel.Group.item`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from icsbridge.ics.sim import QUIET, Simulator, Topology
from icsbridge.model import ItemKey


def key_of(text: str) -> ItemKey:
    """An item key from its `line.address.channel.Group.item` form."""
    line, address, channel, item = text.split(".", 3)
    return ItemKey(int(line), int(address), int(channel), item)


def answer(simulator: Simulator, line: str) -> dict[str, object]:
    """The answer to one command line."""
    command, *args = line.split()
    match command:
        case "churn":
            simulator.churn = float(args[0])
        case "count":
            pass
        case "values":
            return {key: simulator.model.value(key_of(key)) for key in args}
        case _:
            return {"error": f"unknown command {command!r}"}
    return {"churned": simulator.churned, "time": time.time()}


async def serve(modules: int, channels: int, readings: int) -> None:
    simulator = Simulator(Topology.uniform(modules, channels), noise=QUIET)
    if readings:
        simulator.model.limit_churn(readings)
    async with simulator.serve("127.0.0.1", 0):
        print(json.dumps({"url": simulator.url}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip():
                print(json.dumps(answer(simulator, line)), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(*map(int, sys.argv[1:4])))
