"""`icsbridge serve`: one event loop with the iCS client, its cache and the served views."""

from __future__ import annotations

from icsbridge import live_view
from icsbridge.ics.link import open_client
from icsbridge.ics.sim.topology import Topology


async def serve(
    url: str | None, user: str, password: str, topology: Topology, time_scale: float
) -> None:
    """Connect to `url`, or to an in-process simulator when it is None, and serve live."""
    async with open_client(url, user, password, topology, time_scale) as client:
        await client.subscribe_all()
        await live_view.run(client)
