"""A simulated iCS in a thread and icsClientPython3 connections to it, for synchronous tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from icsbridge.compat.icsClientPython3 import connect, connection
from icsbridge.ics.sim.topology import Topology

from conftest import SimThread

FAST = {"heartbeat": 0.5, "write_timeout": 5.0, "reconnect": (0.02, 0.2)}
"""Client timing for tests: quick to notice a lost link and to reconnect."""


@contextlib.contextmanager
def simulator(topology: Topology | None = None) -> Iterator[SimThread]:
    """The default simulated iCS (or `topology`), serving from a thread of its own."""
    sim = SimThread(topology or Topology.default())
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def connected(sim: SimThread, name: str = "test", **options: Any) -> Iterator[connection]:
    """A connection to `sim`, disconnected afterwards."""
    made = connect(name, sim.url, "admin", "password", **{**FAST, **options})
    assert isinstance(made, connection)
    try:
        yield made
    finally:
        made.disconnect()


def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait for a condition that the synchronous API cannot announce, checking it often."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:g} s")
        time.sleep(0.005)
