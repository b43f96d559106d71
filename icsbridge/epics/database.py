"""EPICS database templates of the item catalogue: one soft-record file per group of items.

A group holds the items that always appear together on an object: same level, same module
kinds, same required options. An object of kind K with options O loads every group of its
level whose kinds contain K and whose options are a subset of O (system and crate objects
load their level's one group), so it gets one record per item it carries.

Record types: bool `bi`/`bo`; int or text with at most 16 states `mbbi`/`mbbo` (int states
keep their wire value in ZRVL.., text states are numbered 0..n-1 in catalogue order); float
`ai`/`ao`; int `longin`/`longout`; text `stringin`/`stringout`, or `lsi`/`lso` when longer
than 39 characters. Writable and write-only items get the output record, read and push-only
items the input record. Alarm severities of states come from the catalogue
(`ItemSpec.severities`): error latches and faults MAJOR when set, unusual events MINOR when
set, good-flags MAJOR when clear, a `runningState` of `error` MAJOR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from icsbridge.catalog import Catalog, ItemSpec, ModuleKind, ModuleOption, ValueType, catalog
from icsbridge.epics.records import record_type
from icsbridge.mapping.build import PRECISION
from icsbridge.model import Level

COMMAND = "icsbridge db --templates db_templates"
"""The command that regenerates the committed templates."""

SUFFIX = ".template"
MAX_DESC = 40
MAX_EGU = 15
MAX_STATE = 25
"""EPICS field sizes in bytes, without the terminating NUL."""

MACROS = {
    "NAME": "PV-name prefix of the object, everything before the record suffix",
    "VLOW": "lowest measured voltage, min(0, nominal voltage)",
    "VHIGH": "highest measured voltage, max(0, nominal voltage)",
    "VMAX": "highest voltage set point, |nominal voltage|",
    "ILOW": "lowest measured current, min(0, nominal current)",
    "IHIGH": "highest measured current, max(0, nominal current)",
    "IMAX": "highest current set point, |nominal current|",
}
"""Every macro a template may use, in the order files list them."""

STATE_FIELDS = (
    *("ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV"),
    *("EI", "NI", "TE", "EL", "TV", "TT", "FT", "FF"),
)
"""Field prefixes of the 16 states of an mbbi/mbbo record."""


def quote(text: str) -> str:
    """Text escaped for a double-quoted db file string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


JINJA = jinja2.Environment(
    trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
)
JINJA.filters["quote"] = quote
"""The jinja environment of db files: no HTML escaping, `quote` for field values."""

TEMPLATE = JINJA.from_string(
    """\
# {{ group.filename }}: generated from the iCS item catalogue; do not edit. Regenerate with
#   {{ command }}
# {{ group.scope }}
# Macros:
{% for macro in group.macros %}
#   {{ "%-6s"|format(macro) }} {{ describe[macro] }}
{% endfor %}
{% for record in group.records %}

record({{ record.type }}, "$(NAME){{ record.suffix }}") {
{% for name, value in record.fields %}
    field({{ name }}, "{{ value|quote }}")
{% endfor %}
}
{% endfor %}
"""
)


@dataclass(frozen=True)
class Record:
    """One record of a template: its type, name suffix and fields in file order."""

    type: str
    suffix: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TemplateGroup:
    """Items that always appear together on an object, and so share one template file."""

    level: Level
    kinds: frozenset[ModuleKind]
    """Module kinds that carry the items; empty at system and crate level (every object)."""
    requires: frozenset[ModuleOption]
    specs: tuple[ItemSpec, ...]

    @property
    def filename(self) -> str:
        """The template's file name, e.g. `channel-hv-vct.template`."""
        kinds = [] if self.kinds in (frozenset(), frozenset(ModuleKind)) else sorted(self.kinds)
        return "-".join([self.level, *kinds, *sorted(self.requires)]) + SUFFIX

    @property
    def scope(self) -> str:
        """Which objects load the template, in words."""
        if self.level in (Level.SYSTEM, Level.CRATE):
            return f"Load once for each {self.level}."
        module = " or ".join(sorted(self.kinds)) + " module"
        options = f" with {', '.join(sorted(self.requires))}" if self.requires else ""
        owner = f"channel of an {module}" if self.level is Level.CHANNEL else module
        return f"Load once for each {owner}{options}."

    @property
    def records(self) -> list[Record]:
        """One record per item, in catalogue order."""
        return [record(spec) for spec in self.specs]

    @property
    def macros(self) -> list[str]:
        """The macros the template uses, NAME first."""
        used = {
            name
            for rec in self.records
            for _, value in rec.fields
            for name in re.findall(r"\$\((\w+)\)", value)
        }
        return [name for name in MACROS if name == "NAME" or name in used]

    def applies(self, kind: ModuleKind, options: frozenset[ModuleOption]) -> bool:
        """Whether an object of this kind and options loads the template."""
        return (not self.kinds or kind in self.kinds) and self.requires <= options


def template_groups(specs: Catalog | None = None) -> list[TemplateGroup]:
    """The catalogue's items grouped into templates: levels top down, common groups first."""
    found: dict[tuple[Level, frozenset[ModuleKind], frozenset[ModuleOption]], list[ItemSpec]] = {}
    for spec in specs or catalog():
        per_object = spec.level in (Level.MODULE, Level.CHANNEL)
        kinds = spec.kinds if per_object else frozenset()
        requires = spec.requires if per_object else frozenset()
        found.setdefault((spec.level, kinds, requires), []).append(spec)
    groups = [TemplateGroup(*key, tuple(items)) for key, items in found.items()]
    return sorted(groups, key=_order)


