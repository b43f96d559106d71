"""A new item value handed to asyncua's subscriptions without a coroutine per monitored item.

asyncua notifies a monitored item through two awaited coroutines per change and deep-copies
the value for each; the bridge publishes one immutable `SharedValue` and, for the monitored
items clients almost always make (no filter, enabled, publishing on a timer), does what
asyncua's `MonitoredItemService.datachange_callback` does, in place: remember the value,
skip it if status and value did not change, queue the notification within the item's queue
size (dropping the oldest). Every other monitored item takes asyncua's own coroutine.

asyncua then encodes each notification field by field through its generic dataclass
serializer, about a third of the OPC UA process's time under load. A client subscription's
data changes are encoded here instead (`encode_datachanges`): each value once, in bytes
equal to asyncua's, handed on as a ready-made extension object.
This reads asyncua's private state: asyncua is pinned, and tests cover both paths.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService
from asyncua.ua.ua_binary import struct_to_binary, variant_to_binary
from asyncua.ua.uatypes import datetime_to_win_epoch

Callback = Callable[[int, ua.DataValue], Awaitable[None]]
_DATACHANGE = MonitoredItemService.datachange_callback

_MASK = 0x0F
"""DataValue encoding mask: value, status code, source and server timestamps."""
_FULL = bytes((_MASK,))
_STATUS_AND_TIMES = struct.Struct("<Iqq")
_CODES = {
    ua.VariantType.Double: "d",
    ua.VariantType.Int32: "i",
    ua.VariantType.UInt32: "I",
    ua.VariantType.Boolean: "?",
}
_SCALARS = {kind: struct.Struct(f"<BB{code}Iqq") for kind, code in _CODES.items()}
"""A whole DataValue of a scalar of these types, in one pack: mask, type, value, status,
source and server times."""
_ALONE = {kind: struct.Struct(f"<{code}") for kind, code in _CODES.items()}
"""A scalar of these types alone, packed as in `_SCALARS`."""
_COUNT = struct.Struct("<i")
_HANDLE = struct.Struct("<I")
_NO_DIAGNOSTICS = _COUNT.pack(0)
_DATA_CHANGE = ua.NodeId(ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary)
_TO_1601 = 11_644_473_600
"""Seconds from 1601-01-01, where OPC UA times count from, to the UNIX epoch."""
_LAST_SECOND = 253_402_300_799.0
"""The UNIX time of 9999-12-31 23:59:59 UTC, from which on every OPC UA DateTime is the same
largest one (Part 6, 5.2.2.5)."""


def ticks(time: float) -> int:
    """The OPC UA DateTime (100 ns since 1601) of a UNIX time of 1970 or later, exactly as
    asyncua encodes `datetime.fromtimestamp(time, UTC)`: to the microsecond, half to even."""
    seconds = math.floor(time)
    return ((seconds + _TO_1601) * 1_000_000 + round((time - seconds) * 1e6)) * 10


def in_range(time: float) -> bool:
    """Whether a UNIX time is one that OPC UA and `ticks` carry: from 1970 to the last second
    of 9999 (not NaN, not infinite)."""
    return 0.0 <= time < _LAST_SECOND


def check_encodes(value: ua.Variant) -> None:
    """Raise what encoding the variant would raise (as `SharedValue.binary` or asyncua
    encode it), if anything: a value its type cannot hold."""
    alone = _ALONE.get(value.VariantType)
    if alone is not None and not value.is_array:
        alone.pack(value.Value)
    else:
        variant_to_binary(value)


@dataclass(frozen=True, slots=True)
class Now:
    """The server time of a batch of values, as a datetime and in OPC UA ticks."""

    time: datetime
    ticks: int

    @classmethod
    def read(cls) -> Self:
        """The time now."""
        now = datetime.now(UTC)
        return cls(now, datetime_to_win_epoch(now))


_new = object.__new__


def variant(value: object, kind: ua.VariantType) -> ua.Variant:
    """`ua.Variant(value, kind)` of a scalar that is of `kind` already, in a third of the time:
    without the checks and guesses of the dataclass's `__post_init__`."""
    made = _new(ua.Variant)
    made.Value, made.VariantType, made.Dimensions, made.is_array = value, kind, None, False
    return made


