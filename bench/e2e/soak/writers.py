"""Confirmed writes from both faces, a few a second, each with a value no other write has.

    python -m e2e.soak.writers CA_PORT ENDPOINT USER PASSWORD TARGETS_FILE   (bench/ on the path)

Channel Access: a put with callback (WriteNotify) over one circuit driven by caproto's
sans-I/O `VirtualCircuit`. A put the bridge fails comes back as an ErrorResponse carrying
the bridge's message; libca's put callback (and so pyepics') passes on only the status, and
caproto's threading and asyncio clients drop the response, so neither could tell refused
from unconfirmed. OPC UA: asyncua, a session of an operator from the bridge's users file.

TARGETS_FILE is JSON: per face ("CA", "OPC UA") a list of set points `{"name", "key",
"high"}` (PV name or node id, item key, upper drive limit) and the `namespace`. Writes go
round robin over a face's targets; write number n (counted over both faces) sets
100 + n/100, or, every INVALID_EVERY-th of a face, high + 1 + n/100, which the bridge must
refuse. One command per stdin
line, one JSON answer each:

- `start RATE INVALID_EVERY ANSWER_TIMEOUT`: RATE writes/s per face from now on; a write
  with no answer within ANSWER_TIMEOUT s ends as "no answer" -> `started`.
- `results`: the writes ended since the last `results` -> `writes`, `pending`.
- `pause`: start no more writes -> `pending`.

Each write ends as confirmed, refused (decided by the bridge, nothing sent), down (the link
was not ready, nothing sent), unconfirmed (sent, not confirmed in time), failed (any other
failure) or no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import caproto as ca
from asyncua import Client, ua

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 15.0
BASE = 100.0
"""The first valid value; write number n adds n/100."""
UA_OUTCOMES = {
    "Good": "confirmed",
    "BadOutOfRange": "refused",
    "BadTypeMismatch": "refused",
    "BadNotWritable": "refused",
    "BadUserAccessDenied": "refused",
    "BadCommunicationError": "down",
    "BadTimeout": "unconfirmed",
}
"""What each OPC UA status code of a write means; any other is a failure."""
REFUSED = re.compile(r"\b\w*Refused\b")
"""A CA put failure the bridge decided itself: its message names a WriteRefused class."""


def ca_outcome(message: str) -> str:
    """The outcome a CA put failure's message reports."""
    if "unconfirmed" in message:
        return "unconfirmed"
    if "nothing sent" in message:
        return "down"
    return "refused" if REFUSED.search(message) else "failed"


@dataclass(slots=True)
class Write:
    """One write and how it ended."""

    n: int
    face: str
    name: str
    key: str
    value: float
    invalid: bool
    start: float
    end: float = 0.0
    outcome: str = ""
    detail: str = ""


class Face(Protocol):
    """A client of one face of the bridge that can write a double."""

    async def connect(self) -> None:
        """Open the connection (again)."""

    async def write(self, name: str, value: float, timeout: float) -> tuple[str, str]:
        """Write `value` to `name`; the outcome and what the bridge said."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop the connection."""


