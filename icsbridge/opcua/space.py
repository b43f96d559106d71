"""The OPC UA address space of a mapping: typed crates, modules, channels and items.

Objects/iCS holds the system items and the crates; a crate its modules, a module its
channels; every object holds its items. CrateType, ModuleType and ChannelType declare the
items of their level (optional where module kind or options decide), so SCADA templates
can bind by type. Floats are AnalogItemType (EURange, EngineeringUnits), bools
TwoStateDiscreteType, items with states MultiStateDiscreteType (value = index into
EnumStrings), the rest BaseDataVariableType. NodeIds are the mapping's strings.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AttributeValue, NodeData
from asyncua.server.server import Server
from asyncua.ua import AttributeIds

from icsbridge.catalog import Catalog, ItemSpec, ModuleKind, ModuleOption, ValueType, catalog
from icsbridge.ics.values import Value
from icsbridge.mapping.build import objects
from icsbridge.mapping.document import ItemEntry, Mapping, ModuleEntry
from icsbridge.model import ItemKey, ItemPath, Level

from .attributes import Attributes, Shared
from .notify import variant
from .units import eu_information

ADMIN = User(role=UserRole.Admin)
I = ua.object_ids.ObjectIds  # noqa: E741
YIELD_EVERY = 20
"""Objects (of some 100 items each) built before the build lets other tasks run."""

TYPE_NAMES = {Level.CRATE: "CrateType", Level.MODULE: "ModuleType", Level.CHANNEL: "ChannelType"}


@dataclass(frozen=True, slots=True)
class Variable:
    """How one item appears in OPC UA: its node, type and value conversion."""

    node: ua.NodeId
    entry: ItemEntry
    variant: ua.VariantType
    codes: tuple[str, ...] = ()

    def to_ua(self, value: Value) -> ua.Variant:
        """The item's value as this node's variant."""
        if self.codes:
            wire = _wire(value)
            return variant(self.codes.index(wire) if wire in self.codes else 0, self.variant)
        return variant(value, self.variant)

    def from_ua(self, value: object) -> object:
        """A client's value as the item takes it (indices of enums become codes)."""
        if not self.codes:
            return value
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value < len(self.codes)
        ):
            raise TypeError(f"{value!r} is not a state index 0..{len(self.codes) - 1}")
        code = self.codes[value]
        if self.entry.type is ValueType.INT:
            return int(code)
        return code


