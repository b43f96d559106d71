"""What the simulated iCS answers: sessions, subscriptions, replies and pushes, without I/O.

The server hands every client message to a `Service` and sends the messages it returns.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from xml.etree import ElementTree

from icsbridge.catalog import INPUT_ERROR_ITEMS
from icsbridge.ics.protocol import (
    Command,
    ConfigReply,
    ItemRecord,
    ItemRecords,
    Login,
    Mode,
    Request,
    ScriptReply,
    ScriptRequest,
    Selector,
    Trigger,
    encode,
    record_json,
)
from icsbridge.ics.sim.model import SimModel
from icsbridge.ics.sim.scripts import ScriptHost
from icsbridge.ics.sim.topology import Topology
from icsbridge.ics.units import Unit, parse_unit
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey, ItemPath

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Template:
    """An item's record JSON before its value, its output unit's conversion, the JSON after,
    and the entries of the float values it last took: churn moves a reading back and forth
    between two values, so each is formatted once."""

    head: str
    convert: Callable[[float], float] | None
    tail: str
    entries: dict[float, str] = field(default_factory=dict)


_VALUE = "\x00value"
"""Stands for the value while a template is made."""

_NONE = '"c":[]'
"""The records of an empty ItemRecords frame, where churn puts its own."""

_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))

CONFIG_FILE = "iCSConfig.xml"


def wire(value: Value) -> str:
    """A value as the iCS sends it: booleans 0/1, floats in their shortest form."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def config_xml(topology: Topology) -> str:
    """A small iCS configuration file describing the simulated hardware."""
    root = ElementTree.Element("iCSconfig")
    for line in topology.lines:
        node = ElementTree.SubElement(root, "line", id=str(line.line))
        ElementTree.SubElement(
            node,
            "crate",
            address="1000",
            serial=str(line.crate.serial),
            firmware=line.crate.firmware_name,
        )
        for module in line.modules:
            ElementTree.SubElement(
                node,
                "module",
                address=str(module.address),
                type=module.type,
                serial=str(module.serial),
                channels=str(module.channels),
            )
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


