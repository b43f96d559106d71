"""The simulated iCS as a sans-I/O state machine: items, writes and physics over given times.

Nothing here reads a clock or touches a socket. `advance(now)` runs the physics up to the
simulated time `now` (seconds) and closes one acquisition cycle; writes take effect at the
time of the last `settle` or `advance`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from icsbridge.catalog import Catalog, ItemSpec, catalog
from icsbridge.ics.protocol import WILDCARD, Selector
from icsbridge.ics.sim import physics
from icsbridge.ics.sim.aggregate import aggregate
from icsbridge.ics.sim.nodes import Channel, Crate, Ledger, Module, Node, Noise
from icsbridge.ics.sim.topology import Topology
from icsbridge.ics.sim.tree import build
from icsbridge.ics.sim.writes import Outcome, Refused, WriteResult, fit, parse
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey, ItemPath

CHURN_ITEMS = (
    "Status.voltageMeasure",
    "Status.currentMeasure",
    "Status.voltageTerminalMeasure",
    "Status.temperatureExternal",
)
"""The channel readings `churn` moves: the ones real hardware refreshes every cycle."""

CHURN_STEP = 1e-6
"""How far `churn` moves a reading, alternately up and down, so values never drift."""

_CLEARS = {
    "Control.clearAll": (True, True),
    "Control.clearEvents": (True, False),
    "Control.clearErrors": (False, True),
}


class SimModel:
    """Every item of every simulated object, the writes to them and the physics behind them."""

    def __init__(
        self,
        topology: Topology,
        items: Catalog | None = None,
        *,
        seed: int = 0,
        noise: Noise | None = None,
        epoch: float = 0.0,
    ) -> None:
        self.topology = topology
        self._ledger = Ledger(Noise() if noise is None else noise, random.Random(seed))
        self._tree = build(topology, catalog() if items is None else items, self._ledger)
        self._system = self._tree.system
        self.epoch = epoch
        self._cycles = 0
        self._active: set[Channel] = set()
        self.now = 0.0
        self._churn = tuple(
            (ch, item, ItemKey(*ch.path, item))
            for ch in self._tree.channels
            for item in CHURN_ITEMS
            if item in ch.values
        )
        self.churned = 0
        """Readings `churn` has moved so far."""
        for ch in self._tree.channels:
            physics.refresh(ch)
        self._system.put("System.time", self._clock())
        aggregate(self._ledger)
        self._ledger.changes.clear()

    # --- reading ------------------------------------------------------------------

    def paths(self) -> list[ItemPath]:
        """Every object: the system, then crates, modules and channels."""
        return list(self._tree.nodes)

    def value(self, key: ItemKey) -> Value:
        """The current value of a readable item; KeyError if there is none."""
        return self._tree.nodes[key.path].values[key.item]

    def spec(self, path: ItemPath, item: str) -> ItemSpec | None:
        """The spec of an item on an object, or None if the object or the item is missing."""
        node = self._tree.nodes.get(path)
        return None if node is None else node.shape.specs.get(item)

    def select(self, selector: Selector | ItemPath, item: str) -> list[ItemKey]:
        """The readable items a getItem names; item `""` or `"*"` means all of them."""
        nodes = self._match(Selector(*selector))
        if item in ("", WILDCARD):
            return [ItemKey(*node.path, name) for node in nodes for name in node.values]
        return [ItemKey(*node.path, item) for node in nodes if item in node.values]

    @property
    def cycle_time(self) -> float:
        """The acquisition cycle (`Setup.cycleTime`) in seconds."""
        return float(self._system.values["Setup.cycleTime"]) / 1000.0

    def drain_changes(self) -> list[ItemKey]:
        """Every item whose value changed (or was written) since the last drain."""
        changes = self._ledger.changes
        keys = [ItemKey(*node.path, item) for node, item in changes]
        changes.clear()
        return keys

    def limit_churn(self, readings: int) -> None:
        """Let `churn` move only the first `readings` channel readings (in path order): a
        load on fewer items."""
        self._churn = self._churn[:readings]

    def churn(self, count: int) -> list[tuple[ItemKey, Value]]:
        """Move `count` channel readings a step, round robin, as fresh data (a bench load).

        Returns each move's key and the value it made, so that a reading moved twice is
        sent twice with two values. The moves are not logged as changes: the caller sends
        them itself.
        """
        pool = self._churn
        if not pool:
            return []
        size = len(pool)
        moves: list[tuple[ItemKey, Value]] = []
        turn, end = self.churned, self.churned + count
        while turn < end:  # one pass of the pool at a time, all one way
            first = turn % size
            last = min(size, first + end - turn)
            step = CHURN_STEP if turn // size % 2 == 0 else -CHURN_STEP
            for node, item, key in pool[first:last]:
                readings = node.values
                value = readings[item] = readings[item] + step  # type: ignore[operator]
                moves.append((key, value))
            turn += last - first
        self.churned = end
        return moves

    def _match(self, selector: Selector) -> list[Node]:
        if WILDCARD not in selector:
            node = self._tree.nodes.get(ItemPath(*selector))  # type: ignore[arg-type]
            return [] if node is None else [node]
        return [node for node in self._tree.nodes.values() if selector.matches(node.path)]

    # --- time ---------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Run the physics up to simulated time `now` without closing a cycle."""
        now = max(now, self.now)
        start, self.now = self.now, now
        for ch in list(self._active):
            self._run(ch, start)
        aggregate(self._ledger)

    def advance(self, now: float) -> None:
        """Run the physics up to `now` and close one cycle: heart beat, clock, noise."""
        self.settle(now)
        self._cycles += 1
        self._system.put("Status.heartBeat", self._cycles)
        self._system.put("System.time", self._clock())
        noise = self._ledger.noise
        if noise.voltage or noise.current:
            for ch in self._tree.channels:
                if ch not in self._active and ch.module.alive:
                    physics.measure(ch)
        if noise.temperature:
            self._temperatures(noise.temperature)
        aggregate(self._ledger)

    def _clock(self) -> str:
        return datetime.fromtimestamp(self.epoch + self.now, UTC).isoformat(timespec="milliseconds")

    def _temperatures(self, sigma: float) -> None:
        gauss = self._ledger.rng.gauss
        for crate in self._tree.crates:
            for index, base in enumerate(crate.temperatures):
                crate.put(f"Status.temperature{index}", round(base + gauss(0.0, sigma), 2))
        for module in self._tree.modules:
            module.put("Status.temperature", round(module.temperature + gauss(0.0, sigma), 2))

    def _run(self, ch: Channel, start: float | None = None) -> None:
        physics.evolve(ch, self.now if start is None else start, self.now)
        if ch.on or ch.ramp or ch.output:
            self._active.add(ch)
        else:
            self._active.discard(ch)

    # --- writing ------------------------------------------------------------------

    def write(
        self, target: Selector | ItemPath, item: str, text: str, unit: str = ""
    ) -> WriteResult:
        """Apply a setItem to every object the target names, all or nothing."""
        matched = self._match(Selector(*target))
        if not matched:
            return WriteResult(Outcome.REJECTED, reason=f"no object at {tuple(target)}")
        nodes = [node for node in matched if item in node.shape.specs]
        if not nodes:
            return WriteResult(Outcome.REJECTED, reason=f"unknown item {item!r}")
        try:
            plans = []
            for node in nodes:
                spec = node.shape.specs[item]
                if not spec.access.writable:
                    raise Refused(f"{item} is read-only")
                plans.append((node, spec, *fit(node, spec, parse(spec, text, unit))))
        except Refused as exc:
            return WriteResult(Outcome.REJECTED, reason=str(exc))
        keys: list[ItemKey] = []
        errors: list[ItemPath] = []
        outcome = Outcome.ACCEPTED
        applied: Value | None = None
        for node, spec, value, verdict in plans:
            if verdict is Outcome.INPUT_ERROR:
                node.put("Status.inputError", True)
                node.latch("Event.inputError")
                errors.append(node.path)
                continue
            if verdict is Outcome.CLAMPED:
                outcome = Outcome.CLAMPED
            if spec.access.readable:
                node.values[item] = value
                node.touch(item)
                keys.append(ItemKey(*node.path, item))
            node.put("Status.inputError", False)
            self._effect(node, item, value)
            applied = value
        aggregate(self._ledger)
        if errors:
            outcome = Outcome.INPUT_ERROR
        return WriteResult(outcome, tuple(keys), tuple(errors), applied)

    def _effect(self, node: Node, item: str, value: Value) -> None:
        if item in _CLEARS:
            if value:
                self._clear(node, *_CLEARS[item])
        elif isinstance(node, Channel):
            if item == "Control.on":
                physics.apply_switch(node)
            elif item == "Control.emergency":
                physics.emergency(node, bool(value))
            elif item == "Setup.outputPolarity":
                node.sign = -1.0 if value == "n" else 1.0
            self._run(node)
        elif isinstance(node, Module):
            if item == "Control.adjustment":
                node.put("Status.adjustment", value)
            for ch in node.channels:
                self._run(ch)
        elif isinstance(node, Crate):
            if item == "Control.power":
                self._power(node, bool(value))
        elif item == "Control.liveInsertion":
            node.put("Status.liveInsertion", value)

    def _clear(self, node: Node, events: bool, errors: bool) -> None:
        for target in _nodes_below(node):
            target.clear_latches(events, errors)
            if events:
                target.put("Status.currentTrip", False)
                target.put("Status.inputError", False)
        for ch in _channels_below(node):
            physics.relatch(ch)
            physics.apply_switch(ch)
            self._run(ch)

    def _power(self, crate: Crate, on: bool) -> None:
        if crate.powered == on:
            return
        crate.powered = on
        crate.put("Status.power", on)
        for module in crate.modules:
            module.put("Status.isAlive", on)
            for ch in module.channels:
                physics.off_now(ch)
                self._active.discard(ch)

    def set_clients(self, count: int) -> None:
        """Report how many client sessions are open."""
        self._system.put("Status.connectedClients", count)

    # --- faults -------------------------------------------------------------------

    def force_trip(self, path: ItemPath) -> None:
        """Trip a channel (or every channel of a module or crate) at once."""
        for ch in self._channels_at(path):
            if ch.module.alive:
                physics.force_trip(ch)
                self._run(ch)
        aggregate(self._ledger)

    def set_inhibit(self, path: ItemPath, active: bool) -> None:
        """Raise or drop the external inhibit of a channel, or of a module's or crate's."""
        for ch in self._channels_at(path):
            physics.set_inhibit(ch, active)
            self._run(ch)
        aggregate(self._ledger)

    def _channels_at(self, path: ItemPath) -> list[Channel]:
        node = self._tree.nodes.get(path)
        if node is None:
            raise KeyError(f"no object at {path}")
        return _channels_below(node)


def _modules_at(node: Node) -> list[Module]:
    if isinstance(node, Crate):
        return node.modules
    return [node] if isinstance(node, Module) else []


def _channels_below(node: Node) -> list[Channel]:
    """The channels at or below an object."""
    if isinstance(node, Channel):
        return [node]
    return [ch for module in _modules_at(node) for ch in module.channels]


def _nodes_below(node: Node) -> list[Node]:
    """An object and every object below it."""
    if isinstance(node, Channel):
        return [node]
    return [node, *_modules_at(node), *_channels_below(node)]
