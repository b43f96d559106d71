"""Which EPICS record type stands for an item: one rule for PVs and database files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from icsbridge.catalog import Access, ValueType

MAX_STATES = 16
"""Most states an mbbi/mbbo record carries."""

MAX_STRING = 39
"""Longest text a stringin/stringout record holds."""


class Item(Protocol):
    """What the rule looks at: a catalogue spec or a mapping entry."""

    @property
    def access(self) -> Access: ...
    @property
    def type(self) -> ValueType: ...
    @property
    def states(self) -> Mapping[str, str]: ...
    @property
    def length(self) -> int: ...


def record_type(item: Item) -> str:
    """bi/bo for bools, mbbi/mbbo for up to 16 states, ai/ao, longin/longout, string or lsi/lso.

    Writable and write-only items get the output record, the others the input record.
    """
    out = item.access.writable
    if item.type is ValueType.BOOL:
        return "bo" if out else "bi"
    if item.states and len(item.states) <= MAX_STATES:
        return "mbbo" if out else "mbbi"
    if item.type is ValueType.FLOAT:
        return "ao" if out else "ai"
    if item.type is ValueType.INT:
        return "longout" if out else "longin"
    if item.length > MAX_STRING:
        return "lso" if out else "lsi"
    return "stringout" if out else "stringin"
