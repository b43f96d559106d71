"""The fast address-space build gives exactly what asyncua's AddNodes service gives."""

from __future__ import annotations

from pathlib import Path

from asyncua import ua
from asyncua.server.server import Server

from icsbridge.mapping import document
from icsbridge.opcua.space import build

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"


def dump(server: Server, ns: int) -> dict[str, tuple[object, object]]:
    """Every node of the namespace: attributes (values, not time stamps) and references."""
    out = {}
    for node, data in server.iserver.aspace._nodes.items():
        if node.NamespaceIndex != ns:
            continue
        attributes = {
            attribute.name: (value.value.Value.Value, value.value.Value.VariantType)
            for attribute, value in data.attributes.items()
        }
        references = sorted(
            (
                ref.ReferenceTypeId.to_string(),
                ref.IsForward,
                ref.NodeId.to_string(),
                int(ref.NodeClass),
                ref.BrowseName.to_string(),
                ref.DisplayName.Text,
                ref.TypeDefinition.to_string(),
            )
            for ref in data.references
        )
        out[node.to_string()] = (attributes, references)
    return out


async def test_the_fast_build_equals_the_service_build() -> None:
    mapping = document.load(MAPPING)
    fast, reference = Server(), Server()
    await fast.init()
    await reference.init()
    fast_space = await build(fast, mapping)
    reference_space = await build(reference, mapping, via_service=True)
    assert fast_space.ns == reference_space.ns
    built = dump(fast, fast_space.ns)
    assert len(built) > 2 * len(mapping.items)  # items, most with properties
    expected = dump(reference, reference_space.ns)
    assert built.keys() == expected.keys()
    different = [node for node in built if built[node] != expected[node]]
    assert not different, (different[:3], built[different[0]], expected[different[0]])
    assert ua.NodeId("0.3.5.Status.voltageMeasure.EURange", fast_space.ns) in (
        fast.iserver.aspace._nodes
    )
