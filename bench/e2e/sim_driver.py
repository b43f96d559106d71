"""The simulated iCS for the bench, in a process of its own, its load set through stdin.

    python bench/e2e/sim_driver.py MODULES CHANNELS READINGS

A quiet uniform topology (no noise: only churn moves values) on a free port of 127.0.0.1;
churn moves every channel reading (READINGS 0), or the first READINGS of them.
Prints `{"url": ...}` once listening, then answers each command line with one JSON line:

- `churn RATE`: push RATE channel readings per second from now on -> `churned`, `time`.
- `count` -> `churned` (readings churn has sent so far) and `time` (time.time()).
- `values KEY...`: current values of items `line.address.channel.Group.item`.
- `drop`: abort every connection at once, like a pulled cable -> `churned`, `time`.
- `silent on|off`: send nothing at all (sockets stay open), or talk again -> `churned`, `time`.
- `received`: the setItems received since the last `received` -> `set_items`, each with
  `time`, `key`, `value`, `unit` and `applied` (its session was valid, so the model took it).

The simulator keeps only setItems of what it receives (`SetItems`), so a long run does not
grow its record; SIGSTOP and SIGCONT of this process stop and resume it as a whole.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from icsbridge.ics.protocol import ClientMessage, Command, Request
from icsbridge.ics.sim import QUIET, Simulator, Topology
from icsbridge.model import ItemKey


def key_of(text: str) -> ItemKey:
    """An item key from its `line.address.channel.Group.item` form."""
    line, address, channel, item = text.split(".", 3)
    return ItemKey(int(line), int(address), int(channel), item)


class SetItems(list[ClientMessage]):
    """The simulator's record of received messages, keeping only setItems, as plain records
    with their arrival time and whether their session was valid (so the model applied them)."""

    def __init__(self, simulator: Simulator) -> None:
        super().__init__()
        self.simulator = simulator
        self.writes: list[dict[str, object]] = []

    def append(self, message: ClientMessage) -> None:
        """Record the setItems of one received message."""
        if not isinstance(message, Request):
            return
        applied = self.simulator.service.find(message.session) is not None
        for packet in message.packets:
            if packet.command is Command.SET_ITEM:
                line, address, channel = packet.selector
                self.writes.append(
                    {
                        "time": time.time(),
                        "key": f"{line}.{address}.{channel}.{packet.item}",
                        "value": packet.value,
                        "unit": packet.unit,
                        "applied": applied,
                    }
                )

    def drain(self) -> list[dict[str, object]]:
        """The setItems recorded since the last drain."""
        writes, self.writes = self.writes, []
        return writes


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
        case "drop":
            simulator.faults.drop_all()
        case "silent":
            simulator.faults.silent = args[0] == "on"
        case "received":
            record = simulator.received
            return {"set_items": record.drain() if isinstance(record, SetItems) else []}
        case _:
            return {"error": f"unknown command {command!r}"}
    return {"churned": simulator.churned, "time": time.time()}


async def serve(modules: int, channels: int, readings: int) -> None:
    """Serve the simulator, answering commands from stdin until it closes."""
    simulator = Simulator(Topology.uniform(modules, channels), noise=QUIET)
    simulator.received = SetItems(simulator)
    if readings:
        simulator.model.limit_churn(readings)
    async with simulator.serve("127.0.0.1", 0):
        print(json.dumps({"url": simulator.url}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip():
                print(json.dumps(answer(simulator, line)), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(*map(int, sys.argv[1:4])))
