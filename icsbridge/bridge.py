"""`icsbridge serve`: one event loop with the iCS client, its cache, CA and OPC UA servers."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from pathlib import Path

from icsbridge import live_view
from icsbridge.core.freezer import collect_rarely
from icsbridge.core.writes import Writer
from icsbridge.epics.server import CaServer
from icsbridge.ics.client import MAX_FRAME
from icsbridge.ics.link import open_client
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping import document
from icsbridge.mapping.discover import discover
from icsbridge.mapping.generate import mapping_of
from icsbridge.opcua.process import DEFAULT_ENDPOINT, ChildEnded, UaProcess

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Options:
    """How `icsbridge serve` was asked to run."""

    url: str | None
    user: str
    password: str
    topology: Topology | None = None
    time_scale: float = 1.0
    mapping: Path | None = None
    read_only: bool = False
    list_pvs: bool = False
    live: bool = False
    write_timeout: float = 10.0
    heartbeat: float = 10.0
    max_frame: int = MAX_FRAME
    opcua_endpoint: str | None = DEFAULT_ENDPOINT
    users: Path | None = None
    opcua_state: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    anonymous: bool = True
    verbose: int = 0


async def serve(options: Options) -> int:
    """Connect to the iCS (or a simulator in this process) and serve its items until stopped.

    Returns the exit code: 1 when the OPC UA process ended on its own.
    """
    async with open_client(
        options.url,
        options.user,
        options.password,
        options.topology,
        options.time_scale,
        heartbeat=options.heartbeat,
        max_frame=options.max_frame,
    ) as client:
        if options.mapping is not None:
            mapping = document.load(options.mapping)
            await client.subscribe_all()
        else:
            log.info("no mapping given: discovering %s", client.url)
            mapping = mapping_of(options.url or "simulator", await discover(client))
        entries = {entry.key: entry for entry in mapping.items}
        client.cache.admit(entries)  # what the iCS sends of anything else is not kept
        writer = Writer(client, entries, read_only=options.read_only, timeout=options.write_timeout)
        health = f"{mapping.naming.effective_prefix}Bridge:"
        ca = CaServer(client, mapping, writer, health_prefix=health)
        gc.freeze()  # the mapping and PVs live as long as the bridge: no collection scans them
        collect_rarely()
        faces = [ca.run(list_pvs=options.list_pvs)]
        if options.opcua_endpoint is not None:
            security = {
                "state_dir": options.opcua_state,
                "users_file": options.users,
                "certificate": options.certificate,
                "private_key": options.private_key,
                "allow_anonymous": options.anonymous,
            }
            settings = {
                "endpoint": options.opcua_endpoint,
                "security": security,
                "verbose": options.verbose,
            }
            faces.append(UaProcess(client, mapping, writer, settings).run())
        if options.live:
            faces.append(live_view.run(client))
        try:
            await asyncio.gather(*faces)
        except ChildEnded as exc:
            log.error("%s: the bridge stops", exc)
            return 1
    return 0
