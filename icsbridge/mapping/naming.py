"""PV names and OPC UA NodeIds of item instances: presets, free templates, aliases."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from icsbridge.model import ItemKey, Level

MAX_PV_LENGTH = 59
"""Longest name caproto's client (and so many tools) accept."""

PV_NAME = re.compile(r"^[A-Za-z0-9_:-]+$")
"""The characters a PV name may hold."""


class Preset(StrEnum):
    """How PV names are built."""

    ISEG = "iseg"  # ISEG:<serial>:<line>:<address>[:<channel>]:<Name>, as iseg's own IOC
    SHORT = "short"  # <prefix>M<module>:C<channel>:<Name>
    TEMPLATE = "template"  # one format string per level


PRESET_TEMPLATES: dict[Preset, dict[Level, str]] = {
    Preset.ISEG: {
        Level.SYSTEM: "{prefix}{name}",
        Level.CRATE: "{prefix}{line}:{address}:{name}",
        Level.MODULE: "{prefix}{line}:{address}:{name}",
        Level.CHANNEL: "{prefix}{line}:{address}:{channel}:{name}",
    },
    Preset.SHORT: {
        Level.SYSTEM: "{prefix}{name}",
        Level.CRATE: "{prefix}{line_tag}CRATE:{name}",
        Level.MODULE: "{prefix}{line_tag}M{address}:{name}",
        Level.CHANNEL: "{prefix}{line_tag}M{address}:C{channel}:{name}",
    },
}
"""Format strings per preset. Fields: prefix, serial, line, line_tag (`L<n>:` off line 0),
address, channel, name (the catalogue's record suffix) and item (the iCS item name)."""


class Naming(BaseModel):
    """The naming rules of a mapping."""

    model_config = ConfigDict(extra="forbid")

    preset: Preset = Preset.ISEG
    prefix: str | None = None
    """Start of every name; default `ISEG:<serial>:` (iseg) or `ICS:` (short)."""
    serial: str | None = None
    """Serial number of the crate controller, for the iseg prefix."""
    templates: dict[Level, str] = {}
    """For the template preset: a format string per level."""

    @model_validator(mode="after")
    def _complete(self) -> Naming:
        if self.preset is Preset.TEMPLATE:
            missing = set(Level) - set(self.templates)
            if missing:
                raise ValueError(f"template naming needs a template for {sorted(missing)}")
        elif self.templates:
            raise ValueError("templates are only for preset 'template'")
        if self.preset is Preset.ISEG and self.prefix is None and self.serial is None:
            raise ValueError("iseg naming needs the controller serial (or a prefix)")
        return self

    @property
    def effective_prefix(self) -> str:
        """The prefix names start with."""
        if self.prefix is not None:
            return self.prefix
        return f"ISEG:{self.serial}:" if self.preset is Preset.ISEG else "ICS:"

    def pv(self, key: ItemKey, name: str) -> str:
        """The PV name of an item instance whose record suffix is `name`."""
        templates = self.templates or PRESET_TEMPLATES[self.preset]
        return templates[key.path.level].format(
            prefix=self.effective_prefix,
            serial=self.serial or "",
            line=key.line,
            line_tag=f"L{key.line}:" if key.line else "",
            address=key.address,
            channel=key.channel,
            name=name,
            item=key.item.replace(".", ":"),
        )

    def alias_pv(self, alias: str, name: str) -> str:
        """The extra PV name an aliased object gives its item with record suffix `name`."""
        return f"{self.effective_prefix}{alias}:{name}"


def node_id(key: ItemKey) -> str:
    """The stable NodeId string of an item instance: `0.3.5.Status.voltageMeasure`."""
    return str(key)


def pv_problems(name: str) -> list[str]:
    """Why a PV name is unusable; empty when it is fine."""
    problems = []
    if len(name) > MAX_PV_LENGTH:
        problems.append(f"{name}: {len(name)} characters, more than {MAX_PV_LENGTH}")
    if not PV_NAME.match(name):
        bad = sorted(set(re.sub(r"[A-Za-z0-9_:-]", "", name))) or ["(empty)"]
        problems.append(f"{name!r}: characters outside A-Z a-z 0-9 _ : -: {''.join(bad)}")
    return problems
