"""The Channel Access server: every mapped item as a PV, fed from the client's cache.

One task publishes for all PVs: the cache hands it each batch of updates and it publishes
them in order, to subscribed PVs only, so a monitor sees every step; when it falls far
behind it keeps only the newest value per item, as EPICS monitor queues do. Monitors go
out through `monitors.Fanout`, one socket write per client per batch. Link state changes
mark every PV INVALID/COMM, or clear that, in one pass.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterable, Sequence

import caproto
from caproto import ChannelData
from caproto.server.stats import StatusHelper

from icsbridge.core.rate import UpdateRate
from icsbridge.core.supervise import keep_running
from icsbridge.core.writes import Writer, WriteRefused
from icsbridge.ics.cache import Update, newest
from icsbridge.ics.client import IcsClient, IcsError, LinkState
from icsbridge.logs import Throttle
from icsbridge.mapping.document import Mapping
from icsbridge.model import ItemKey

from .context import BridgeContext
from .monitors import PUBLISH
from .pvs import ItemPV, ReadOnlyDouble, ReadOnlyEnum, ReadOnlyInteger, make_pv

log = logging.getLogger(__name__)

COALESCE_ABOVE = 50_000
"""Updates waiting beyond which the publisher skips to the newest value of each item."""

YIELD_EVERY = 2000
"""PVs published before the publisher sends what it has and lets other tasks run."""


class PeerTracebacks(logging.Filter):
    """caproto logs a traceback for some of what a CA client sends: every failed put, and
    alarm fields out of range in a put's metadata. The bridge logs its own refusals and
    failed writes once, in the write log, so those go; the others lose the traceback: a
    peer must not fill the log."""

    PREFIXES = ("Invalid write request", "Invalid alarm")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not str(record.msg).startswith(self.PREFIXES):
            return True
        if isinstance(error, WriteRefused | IcsError):
            return False
        record.exc_info, record.exc_text = None, None
        record.msg = f"{record.msg}: {type(error).__name__}: {error}"
        return True


PEER_TRACEBACKS = PeerTracebacks()
for _name in ("caproto.circ", "caproto"):  # circuits, and the DBR metadata of puts
    logging.getLogger(_name).addFilter(PEER_TRACEBACKS)


class _Health:
    """The bridge's own PVs, read-only: link state, age of the last frame, updates per
    second, writes reported unconfirmed and those of them the iCS applied late."""

    def __init__(self, prefix: str) -> None:
        states = [state.value for state in LinkState]
        self.link = ReadOnlyEnum(value=LinkState.LOST.value, enum_strings=states)
        self.frame_age = ReadOnlyDouble(value=0.0, units="s", precision=1)
        self.rate = ReadOnlyDouble(value=0.0, units="1/s", precision=0)
        self.unconfirmed = ReadOnlyInteger(value=0)
        self.late = ReadOnlyInteger(value=0)
        self.pvdb: dict[str, ChannelData] = {
            f"{prefix}LinkState": self.link,
            f"{prefix}FrameAge": self.frame_age,
            f"{prefix}UpdateRate": self.rate,
            f"{prefix}UnconfirmedWrites": self.unconfirmed,
            f"{prefix}LateWrites": self.late,
        }
        self.pvdb.update(StatusHelper(prefix=prefix).pvdb)


class CaServer:
    """The PVs of a mapping, kept current from `client` and written through `writer`."""

    def __init__(
        self, client: IcsClient, mapping: Mapping, writer: Writer, *, health_prefix: str
    ) -> None:
        self.client = client
        self.pvs: dict[ItemKey, ItemPV] = {}
        self.pvdb: dict[str, ChannelData] = {}
        for entry in mapping.items:
            if entry.disabled:
                continue
            pv = make_pv(entry, writer)
            self.pvs[entry.key] = pv
            for name in (entry.pv, *entry.aliases):
                self.pvdb[name] = pv
        self.item_names = list(self.pvdb)
        self.writer = writer
        self.health = _Health(health_prefix)
        self.pvdb.update(self.health.pvdb)
        self.rate = UpdateRate()
        self._pending: list[Sequence[Update]] = []
        self._backlog = 0
        self._link_changed = True
        self._wake = asyncio.Event()
        self.unappliable = Throttle(log)
        self.context: BridgeContext | None = None
        for update in client.cache.values():
            known = self.pvs.get(update.key)
            if known is not None:
                known.apply(update.value, update.time)

    def _take(self, updates: Sequence[Update]) -> None:
        self._pending.append(updates)
        self._backlog += len(updates)
        self.rate.count(updates)
        self._wake.set()

    def _link(self, state: LinkState) -> None:
        self._link_changed = True
        self._wake.set()

    async def _publish(self) -> None:
        """The one publisher: apply pending updates and link changes, notify subscribers."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._link_changed:
                self._link_changed = False
                up = self.client.state is LinkState.READY
                for pv in self.pvs.values():
                    pv.link(up)
                await self._notify(self.pvs.values())
                await self._update_health()
            batches, self._pending = self._pending, []
            if self._backlog > COALESCE_ABOVE:  # behind: only the newest value of each item
                batches = [newest(update for batch in batches for update in batch)]
            self._backlog = 0
            pvs = self.pvs
            for batch in batches:
                touched = []
                for update in batch:
                    target = pvs.get(update.key)
                    if target is not None:
                        try:
                            target.apply(update.value, update.time)
                        except Exception as exc:
                            self.unappliable("%s: value %.40r not taken: %s", target.entry.pv,
                                             update.value, exc)  # fmt: skip
                            continue
                        touched.append(target)
                await self._notify(touched)

    async def _notify(self, pvs: Iterable[ItemPV]) -> None:
        """Publish to the subscribers of these PVs, yielding to other tasks now and then."""
        if self.context is None:
            return
        fanout = self.context.fanout
        direct = []
        for count, pv in enumerate(pvs, 1):
            if pv.taps:
                direct.append(pv)
            if pv._queues:  # type: ignore[attr-defined]
                try:
                    await pv.publish(PUBLISH)  # type: ignore[attr-defined]
                except Exception as exc:
                    self.unappliable("%s: could not publish: %s", pv.entry.pv, exc)
            if count % YIELD_EVERY == 0:
                fanout.post(direct)
                fanout.flush()
                direct.clear()
                await asyncio.sleep(0)
        fanout.post(direct)
        fanout.flush()

    async def _update_health(self) -> None:
        loop = asyncio.get_running_loop()
        health = self.health
        await health.link.write(self.client.state.value)
        await health.frame_age.write(max(0.0, loop.time() - self.client.last_frame_time))
        await health.rate.write(self.rate.sample(loop.time()))
        await health.unconfirmed.write(self.writer.unconfirmed.count)
        await health.late.write(self.writer.unconfirmed.late)

    async def _health_loop(self, period: float = 1.0) -> None:
        while True:
            await self._update_health()
            await asyncio.sleep(period)

    async def run(self, *, list_pvs: bool = False) -> None:
        """Serve until cancelled, on the port and interfaces the EPICS environment names."""
        stop_updates = self.client.cache.subscribe(self._take)
        stop_states = self.client.on_state(self._link)
        context = self.context = BridgeContext(self.pvdb, caproto.get_server_address_list())
        port = os.environ.get("EPICS_CAS_SERVER_PORT")
        if port:
            context.ca_server_port = int(port)

        async def started(async_lib: object) -> None:
            log.info("serving %d PVs over Channel Access on port %d", len(self.pvs), context.port)
            if list_pvs:
                sys.stdout.write("".join(f"{name}\n" for name in self.item_names))
                sys.stdout.flush()

        tasks = [
            asyncio.create_task(
                keep_running(
                    self._publish,
                    "Channel Access publisher",
                    lambda: self._link(self.client.state),
                    log,
                ),
                name="ca-publish",
            ),
            asyncio.create_task(self._health_loop(), name="ca-health"),
        ]
        try:
            await context.run(startup_hook=started)
        finally:
            await context.fanout.close()
            stop_updates()
            stop_states()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
