"""`icsbridge serve`: one event loop with the iCS client, its cache and the served views."""

from __future__ import annotations

import contextlib

from icsbridge import live_view
from icsbridge.ics.client import IcsClient
from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology


async def serve(
    url: str | None, user: str, password: str, topology: Topology, time_scale: float
) -> None:
    """Connect to `url`, or to an in-process simulator when it is None, and serve live."""
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            sim = Simulator(topology, time_scale=time_scale, users={user: password})
            url = (await stack.enter_async_context(sim.serve("127.0.0.1", 0))).url
        client = await stack.enter_async_context(IcsClient(url, user, password))
        await client.subscribe_all()
        await live_view.run(client)
