"""Attributes shared by the nodes of one kind: read as one node's own, written for one only."""

from __future__ import annotations

from asyncua import ua
from asyncua.server.address_space import AttributeValue
from asyncua.ua import AttributeIds

from icsbridge.opcua.attributes import Attributes, Shared


def text(value: str) -> ua.DataValue:
    return ua.DataValue(ua.Variant(ua.LocalizedText(value)))


def kind() -> dict[AttributeIds, Shared]:
    return {
        AttributeIds.DisplayName: Shared(text("Status.voltageMeasure")),
        AttributeIds.Description: Shared(text("measured voltage")),
    }


def node(ident: str, shared: dict[AttributeIds, Shared]) -> Attributes:
    node_id = AttributeValue(ua.DataValue(ua.Variant(ua.NodeId(ident, 2))))
    return Attributes(node_id, AttributeValue(ua.DataValue(ua.Variant(1.5))), shared)


def test_a_node_reads_its_own_and_the_shared_attributes_as_one_mapping() -> None:
    shared = kind()
    one = node("0.0.0.Status.voltageMeasure", shared)
    assert list(one) == [
        AttributeIds.NodeId,
        AttributeIds.DisplayName,
        AttributeIds.Description,
        AttributeIds.Value,
    ]
    assert len(one) == 4
    assert one[AttributeIds.Value].value.Value.Value == 1.5
    assert one[int(AttributeIds.DisplayName)] is shared[AttributeIds.DisplayName]  # wire ids
    assert AttributeIds.Description in one and AttributeIds.DataType not in one
    assert one.get(AttributeIds.DataType) is None


def test_an_attribute_set_on_one_node_leaves_the_others_alone() -> None:
    shared = kind()
    one, other = node("0.0.0.X", shared), node("0.0.1.X", shared)
    renamed = AttributeValue(text("HV 0"))
    one[AttributeIds.DisplayName] = renamed
    one[AttributeIds.Value] = AttributeValue(ua.DataValue(ua.Variant(2.0)))
    assert one[AttributeIds.DisplayName] is renamed
    assert other[AttributeIds.DisplayName] is shared[AttributeIds.DisplayName]
    assert one[AttributeIds.Value].value.Value.Value == 2.0
    assert other[AttributeIds.Value].value.Value.Value == 1.5
    assert list(one).count(AttributeIds.DisplayName) == 1 and len(one) == 4
