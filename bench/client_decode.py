"""How many pushed item records per second the client decodes into its cache, on one core.

    python bench/client_decode.py [--channels 1024] [--frames 200] [--json results.json]

Builds `info` frames like a busy iCS sends (every channel's measured voltage and current
per cycle, one frame per cycle), then times parse + cache update over all of them.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from saving import save

from icsbridge.core.freezer import collect_rarely
from icsbridge.ics import protocol
from icsbridge.ics.cache import Cache
from icsbridge.ics.protocol import ItemRecord, ItemRecords
from icsbridge.model import ItemPath


def frames(channels: int, count: int, seed: int = 0) -> list[str]:
    """`count` info frames, each with two measured values for each of `channels` channels."""
    rng = random.Random(seed)
    paths = [ItemPath(0, module, channel) for module in range(64) for channel in range(16)]
    paths = paths[:channels]
    out = []
    for cycle in range(count):
        stamp = 1_700_000_000.0 + cycle
        records = []
        for path in paths:
            records.append(
                ItemRecord(
                    path, "Status.voltageMeasure", repr(round(rng.uniform(0, 3000), 3)), "V", stamp
                )
            )
            records.append(
                ItemRecord(path, "Status.currentMeasure", repr(rng.uniform(0, 1e-3)), "A", stamp)
            )
        out.append(protocol.encode(ItemRecords("5f0c3a9e12b7d-1", tuple(records)), array=True))
    return out


def measure(texts: list[str]) -> dict[str, float]:
    """Decode every frame into a fresh cache; return the rate and the totals."""
    cache = Cache()
    seen = 0

    def count(updates: object) -> None:
        nonlocal seen
        seen += len(updates)  # type: ignore[arg-type]

    cache.subscribe(count)
    start = time.process_time()
    for text in texts:
        for message in protocol.parse_server_frame(text):
            if isinstance(message, ItemRecords):
                cache.apply(message.records)
    cpu = time.process_time() - start
    return {"updates": seen, "cpu_seconds": cpu, "updates_per_second": seen / cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    texts = frames(args.channels, args.frames)
    collect_rarely()  # as the bridge does
    measure(texts[:5])  # warm up
    result = measure(texts) | {
        "channels": args.channels,
        "frames": args.frames,
        "load_average_1min": os.getloadavg()[0],
    }
    print(
        f"decoded {result['updates']:,} item updates in {result['cpu_seconds']:.2f} s CPU: "
        f"{result['updates_per_second']:,.0f} updates/s on one core "
        f"(load average {result['load_average_1min']:.2f})"
    )
    save(result, args.json)


if __name__ == "__main__":
    main()
