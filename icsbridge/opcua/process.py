"""The OPC UA server in a process of its own, so that it has a core to itself.

The bridge process keeps the iCS link, the cache, the write path and Channel Access; it
starts `python -m icsbridge.opcua.process FD` with one end of a socket pair, sends it the
mapping, the link state and every value it knows (`pipe.Start`), then every change in
order whenever the child can take more (`pipe.Values`: a child that falls far behind gets
the newest value of each item, never an unbounded queue) and every link change. The child
serves `UaServer` over a `Mirror` of that link; a client's write comes back as
`pipe.Write`, goes through the bridge's one write path and is answered with the outcome.
If the child ends, `UaProcess.run` raises; if the bridge ends, the child sees the pipe
close and ends too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from icsbridge import logs
from icsbridge.core import pipe
from icsbridge.core.freezer import collect_rarely
from icsbridge.core.mirror import Mirror
from icsbridge.core.writes import Writer
from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient, LinkState
from icsbridge.mapping.document import Mapping

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
"""Bytes read from the pipe at a time."""

DEFAULT_ENDPOINT = "opc.tcp://0.0.0.0:4840/icsbridge/"
"""Where the OPC UA server listens unless told otherwise (`--opcua-endpoint`)."""

COALESCE_ABOVE = 50_000
"""Rows waiting for the child beyond which only the newest of each item is kept."""

STOP_TIMEOUT = 5.0
"""Seconds the child has to end after the pipe closed, before it is killed."""


class ChildEnded(RuntimeError):
    """The OPC UA process ended on its own."""


class UaProcess:
    """Runs the OPC UA face in a child process, fed from `client` and writing via `writer`.

    `settings` are `UaServer`'s `endpoint`, the keyword arguments of `security.secure`
    as `security` (None: no security settings) and `verbose`, the log verbosity.
    """

    def __init__(
        self, client: IcsClient, mapping: Mapping, writer: Writer, settings: dict[str, Any]
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.writer = writer
        self.settings = settings
        self._index = {entry.key: i for i, entry in enumerate(mapping.items) if not entry.disabled}
        self._rows: list[pipe.Row] = []
        self._coalesce_above = max(COALESCE_ABOVE, 2 * len(self._index))
        self._link_due = False
        self._wake = asyncio.Event()
        self._answers: set[asyncio.Task[None]] = set()

    def _rows_of(self, updates: Sequence[Update]) -> list[pipe.Row]:
        """The updates of served items, as the pipe carries them."""
        index = self._index
        return [
            (at, u.value, u.unit, u.time) for u in updates if (at := index.get(u.key)) is not None
        ]

    def _take(self, updates: Sequence[Update]) -> None:
        rows = self._rows
        rows += self._rows_of(updates)
        if len(rows) > self._coalesce_above:  # the child lags: keep the newest of each item
            self._rows = list({row[0]: row for row in rows}.values())
        self._wake.set()

    def _link(self, state: LinkState) -> None:
        self._link_due = True
        self._wake.set()

    def _link_change(self) -> pipe.LinkChange:
        return pipe.LinkChange(self.client.state, self.client.silent)

    def _start(self) -> pipe.Start:
        values = self._rows_of(self.client.cache.values())
        return pipe.Start(self.mapping, self._link_change(), values, self.settings)

    async def _feed(self, out: asyncio.StreamWriter) -> None:
        """Send new values and link changes whenever the child has taken the last ones."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._rows:
                rows, self._rows = self._rows, []
                out.write(pipe.encode(pipe.Values(rows)))
            if self._link_due:
                self._link_due = False
                out.write(pipe.encode(self._link_change()))
            await out.drain()

    async def _listen(self, reader: asyncio.StreamReader, out: asyncio.StreamWriter) -> None:
        """Answer the child's writes until the pipe closes."""
        frames = pipe.Frames()
        while data := await reader.read(READ_SIZE):
            for message in frames.feed(data):
                if isinstance(message, pipe.Write):
                    task = asyncio.create_task(self._answer(message, out), name="opcua-write")
                    self._answers.add(task)
                    task.add_done_callback(self._answers.discard)

    async def _answer(self, request: pipe.Write, out: asyncio.StreamWriter) -> None:
        try:
            value = await self.writer.write(
                request.key, request.value, who=request.who, via=request.via
            )
            answer = pipe.Written(request.ident, value=value)
        except Exception as exc:
            answer = pipe.Written(request.ident, error=exc)
        try:
            frame = pipe.encode(answer)
        except Exception:  # an exception that does not pickle: its text still does
            frame = pipe.encode(pipe.Written(request.ident, error=RuntimeError(str(answer.error))))
        if not out.is_closing():
            out.write(frame)

    async def run(self) -> None:
        """Start the child and feed it until cancelled; raise `ChildEnded` if it ends."""
        ours, theirs = socket.socketpair()
        with ours:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
            theirs.close()
            reader, out = await asyncio.open_connection(sock=ours)
            out.write(pipe.encode(self._start()))
            stop_updates = self.client.cache.subscribe(self._take)
            stop_states = self.client.on_state(self._link)
            tasks = [
                asyncio.create_task(self._feed(out), name="opcua-feed"),
                asyncio.create_task(self._listen(reader, out), name="opcua-listen"),
                asyncio.create_task(process.wait(), name="opcua-process"),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                with contextlib.suppress(TimeoutError):  # a broken pipe: the child is ending
                    await asyncio.wait_for(asyncio.shield(tasks[2]), STOP_TIMEOUT)
                if process.returncode is None:
                    raise ChildEnded("the OPC UA process stopped reading its pipe")
                raise ChildEnded(f"the OPC UA process ended (exit code {process.returncode})")
            finally:
                stop_updates()
                stop_states()
                for task in (*tasks[:2], *self._answers):
                    task.cancel()
                out.close()
                await _stop(process)
                tasks[2].cancel()
                await asyncio.gather(*tasks, *self._answers, return_exceptions=True)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Let the child end on the closed pipe; kill it if it does not."""
    if process.returncode is not None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), STOP_TIMEOUT)
    except TimeoutError:
        log.warning("the OPC UA process did not end; killing it")
        process.kill()
        await process.wait()


# --- the child ----------------------------------------------------------------------------


async def serve_child(sock: socket.socket) -> None:
    """Serve OPC UA for the bridge at the other end of `sock` until it closes."""
    from .security import secure  # asyncua is imported by the child only
    from .server import UaServer

    reader, out = await asyncio.open_connection(sock=sock)
    frames = pipe.Frames()
    received: list[pipe.Message] = []
    while not received:
        data = await reader.read(READ_SIZE)
        if not data:
            return
        received = frames.feed(data)
    start, *rest = received
    received.clear()
    assert isinstance(start, pipe.Start)
    settings = dict(start.settings)
    logs.configure(settings.pop("verbose", 0))
    security = settings.pop("security", None)
    if security is not None:
        settings["secure"] = functools.partial(secure, **security)
    mirror = Mirror([entry.key for entry in start.mapping.items], _sender(out))
    mirror.start(start)
    for message in rest:
        mirror.take(message)
    mapping = start.mapping
    del start, rest  # the values are in the mirror now
    server = UaServer(mirror, mapping, mirror, **settings)
    serving = asyncio.create_task(server.run(), name="opcua-serve")
    following = asyncio.create_task(_follow(reader, frames, mirror), name="opcua-follow")
    try:
        await asyncio.wait({serving, following}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        mirror.close()
        for task in (serving, following):
            task.cancel()
        await asyncio.gather(following, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await serving  # its failure, if any, ends the child with a traceback


async def _follow(reader: asyncio.StreamReader, frames: pipe.Frames, mirror: Mirror) -> None:
    """Take the bridge's messages until it closes the pipe."""
    while data := await reader.read(READ_SIZE):
        for message in frames.feed(data):
            mirror.take(message)


def _sender(out: asyncio.StreamWriter) -> Callable[[pipe.Message], None]:
    def send(message: pipe.Message) -> None:
        if not out.is_closing():
            out.write(pipe.encode(message))

    return send


def main() -> None:
    """Entry point of the child: `python -m icsbridge.opcua.process FD`."""
    collect_rarely()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_child(socket.socket(fileno=int(sys.argv[1]))))


if __name__ == "__main__":
    main()
