"""The simulated objects (system, crates, modules, channels) and the values of their items."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from icsbridge.catalog import ItemSpec
from icsbridge.ics.sim.topology import CrateConfig, ModuleConfig
from icsbridge.ics.values import Value
from icsbridge.model import ItemPath


@dataclass(frozen=True, slots=True)
class Noise:
    """Measurement noise (one standard deviation): of |Vnom|, of Inom, and in kelvin."""

    voltage: float = 1e-5
    current: float = 1e-5
    temperature: float = 0.05


QUIET = Noise(0.0, 0.0, 0.0)
"""No noise at all: measured values are exact, as tests want them."""


@dataclass(frozen=True, slots=True)
class Shape:
    """The items an object carries (shared by all objects of one level, kind and options)."""

    specs: Mapping[str, ItemSpec]
    events: tuple[str, ...]
    errors: tuple[str, ...]

    @classmethod
    def of(cls, specs: Iterable[ItemSpec]) -> Shape:
        """The shape of an object carrying these items."""
        table = {spec.name: spec for spec in specs}
        readable = [name for name, spec in table.items() if spec.access.readable]
        return cls(
            specs=table,
            events=tuple(n for n in readable if n.startswith("Event.")),
            errors=tuple(n for n in readable if n.startswith("Error.")),
        )


@dataclass(slots=True, eq=False)
class Ledger:
    """What changed since it was last read: item values, and objects to re-aggregate."""

    noise: Noise
    rng: random.Random
    changes: dict[tuple[Node, str], None] = field(default_factory=dict)
    dirty: set[Node] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class Node:
    """One object of the tree: its path, its items and their current values."""

    path: ItemPath
    shape: Shape
    values: dict[str, Value]
    ledger: Ledger
    own_events: int = 0
    own_errors: int = 0
    latches_dirty: bool = False

    def put(self, item: str, value: Value) -> None:
        """Set an item the object carries and note the change; ignore items it lacks."""
        values = self.values
        if item in values and values[item] != value:
            values[item] = value
            self.ledger.changes[(self, item)] = None

    def touch(self, item: str) -> None:
        """Note an item as changed even though its value stayed the same."""
        if item in self.values:
            self.ledger.changes[(self, item)] = None

    def latch(self, item: str) -> None:
        """Set an Event or Error latch."""
        if self.values.get(item) is False:
            self.put(item, True)
            self.latches_dirty = True
            self.ledger.dirty.add(self)

    def clear_latches(self, events: bool, errors: bool) -> None:
        """Reset the object's own Event latches, Error latches or both."""
        names = (self.shape.events if events else ()) + (self.shape.errors if errors else ())
        for name in names:
            self.put(name, False)
        self.latches_dirty = True
        self.ledger.dirty.add(self)

    def recount(self) -> None:
        """Count the object's own latched events and errors again."""
        values = self.values
        self.own_events = sum(1 for name in self.shape.events if values[name])
        self.own_errors = sum(1 for name in self.shape.errors if values[name])
        self.latches_dirty = False


@dataclass(slots=True, eq=False, kw_only=True)
class Crate(Node):
    """A crate controller; standby (`powered` False) takes every module down."""

    config: CrateConfig
    modules: list[Module] = field(default_factory=list)
    powered: bool = True
    temperatures: tuple[float, float] = (30.0, 30.0)


@dataclass(slots=True, eq=False, kw_only=True)
class Module(Node):
    """A module in a crate slot, with its channels."""

    crate: Crate
    config: ModuleConfig
    channels: list[Channel] = field(default_factory=list)
    temperature: float = 30.0

    @property
    def alive(self) -> bool:
        """Whether the module is powered (its crate is not in standby)."""
        return self.crate.powered


@dataclass(slots=True, eq=False, kw_only=True)
class Channel(Node):
    """One output: its ratings and the physical state behind its items.

    Voltages and currents here are magnitudes; `sign` gives the output polarity.
    """

    module: Module
    nominal_voltage: float
    nominal_current: float
    voltage_limit: float
    current_limit: float
    load: float
    sign: float = 1.0
    lead_resistance: float = 0.0
    output: float = 0.0
    on: bool = False
    ramp: int = 0
    regulating: bool = False
    over_since: float | None = None
    trip_reported: bool = False
    inhibit: bool = False
