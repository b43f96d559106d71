"""Fixtures shared by the suite: a simulated iCS on 127.0.0.1 and clients of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient
from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology
from icsbridge.model import ItemKey

TIME_SCALE = 50.0
"""Simulated seconds per wall-clock second in tests: a 1 s cycle takes 20 ms."""


@pytest.fixture
async def no_task_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    assert not leaked, f"tasks leaked: {leaked}"


@pytest.fixture
async def sim(no_task_leaks: None) -> AsyncIterator[Simulator]:
    """The default topology, served on a free port, running fast."""
    async with Simulator(Topology.default(), time_scale=TIME_SCALE).serve("127.0.0.1", 0) as s:
        yield s


def make_client(sim: Simulator, **options: object) -> IcsClient:
    """A client of the simulator with test-sized timing (heartbeat 0.1 s, quick reconnect)."""
    settings: dict[str, object] = {"heartbeat": 0.1, "write_timeout": 5.0, "reconnect": (0.02, 0.2)}
    settings.update(options)
    return IcsClient(sim.url, "admin", "password", **settings)  # type: ignore[arg-type]


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[IcsClient]:
    """A logged-in client of `sim`, subscribed to nothing yet."""
    async with make_client(sim) as c:
        yield c


async def wait_until(
    client: IcsClient, key: ItemKey, predicate: Callable[[object], bool], timeout: float = 10.0
) -> Update:
    """Wait for the first cached value of `key` that satisfies `predicate`; return it."""
    current = client.cache.get(key)
    if current is not None and predicate(current.value):
        return current
    found: asyncio.Future[Update] = asyncio.get_running_loop().create_future()

    def check(updates: object) -> None:
        for update in updates:  # type: ignore[attr-defined]
            if update.key == key and predicate(update.value) and not found.done():
                found.set_result(update)

    stop = client.cache.subscribe(check)
    try:
        async with asyncio.timeout(timeout):
            return await found
    finally:
        stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition that no event announces, checking it every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