class CaCircuit:
    """One CA client circuit to the bridge, its channels created once."""

    def __init__(self, port: int, names: list[str]) -> None:
        self.port = port
        self.names = names
        self.pending: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self.stream: asyncio.StreamWriter | None = None
        self.reading: asyncio.Task[None] | None = None

    def _send(self, *commands: Any) -> None:
        if self.stream is None:
            raise ConnectionError("CA circuit not connected")
        self.stream.write(b"".join(self.circuit.send(*commands)))

    async def connect(self) -> None:
        """Open the circuit and create every channel."""
        self.close()
        reader, self.stream = await asyncio.open_connection(HOST, self.port)
        self.circuit = ca.VirtualCircuit(ca.CLIENT, (HOST, self.port), 0)
        self.channels = {name: ca.ClientChannel(name, self.circuit) for name in self.names}
        first = self.channels[self.names[0]]
        self._send(first.version(), first.host_name("soak"), first.client_name("soak-writer"))
        self._send(*(channel.create() for channel in self.channels.values()))
        self.reading = asyncio.create_task(self._read(reader, self.stream))
        async with asyncio.timeout(CONNECT_TIMEOUT):
            while not all(c.states[ca.CLIENT] is ca.CONNECTED for c in self.channels.values()):
                await asyncio.sleep(0.05)

    async def _read(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                commands, _ = self.circuit.recv(data)
                for command in commands:
                    with contextlib.suppress(ca.CaprotoError):
                        self.circuit.process_command(command)
                        self._answer(command)
        finally:
            if self.stream is stream:
                self.close()

    def _answer(self, command: Any) -> None:
        if isinstance(command, ca.WriteNotifyResponse):
            done = self.pending.pop(command.ioid, None)
            ok = bool(command.status.success)
            outcome = ("confirmed", "") if ok else ("failed", str(command.status.name))
        elif isinstance(command, ca.ErrorResponse):
            done = self.pending.pop(command.original_request.parameter2, None)
            message = bytes(command.error_message).rstrip(b"\0").decode("utf-8", "replace")
            outcome = (ca_outcome(message), message)
        else:
            return
        if done is not None and not done.done():
            done.set_result(outcome)

    async def write(self, name: str, value: float, timeout: float) -> tuple[str, str]:
        """A put with callback of `value`; its outcome and the bridge's message."""
        command = self.channels[name].write([value], data_type=ca.ChannelType.DOUBLE, notify=True)
        done: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self.pending[command.ioid] = done
        self._send(command)
        try:
            async with asyncio.timeout(timeout):
                return await done
        except TimeoutError:
            return "no answer", f"no put callback within {timeout:g} s"
        finally:
            self.pending.pop(command.ioid, None)

    def close(self) -> None:
        """Drop the circuit; writes waiting on it fail."""
        for done in self.pending.values():
            if not done.done():
                done.set_result(("failed", "CA circuit closed"))
        self.pending.clear()
        if self.stream is not None:
            self.stream.close()
            self.stream = None


class UaSession:
    """One OPC UA session of an operator."""

    def __init__(self, endpoint: str, user: str, password: str, namespace: str) -> None:
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.namespace = namespace
        self.client: Client | None = None
        self.closing: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open the session."""
        client = Client(self.endpoint, timeout=CONNECT_TIMEOUT)
        client.set_user(self.user)
        client.set_password(self.password)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await client.connect()
        self.ns = await client.get_namespace_index(self.namespace)
        self.client = client

    async def write(self, name: str, value: float, timeout: float) -> tuple[str, str]:
        """A Write of the Value `value`; its outcome and status code."""
        if self.client is None:
            raise ConnectionError("OPC UA session not connected")
        node = self.client.get_node(ua.NodeId(name, self.ns))
        data = ua.DataValue(ua.Variant(value, ua.VariantType.Double))
        try:
            async with asyncio.timeout(timeout):
                await node.write_attribute(ua.AttributeIds.Value, data)
        except ua.UaStatusCodeError as exc:
            status = ua.StatusCode(exc.code).name
            return UA_OUTCOMES.get(status, "failed"), status
        except TimeoutError:
            return "no answer", f"no answer within {timeout:g} s"
        return "confirmed", "Good"

    def close(self) -> None:
        """Forget the session (it is reopened before the next write)."""
        client, self.client = self.client, None
        if client is not None:
            self.closing = asyncio.get_running_loop().create_task(client.disconnect())


class Writers:
    """Both faces' writes, their counter and their outcomes."""

    def __init__(self, faces: dict[str, Face], targets: dict[str, list[dict[str, Any]]]) -> None:
        self.faces = faces
        self.targets = targets
        self.numbers = itertools.count(1)
        self.ended: list[Write] = []
        self.pending: set[asyncio.Task[None]] = set()
        self.broken: set[str] = set(faces)
        self.connecting = {face: asyncio.Lock() for face in faces}
        self.paused = asyncio.Event()
        self.ticking: list[asyncio.Task[None]] = []

    async def one(self, face: str, write: Write, timeout: float) -> None:
        """Make one write and record how it ended."""
        client = self.faces[face]
        try:
            async with self.connecting[face]:
                if face in self.broken:
                    await client.connect()
                    self.broken.discard(face)
            write.outcome, write.detail = await client.write(write.name, write.value, timeout)
        except Exception as exc:
            self.broken.add(face)
            client.close()
            write.outcome, write.detail = "failed", f"{type(exc).__name__}: {exc}"[:300]
        write.end = time.time()
        self.ended.append(write)

    async def tick(self, face: str, rate: float, invalid_every: int, timeout: float) -> None:
        """Start RATE writes a second on one face until paused."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        for count, target in enumerate(itertools.cycle(self.targets[face]), 1):
            if self.paused.is_set():
                return
            n = next(self.numbers)
            invalid = count % invalid_every == 0
            value = round((target["high"] + 1 if invalid else BASE) + n / 100, 2)
            write = Write(n, face, target["name"], target["key"], value, invalid, time.time())
            task = asyncio.create_task(self.one(face, write, timeout))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def run(self, line: str) -> dict[str, object]:
        """The answer to one command line."""
        command, *args = line.split()
        match command:
            case "start":
                rate, invalid_every, timeout = float(args[0]), int(args[1]), float(args[2])
                for face in self.faces:
                    work = self.tick(face, rate, invalid_every, timeout)
                    self.ticking.append(asyncio.create_task(work))
                return {"started": len(self.ticking)}
            case "results":
                ended, self.ended = self.ended, []
                return {"writes": [asdict(write) for write in ended], "pending": len(self.pending)}
            case "pause":
                self.paused.set()
                return {"pending": len(self.pending)}
        raise ValueError(f"unknown command {command!r}")


async def main(port: str, endpoint: str, user: str, password: str, path: str) -> None:
    """Answer commands from stdin until it closes."""
    targets = json.loads(Path(path).read_text("utf-8"))
    faces: dict[str, Face] = {
        "CA": CaCircuit(int(port), [target["name"] for target in targets["CA"]]),
        "OPC UA": UaSession(endpoint, user, password, targets["namespace"]),
    }
    writers = Writers(faces, targets)
    print(json.dumps({"ready": True}), flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        if not line.strip():
            continue
        try:
            answer = await writers.run(line)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    writers.paused.set()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
