"""What the bridge and a face served in a process of its own say to each other.

Sans-I/O: `encode` makes the bytes of one message, `Frames.feed` turns bytes back into
messages. A frame is a 4-byte big-endian length and a pickle; both ends are the same
program started by the bridge itself, over a socket pair nobody else holds. Item values
travel with their index in the mapping's item list, which both ends hold alike.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import Any

from icsbridge.ics.client import LinkState
from icsbridge.ics.values import Value
from icsbridge.mapping.document import Mapping
from icsbridge.model import ItemKey

LENGTH = struct.Struct(">I")

Row = tuple[int, Value, str, float | None]
"""One item update: index in the mapping's items, value, base unit, iCS time stamp."""


@dataclass(frozen=True, slots=True)
class LinkChange:
    """The iCS link changed state, or fell silent, or talks again."""

    state: LinkState
    silent: bool


@dataclass(frozen=True, slots=True)
class Start:
    """The first message to a face: what to serve, how, and everything known so far."""

    mapping: Mapping
    link: LinkChange
    values: list[Row]
    settings: dict[str, Any]
    """The face's own settings (endpoint, security, log verbosity)."""


@dataclass(frozen=True, slots=True)
class Values:
    """New values of items in order; only the newest of each when the face lags far behind."""

    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Write:
    """A client of the face writes an item."""

    ident: int
    key: ItemKey
    value: object
    who: str
    via: str


@dataclass(frozen=True, slots=True)
class Written:
    """How a `Write` ended: the value the iCS confirmed, or the exception that failed it."""

    ident: int
    value: Value | None = None
    error: BaseException | None = None


Message = Start | Values | LinkChange | Write | Written


def encode(message: Message) -> bytes:
    """One message as a frame."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(body)) + body


class Frames:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """The messages that `data` completes, in order."""
        buffer = self._buffer
        buffer += data
        messages = []
        start = 0
        while len(buffer) - start >= LENGTH.size:
            (size,) = LENGTH.unpack_from(buffer, start)
            end = start + LENGTH.size + size
            if len(buffer) < end:
                break
            with memoryview(buffer) as view:
                messages.append(pickle.loads(view[start + LENGTH.size : end]))
            start = end
        del buffer[:start]
        return messages
