"""A connected client, of a real iCS or of a simulator started in this process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from icsbridge.ics.client import IcsClient
from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology


@contextlib.asynccontextmanager
async def open_client(
    url: str | None,
    user: str,
    password: str,
    topology: Topology | None = None,
    time_scale: float = 1.0,
    **options: Any,
) -> AsyncIterator[IcsClient]:
    """A ready client of `url`, or of an in-process simulator of `topology` when url is None.

    `options` go to `IcsClient` (heartbeat, timeouts).
    """
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            sim = Simulator(topology, time_scale=time_scale, users={user: password})
            url = (await stack.enter_async_context(sim.serve("127.0.0.1", 0))).url
        yield await stack.enter_async_context(IcsClient(url, user, password, **options))
