"""Discovery: ask an iCS what it has and describe it as crates and modules.

Every readable catalogue item is requested with a wildcard path; the objects that answer
are the hardware. A module's kind and options follow from which optional items its
objects answered for; its type and the crate controller's serial number, which no item
carries, come from the iCS configuration file when it names them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from icsbridge.catalog import Catalog, ModuleKind, ModuleOption
from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient, everything
from icsbridge.ics.protocol import ProtocolError
from icsbridge.mapping.document import CrateEntry, ModuleEntry
from icsbridge.model import ItemPath, Level

BATCH = 10
"""Item names per subscription request, so progress can be shown as it goes."""


@dataclass(frozen=True, slots=True)
class Hardware:
    """What discovery found: crates, modules and, if the iCS told, the controller serial."""

    crates: list[CrateEntry]
    modules: list[ModuleEntry]
    serial: str | None


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """What the iCS configuration file says about the hardware."""

    serial: str | None
    module_types: dict[tuple[int, int], str]


def config_facts(xml: str) -> ConfigFacts:
    """The controller serial and module types from an iCS configuration file, if present."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return ConfigFacts(None, {})
    serial = None
    types: dict[tuple[int, int], str] = {}
    for line in root.iter():
        if line.tag.lower() != "line":
            continue
        for element in line:
            tag, attrs = element.tag.lower(), element.attrib
            if tag in ("crate", "controller") and serial is None:
                serial = attrs.get("serial") or attrs.get("serialNumber")
            if tag == "module" and "type" in attrs:
                try:
                    types[int(line.attrib.get("id", "0")), int(attrs["address"])] = attrs["type"]
                except (KeyError, ValueError):
                    continue
    return ConfigFacts(serial, types)


def _text(values: dict[str, Update], item: str) -> str:
    update = values.get(item)
    return "" if update is None else str(update.value)


def _float(values: dict[str, Update], item: str) -> float:
    update = values.get(item)
    return float(update.value) if update is not None and not isinstance(update.value, str) else 0.0


def _kind_and_options(items: set[str], specs: Catalog) -> tuple[ModuleKind, list[ModuleOption]]:
    found = [
        spec
        for level in (Level.MODULE, Level.CHANNEL)
        for spec in specs.level(level, ModuleKind.HV, ModuleOption)
        if spec.name in items
    ]
    hv_only = any(ModuleKind.LV not in spec.kinds for spec in found)
    options = sorted({option for spec in found for option in spec.requires})
    return (ModuleKind.HV if hv_only else ModuleKind.LV), options


def describe(updates: Iterable[Update], specs: Catalog, facts: ConfigFacts) -> Hardware:
    """Crates and modules from the records a wildcard subscription returned."""
    objects: dict[ItemPath, dict[str, Update]] = defaultdict(dict)
    for update in updates:
        objects[update.key.path][update.key.item] = update
    crates = [
        CrateEntry(
            line=path.line,  # type: ignore[arg-type]
            address=path.address,  # type: ignore[arg-type]
            firmware_name=_text(values, "Status.firmwareName"),
            firmware_release=_text(values, "Status.firmwareRelease"),
        )
        for path, values in sorted(objects.items(), key=lambda pair: pair[0].order)
        if path.level is Level.CRATE
    ]
    modules = []
    for path, values in sorted(objects.items(), key=lambda pair: pair[0].order):
        if path.level is not Level.MODULE or path.line is None or path.address is None:
            continue
        channels = sorted(
            (p for p in objects if p.level is Level.CHANNEL and p[:2] == path[:2]),
            key=lambda p: p.order,
        )
        items = set(values).union(*(objects[channel] for channel in channels))
        kind, options = _kind_and_options(items, specs)
        first = objects[channels[0]] if channels else {}
        modules.append(
            ModuleEntry(
                line=path.line,
                address=path.address,
                kind=kind,
                options=options,
                type=facts.module_types.get((path.line, path.address))
                or _text(values, "Status.firmwareName"),
                serial=_text(values, "Status.serialNumber"),
                firmware_name=_text(values, "Status.firmwareName"),
                firmware_release=_text(values, "Status.firmwareRelease"),
                channels=len(channels),
                voltage_nominal=_float(first, "Status.voltageNominal"),
                current_nominal=_float(first, "Status.currentNominal"),
            )
        )
    return Hardware(crates, modules, facts.serial)


async def discover(
    client: IcsClient, progress: Callable[[int, int], None] = lambda done, total: None
) -> Hardware:
    """Find every crate, module and channel behind a connected client."""
    specs = client.cache.catalog
    pairs = everything(specs)
    updates: list[Update] = []
    for start in range(0, len(pairs), BATCH):
        updates += await client.subscribe(pairs[start : start + BATCH])
        progress(min(start + BATCH, len(pairs)), len(pairs))
    try:
        facts = config_facts(await client.get_config())
    except (ProtocolError, TimeoutError):
        facts = ConfigFacts(None, {})
    return describe(updates, specs, facts)


def changes(before: Sequence[str], after: Sequence[str]) -> tuple[list[str], list[str]]:
    """What appeared and what vanished between two lists of names, each sorted."""
    old, new = set(before), set(after)
    return sorted(new - old), sorted(old - new)
