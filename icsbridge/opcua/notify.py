"""A new item value handed to asyncua's subscriptions without a coroutine per monitored item.

asyncua notifies a monitored item through two awaited coroutines per change and deep-copies
the value for each; the bridge publishes one immutable `SharedValue` and, for the monitored
items clients almost always make (no filter, enabled, publishing on a timer), does what
asyncua's `MonitoredItemService.datachange_callback` does, in place: remember the value,
skip it if status and value did not change, queue the notification within the item's queue
size (dropping the oldest). Every other monitored item takes asyncua's own coroutine.
This reads asyncua's private state: asyncua is pinned, and tests cover both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.server.monitored_item_service import MonitoredItemService

Callback = Callable[[int, ua.DataValue], Awaitable[None]]
_DATACHANGE = MonitoredItemService.datachange_callback
_TRIGGER = ua.DataChangeTrigger.StatusValue


class SharedValue(ua.DataValue):
    """A DataValue every subscription keeps as is: asyncua deep-copies each one otherwise.

    Never changed once published, so sharing it is safe.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, object]) -> SharedValue:
        return self


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
    values.set_current_datavalue(value)
    if not service._is_data_changed(values, _TRIGGER):
        return True
    mid = service._monitored_datachange[handle]
    queue = isub._triggered_datachanges.get(mid)
    if queue is None:
        queue = isub._triggered_datachanges[mid] = []
    elif item.queue_size and len(queue) >= item.queue_size:
        del queue[0]
    queue.append(ua.MonitoredItemNotification(ClientHandle=item.client_handle, Value=value))
    return True
