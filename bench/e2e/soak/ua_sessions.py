"""OPC UA sessions that keep coming and going: asyncua clients, all in one event loop.

    python -m e2e.soak.ua_sessions ENDPOINT NAMESPACE     (bench/ on the path)

Each session connects anonymously, monitors the Value of a random subset of the variables in
one subscription, stays a random while, then disconnects and starts again with another
subset. Any status but Good counts as bad (Uncertain too: the bridge's first word on a
silent iCS). One command per stdin line, one JSON answer each:

- `start COUNT SIZE_MIN SIZE_MAX LIFE_MIN LIFE_MAX IDS_FILE SEED`: run COUNT sessions on the
  node ids (strings in NAMESPACE) of IDS_FILE -> `started`.
- `open` / `judge FAULT BAD_LIMIT READY GOOD_LIMIT`: a fault window (e2e.soak.windows).
- `stats` -> `sessions`, `watching`, `events`, `refused` (monitored items), `errors`, `last_error`.
- `stop`: every session leaves -> `stopped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua

from .windows import Watch, Windows, judgement

PUBLISHING = 100
"""ms between a subscription's notifications: the resolution of the times to bad and good."""
TIMEOUT = 30.0
"""Seconds any one request or connection may take."""


class Handler:
    """Hands a session's notifications to its watches."""

    def __init__(self, sessions: UaSessions, watches: dict[ua.NodeId, Watch]) -> None:
        self.sessions = sessions
        self.watches = watches

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        """One notification of one monitored item."""
        watch = self.watches.get(node.nodeid)
        if watch is None:
            return
        self.sessions.events += 1
        status = data.monitored_item.Value.StatusCode
        bad = status is not None and not status.is_good()
        self.sessions.windows.see(watch, bad, time.time())


class UaSessions:
    """The sessions of one process and their watches."""

    def __init__(self, endpoint: str, namespace: str) -> None:
        self.endpoint = endpoint
        self.namespace = namespace
        self.windows = Windows()
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.sessions = self.events = self.refused = self.errors = self.watching = 0
        self.error = ""

    async def session(self, ids: list[str], life: float) -> None:
        """One session: connect, monitor `ids`, stay `life` seconds, leave."""
        client = Client(self.endpoint, timeout=TIMEOUT)
        watches: dict[ua.NodeId, Watch] = {}
        try:
            async with asyncio.timeout(TIMEOUT):
                await client.connect()
            self.sessions += 1
            ns = await client.get_namespace_index(self.namespace)
            nodes = [client.get_node(ua.NodeId(ident, ns)) for ident in ids]
            watches = {
                node.nodeid: self.windows.add(ident) for node, ident in zip(nodes, ids, strict=True)
            }
            self.watching += len(watches)
            subscription = await client.create_subscription(PUBLISHING, Handler(self, watches))
            handles = await subscription.subscribe_data_change(nodes)
            self.refused += sum(isinstance(handle, ua.StatusCode) for handle in handles)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(life):
                    await self.stopping.wait()
        except Exception as exc:
            self.errors += 1
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            await asyncio.sleep(1)
        finally:
            self.windows.leave(list(watches.values()), time.time())
            self.watching -= len(watches)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(TIMEOUT):
                    await client.disconnect()

    async def client(
        self, ids: list[str], sizes: tuple[int, int], lives: tuple[float, float], seed: int
    ) -> None:
        """Sessions one after the other until stopped."""
        rng = random.Random(seed)
        await asyncio.sleep(rng.uniform(0, 2))
        while not self.stopping.is_set():
            await self.session(rng.sample(ids, rng.randint(*sizes)), rng.uniform(*lives))

    def start(
        self, count: str, low: str, high: str, shortest: str, longest: str, path: str, seed: str
    ) -> dict[str, object]:
        """Start the sessions."""
        ids = Path(path).read_text("utf-8").split()
        sizes, lives = (int(low), int(high)), (float(shortest), float(longest))
        for index in range(int(count)):
            work = self.client(ids, sizes, lives, int(seed) * 1000 + index)
            self.tasks.append(asyncio.create_task(work))
        return {"started": int(count)}

    async def stop(self) -> dict[str, object]:
        """Make every session leave; how many ended."""
        self.stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT + 5):
                await asyncio.gather(*self.tasks, return_exceptions=True)
        return {"stopped": sum(task.done() for task in self.tasks)}

    async def run(self, line: str) -> dict[str, object]:
        """The answer to one command line."""
        command, *args = line.split()
        match command:
            case "start":
                return self.start(*args)
            case "open":
                self.windows.open(time.time())
                return {"time": time.time()}
            case "judge":
                return judgement(self.windows, args)
            case "stats":
                return {
                    "sessions": self.sessions,
                    "watching": self.watching,
                    "events": self.events,
                    "refused": self.refused,
                    "errors": self.errors,
                    "last_error": self.error,
                }
            case "stop":
                return await self.stop()
        raise ValueError(f"unknown command {command!r}")


async def main(endpoint: str, namespace: str) -> None:
    """Answer commands from stdin until it closes."""
    sessions = UaSessions(endpoint, namespace)
    print(json.dumps({"ready": True}), flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        if not line.strip():
            continue
        try:
            answer = await sessions.run(line)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    await sessions.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
