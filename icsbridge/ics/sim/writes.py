"""Whether a written value is taken as it is, clamped, an input error, or refused."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from icsbridge.catalog import ItemSpec, ValueType
from icsbridge.ics.protocol import ProtocolError
from icsbridge.ics.sim.nodes import Channel, Module, Node
from icsbridge.ics.values import Value, decode
from icsbridge.model import ItemKey, ItemPath


class Outcome(StrEnum):
    """How the simulator took a setItem."""

    ACCEPTED = "accepted"
    CLAMPED = "clamped"
    INPUT_ERROR = "input error"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one setItem, over every object it named."""

    outcome: Outcome
    keys: tuple[ItemKey, ...] = ()
    input_errors: tuple[ItemPath, ...] = ()
    value: Value | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """Whether the iCS acknowledges the write (trigger "true"); input errors count."""
        return self.outcome is not Outcome.REJECTED


class Refused(Exception):
    """A write the simulator refuses outright: its text says why."""


_DYNAMIC_RANGES: dict[str, tuple[str, str]] = {
    "Control.voltageRampspeedUp": ("Status.voltageRampspeedMin", "Status.voltageRampspeedMax"),
    "Control.voltageRampspeedDown": ("Status.voltageRampspeedMin", "Status.voltageRampspeedMax"),
    "Control.currentRampspeedUp": ("Status.currentRampspeedMin", "Status.currentRampspeedMax"),
    "Control.currentRampspeedDown": ("Status.currentRampspeedMin", "Status.currentRampspeedMax"),
}
"""Channel items whose bounds are other items of the same channel."""


def parse(spec: ItemSpec, text: str, unit: str) -> Value:
    """The written text as a typed value in the item's base unit."""
    try:
        value, base = decode(spec, text, unit)
    except ProtocolError as exc:
        raise Refused(str(exc)) from None
    if unit and spec.unit and base != spec.unit:
        raise Refused(f"unit {unit!r} does not fit {spec.name} ({spec.unit})")
    if isinstance(value, float) and value != value:
        raise Refused(f"{spec.name} cannot be NaN")
    return value


def _in_range(spec: ItemSpec, value: Value, node: Node) -> bool:
    enumerated = spec.states and spec.type in (ValueType.INT, ValueType.TEXT)
    if enumerated and str(value) not in spec.states:
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    low, high = spec.min, spec.max
    if spec.name in _DYNAMIC_RANGES:
        low_item, high_item = _DYNAMIC_RANGES[spec.name]
        low, high = float(node.values[low_item]), float(node.values[high_item])
    return (low is None or value >= low) and (high is None or value <= high)


def _set_point(ch: Channel, spec: ItemSpec, value: float) -> tuple[Value, Outcome]:
    if spec.name == "Control.voltageSet":
        nominal, limit = ch.nominal_voltage, ch.voltage_limit
    else:
        nominal, limit = ch.nominal_current, ch.current_limit
    if value < 0 or value > nominal:
        return value, Outcome.INPUT_ERROR
    if value > limit:
        return limit, Outcome.CLAMPED
    return value, Outcome.ACCEPTED


def fit(node: Node, spec: ItemSpec, value: Value) -> tuple[Value, Outcome]:
    """The value a write applies and how; raise `Refused` for what the object refuses.

    Channels flag an input error for values out of range (set values above nominal
    included) and clamp set values between their limit and nominal; crates, modules and
    the system refuse values out of range.
    """
    if isinstance(node, Module | Channel):
        module = node if isinstance(node, Module) else node.module
        if not module.alive:
            raise Refused(f"module {module.path} is not alive (crate in standby)")
    if isinstance(node, Channel):
        if spec.name in ("Control.voltageSet", "Control.currentSet"):
            return _set_point(node, spec, float(value))
        return value, Outcome.ACCEPTED if _in_range(spec, value, node) else Outcome.INPUT_ERROR
    if not _in_range(spec, value, node):
        raise Refused(f"{value!r} is out of range for {spec.name}")
    return value, Outcome.ACCEPTED