@dataclass(slots=True, eq=False)
class Session:
    """One login: how it gets changes and what it subscribed to."""

    id: str
    user: str
    mode: Mode
    subscriptions: set[ItemKey] = field(default_factory=set)
    pending: dict[ItemKey, None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """What one request frame produces for its sender, in order, and what follows from it."""

    messages: tuple[Trigger | ItemRecords, ...]
    wrote: bool = False
    logout: bool = False


class Service:
    """The sessions of the simulated iCS and its answers to them."""

    def __init__(
        self,
        model: SimModel,
        users: Mapping[str, str],
        *,
        epoch: float = 0.0,
        output_units: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.users = dict(users)
        self.epoch = epoch
        self.sessions: dict[str, Session] = {}
        self.scripts = ScriptHost()
        self._prefix = secrets.token_hex(7)[:13]
        self._logins = 0
        self._units: dict[str, tuple[str, Unit]] = {}
        self._templates: dict[ItemKey, Template] = {}
        self.output_units = output_units or {}

    # --- sessions -----------------------------------------------------------------

    def login(self, message: Login) -> Session | None:
        """Open a session for valid credentials, or None."""
        if message.user not in self.users or self.users[message.user] != message.password:
            return None
        self._logins += 1
        session = Session(f"{self._prefix}-{self._logins}", message.user, message.mode)
        self.sessions[session.id] = session
        self.model.set_clients(len(self.sessions))
        return session

    def logout(self, session_id: str) -> None:
        """End a session (no matter if it is still open)."""
        if self.sessions.pop(session_id, None) is not None:
            self.model.set_clients(len(self.sessions))

    def find(self, session_id: str) -> Session | None:
        """The open session with this id, or None."""
        return self.sessions.get(session_id)

    # --- units and records --------------------------------------------------------

    @property
    def output_units(self) -> dict[str, str]:
        """Items of base unit X are reported in unit `output_units[X]` (default: X itself)."""
        return {base: name for base, (name, _) in self._units.items()}

    @output_units.setter
    def output_units(self, units: Mapping[str, str]) -> None:
        table = {}
        for base, name in units.items():
            unit = parse_unit(name)
            if unit.base != base:
                raise ValueError(f"{name!r} is not a unit of {base!r}")
            table[base] = (name, unit)
        self._units = table
        self._templates = {}

    def _output(self, unit: str) -> tuple[str, Callable[[float], float] | None]:
        """The unit an item of base unit `unit` is reported in, and how its float values
        are converted to it (None: reported as they are)."""
        if unit not in self._units:
            return unit, None
        name, output = self._units[unit]
        return name, lambda value: float(f"{output.from_base(value):.12g}")

    @property
    def stamp(self) -> float:
        """The time stamp of records made now: the epoch plus the simulated time."""
        return self.epoch + self.model.now

    def record(
        self,
        key: ItemKey,
        session: Session | None = None,
        stamp: float | None = None,
        value: Value | None = None,
    ) -> ItemRecord:
        """One item's value (default: its current one) as a record, in its output unit."""
        spec = self.model.spec(key.path, key.item)
        value = self.model.value(key) if value is None else value
        unit, convert = self._output(spec.unit if spec else "")
        if convert is not None and isinstance(value, float):
            value = convert(value)
        if key.item == "Status.sessionId" and session is not None:
            value = session.id
        return ItemRecord(
            key.path, key.item, wire(value), unit, self.stamp if stamp is None else stamp
        )

    def records(self, keys: Iterable[ItemKey], session: Session) -> tuple[ItemRecord, ...]:
        """Records of several items for one session."""
        return tuple(self.record(key, session) for key in keys)

    # --- requests -----------------------------------------------------------------

    def request(self, session: Session, request: Request, *, refuse_writes: bool = False) -> Reply:
        """Run a request's packets in order: one trigger for its sets, one response for reads."""
        wrote = reads = logout = False
        accepted = True
        keys: list[ItemKey] = []
        input_errors: list[ItemPath] = []
        for packet in request.packets:
            if packet.command is Command.SET_ITEM:
                wrote = True
                if refuse_writes:
                    accepted = False
                    continue
                result = self.model.write(packet.selector, packet.item, packet.value, packet.unit)
                if not result.accepted:
                    accepted = False
                    log.info(
                        "setItem %s %s=%r refused: %s",
                        tuple(packet.selector),
                        packet.item,
                        packet.value,
                        result.reason,
                    )
                input_errors.extend(result.input_errors)
                logout = logout or (
                    result.accepted
                    and packet.item == "Control.logout"
                    and packet.selector == Selector()
                )
            elif packet.command is Command.GET_ITEM:
                reads = True
                found = self.model.select(packet.selector, packet.item)
                session.subscriptions.update(found)
                keys.extend(found)
            else:
                reads = True
                if session.mode is Mode.XHR:
                    keys.extend(session.pending)
                    session.pending.clear()
        messages: list[Trigger | ItemRecords] = []
        if wrote:
            messages.append(Trigger(session.id, accepted))
        if reads:
            messages.append(ItemRecords(session.id, self.records(keys, session), "response"))
        if input_errors:
            flags = [
                ItemKey(*path, item)
                for path in input_errors
                for item in INPUT_ERROR_ITEMS
                if self.model.spec(path, item)
            ]
            messages.append(ItemRecords(session.id, self.records(flags, session), "info"))
        return Reply(tuple(messages), wrote=wrote and not refuse_writes, logout=logout)

    def publish(self) -> list[tuple[Session, ItemRecords]]:
        """Hand out the model's changes: an info push per websocket session, xhr ones collect.

        A session gets the items it subscribed to and every system item.
        """
        keys = self.model.drain_changes()
        if not keys:
            return []
        made: dict[ItemKey, ItemRecord] = {}
        pushes = []
        for session in self.sessions.values():
            subscribed = session.subscriptions
            mine = [key for key in keys if key.line is None or key in subscribed]
            if not mine:
                continue
            if session.mode is Mode.XHR:
                session.pending.update(dict.fromkeys(mine))
                continue
            records = []
            for key in mine:
                if key not in made:
                    made[key] = self.record(key, session)
                records.append(made[key])
            pushes.append((session, ItemRecords(session.id, tuple(records), "info")))
        return pushes

    def churn(self, count: int, stamp: float) -> list[tuple[Session, str]]:
        """`count` fresh channel readings stamped `stamp`, as one frame for each session that
        wants them: the frame `encode` makes of their records, put together from per-item
        templates, since a bench load asks for tens of thousands a second."""
        moves = self.model.churn(count)
        end = f',"t":"{stamp:.4f}"}}}}'
        frames = []
        for session in self.sessions.values():
            if session.mode is Mode.XHR:
                continue
            subscribed = session.subscriptions
            entries = [self._entry(key, value) for key, value in moves if key in subscribed]
            if entries:  # one join makes the frame: it is the size of a few hundred kB
                head, tail = encode(ItemRecords(session.id, (), "info"), array=True).split(_NONE)
                entries[0] = f'{head}"c":[{entries[0]}'
                entries[-1] = f"{entries[-1]}{end}]{tail}"
                frames.append((session, f"{end},".join(entries)))
        return frames

    def _entry(self, key: ItemKey, value: Value) -> str:
        """One record's JSON without its time and closing braces."""
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._template(key)
        if type(value) is float:  # the common case
            entries = template.entries
            entry = entries.get(value)
            if entry is None:
                if len(entries) > 1:
                    entries.clear()
                shown = value if template.convert is None else template.convert(value)
                text = wire(shown) if shown.is_integer() else repr(shown)
                entry = entries[value] = f'{template.head}"{text}"{template.tail}'
            return entry
        text = wire(value)
        quoted = f'"{text}"' if isinstance(value, int | float) else _dumps(text)
        return f"{template.head}{quoted}{template.tail}"

    def _template(self, key: ItemKey) -> Template:
        """An item's record JSON split around its value, and its output unit's conversion."""
        spec = self.model.spec(key.path, key.item)
        unit, convert = self._output(spec.unit if spec else "")
        entry = record_json(ItemRecord(key.path, key.item, _VALUE, unit, None))
        head, tail = _dumps(entry).removesuffix("}}").split(_dumps(_VALUE))
        return Template(head, convert, tail)

    def burst(self, count: int) -> list[tuple[Session, ItemRecords]]:
        """`count` extra records at once for every websocket session: its channel items again."""
        pushes = []
        for session in self.sessions.values():
            if session.mode is Mode.XHR:
                continue
            pool = [key for key in session.subscriptions if key.channel is not None] or (
                self.model.select(Selector("*", "*", "*"), "Status.voltageMeasure")
            )
            keys = [pool[index % len(pool)] for index in range(count)]
            pushes.append((session, ItemRecords(session.id, self.records(keys, session), "info")))
        return pushes

    # --- scripts and configuration ------------------------------------------------

    def script(self, session: Session, message: ScriptRequest) -> ScriptReply:
        """The answer to a script frame."""
        events = self.scripts.handle(session.id, message.command, message.args)
        return ScriptReply(session.id, events)

    def config(self, session: Session) -> ConfigReply:
        """The iCS configuration file, base64 encoded."""
        data = base64.b64encode(config_xml(self.model.topology).encode()).decode("ascii")
        return ConfigReply(session.id, CONFIG_FILE, data)