def _wire(value: Value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _codes(entry: ItemEntry | ItemSpec) -> tuple[str, ...]:
    if entry.type is ValueType.BOOL or not entry.states:
        return ()
    codes = list(entry.states)
    if entry.type is ValueType.INT:
        codes.sort(key=int)
    return tuple(codes)


VARIANTS = {
    ValueType.FLOAT: ua.VariantType.Double,
    ValueType.BOOL: ua.VariantType.Boolean,
    ValueType.INT: ua.VariantType.Int32,
    ValueType.TEXT: ua.VariantType.String,
}
DATA_TYPES = {
    ua.VariantType.Double: I.Double,
    ua.VariantType.Boolean: I.Boolean,
    ua.VariantType.Int32: I.Int32,
    ua.VariantType.String: I.String,
    ua.VariantType.UInt32: I.UInt32,
}


def _variant(item: ItemEntry | ItemSpec) -> ua.VariantType:
    return ua.VariantType.UInt32 if _codes(item) else VARIANTS[item.type]


def _type_definition(item: ItemEntry | ItemSpec) -> int:
    if item.type is ValueType.BOOL:
        return I.TwoStateDiscreteType
    if _codes(item):
        return I.MultiStateDiscreteType
    if item.type is ValueType.FLOAT:
        return I.AnalogItemType
    return I.BaseDataVariableType


def _access(item: ItemEntry | ItemSpec) -> int:
    level = ua.AccessLevel.CurrentRead.mask
    if item.access.writable:
        level |= ua.AccessLevel.CurrentWrite.mask
    return level


class _Batch:
    """AddNodesItems collected and added in one go, without a session."""

    def __init__(self, server: Server, ns: int) -> None:
        self.server = server
        self.ns = ns
        self.items: list[ua.AddNodesItem] = []

    def node(self, ident: str) -> ua.NodeId:
        return ua.NodeId(ident, self.ns)

    def add(
        self,
        node_class: ua.NodeClass,
        node: ua.NodeId,
        parent: ua.NodeId,
        name: str,
        attributes: object,
        *,
        reference: int = I.HasComponent,
        type_definition: int | ua.NodeId | None = None,
        namespace: int | None = None,
    ) -> None:
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = node
        item.BrowseName = ua.QualifiedName(name, self.ns if namespace is None else namespace)
        item.NodeClass = node_class
        item.ParentNodeId = parent
        item.ReferenceTypeId = ua.NodeId(reference)
        if type_definition is not None:
            item.TypeDefinition = (
                type_definition
                if isinstance(type_definition, ua.NodeId)
                else ua.NodeId(type_definition)
            )
        item.NodeAttributes = attributes
        self.items.append(item)

    def obj(
        self, node: ua.NodeId, parent: ua.NodeId, name: str, display: str, type_definition: object
    ) -> None:
        attributes = ua.ObjectAttributes()
        attributes.DisplayName = ua.LocalizedText(display)
        attributes.EventNotifier = 0
        self.add(
            ua.NodeClass.Object,
            node,
            parent,
            name,
            attributes,
            reference=I.Organizes if parent == ua.NodeId(I.ObjectsFolder) else I.HasComponent,
            type_definition=type_definition,
        )

    def variable(
        self,
        node: ua.NodeId,
        parent: ua.NodeId,
        item: ItemEntry | ItemSpec,
        value: ua.Variant,
        *,
        reference: int = I.HasComponent,
    ) -> None:
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(_name(item))
        attributes.Description = ua.LocalizedText(item.description)
        attributes.Value = value
        attributes.DataType = ua.NodeId(DATA_TYPES[_variant(item)])
        attributes.ValueRank = -1
        attributes.AccessLevel = _access(item)
        attributes.UserAccessLevel = _access(item)
        attributes.MinimumSamplingInterval = 0.0
        attributes.Historizing = False
        self.add(
            ua.NodeClass.Variable,
            node,
            parent,
            _name(item),
            attributes,
            reference=reference,
            type_definition=_type_definition(item),
        )
        for name, prop in _properties(item):
            self.prop(ua.NodeId(f"{node.Identifier}.{name}", self.ns), node, name, prop)

    def prop(self, node: ua.NodeId, parent: ua.NodeId, name: str, value: ua.Variant) -> None:
        attributes = ua.VariableAttributes()
        attributes.DisplayName = ua.LocalizedText(name)
        attributes.Value = value
        attributes.DataType = ua.NodeId(_property_type(name))
        attributes.ValueRank = 1 if value.is_array else -1
        attributes.AccessLevel = ua.AccessLevel.CurrentRead.mask
        attributes.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        self.add(
            ua.NodeClass.Variable,
            node,
            parent,
            name,
            attributes,
            reference=I.HasProperty,
            type_definition=I.PropertyType,
            namespace=0,
        )

    def flush(self) -> None:
        service = self.server.iserver.node_mgt_service
        results = service.add_nodes(self.items, ADMIN)
        bad = [
            (i.RequestedNewNodeId, r.StatusCode)
            for i, r in zip(self.items, results, strict=True)
            if not r.StatusCode.is_good()
        ]
        if bad:
            raise RuntimeError(f"could not add {len(bad)} OPC UA nodes, first {bad[:3]}")
        self.items = []


class _Direct:
    """Item variables written straight into the address space: no service call per node.

    Builds exactly what `add_nodes` would (the same attributes and references; a test
    compares the two) at a fraction of the cost: the attributes that are the same for
    every instance of an item name (all but NodeId and Value), and the values of equal
    properties, are one `Shared` object each (`attributes`).
    """

    def __init__(self, server: Server, ns: int) -> None:
        self.aspace = server.iserver.aspace
        self.ns = ns
        self._constants: dict[tuple[object, ...], dict[AttributeIds, Shared]] = {}
        self._targets: dict[int, ua.ReferenceDescription] = {}
        self._property_values: dict[
            tuple[object, ...], list[tuple[str, dict[AttributeIds, Shared], Shared]]
        ] = {}

    def _shared(
        self,
        name: str,
        namespace: int,
        datatype: int,
        access: int,
        description: str | None,
        rank: int = -1,
    ) -> dict[AttributeIds, Shared]:
        key = (name, namespace, datatype, access, description, rank)
        found = self._constants.get(key)
        if found is None:
            A, V = ua.AttributeIds, ua.VariantType
            values = {
                A.BrowseName: ua.DataValue(
                    ua.Variant(ua.QualifiedName(name, namespace), V.QualifiedName)
                ),
                A.NodeClass: ua.DataValue(ua.Variant(ua.NodeClass.Variable, V.Int32)),
                A.AccessLevel: ua.DataValue(ua.Variant(access, V.Byte)),
                A.ArrayDimensions: ua.DataValue(ua.Variant(None, V.UInt32, is_array=True)),
                A.DataType: ua.DataValue(ua.Variant(ua.NodeId(datatype), V.NodeId)),
                A.Description: ua.DataValue(
                    ua.Variant(ua.LocalizedText(description), V.LocalizedText)
                ),
                A.DisplayName: ua.DataValue(ua.Variant(ua.LocalizedText(name), V.LocalizedText)),
                A.Historizing: ua.DataValue(ua.Variant(False, V.Boolean)),
                A.MinimumSamplingInterval: ua.DataValue(ua.Variant(0.0, V.Double)),
                A.UserAccessLevel: ua.DataValue(ua.Variant(access, V.Byte)),
                A.UserWriteMask: ua.DataValue(ua.Variant(0, V.UInt32)),
                A.ValueRank: ua.DataValue(ua.Variant(rank, V.Int32)),
                A.WriteMask: ua.DataValue(ua.Variant(0, V.UInt32)),
            }
            found = self._constants[key] = {a: Shared(value) for a, value in values.items()}
        return found

    def _type_ref(self, type_definition: int) -> ua.ReferenceDescription:
        ref = self._targets.get(type_definition)
        if ref is None:
            target = ua.NodeId(type_definition)
            data = self.aspace[target]
            ref = self._targets[type_definition] = ua.ReferenceDescription(
                ReferenceTypeId=ua.NodeId(I.HasTypeDefinition),
                IsForward=True,
                NodeId=target,
                NodeClass=ua.NodeClass.VariableType,
                BrowseName=_attribute(data, AttributeIds.BrowseName),
                DisplayName=_attribute(data, AttributeIds.DisplayName),
            )
        return ref

    def _node(
        self,
        node: ua.NodeId,
        parent: NodeData,
        reference: int,
        constants: dict[AttributeIds, Shared],
        value: AttributeValue,
        type_definition: int,
    ) -> NodeData:
        data = NodeData(node)
        node_id = AttributeValue(ua.DataValue(ua.Variant(node, ua.VariantType.NodeId)))
        data.attributes = Attributes(node_id, value, constants)  # type: ignore[assignment]
        browse = _plain(constants[AttributeIds.BrowseName].value)
        display = _plain(constants[AttributeIds.DisplayName].value)
        type_ref = self._type_ref(type_definition)
        data.references.append(
            ua.ReferenceDescription(
                ReferenceTypeId=ua.NodeId(reference),
                IsForward=False,
                NodeId=parent.nodeid,
                NodeClass=_attribute(parent, AttributeIds.NodeClass),
                BrowseName=_attribute(parent, AttributeIds.BrowseName),
                DisplayName=_attribute(parent, AttributeIds.DisplayName),
                TypeDefinition=_type_of(parent),
            )
        )
        data.references.append(type_ref)
        parent.references.append(
            ua.ReferenceDescription(
                ReferenceTypeId=ua.NodeId(reference),
                IsForward=True,
                NodeId=node,
                NodeClass=ua.NodeClass.Variable,
                BrowseName=browse,
                DisplayName=display,
                TypeDefinition=type_ref.NodeId,
            )
        )
        self.aspace[node] = data
        return data

    def variable(self, node: ua.NodeId, parent: ua.NodeId, entry: ItemEntry) -> None:
        """One item variable with its properties."""
        name = entry.item
        constants = self._shared(
            name,
            self.ns,
            DATA_TYPES[_variant(entry)],
            _access(entry),
            entry.description,
        )
        data = self._node(
            node,
            self.aspace[parent],
            I.HasComponent,
            constants,
            AttributeValue(_stamped(_initial(entry))),
            _type_definition(entry),
        )
        for prop, shared, value in self._properties(entry):
            self._node(
                ua.NodeId(f"{node.Identifier}.{prop}", self.ns),
                data,
                I.HasProperty,
                shared,
                value,
                I.PropertyType,
            )

    def _properties(self, entry: ItemEntry) -> list[tuple[str, dict[AttributeIds, Shared], Shared]]:
        """An item's properties: name, shared attributes and shared value, made once per kind."""
        key = (entry.type, tuple(entry.states.items()), entry.low, entry.high, entry.unit)
        found = self._property_values.get(key)
        if found is None:
            read = ua.AccessLevel.CurrentRead.mask
            found = self._property_values[key] = [
                (
                    prop,
                    self._shared(prop, 0, _property_type(prop), read, None, _rank(value)),
                    Shared(_stamped(value)),
                )
                for prop, value in _properties(entry)
            ]
        return found


_NOW = datetime.now(UTC)


def _stamped(value: ua.Variant) -> ua.DataValue:
    """A value as the build gives it: stamped with the time the server started."""
    return ua.DataValue(value, SourceTimestamp=_NOW, ServerTimestamp=_NOW)


def _rank(value: ua.Variant) -> int:
    return 1 if value.is_array else -1


def _type_of(data: NodeData) -> ua.NodeId:
    for ref in data.references:
        if ref.IsForward and ref.ReferenceTypeId == ua.NodeId(I.HasTypeDefinition):
            return ref.NodeId  # type: ignore[no-any-return]
    return ua.NodeId()


def _plain(value: ua.DataValue) -> Any:
    """What a DataValue holds, unwrapped."""
    return value.Value.Value  # type: ignore[union-attr]


def _attribute(data: NodeData, attribute: AttributeIds) -> Any:
    """The plain value of one attribute of a node."""
    return _plain(data.attributes[attribute].value)


PROPERTY_TYPES = {"EURange": I.Range, "EngineeringUnits": I.EUInformation}
"""Data types of the item properties; the state names are LocalizedText."""


def _property_type(name: str) -> int:
    return PROPERTY_TYPES.get(name, I.LocalizedText)


def _name(item: ItemEntry | ItemSpec) -> str:
    return item.item if isinstance(item, ItemEntry) else item.name


def _properties(item: ItemEntry | ItemSpec) -> Iterator[tuple[str, ua.Variant]]:
    if item.type is ValueType.BOOL:
        states = item.states or {"0": "0", "1": "1"}
        yield "FalseState", ua.Variant(ua.LocalizedText(states["0"]), ua.VariantType.LocalizedText)
        yield "TrueState", ua.Variant(ua.LocalizedText(states["1"]), ua.VariantType.LocalizedText)
    elif _codes(item):
        labels = [ua.LocalizedText(item.states[code]) for code in _codes(item)]
        yield "EnumStrings", ua.Variant(labels, ua.VariantType.LocalizedText, is_array=True)
    elif item.type is ValueType.FLOAT:
        low = getattr(item, "low", None) if isinstance(item, ItemEntry) else item.min
        high = getattr(item, "high", None) if isinstance(item, ItemEntry) else item.max
        yield "EURange", ua.Variant(ua.Range(low or 0.0, high or 0.0))
        yield "EngineeringUnits", ua.Variant(eu_information(item.unit))


def _initial(item: ItemEntry | ItemSpec) -> ua.Variant:
    variant = _variant(item)
    defaults = {
        ua.VariantType.Double: 0.0,
        ua.VariantType.Boolean: False,
        ua.VariantType.Int32: 0,
        ua.VariantType.String: "",
        ua.VariantType.UInt32: 0,
    }
    return ua.Variant(defaults[variant], variant)


def _display(path: ItemPath, mapping: Mapping, module: ModuleEntry | None) -> str:
    kind = {Level.CRATE: "Crate", Level.MODULE: "Module", Level.CHANNEL: "Channel"}[path.level]
    alias = mapping.aliases.get(str(path))
    label = f"{kind} {path}"
    if path.level is Level.MODULE and module is not None and module.type:
        label += f" {module.type}"
    return f"{alias} ({label})" if alias else label


def _declared(level: Level, specs: Catalog) -> list[ItemSpec]:
    """Every item any object of the level may carry, whatever its kind and options."""
    if level is Level.CRATE:
        return specs.level(level)
    found = {
        spec.name: spec
        for kind in ModuleKind
        for spec in specs.level(level, kind, list(ModuleOption))
    }
    return list(found.values())


def _mandatory(spec: ItemSpec) -> bool:
    return spec.level is Level.CRATE or (not spec.requires and spec.kinds == frozenset(ModuleKind))


async def _add_types(server: Server, ns: int, specs: Catalog) -> dict[Level, ua.NodeId]:
    """CrateType, ModuleType and ChannelType with one instance declaration per item."""
    batch = _Batch(server, ns)
    types = {}
    for level, name in TYPE_NAMES.items():
        types[level] = node = batch.node(name)
        attributes = ua.ObjectTypeAttributes()
        attributes.DisplayName = ua.LocalizedText(name)
        attributes.IsAbstract = False
        batch.add(
            ua.NodeClass.ObjectType,
            node,
            ua.NodeId(I.BaseObjectType),
            name,
            attributes,
            reference=I.HasSubtype,
        )
    batch.flush()
    rules = []
    for level, node in types.items():
        for spec in _declared(level, specs):
            declaration = batch.node(f"{TYPE_NAMES[level]}.{spec.name}")
            batch.variable(declaration, node, spec, _initial(spec))
            rule = I.ModellingRule_Mandatory if _mandatory(spec) else I.ModellingRule_Optional
            rules.append(
                ua.AddReferencesItem(
                    SourceNodeId=declaration,
                    ReferenceTypeId=ua.NodeId(I.HasModellingRule),
                    IsForward=True,
                    TargetNodeId=ua.NodeId(rule),
                    TargetNodeClass=ua.NodeClass.Object,
                )
            )
    batch.flush()
    server.iserver.node_mgt_service.add_references(rules, ADMIN)
    return types


@dataclass
class Space:
    """The built address space: the namespace and every item's variable, by item key."""

    ns: int
    variables: dict[ItemKey, Variable]


async def build(
    server: Server, mapping: Mapping, specs: Catalog | None = None, *, via_service: bool = False
) -> Space:
    """Add the mapping's objects and items to a server that is initialised but not started.

    `via_service` adds the item variables through the AddNodes service instead: much
    slower, and the reference that the fast path is checked against.
    """
    specs = specs or catalog()
    ns = await server.register_namespace(mapping.namespace)
    types = await _add_types(server, ns, specs)
    entries: dict[ItemPath, list[ItemEntry]] = {}
    for entry in mapping.items:
        if not entry.disabled:
            entries.setdefault(entry.key.path, []).append(entry)
    variables: dict[ItemKey, Variable] = {}
    batch = _Batch(server, ns)
    root = batch.node("iCS")
    batch.obj(root, ua.NodeId(I.ObjectsFolder), "iCS", "iCS", I.BaseObjectType)
    crates = {crate.line: batch.node(f"{crate.line}.{crate.address}") for crate in mapping.crates}
    frozen = gc.isenabled()
    gc.disable()
    try:
        nodes: dict[ItemPath, ua.NodeId] = {ItemPath(): root}
        for path, module in objects(mapping):
            if path.level is Level.SYSTEM:
                continue
            node = nodes[path] = batch.node(str(path))
            if path.level is Level.CRATE:
                parent = root
            elif path.level is Level.MODULE:
                parent = crates.get(path.line, root)
            else:
                parent = nodes[ItemPath(path.line, path.address)]
            batch.obj(node, parent, str(path), _display(path, mapping, module), types[path.level])
        batch.flush()
        direct = _Direct(server, ns)
        for count, (path, node) in enumerate(nodes.items(), 1):
            if count % YIELD_EVERY == 0:  # let the iCS link and Channel Access run meanwhile
                await asyncio.sleep(0)
            for entry in entries.get(path, ()):
                variable = Variable(batch.node(entry.nodeid), entry, _variant(entry), _codes(entry))
                variables[entry.key] = variable
                if via_service:
                    batch.variable(variable.node, node, entry, _initial(entry))
                else:
                    direct.variable(variable.node, node, entry)
        batch.flush()
    finally:
        if frozen:
            gc.enable()
    return Space(ns, variables)
