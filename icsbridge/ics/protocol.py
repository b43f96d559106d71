"""The iCS WebSocket protocol as data: every frame built and parsed, with no I/O.

Frames are JSON text. `encode` turns a message into a frame; `parse_client_frame` and
`parse_server_frame` turn a frame into messages. Parsing accepts every variant seen in
the field (array or bare object, integer path parts, crate address `""`, values as
numbers, unknown keys) and raises `ProtocolError`, and only that, for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple

from icsbridge.model import CRATE_ADDRESS, ItemPath

MAX_PACKETS: Final = 100
"""Most packets the client puts into one request frame."""

WILDCARD: Final = "*"


class ProtocolError(ValueError):
    """A frame, or a part of one, that is not valid iCS protocol."""


class Mode(StrEnum):
    """How the server delivers changes: pushed over the socket, or collected by polling."""

    WEBSOCKET = "websocket"
    XHR = "xhr"


class Command(StrEnum):
    """The commands of a request packet."""

    GET_ITEM = "getItem"
    SET_ITEM = "setItem"
    GET_UPDATE = "getUpdate"


PathPart = int | None | Literal["*"]


class Selector(NamedTuple):
    """A path in a request: like `ItemPath`, but any part may be the wildcard `"*"`."""

    line: PathPart = None
    address: PathPart = None
    channel: PathPart = None

    def matches(self, path: ItemPath) -> bool:
        """Whether a concrete path is one of those this selector names."""
        return all(
            part == have or (part == WILDCARD and have is not None)
            for part, have in zip(self, path, strict=True)
        )


# --- messages from client to server -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login:
    """Open a session; the reply is a `Trigger` that carries the session id."""

    user: str
    password: str
    ticket: str = ""
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class Packet:
    """One command of a request: get, set or poll one item of the objects a selector names."""

    command: Command
    selector: Selector
    item: str
    value: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    """A batch of packets under one session."""

    session: str
    packets: tuple[Packet, ...]
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Are you alive? Either side sends it; the server echoes it."""

    session: str
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class Logout:
    """End the session."""

    session: str
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class ScriptRequest:
    """Manage scripts on the iCS host: `command` plus its arguments (`n`, `i`, `v`, `d`, `t`)."""

    session: str
    command: str
    args: Mapping[str, Any] = field(default_factory=dict)
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class GetConfig:
    """Ask for the iCS configuration file."""

    session: str
    mode: Mode = Mode.WEBSOCKET


@dataclass(frozen=True, slots=True)
class SetConfig:
    """Upload an iCS configuration file, base64 encoded."""

    session: str
    file: str
    data: str
    mode: Mode = Mode.WEBSOCKET


ClientMessage = Login | Request | Heartbeat | Logout | ScriptRequest | GetConfig | SetConfig

# --- messages from server to client -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trigger:
    """An acknowledgement: the login reply (with the new session id) or a setItem ack."""

    session: str
    accepted: bool


class ItemRecord(NamedTuple):
    """One item value of one concrete object, as the iCS reports it (value and unit raw).

    A named tuple, not a frozen dataclass: the client makes one for every record it is
    pushed, and a tuple is made in half the time."""

    path: ItemPath
    item: str
    value: str
    unit: str = ""
    time: float | None = None


@dataclass(frozen=True, slots=True)
class ItemRecords:
    """Item values: a `response` to a request or an unsolicited `info` push.

    A record that does not parse is left out on its own; `rejected` says why."""

    session: str
    records: tuple[ItemRecord, ...]
    kind: Literal["response", "info"] = "info"
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionError:
    """A `connection-error` event: the server no longer knows the session."""

    session: str
    message: str


@dataclass(frozen=True, slots=True)
class ScriptEvent:
    """One event of a script reply, such as `scriptStatus` or `availableScripts`."""

    event: str
    data: Any = None
    name: str = ""
    script_id: str = ""


@dataclass(frozen=True, slots=True)
class ScriptReply:
    """The server's answer to a script request."""

    session: str
    events: tuple[ScriptEvent, ...]


@dataclass(frozen=True, slots=True)
class ConfigReply:
    """The iCS configuration file, base64 encoded."""

    session: str
    file: str
    data: str


ServerMessage = Trigger | ItemRecords | SessionError | Heartbeat | ScriptReply | ConfigReply
Message = ClientMessage | ServerMessage

# --- encoding ----------------------------------------------------------------------


