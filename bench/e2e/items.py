"""The items of a size: topology, discovery into a mapping, and what clients and sources need."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from icsbridge.ics.sim.model import CHURN_ITEMS
from icsbridge.mapping.document import ItemEntry, load

from .children import Child, ChildError, child_env, python_command

PER_CHANNEL = 73
PER_MODULE = 38
PER_LINE = 65
"""Items per channel, per module (without its channels), system and crate of a uniform topology."""
CHANNELS = 16
WATCHED = 16
"""Churned items whose final value the convergence check compares (churn moves a value up
and down by one step in turns, so one stale item matches by chance half of the time)."""


def topology_for(items: int) -> tuple[int, int]:
    """Modules and channels per module of a uniform topology with about `items` items."""
    per_module = PER_MODULE + PER_CHANNEL * CHANNELS
    modules = max(1, round((items - PER_LINE) / per_module))
    if modules > 1:
        return modules, CHANNELS
    channels = round((items - PER_LINE - PER_MODULE) / PER_CHANNEL)
    return 1, min(max(channels, 8), CHANNELS)


def discover(url: str, output: Path, env: dict[str, str], timeout: float) -> float:
    """Run `icsbridge discover` against `url` into `output`; its seconds."""
    command = python_command("-m", "icsbridge", "discover", "--ics", url, "-o", str(output))
    child = Child("discover", command, env)
    try:
        child.process.wait(timeout)
    except subprocess.TimeoutExpired as exc:
        raise ChildError(f"discover: not done in {timeout:.0f} s") from exc
    finally:
        child.stop()
    if child.process.returncode != 0:
        raise child.error(f"exited {child.process.returncode}")
    return time.monotonic() - child.started


def _churn_order(entry: ItemEntry) -> tuple[int, int, int, int]:
    return (entry.line or 0, entry.address or 0, entry.channel or 0, CHURN_ITEMS.index(entry.item))


def ident(client: str, entry: ItemEntry) -> str:
    """How a client names an item: its PV name ("ca") or its node id ("ua")."""
    return entry.pv if client == "ca" else entry.nodeid


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """What a client reads, one name a line: every item, and the churned ones."""

    every: Path
    churned: Path


@dataclass(frozen=True, slots=True)
class Items:
    """Every enabled item of a mapping, the churned ones in the simulator's order."""

    entries: list[ItemEntry]
    churned: list[ItemEntry]
    namespace: str

    @classmethod
    def of(cls, mapping: Path, readings: int | None = None) -> Items:
        """From a mapping file; the churned items are every channel reading, or the first
        `readings` of them."""
        document = load(mapping)
        entries = [entry for entry in document.items if not entry.disabled]
        churned = [e for e in entries if e.channel is not None and e.item in CHURN_ITEMS]
        churned = sorted(churned, key=_churn_order)[:readings]
        return cls(entries, churned, document.namespace)

    @property
    def names(self) -> list[str]:
        """Every PV name (no aliases)."""
        return [entry.pv for entry in self.entries]

    def watched(self, first: int) -> list[ItemEntry]:
        """A few measured voltages spread over the first `first` churned items."""
        voltages = [e for e in self.churned[:first] if e.item == "Status.voltageMeasure"]
        if len(voltages) <= WATCHED:
            return voltages
        return [voltages[i * (len(voltages) - 1) // (WATCHED - 1)] for i in range(WATCHED)]

    def write(self, folder: Path, client: str) -> ClientFiles:
        """The files of one client ("ca" or "ua") in `folder`."""
        files = ClientFiles(folder / f"{client}-every.txt", folder / f"{client}-churned.txt")
        for path, entries in ((files.every, self.entries), (files.churned, self.churned)):
            path.write_text("".join(ident(client, entry) + "\n" for entry in entries), "utf-8")
        return files


def key_text(entry: ItemEntry) -> str:
    """An item's key as the simulator driver reads it: `line.address.channel.Group.item`."""
    return f"{entry.line}.{entry.address}.{entry.channel}.{entry.item}"


def start_simulator(
    modules: int,
    channels: int,
    readings: int | None,
    timeout: float,
    env: dict[str, str] | None = None,
) -> tuple[Child, str]:
    """The simulator driver with a uniform quiet topology, churning every channel reading
    or the first `readings`, with `env` added to its environment; it and its URL."""
    driver = str(Path(__file__).parent / "sim_driver.py")
    command = python_command(driver, str(modules), str(channels), str(readings or 0))
    child = Child("simulator", command, child_env(env or {}), stdin=True)
    return child, str(child.reply(timeout)["url"])