class SharedValue(ua.DataValue):
    """A DataValue every subscription keeps as is: asyncua deep-copies each one otherwise.

    Never changed once published, so sharing it, and its encoding, is safe.
    """

    _binary: bytes | None = None
    _times: tuple[float, int] | None = None
    """The UNIX source time and server ticks of a value `stamped` made."""

    @classmethod
    def stamped(
        cls, value: ua.Variant, status: ua.StatusCode, source: float | None, now: Now
    ) -> SharedValue:
        """A value with its status and times, made without the dataclass's `__init__`, for a
        fifth of the time. A source time that is None, or not `in_range`, becomes the server
        time `now`: OPC UA has no DateTime for it."""
        made: Any = _new(cls)  # its fields set as the dataclass would set them
        made.Encoding, made.Value, made.StatusCode = 0, value, status
        made.SourcePicoseconds = made.ServerPicoseconds = None
        made.ServerTimestamp = now.time
        if source is None or not in_range(source):
            made.SourceTimestamp = now.time
        else:
            made.SourceTimestamp = datetime.fromtimestamp(source, UTC)
            made._times = source, now.ticks
        return made  # type: ignore[no-any-return]

    def __deepcopy__(self, memo: dict[int, object]) -> SharedValue:
        return self

    @property
    def binary(self) -> bytes:
        """The value's OPC UA binary encoding, as asyncua's `struct_to_binary` gives it;
        made on first use and kept (without `functools.cached_property`, which takes a
        lock on every first use in Python 3.11)."""
        if self._binary is None:
            self._binary = self._encode()
        return self._binary

    def _encode(self) -> bytes:
        status, source, server = self.StatusCode, self.SourceTimestamp, self.ServerTimestamp
        value = self.Value
        if (
            value is None
            or status is None
            or source is None
            or server is None
            or self.SourcePicoseconds is not None
            or self.ServerPicoseconds is not None
        ):
            return struct_to_binary(self)
        if self._times is None:
            source_ticks, server_ticks = (
                datetime_to_win_epoch(source),
                datetime_to_win_epoch(server),
            )
        else:
            source_time, server_ticks = self._times
            source_ticks = ticks(source_time)
        scalar = _SCALARS.get(value.VariantType)
        if scalar is not None and not value.is_array:
            return scalar.pack(
                _MASK,
                value.VariantType.value,
                value.Value,
                status.value,
                source_ticks,
                server_ticks,
            )
        times = _STATUS_AND_TIMES.pack(status.value, source_ticks, server_ticks)
        return b"".join((_FULL, variant_to_binary(value), times))


def set_value(attribute: AttributeValue, value: SharedValue) -> list[tuple[Callback, int]]:
    """Set a variable's value and notify its monitored items.

    Returns the (callback, handle) pairs left to await: those asyncua must handle itself.
    The item's variant type is right by construction, so asyncua's type check is skipped.
    """
    attribute.value = value
    attribute.value_callback = None
    return [
        (callback, handle)
        for handle, callback in attribute.datachange_callbacks.items()
        if not _notify(callback, handle, value)
    ]


def _notify(callback: Any, handle: int, value: SharedValue) -> bool:
    """Queue the change for one plain monitored item; False where asyncua must do it."""
    service = getattr(callback, "__self__", None)
    if getattr(callback, "__func__", None) is not _DATACHANGE or service is None:
        return False
    mid = service._monitored_datachange.get(handle)
    item = service._monitored_items.get(mid)
    isub = service.isub
    if (
        item is None
        or item.filter
        or (isub._task is None and isub.data.RevisedPublishingInterval <= 0)
    ):
        return False  # filters, and subscriptions that publish on every change
    if item.mode == ua.MonitoringMode.Disabled:
        return True
    values = item.mvalue
    old = values.current_dvalue
    values.old_dvalue, values.current_dvalue = old, value  # a SharedValue is its own copy
    if old is not None and old.StatusCode == value.StatusCode and old.Value == value.Value:
        return True  # what asyncua's StatusValue trigger passes over
    queue = isub._triggered_datachanges.get(mid)
    if queue is None:
        queue = isub._triggered_datachanges[mid] = []
    elif item.queue_size and len(queue) >= item.queue_size:
        del queue[0]
    queue.append(ua.MonitoredItemNotification(ClientHandle=item.client_handle, Value=value))
    return True


def encode_datachanges(subscription: InternalSubscription, result: ua.PublishResult) -> None:
    """asyncua's `InternalSubscription._pop_triggered_datachanges`, with the notification
    encoded here: the queued data changes go into `result` as one DataChangeNotification
    extension object, and the queue is cleared."""
    queued = subscription._triggered_datachanges
    if not queued:
        return
    subscription._triggered_datachanges = {}
    handle = _HANDLE.pack
    parts = [b""]
    count = 0
    for notifications in queued.values():
        count += len(notifications)
        for notification in notifications:
            value = notification.Value
            parts.append(handle(notification.ClientHandle))
            parts.append(value.binary if type(value) is SharedValue else struct_to_binary(value))
    parts[0] = _COUNT.pack(count)
    parts.append(_NO_DIAGNOSTICS)
    body = b"".join(parts)
    result.NotificationMessage.NotificationData.append(
        ua.ExtensionObject(TypeId=_DATA_CHANGE, Body=body)
    )
