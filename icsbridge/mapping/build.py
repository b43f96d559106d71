"""From discovered hardware and a site's settings to one entry per item instance."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from icsbridge.catalog import Catalog, ItemSpec, ModuleKind, ValueType, catalog
from icsbridge.mapping.document import Entries, ItemEntry, Mapping, ModuleEntry
from icsbridge.mapping.naming import node_id
from icsbridge.model import ItemKey, ItemPath

PRECISION = {"V": 3, "A": 9, "°C": 1, "%/s": 3, "%": 1, "V/s": 3, "A/s": 9, "V/K": 4, "Ω": 0}
"""Display precision (EPICS PREC) of floats by base unit."""


def objects(mapping: Mapping) -> Iterator[tuple[ItemPath, ModuleEntry | None]]:
    """The system, crates, modules and channels of a mapping, each with its module."""
    yield ItemPath(), None
    for crate in mapping.crates:
        yield ItemPath(crate.line, crate.address), None
    for module in mapping.modules:
        yield ItemPath(module.line, module.address), module
        for channel in range(module.channels):
            yield ItemPath(module.line, module.address, channel), module


def _limits(spec: ItemSpec, module: ModuleEntry | None) -> dict[str, float | None]:
    """Display and drive limits: the catalogue's range, nominal values for V and A."""
    low, high = spec.min, spec.max
    if module is not None and spec.unit in ("V", "A"):
        nominal = module.voltage_nominal if spec.unit == "V" else module.current_nominal
        if spec.access.writable:
            low, high = (low or 0.0), abs(nominal)
        else:
            low, high = min(0.0, nominal), max(0.0, nominal)
    limits: dict[str, float | None] = {"low": low, "high": high}
    if spec.access.writable:
        limits |= {"drive_low": low, "drive_high": high}
    return limits


def _entry(
    mapping: Mapping, key: ItemKey, spec: ItemSpec, module: ModuleEntry | None, shared: Entries
) -> ItemEntry:
    alias = mapping.aliases.get(str(key.path))
    fields = {
        "line": key.line,
        "address": key.address,
        "channel": key.channel,
        "item": key.item,
        "pv": mapping.naming.pv(key, spec.pv),
        "aliases": [mapping.naming.alias_pv(alias, spec.pv)] if alias else [],
        "nodeid": node_id(key),
        "type": spec.type,
        "unit": spec.unit,
        "access": spec.access,
        "description": spec.description,
        "precision": PRECISION.get(spec.unit, 3) if spec.type is ValueType.FLOAT else None,
        "states": spec.states,
        "length": spec.length,
        "disabled": any(fnmatchcase(str(key), pattern) for pattern in mapping.disabled),
        **_limits(spec, module),
    }
    override = mapping.overrides.get(str(key))
    if override is not None:
        fields |= override.model_dump(exclude_none=True)
    return shared.entry(fields)


def items(mapping: Mapping, specs: Catalog | None = None) -> list[ItemEntry]:
    """Every item instance of the mapping's crates and modules, named by its settings."""
    specs = specs or catalog()
    shared = Entries()
    entries = []
    for path, module in objects(mapping):
        kind = module.kind if module else ModuleKind.HV
        options = module.options if module else ()
        for spec in specs.level(path.level, kind, options):
            entries.append(_entry(mapping, ItemKey(*path, spec.name), spec, module, shared))
    return entries


def rebuild(mapping: Mapping, specs: Catalog | None = None) -> Mapping:
    """The mapping with its item entries generated afresh from its settings and hardware."""
    return mapping.model_copy(update={"items": items(mapping, specs)})