PLAIN_DIGITS: Final = 15
"""Significant digits a float keeps on the wire: all a double holds for sure."""
PLAIN_DECIMALS: Final = 12
"""Decimal places a float keeps on the wire: a pico unit (pA, pV) is the finest."""
PLAIN_LIMIT: Final = 1e15
"""Magnitude from which a float has no plain form of `PLAIN_DIGITS` digits."""


def format_value(value: bool | int | float | str) -> str:
    """A value as the wire string the iCS expects: booleans as 0/1, numbers in a plain,
    short form: no exponent, at most 15 significant digits and 12 decimals."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not abs(value) < PLAIN_LIMIT:  # NaN too
            raise ProtocolError(f"cannot send {value!r}")
        digits = format(Decimal(format(value, f".{PLAIN_DIGITS}g")), f".{PLAIN_DECIMALS}f")
        plain = digits.rstrip("0").rstrip(".") if "." in digits else digits
        return "0" if plain == "-0" else plain
    return str(value)


def _part(part: PathPart) -> str:
    return "" if part is None else str(part)


def path_json(path: Iterable[PathPart]) -> dict[str, str]:
    """The `p` object of a path or selector."""
    line, address, channel = path
    return {"l": _part(line), "a": _part(address), "c": _part(channel)}


def record_json(record: ItemRecord) -> dict[str, Any]:
    """The `{"e": "itemUpdated", "d": ...}` entry of one record."""
    data: dict[str, Any] = {
        "p": path_json(record.path),
        "i": record.item,
        "v": record.value,
        "u": record.unit,
    }
    if record.time is not None:
        data["t"] = f"{record.time:.4f}"
    return {"e": "itemUpdated", "d": data}


def _envelope(message: Message) -> dict[str, Any]:
    match message:
        case Login(user, password, ticket, mode):
            return {"i": "", "t": "login", "c": {"l": user, "p": password, "t": ticket}, "r": mode}
        case Request(session, packets, mode):
            return {
                "i": session,
                "t": "request",
                "r": mode,
                "c": [
                    {
                        "c": p.command,
                        "p": {"p": path_json(p.selector), "i": p.item, "v": p.value, "u": p.unit},
                    }
                    for p in packets
                ],
            }
        case Heartbeat(session, mode):
            return {"i": session, "t": "heartbeat", "c": [], "r": mode}
        case Logout(session, mode):
            return {"i": session, "t": "logout", "c": {}, "r": mode}
        case ScriptRequest(session, command, args, mode):
            return {"i": session, "t": "script", "c": {"c": command, **args}, "r": mode}
        case GetConfig(session, mode):
            return {"i": session, "t": "getConfig", "c": [], "r": mode}
        case SetConfig(session, file, data, mode):
            return {"i": session, "t": "setConfig", "f": file, "c": [], "d": data, "r": mode}
        case Trigger(session, accepted):
            trigger = "true" if accepted else "false"
            return {"i": session, "t": "trigger", "c": [], "trigger": trigger, "r": "websocket"}
        case ItemRecords(session, records, kind):
            return {
                "i": session,
                "t": kind,
                "r": "websocket",
                "c": [record_json(r) for r in records],
            }
        case SessionError(session, text):
            return {"i": session, "t": "info", "c": [{"e": "connection-error", "d": {"m": text}}]}
        case ScriptReply(session, events):
            return {
                "i": session,
                "t": "script",
                "c": [
                    {
                        "e": e.event,
                        "d": e.data,
                        **({"n": e.name} if e.name else {}),
                        **({"i": e.script_id} if e.script_id else {}),
                    }
                    for e in events
                ],
            }
        case ConfigReply(session, file, data):
            return {"i": session, "t": "getConfig", "c": [], "file": file, "d": data}
    raise TypeError(f"not a protocol message: {message!r}")


def encode(*messages: Message, array: bool = False) -> str:
    """One frame holding the messages: a bare object, or an array when asked or needed."""
    envelopes = [_envelope(m) for m in messages]
    if len(envelopes) == 1 and not array:
        return json.dumps(envelopes[0], ensure_ascii=False, separators=(",", ":"))
    return json.dumps(envelopes, ensure_ascii=False, separators=(",", ":"))


def request_frames(
    session: str, packets: Iterable[Packet], mode: Mode = Mode.WEBSOCKET
) -> Iterator[str]:
    """Request frames for any number of packets, at most `MAX_PACKETS` to a frame."""
    batch: list[Packet] = []
    for packet in packets:
        batch.append(packet)
        if len(batch) == MAX_PACKETS:
            yield encode(Request(session, tuple(batch), mode))
            batch = []
    if batch:
        yield encode(Request(session, tuple(batch), mode))


# --- decoding ----------------------------------------------------------------------


def _load(text: str | bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    envelopes = data if isinstance(data, list) else [data]
    for envelope in envelopes:
        if not isinstance(envelope, dict):
            raise ProtocolError(f"envelope is not an object: {envelope!r:.80}")
    return envelopes


def _text(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise ProtocolError(f"missing {key!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    raise ProtocolError(f"{key!r} is not a string: {value!r:.80}")


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{key!r} is not an object: {value!r:.80}")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ProtocolError(f"{key!r} is not a list: {value!r:.80}")
    return value


def _number(text: Any, what: str) -> int | None:
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        raise ProtocolError(f"{what} is not a number: {text!r}")
    if isinstance(text, int):
        number = text
    elif isinstance(text, str) and text.strip().isdigit():
        number = int(text)
    else:
        raise ProtocolError(f"{what} is not a number: {text!r:.40}")
    if number < 0:
        raise ProtocolError(f"{what} is negative: {number}")
    return number


def _selector_part(text: Any, what: str) -> PathPart:
    if text == WILDCARD:
        return WILDCARD
    return _number(text, what)


def parse_selector(data: Mapping[str, Any]) -> Selector:
    """A request path object `{"l", "a", "c"}`, wildcards allowed."""
    line = _selector_part(data.get("l"), "line")
    address = _selector_part(data.get("a"), "address")
    channel = _selector_part(data.get("c"), "channel")
    if line is not None and address is None:
        address = CRATE_ADDRESS
    return Selector(line, address, channel)


def parse_path(data: Mapping[str, Any]) -> ItemPath:
    """A concrete path object `{"l", "a", "c"}` of a record; `a: ""` on a line is the crate."""
    line = _number(data.get("l"), "line")
    address = _number(data.get("a"), "address")
    channel = _number(data.get("c"), "channel")
    if line is None:
        if address is not None or channel is not None:
            raise ProtocolError(f"path without a line: {dict(data)!r:.80}")
    elif address is None:
        if channel is not None:
            raise ProtocolError(f"channel without an address: {dict(data)!r:.80}")
        address = CRATE_ADDRESS
    return ItemPath(line, address, channel)


def parse_time(text: Any) -> float | None:
    """An iCS time stamp (seconds since the epoch, as a decimal string) or None."""
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        raise ProtocolError(f"bad time stamp {text!r}")
    try:
        stamp = float(text)
    except (TypeError, ValueError):
        raise ProtocolError(f"bad time stamp {text!r:.40}") from None
    if stamp != stamp or stamp in (float("inf"), float("-inf")):
        raise ProtocolError(f"bad time stamp {text!r:.40}")
    return stamp


_paths: dict[tuple[Any, Any, Any], ItemPath] = {}
"""Paths seen on the wire, by their raw parts: a record's path then costs one lookup."""
_PATHS_MAX: Final = 1 << 16
"""Paths kept at most: more objects than any iCS has, few enough that a peer inventing
paths cannot grow memory much (about 15 MiB)."""


