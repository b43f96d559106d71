"""Monitor updates of item PVs, packed once and written straight to each client's socket.

caproto builds, checks and queues an EventAddResponse for every update and subscriber and
sends its queue with up to a second of added latency when busy (~60 µs of Python per
event). For the subscriptions clients almost always make (the PV's own type, plain, STS or
TIME, no channel filter) the bridge packs the DBR payload once per update, puts each
subscriber's 16-byte header in front and writes one buffer per client circuit per batch.
Other subscriptions take caproto's own path.

A client that stops reading is not fed without bound: once its socket holds more than
`BACKLOG` bytes it gets nothing until the socket drains, then the newest value of every
subscription that changed meanwhile, as EPICS monitor queues coalesce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from caproto import ChannelType, SubscriptionType

from icsbridge.core.freezer import Freezer
from icsbridge.logs import Throttle

if TYPE_CHECKING:
    from .pvs import ItemPV

log = logging.getLogger(__name__)

PUBLISH = int(SubscriptionType.DBE_VALUE | SubscriptionType.DBE_LOG | SubscriptionType.DBE_ALARM)
"""What an update from the iCS is: a new value, worth logging, maybe a new alarm."""

BACKLOG = 4 * 1024 * 1024
"""Bytes a client's socket may hold before it only gets the newest values."""

EPICS_EPOCH = 631_152_000
"""1990-01-01 in UNIX seconds."""

HEADER = struct.Struct(">HHHHII")
"""command, payload size, data type, data count, status, subscription id."""

EVENT_ADD = 1
ECA_NORMAL = 1

_PLAIN, _STS, _TIME = 0, 7, 14
"""Offsets of the plain, STS and TIME families from a native CA type."""

_FORMATS = {
    ChannelType.DOUBLE: (">d", ">HH4xd", ">HHII4xd"),
    ChannelType.LONG: (">i4x", ">HHi", ">HHIIi"),
    ChannelType.ENUM: (">H6x", ">HHH2x", ">HHII2xH"),
    ChannelType.STRING: (">40s", ">HH40s4x", ">HHII40s4x"),
}
"""DBR layouts, padded to 8 bytes as on the wire, per native type and family."""


class Layout(NamedTuple):
    """How to pack one DBR type."""

    data_type: int
    native: int
    family: int
    packer: struct.Struct


LAYOUTS = {
    ChannelType(native + family).name: Layout(native + family, native, family, struct.Struct(fmt))
    for native, formats in _FORMATS.items()
    for family, fmt in zip((_PLAIN, _STS, _TIME), formats, strict=True)
}
"""Layouts by DBR type name, the key caproto's subscription specs carry."""


class Tap(NamedTuple):
    """A subscription spec served directly: its layout and its live subscriptions."""

    subs: deque[Any]
    """caproto's own list of the spec's subscriptions, kept current by caproto."""
    layout: Layout
    updates: bool
    """Whether the spec's mask asks for what the iCS sends: values and alarms."""


def fast(pv: ItemPV, spec: Any) -> bool:
    """Whether a subscription spec can take the direct path: own type family, no filter."""
    layout = LAYOUTS.get(spec.data_type_name)
    return (
        layout is not None
        and layout.native == pv.data_type  # type: ignore[attr-defined]
        and not any(spec.channel_filter)
    )


def stamp(time: float) -> tuple[int, int]:
    """EPICS seconds and nanoseconds of a UNIX time, to the microsecond (as caproto)."""
    seconds, micro = divmod(round(time * 1e6), 1_000_000)
    return seconds - EPICS_EPOCH, micro * 1000


def payload(pv: ItemPV, layout: Layout) -> bytes:
    """The PV's current value, alarm and time as a DBR payload."""
    value = pv.wire_value()
    if layout.family == _PLAIN:
        return layout.packer.pack(value)
    alarm = pv.alarm
    if layout.family == _STS:
        return layout.packer.pack(alarm.status, alarm.severity, value)
    return layout.packer.pack(alarm.status, alarm.severity, *stamp(pv.unix_time), value)


class Fanout:
    """Sends the monitor updates of item PVs to their subscribers' circuits in batches."""

    def __init__(self, subscriptions: dict[Any, deque[Any]]) -> None:
        self._subscriptions = subscriptions
        self._out: dict[Any, list[bytes]] = {}
        self._behind: dict[Any, dict[Any, tuple[Any, ItemPV]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.freezer = Freezer()
        """Takes the subscriptions out of garbage collection after each burst."""
        self.unpackable = Throttle(log)

    def subscribe(self, pv: ItemPV, spec: Any, sub: Any) -> None:
        """A new subscription: send it the current value now."""
        layout = LAYOUTS[spec.data_type_name]
        pv.taps[spec] = Tap(self._subscriptions[spec], layout, bool(spec.mask & PUBLISH))
        self._queue(sub, spec, pv, layout, payload(pv, layout))
        self.flush()
        self.freezer.soon()

    def post(self, pvs: Iterable[ItemPV]) -> None:
        """Queue the current values of these PVs for their subscribers (sent by `flush`).

        A value that does not pack is left out, counted in `unpackable`, and logged."""
        queue = self._queue
        for pv in pvs:
            for spec, (subs, layout, updates) in pv.taps.items():
                if updates and subs:
                    try:
                        data = payload(pv, layout)
                    except (struct.error, OverflowError, ValueError) as exc:
                        self.unpackable("%s: could not send its value: %s", pv.entry.pv, exc)
                        continue
                    for sub in subs:
                        queue(sub, spec, pv, layout, data)

    def _queue(self, sub: Any, spec: Any, pv: ItemPV, layout: Layout, data: bytes) -> None:
        circuit = sub.circuit
        if self._behind and circuit in self._behind:
            self._behind[circuit][sub] = (spec, pv)
            return
        if not circuit.events_on.is_set():  # the client asked for a pause: resend later
            waiting = circuit.subscriptions_to_resend.setdefault(spec, [])
            if sub not in waiting:
                waiting.append(sub)
            return
        header = HEADER.pack(
            EVENT_ADD, len(data), layout.data_type, 1, ECA_NORMAL, sub.subscriptionid
        )
        out = self._out.get(circuit)
        if out is None:
            out = self._out[circuit] = []
        out.append(header + data)

    def flush(self) -> None:
        """Write what `post` queued: one buffer per circuit."""
        out, self._out = self._out, {}
        for circuit, chunks in out.items():
            transport = circuit.client.writer.transport
            if transport.is_closing():
                continue
            transport.write(b"".join(chunks))
            if transport.get_write_buffer_size() > BACKLOG:
                self._behind[circuit] = {}
                task = asyncio.create_task(self._catch_up(circuit), name="ca-catch-up")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, circuit: Any) -> None:
        """Wait until a slow client's socket drains, then send it the newest values."""
        try:
            await circuit.client.writer.drain()
        except (ConnectionError, OSError):
            self._behind.pop(circuit, None)
            return
        pending = self._behind.pop(circuit, {})
        log.info("client %s caught up; sending %d newest values", circuit, len(pending))
        for sub, (spec, pv) in pending.items():
            tap = pv.taps.get(spec)
            if tap is not None and sub in tap.subs:
                self._queue(sub, spec, pv, tap.layout, payload(pv, tap.layout))
        self.flush()

    async def close(self) -> None:
        """Stop waiting for slow clients."""
        self.freezer.cancel()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
