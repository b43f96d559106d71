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

import struct
from collections.abc import Awaitable, Callable
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.monitored_item_service import MonitoredItemService
from asyncua.ua.ua_binary import struct_to_binary, variant_to_binary
from asyncua.ua.uatypes import datetime_to_win_epoch

Callback = Callable[[int, ua.DataValue], Awaitable[None]]
_DATACHANGE = MonitoredItemService.datachange_callback

_FULL = b"\x0f"
"""DataValue encoding mask: value, status code, source and server timestamps."""
_STATUS_AND_TIMES = struct.Struct("<Iqq")
_COUNT = struct.Struct("<i")
_HANDLE = struct.Struct("<I")
_NO_DIAGNOSTICS = _COUNT.pack(0)
_DATA_CHANGE = ua.NodeId(ua.ObjectIds.DataChangeNotification_Encoding_DefaultBinary)


class SharedValue(ua.DataValue):
    """A DataValue every subscription keeps as is: asyncua deep-copies each one otherwise.

    Never changed once published, so sharing it, and its encoding, is safe.
    """

    _binary: bytes | None = None

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
        if (
            self.Value is None
            or status is None
            or source is None
            or server is None
            or self.SourcePicoseconds is not None
            or self.ServerPicoseconds is not None
        ):
            return struct_to_binary(self)
        return b"".join((
            _FULL,
            variant_to_binary(self.Value),
            _STATUS_AND_TIMES.pack(
                status.value, datetime_to_win_epoch(source), datetime_to_win_epoch(server)
            ),
        ))  # fmt: skip


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
    item = service._monitored_items.get(service._monitored_datachange.get(handle))
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
    mid = service._monitored_datachange[handle]
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