def parse_record(data: Any) -> ItemRecord:
    """The `d` object of an `itemUpdated` event."""
    try:  # the common shape first: every field a string, path seen before
        raw = data["p"]
        path = _paths[raw["l"], raw["a"], raw["c"]]
        item, value, unit, stamp = data["i"], data["v"], data.get("u", ""), data["t"]
        if str is type(item) is type(value) is type(unit) is type(stamp) and item:
            time = float(stamp)
            if time - time == 0.0:
                return ItemRecord(path, item, value, unit, time)
    except (KeyError, TypeError, ValueError):
        pass
    return _parse_record_checked(data)


def _parse_record_checked(data: Any) -> ItemRecord:
    if not isinstance(data, dict):
        raise ProtocolError(f"record is not an object: {data!r:.80}")
    item = _text(data, "i")
    if not item:
        raise ProtocolError("record without an item name")
    raw = _object(data, "p")
    path = parse_path(raw)
    parts = (raw.get("l"), raw.get("a"), raw.get("c"))
    if len(_paths) < _PATHS_MAX and all(type(part) is str for part in parts):
        _paths[parts] = path
    return ItemRecord(
        path=path,
        item=item,
        value=_text(data, "v", ""),
        unit=_text(data, "u", ""),
        time=parse_time(data.get("t")),
    )