def _order(group: TemplateGroup) -> tuple[int, int, list[str], int, list[str]]:
    """Levels top down; within one, common items first: both kinds, then no options."""
    kinds, requires = sorted(map(str, group.kinds)), sorted(map(str, group.requires))
    return (list(Level).index(group.level), -len(kinds), kinds, len(requires), requires)


def record(spec: ItemSpec) -> Record:
    """The soft record of an item, its fields checked against EPICS's sizes."""
    kind = record_type(spec)
    fields = [("DESC", _checked(spec, "DESC", spec.description, MAX_DESC))]
    if kind in ("ai", "ao", "longin", "longout"):
        fields += _numeric_fields(spec, kind)
    elif kind in ("bi", "bo"):
        fields += _flag_fields(spec)
    elif kind in ("mbbi", "mbbo"):
        fields += _state_fields(spec)
    elif kind in ("lsi", "lso"):
        fields.append(("SIZV", str(spec.length + 1)))
    return Record(kind, spec.pv, tuple(fields))


def _numeric_fields(spec: ItemSpec, kind: str) -> list[tuple[str, str]]:
    fields = []
    if spec.unit:
        fields.append(("EGU", _checked(spec, "EGU", spec.unit, MAX_EGU)))
    if spec.type is ValueType.FLOAT:
        fields.append(("PREC", str(PRECISION.get(spec.unit, 3))))
    low, high = _limits(spec)
    limits = {"LOPR": low, "HOPR": high}
    if kind in ("ao", "longout"):
        limits |= {"DRVL": low, "DRVH": high}
    return fields + [(name, value) for name, value in limits.items() if value is not None]


def _limits(spec: ItemSpec) -> tuple[str | None, str | None]:
    """Display and drive limits as `build._limits` sets them: V and A from macros."""
    if spec.level in (Level.MODULE, Level.CHANNEL) and spec.unit in ("V", "A"):
        letter = "V" if spec.unit == "V" else "I"
        if spec.access.writable:
            return number(spec.min or 0.0), f"$({letter}MAX)"
        return f"$({letter}LOW)", f"$({letter}HIGH)"
    return (
        None if spec.min is None else number(spec.min),
        None if spec.max is None else number(spec.max),
    )


def _flag_fields(spec: ItemSpec) -> list[tuple[str, str]]:
    severities = spec.severities
    names = [(f"{prefix}NAM", _label(spec, code)) for code, prefix in (("0", "Z"), ("1", "O"))]
    alarms = [
        (f"{prefix}SV", severities[code].name)
        for code, prefix in (("0", "Z"), ("1", "O"))
        if code in severities
    ]
    return names + alarms


def _state_fields(spec: ItemSpec) -> list[tuple[str, str]]:
    codes = list(spec.states)
    if spec.type is ValueType.INT:
        codes.sort(key=int)
    severities = spec.severities
    fields = []
    for index, (code, prefix) in enumerate(zip(codes, STATE_FIELDS, strict=False)):
        fields.append((f"{prefix}VL", code if spec.type is ValueType.INT else str(index)))
        fields.append((f"{prefix}ST", _label(spec, code)))
        if code in severities:
            fields.append((f"{prefix}SV", severities[code].name))
    return fields


def _label(spec: ItemSpec, code: str) -> str:
    return _checked(spec, f"state {code}", spec.states.get(code, code), MAX_STATE)


def _checked(spec: ItemSpec, what: str, text: str, limit: int) -> str:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise ValueError(f"{spec.level} {spec.name}: {what} {text!r} is {size} bytes, over {limit}")
    return text


def number(value: float) -> str:
    """A number as a db file writes it: integral values without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(group: TemplateGroup) -> str:
    """The text of a group's template file."""
    return TEMPLATE.render(group=group, command=COMMAND, describe=MACROS)


def templates(specs: Catalog | None = None) -> dict[str, str]:
    """Every template file the catalogue makes: file name to text."""
    return {group.filename: render(group) for group in template_groups(specs)}


def _obsolete(directory: Path, wanted: dict[str, str]) -> list[Path]:
    """Template files this command once wrote that the catalogue no longer makes."""
    return [
        path
        for path in sorted(directory.glob("*" + SUFFIX))
        if path.name not in wanted and f"\n#   {COMMAND}\n" in path.read_text("utf-8")
    ]


def write_templates(directory: Path, specs: Catalog | None = None) -> list[Path]:
    """Write every template into `directory`, remove obsolete ones; return the files written."""
    wanted = templates(specs)
    directory.mkdir(parents=True, exist_ok=True)
    for path in _obsolete(directory, wanted):
        path.unlink()
    written = []
    for name, text in wanted.items():
        path = directory / name
        path.write_text(text, "utf-8")
        written.append(path)
    return written


def outdated_templates(directory: Path, specs: Catalog | None = None) -> list[str]:
    """Names of template files in `directory` that are missing, differ or are obsolete."""
    wanted = templates(specs)
    stale = [
        name
        for name, text in wanted.items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]
    return stale + [path.name for path in _obsolete(directory, wanted)]
