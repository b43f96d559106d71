"""The simulated iCS on the network: a websockets server around a `Service` and its model.

One task runs the physics for the whole server and one writer task per connection sends
its frames from a queue, so a slow client never holds up the others or the physics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from icsbridge.catalog import Catalog
from icsbridge.ics.protocol import (
    ClientMessage,
    GetConfig,
    Heartbeat,
    ItemRecords,
    Login,
    Logout,
    ProtocolError,
    Request,
    ScriptRequest,
    SessionError,
    SetConfig,
    Trigger,
    encode,
    parse_client_frame,
)
from icsbridge.ics.sim.model import SimModel
from icsbridge.ics.sim.nodes import Noise
from icsbridge.ics.sim.service import Service, Session
from icsbridge.ics.sim.topology import Topology
from icsbridge.model import ItemPath

log = logging.getLogger(__name__)

MIN_PERIOD = 0.005
"""Shortest wall-clock time between two physics cycles, whatever the time scale."""

CHURN_TICK = 0.01
"""Seconds between two frames of churn; a late tick sends what it owes, up to ten ticks' worth."""

QUEUE_LIMIT = 10_000
"""Frames waiting for one client before the simulator gives up on it and drops it."""


@dataclass(slots=True, eq=False)
class _Connection:
    ws: ServerConnection
    queue: asyncio.Queue[str | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    sessions: set[str] = field(default_factory=set)


class Faults:
    """Misbehaviour a test switches on and off while the simulator runs."""

    def __init__(
        self,
        model: SimModel,
        service: Service,
        connections: set[_Connection],
        deliver: Callable[[list[tuple[Session, ItemRecords]]], None],
        clock: Callable[[], float],
    ) -> None:
        self.silent = False
        """Send nothing at all (no replies, pushes or heartbeat echoes); keep sockets open."""
        self.reply_delay = 0.0
        """Seconds to wait before handling a login or request (and so before its replies)."""
        self.refuse_writes = False
        """Answer every setItem with trigger "false" and apply nothing."""
        self._model = model
        self._service = service
        self._connections = connections
        self._deliver = deliver
        self._clock = clock

    @property
    def output_units(self) -> dict[str, str]:
        """The unit each quantity is reported in, by base unit, e.g. `{"V": "kV", "A": "µA"}`."""
        return self._service.output_units

    @output_units.setter
    def output_units(self, units: Mapping[str, str]) -> None:
        self._service.output_units = units

    def drop_all(self) -> None:
        """Abort every connection at once, like a pulled cable (no close frames)."""
        for conn in list(self._connections):
            conn.ws.transport.abort()

    def send_raw(self, frame: str) -> None:
        """Send every connection this frame as it is: what a broken or hostile iCS sends."""
        for conn in list(self._connections):
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(frame)

    def burst(self, count: int) -> None:
        """Send every websocket session one info frame of `count` records at once."""
        self._deliver(self._service.burst(count))

    def force_trip(self, path: ItemPath) -> None:
        """Trip a channel (or all channels of a module or crate) now."""
        self._model.settle(self._clock())
        self._model.force_trip(path)

    def set_inhibit(self, path: ItemPath, active: bool) -> None:
        """Raise or drop the external inhibit of a channel, module or crate."""
        self._model.settle(self._clock())
        self._model.set_inhibit(path, active)


class Simulator:
    """A simulated iCS serving the WebSocket protocol, with fault injection for tests."""

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        time_scale: float = 1.0,
        users: Mapping[str, str] | None = None,
        seed: int = 0,
        output_units: Mapping[str, str] | None = None,
        noise: Noise | None = None,
        items: Catalog | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.topology = Topology.default() if topology is None else topology
        self.time_scale = time_scale
        self.received: list[ClientMessage] = []
        self.model = SimModel(self.topology, items, seed=seed, noise=noise)
        self.service = Service(
            self.model, users or {"admin": "password"}, output_units=output_units
        )
        self._connections: set[_Connection] = set()
        self.faults = Faults(
            self.model, self.service, self._connections, self._deliver, self.sim_time
        )
        self._owners: dict[str, _Connection] = {}
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._churn_rate = 0.0
        self._churning = asyncio.Event()
        self._start = 0.0
        self._host = ""

    # --- lifecycle ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        """Listen on host:port (0 picks a free port) and start the physics."""
        self._host = host
        self._start = asyncio.get_running_loop().time()
        self.model.epoch = self.service.epoch = time.time()
        self._server = await serve(
            self._handle, host, port, compression=None, ping_interval=None, max_size=None
        )
        self._tasks = [
            asyncio.create_task(self._run_physics(), name="ics-sim-physics"),
            asyncio.create_task(self._run_churn(), name="ics-sim-churn"),
        ]
        lines, modules, channels = self.topology.counts()
        log.info(
            "iCS simulator listening on %s (%d lines, %d modules, %d channels)",
            self.url,
            lines,
            modules,
            channels,
        )
        return self

    async def stop(self) -> None:
        """Close every connection and stop serving."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Simulator]:
        """Run the simulator for the duration of an `async with` block."""
        await self.start(host, port)
        try:
            yield self
        finally:
            await self.stop()

    def sim_time(self) -> float:
        """Simulated seconds since start: wall time times the time scale."""
        return (asyncio.get_running_loop().time() - self._start) * self.time_scale

    @property
    def churn(self) -> float:
        """Channel readings per second sent on top of the physics, stamped when sent: a load."""
        return self._churn_rate

    @churn.setter
    def churn(self, rate: float) -> None:
        if rate < 0:
            raise ValueError("churn must not be negative")
        self._churn_rate = rate
        if rate:
            self._churning.set()
        else:
            self._churning.clear()

    @property
    def churned(self) -> int:
        """Readings churn has sent so far."""
        return self.model.churned

    async def _run_churn(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._churning.wait()
            owed, last = 0.0, loop.time()
            while self._churn_rate:
                await asyncio.sleep(CHURN_TICK)
                now = loop.time()
                owed = min(
                    owed + self._churn_rate * (now - last), self._churn_rate * CHURN_TICK * 10
                )
                last = now
                count = int(owed)
                owed -= count
                try:
                    frames = self.service.churn(count, self.service.epoch + self.sim_time())
                    self._deliver_frames(frames)
                except Exception:
                    log.exception("simulator churn failed")

    async def _run_physics(self) -> None:
        while True:
            await asyncio.sleep(max(self.model.cycle_time / self.time_scale, MIN_PERIOD))
            try:
                self.model.advance(self.sim_time())
                self._deliver(self.service.publish())
            except Exception:
                log.exception("simulator cycle failed")

    # --- connections --------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Connection(ws)
        self._connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for frame in ws:
                await self._receive(conn, frame)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(conn)
            for session_id in list(conn.sessions):
                self._end(session_id, conn, close=False)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(conn: _Connection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while (frame := await conn.queue.get()) is not None:
                await conn.ws.send(frame)
            await conn.ws.close()

    def _send(self, conn: _Connection, frame: str) -> None:
        if self.faults.silent:
            return
        try:
            conn.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("client %s is too slow; dropping it", conn.ws.remote_address)
            conn.ws.transport.abort()

    def _deliver(self, pushes: list[tuple[Session, ItemRecords]]) -> None:
        self._deliver_frames([(session, encode(push, array=True)) for session, push in pushes])

    def _deliver_frames(self, frames: list[tuple[Session, str]]) -> None:
        for session, frame in frames:
            conn = self._owners.get(session.id)
            if conn is not None:
                self._send(conn, frame)

    def _end(self, session_id: str, conn: _Connection, *, close: bool) -> None:
        self.service.logout(session_id)
        conn.sessions.discard(session_id)
        self._owners.pop(session_id, None)
        if close:
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(None)

    async def _receive(self, conn: _Connection, frame: str | bytes) -> None:
        try:
            messages = parse_client_frame(frame)
        except ProtocolError as exc:
            log.warning("ignoring frame %.80r: %s", frame, exc)
            return
        for message in messages:
            self.received.append(message)
            try:
                await self._dispatch(conn, message)
            except Exception:
                log.exception("failed to handle %r", message)

    async def _dispatch(self, conn: _Connection, message: ClientMessage) -> None:
        if isinstance(message, Login):
            await self._delay()
            session = self.service.login(message)
            if session is not None:
                conn.sessions.add(session.id)
                self._owners[session.id] = conn
            self._send(conn, encode(Trigger(session.id if session else "", session is not None)))
            return
        session = self.service.find(message.session)
        if session is None:
            self._send(conn, encode(SessionError(message.session, "invalid session")))
            return
        match message:
            case Request():
                await self._delay()
                self.model.settle(self.sim_time())
                reply = self.service.request(
                    session, message, refuse_writes=self.faults.refuse_writes
                )
                for answer in reply.messages:
                    self._send(conn, encode(answer, array=True))
                if reply.wrote:
                    self._deliver(self.service.publish())
                if reply.logout:
                    self._end(session.id, conn, close=True)
            case Heartbeat():
                self._send(conn, encode(Heartbeat(session.id, message.mode)))
            case Logout():
                self._end(session.id, conn, close=True)
            case ScriptRequest():
                self._send(conn, encode(self.service.script(session, message)))
            case GetConfig():
                self._send(conn, encode(self.service.config(session)))
            case SetConfig():
                self._send(conn, encode(Trigger(session.id, False), array=True))

    async def _delay(self) -> None:
        if self.faults.reply_delay > 0:
            await asyncio.sleep(self.faults.reply_delay)


async def run(
    topology: Topology | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    time_scale: float = 1.0,
    *,
    users: Mapping[str, str] | None = None,
    seed: int = 0,
    churn: float = 0.0,
) -> None:
    """Serve a simulated iCS until cancelled."""
    simulator = Simulator(topology, time_scale=time_scale, users=users, seed=seed)
    simulator.churn = churn
    async with simulator.serve(host, port):
        await asyncio.Event().wait()
