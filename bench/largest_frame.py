"""The largest frame an iCS sends a bridge subscribing to everything: what sizes the limit
`IcsClient` puts on frames (`max_frame`).

    python bench/largest_frame.py [--items 100000] [--json results.json]

Serves a uniform simulated topology of about ITEMS items, logs in over a WebSocket as the
bridge does, asks for every readable item with wildcard paths (100 getItem packets a frame)
and measures every frame that answers, then a second of pushes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from e2e.items import topology_for
from saving import save
from websockets.asyncio.client import connect

from icsbridge.catalog import catalog
from icsbridge.ics import protocol
from icsbridge.ics.client import everything
from icsbridge.ics.protocol import Login
from icsbridge.ics.sim import QUIET, Simulator, Topology


async def measure(items: int) -> dict[str, float]:
    """Sizes of the frames answering a subscription to everything, and of a second of pushes."""
    modules, channels = topology_for(items)
    simulator = Simulator(Topology.uniform(modules, channels), noise=QUIET)
    async with simulator.serve("127.0.0.1", 0), connect(simulator.url, max_size=None) as ws:
        await ws.send(protocol.encode(Login("admin", "password")))
        session = json.loads(await ws.recv())["i"]
        frames = list(protocol.request_frames(session, everything_packets()))
        for frame in frames:
            await ws.send(frame)
        sizes, records = [], 0
        while len(sizes) < len(frames):
            text = await ws.recv()
            sizes.append(len(text.encode()))
            records += sum(len(m.records) for m in protocol.parse_server_frame(text)
                           if isinstance(m, protocol.ItemRecords))  # fmt: skip
        simulator.churn = 50_000
        pushed, end = [], time.monotonic() + 1.0
        while time.monotonic() < end:
            pushed.append(len((await ws.recv()).encode()))
    return {
        "items": records,
        "frames": len(sizes),
        "largest_frame_bytes": max(sizes),
        "all_frames_bytes": sum(sizes),
        "largest_push_bytes": max(pushed, default=0),
    }


def everything_packets() -> list[protocol.Packet]:
    """The getItem packets of a subscription to every readable item."""
    return [protocol.Packet(protocol.Command.GET_ITEM, s, i) for s, i in everything(catalog())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = asyncio.run(measure(args.items))
    for name, value in result.items():
        print(f"{name:>22}: {value:,}")
    save(result, args.json)


if __name__ == "__main__":
    main()