def _mode(envelope: Mapping[str, Any]) -> Mode:
    mode = envelope.get("r", Mode.WEBSOCKET)
    if mode in ("xhr", "HTTP", "http"):
        return Mode.XHR
    if mode in ("websocket", "", None):
        return Mode.WEBSOCKET
    raise ProtocolError(f"unknown response type {mode!r:.40}")


def _packet(data: Any) -> Packet:
    if not isinstance(data, dict):
        raise ProtocolError(f"packet is not an object: {data!r:.80}")
    try:
        command = Command(str(data.get("c")))
    except ValueError:
        raise ProtocolError(f"unknown command {data.get('c')!r:.40}") from None
    body = data.get("p", {})
    if not isinstance(body, dict):
        raise ProtocolError(f"packet body is not an object: {body!r:.80}")
    path = body.get("p", {})
    if not isinstance(path, dict):
        raise ProtocolError(f"packet path is not an object: {path!r:.80}")
    return Packet(
        command=command,
        selector=parse_selector(path),
        item=_text(body, "i", ""),
        value=_text(body, "v", ""),
        unit=_text(body, "u", ""),
    )


def _client_message(envelope: dict[str, Any]) -> ClientMessage:
    kind = envelope.get("t")
    session = _text(envelope, "i", "")
    mode = _mode(envelope)
    match kind:
        case "login":
            content = _object(envelope, "c")
            return Login(
                _text(content, "l", ""), _text(content, "p", ""), _text(content, "t", ""), mode
            )
        case "request":
            return Request(session, tuple(_packet(p) for p in _list(envelope, "c")), mode)
        case "heartbeat":
            return Heartbeat(session, mode)
        case "logout":
            return Logout(session, mode)
        case "script":
            content = _object(envelope, "c")
            command = _text(content, "c", "")
            if not command:
                raise ProtocolError("script frame without a command")
            args = {k: v for k, v in content.items() if k != "c"}
            return ScriptRequest(session, command, args, mode)
        case "getConfig":
            return GetConfig(session, mode)
        case "setConfig":
            return SetConfig(session, _text(envelope, "f", ""), _text(envelope, "d", ""), mode)
    raise ProtocolError(f"unknown frame type {kind!r:.40}")


def parse_client_frame(text: str | bytes) -> list[ClientMessage]:
    """The messages of a frame that a client sent."""
    return [_client_message(envelope) for envelope in _load(text)]


def _server_messages(envelope: dict[str, Any]) -> Iterator[ServerMessage]:
    kind = envelope.get("t")
    session = _text(envelope, "i", "")
    match kind:
        case "response" | "info":
            records: list[ItemRecord] = []
            rejected: list[str] = []
            for event in _list(envelope, "c"):
                if not isinstance(event, dict):
                    rejected.append(f"event is not an object: {event!r:.80}")
                    continue
                name = event.get("e", "itemUpdated")
                if name == "itemUpdated":
                    try:
                        records.append(parse_record(event.get("d")))
                    except ProtocolError as exc:
                        rejected.append(str(exc))
                elif name == "connection-error":
                    detail = event.get("d")
                    message = _text(detail, "m", "") if isinstance(detail, dict) else str(detail)
                    yield SessionError(session, message)
            if records or rejected or kind == "response":
                yield ItemRecords(session, tuple(records), kind, tuple(rejected))
        case "trigger" | "login":
            yield Trigger(session, str(envelope.get("trigger", "true")).lower() != "false")
        case "heartbeat":
            yield Heartbeat(session, _mode(envelope))
        case "script":
            events = []
            for event in _list(envelope, "c"):
                if not isinstance(event, dict):
                    raise ProtocolError(f"script event is not an object: {event!r:.80}")
                events.append(
                    ScriptEvent(
                        _text(event, "e", ""),
                        event.get("d"),
                        _text(event, "n", ""),
                        _text(event, "i", ""),
                    )
                )
            yield ScriptReply(session, tuple(events))
        case "getConfig":
            yield ConfigReply(session, _text(envelope, "file", ""), _text(envelope, "d", ""))
        case _:
            raise ProtocolError(f"unknown frame type {kind!r:.40}")


def parse_server_frame(text: str | bytes) -> list[ServerMessage]:
    """The messages of a frame that a server sent."""
    return [message for envelope in _load(text) for message in _server_messages(envelope)]
