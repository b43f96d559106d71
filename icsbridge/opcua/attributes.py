"""Node attributes that many nodes share: one object for every instance of an item's kind.

Of an item variable's fifteen attributes only NodeId and Value are its own; the rest
(names, data type, access, ...) are the same on every instance of the item, and so are the
values of its properties. Each is one `Shared` object, and a node's `Attributes` hold its
own two beside a reference to the shared ones: about 80 bytes a node instead of a
dictionary of fifteen entries. An admin may still write one node's attribute: `own` first
gives that node a copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from asyncua.server.address_space import AttributeValue
from asyncua.ua import AttributeIds


class Shared(AttributeValue):
    """An attribute value that many nodes hold: `own` gives a node its copy before a write."""


class Attributes(Mapping[AttributeIds, AttributeValue]):
    """A node's attributes, as asyncua's node store reads and sets them."""

    __slots__ = ("node_id", "own", "shared", "value")

    def __init__(
        self, node_id: AttributeValue, value: AttributeValue, shared: dict[AttributeIds, Any]
    ) -> None:
        self.node_id = node_id
        self.value = value
        self.shared = shared
        self.own: dict[AttributeIds, AttributeValue] | None = None

    def __getitem__(self, attribute: AttributeIds) -> AttributeValue:
        if attribute == AttributeIds.Value:
            return self.value
        if attribute == AttributeIds.NodeId:
            return self.node_id
        if self.own is not None and attribute in self.own:
            return self.own[attribute]
        return self.shared[attribute]  # type: ignore[no-any-return]

    def __setitem__(self, attribute: AttributeIds, value: AttributeValue) -> None:
        if attribute == AttributeIds.Value:
            self.value = value
        elif attribute == AttributeIds.NodeId:
            self.node_id = value
        else:
            if self.own is None:
                self.own = {}
            self.own[attribute] = value

    def __contains__(self, attribute: object) -> bool:
        return attribute in (AttributeIds.Value, AttributeIds.NodeId) or (
            attribute in self.shared or (self.own is not None and attribute in self.own)
        )

    def __iter__(self) -> Iterator[AttributeIds]:
        yield AttributeIds.NodeId
        yield from (a for a in self.shared if self.own is None or a not in self.own)
        if self.own is not None:
            yield from self.own
        yield AttributeIds.Value

    def __len__(self) -> int:
        return sum(1 for _ in self)


def own(aspace: Any, node: Any, attribute: AttributeIds) -> None:
    """Give a node its own copy of a shared attribute, with the node's monitors on it.

    Called before an admin writes that attribute, so the write changes that node only.
    """
    data = aspace.get(node)
    shared = None if data is None else data.attributes.get(attribute)
    if not isinstance(shared, Shared):
        return
    copy = AttributeValue(shared.value)
    for handle, (nodeid, attr) in aspace._handle_to_attribute_map.items():
        if nodeid == node and attr == attribute and handle in shared.datachange_callbacks:
            copy.datachange_callbacks[handle] = shared.datachange_callbacks.pop(handle)
    data.attributes[attribute] = copy
