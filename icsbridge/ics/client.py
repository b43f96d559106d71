"""The asyncio iCS client: one session, a live cache, confirmed writes, automatic reconnect.

`IcsClient` logs in, subscribes with getItem, keeps `cache` current from the iCS pushes and
publishes its link state. After a lost link it reconnects with back-off, logs in again,
subscribes again and resyncs the whole cache; it never writes anything on its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import backoff
from websockets.exceptions import ConnectionClosed

from icsbridge.catalog import INPUT_ERROR_ITEMS, Catalog, catalog
from icsbridge.ics import protocol, values
from icsbridge.ics.cache import Cache, Update
from icsbridge.ics.protocol import (
    Command,
    ConfigReply,
    GetConfig,
    Heartbeat,
    ItemRecords,
    Login,
    Logout,
    Packet,
    ProtocolError,
    ScriptReply,
    ScriptRequest,
    Selector,
    SessionError,
    Trigger,
)
from icsbridge.logs import Throttle
from icsbridge.model import ItemKey, Level

log = logging.getLogger(__name__)

SWITCHING_OFF = frozenset({("Control.on", False), ("Control.emergency", True)})
"""Writes that only switch high voltage off: sent even to a silent iCS, since applied late
they do no harm, and nothing may keep high voltage from being switched off."""

MAX_FRAME = 32 * 1024 * 1024
"""Bytes a frame from the iCS may hold by default: four times the largest a bridge is sent
at 100k items (8.6 MB, the answer to its subscription: `bench/largest_frame.py`)."""


LEVEL_SELECTORS = {
    Level.SYSTEM: Selector(),
    Level.CRATE: Selector("*", "*", None),
    Level.MODULE: Selector("*", "*", None),
    Level.CHANNEL: Selector("*", "*", "*"),
}
"""Wildcard paths that name every object of a level (crates and modules share theirs)."""


def everything(items: Catalog) -> list[tuple[Selector, str]]:
    """getItem pairs for every readable item of every object, each pair once."""
    pairs = ((LEVEL_SELECTORS[spec.level], spec.name) for spec in items if spec.access.readable)
    return list(dict.fromkeys(pairs))


class LinkState(StrEnum):
    """The state of the link to the iCS, as adapters should show it."""

    CONNECTING = "connecting"
    READY = "ready"
    LOST = "lost"


class IcsError(Exception):
    """Something the iCS or the link to it refused or failed to do."""


class LoginRefused(IcsError):
    """The iCS refused the user name or password."""


class LinkDown(IcsError):
    """The link is not ready, or was lost before the iCS answered."""


class WriteRejected(IcsError):
    """The iCS acknowledged a write with false or reported an input error."""


class WriteUnconfirmed(IcsError):
    """A write went out but was never confirmed: the iCS may still apply it."""


UNCONFIRMED = "unconfirmed: the iCS may still apply it"
"""How every write that went out without a confirmation ends, followed by why."""


class WriteTimeout(WriteUnconfirmed):
    """The iCS did not confirm a write in time; the link it went out on is reset."""


class _LinkLost(Exception):
    """Internal: end the current connection and reconnect."""


@dataclass(eq=False)
class _Write:
    key: ItemKey
    sent: values.Value
    needs_readback: bool
    done: asyncio.Future[values.Value]
    acked: bool = False
    readback: Update | None = None

    def ack(self, accepted: bool) -> None:
        if self.done.done():
            return
        if not accepted:
            self.done.set_exception(WriteRejected(f"{self.key}: the iCS refused the write"))
            return
        self.acked = True
        if not self.needs_readback:
            self.done.set_result(self.sent)
        elif self.readback is not None:
            self.done.set_result(self.readback.value)

    def see(self, update: Update) -> None:
        if self.done.done():
            return
        if update.key.item in INPUT_ERROR_ITEMS and update.key.item != self.key.item:
            if update.value:
                self.done.set_exception(
                    WriteRejected(f"{self.key}: input error, {self.sent!r} is out of range")
                )
            return
        self.readback = update
        if self.acked:
            self.done.set_result(update.value)


@dataclass
class _Connection:
    ws: ClientConnection
    session: str = ""
    acks: deque[_Write | None] = field(default_factory=deque)
    responses: deque[asyncio.Future[list[Update]]] = field(default_factory=deque)
    scripts: deque[asyncio.Future[ScriptReply]] = field(default_factory=deque)
    configs: deque[asyncio.Future[ConfigReply]] = field(default_factory=deque)
    login: asyncio.Future[Trigger] | None = None
    raw: dict[asyncio.Future[Any], asyncio.Future[str]] = field(default_factory=dict)


class IcsClient:
    """A client of one iCS server.

    Args:
        url: WebSocket address of the iCS, e.g. ``ws://10.0.0.5:8080``.
        user, password: iCS credentials.
        items: the item catalog (default: the shipped one).
        heartbeat: seconds between heartbeat frames (default 10).
        missed_heartbeats: intervals without any frame before the link counts as lost (3);
            a stall of this process's event loop does not count as the iCS's silence.
        write_timeout: seconds a write may take until ack and readback (default 10).
        reply_timeout: seconds a subscription may take until the iCS answers it (60).
        reconnect: (first, longest) back-off delay in seconds between reconnects (1, 30).
        max_frame: bytes a frame from the iCS may hold (default `MAX_FRAME`); a longer one
            loses the link before it is read whole.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        items: Catalog | None = None,
        heartbeat: float = 10.0,
        missed_heartbeats: int = 3,
        write_timeout: float = 10.0,
        reply_timeout: float = 60.0,
        reconnect: tuple[float, float] = (1.0, 30.0),
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.url = url
        self.user = user
        self.cache = Cache(items or catalog())
        self.heartbeat = heartbeat
        self.silence_limit = heartbeat * missed_heartbeats
        self.quiet_limit = min(heartbeat * 1.5, self.silence_limit)
        self.write_timeout = write_timeout
        self.reply_timeout = reply_timeout
        self._password = password
        self._reconnect = reconnect
        self.max_frame = max_frame
        self._state = LinkState.LOST
        self._state_listeners: list[Callable[[LinkState], None]] = []
        self._subscriptions: dict[tuple[Selector, str], None] = {}
        self._subscribed: set[ItemKey] = set()
        self._writes: dict[ItemKey, list[_Write]] = {}
        self._conn: _Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ever_ready = False
        self._closing = False
        self._last_rx = 0.0
        self._silent = False
        self.malformed = Throttle(log)
        """Frames from the iCS that were not protocol, and records left out of frames."""

    # --- state -----------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        """The link state: connecting, ready or lost."""
        return self._state

    @property
    def last_frame_time(self) -> float:
        """Event-loop time of the last frame received from the iCS."""
        return self._last_rx

    def on_state(self, listener: Callable[[LinkState], None]) -> Callable[[], None]:
        """Call `listener` on every change of state or of `silent`; returns the stopper."""
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

    async def wait_for_state(self, state: LinkState) -> None:
        """Return once the link is in `state`, or at once if it is already."""
        if self._state is state:
            return
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def listener(new: LinkState) -> None:
            if new is state and not reached.done():
                reached.set_result(None)

        stop = self.on_state(listener)
        try:
            await reached
        finally:
            stop()

    @property
    def silent(self) -> bool:
        """Whether the iCS has sent nothing for 1.5 heartbeat intervals (not yet a lost link)."""
        return self._silent

    def _set_silent(self, silent: bool) -> None:
        log.info("iCS link %s: %s", self.url, "silent" if silent else "talking again")
        self._silent = silent
        for listener in list(self._state_listeners):
            listener(self._state)

    def _set_state(self, state: LinkState) -> None:
        if state is self._state:
            return
        log.info("iCS link %s: %s", self.url, state)
        self._state = state
        for listener in list(self._state_listeners):
            listener(state)

    # --- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        """Connect, log in and wait until ready; raise if the first attempt fails."""
        self._task = asyncio.create_task(self._run(), name=f"ics-client {self.url}")
        ready = asyncio.create_task(self.wait_for_state(LinkState.READY))
        try:
            await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._task.done():
            try:
                self._task.result()
            except OSError as exc:
                raise LinkDown(f"cannot connect to {self.url}: {exc}") from exc
            raise LinkDown(f"{self.url}: connection ended before it was ready")

    async def close(self) -> None:
        """Log out and close the link."""
        conn = self._conn
        if conn is not None and conn.session:
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(protocol.encode(Logout(conn.session)))
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._set_state(LinkState.LOST)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _fatal_on_first_attempt(self, exc: Exception) -> Exception | None:
        if not self._ever_ready:
            return exc
        if isinstance(exc, OSError | TimeoutError | ConnectionClosed | _LinkLost):
            return None
        return exc

    async def _run(self) -> None:
        first, longest = self._reconnect
        delays = functools.partial(
            backoff, initial_delay=first, min_delay=first, max_delay=longest, factor=2.0
        )
        async for ws in connect(
            self.url,
            ping_interval=None,
            max_size=self.max_frame,
            open_timeout=self.silence_limit,
            reconnect_delays=delays,
            process_exception=self._fatal_on_first_attempt,
        ):
            self._set_state(LinkState.CONNECTING)
            pause = first
            try:
                await self._serve_connection(ws)
            except LoginRefused:
                if not self._ever_ready:
                    raise
                log.error(
                    "%s refused the login of %r; retrying in %g s", self.url, self.user, longest
                )
                pause = longest
            except (ConnectionClosed, _LinkLost, OSError, TimeoutError) as exc:
                if not self._ever_ready:
                    raise LinkDown(f"{self.url}: {exc or type(exc).__name__}") from exc
                log.warning("iCS link %s lost: %s", self.url, exc or type(exc).__name__)
            finally:
                if self._state is LinkState.READY:
                    pause = 0.0
                self._drop_connection()
                if self._closing:
                    ws.transport.close()  # the logout still goes out
                else:
                    reset(ws)
            await asyncio.sleep(pause)  # a link that never got ready: don't hammer the iCS

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._silent = False
        self._set_state(LinkState.LOST)
        self._subscribed.clear()
        if conn is None:
            return
        down = LinkDown(f"iCS link {self.url} lost before the iCS answered")
        unconfirmed = WriteUnconfirmed(
            f"{UNCONFIRMED} (the link to {self.url} was lost before it confirmed)"
        )
        for waiter in (
            *conn.responses,
            *conn.scripts,
            *conn.configs,
            *conn.raw.values(),
            conn.login,
        ):
            if waiter is not None and not waiter.done():
                waiter.set_exception(down)
        for writes in self._writes.values():
            for write in writes:
                if not write.done.done():
                    write.done.set_exception(unconfirmed)

    async def _serve_connection(self, ws: ClientConnection) -> None:
        conn = _Connection(ws)
        self._conn = conn
        self._last_rx = asyncio.get_running_loop().time()
        link = {asyncio.create_task(self._read(conn)), asyncio.create_task(self._keepalive(conn))}
        setup = asyncio.create_task(self._setup(conn))
        try:
            done, _ = await asyncio.wait(link | {setup}, return_when=asyncio.FIRST_COMPLETED)
            if setup in done:
                setup.result()
                self._ever_ready = True
                self._set_state(LinkState.READY)
                done, _ = await asyncio.wait(link, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {setup}:
                task.result()
            raise _LinkLost("the iCS closed the connection")
        finally:
            for task in (*link, setup):
                task.cancel()
            await asyncio.gather(*link, setup, return_exceptions=True)

    async def _setup(self, conn: _Connection) -> None:
        await self._login(conn)
        await self._resubscribe()

    async def _login(self, conn: _Connection) -> None:
        conn.login = asyncio.get_running_loop().create_future()
        await conn.ws.send(protocol.encode(Login(self.user, self._password)))
        try:
            async with asyncio.timeout(self.silence_limit):
                reply = await conn.login
        except TimeoutError:
            raise _LinkLost(f"no login reply within {self.silence_limit:g} s") from None
        if not reply.accepted or not reply.session:
            raise LoginRefused(f"{self.url} refused the login of user {self.user!r}")
        conn.session = reply.session

    async def _keepalive(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat
        resumed = loop.time()
        while True:
            heard = max(self._last_rx, resumed)
            wake = min(next_beat, heard + self.silence_limit)
            if not self._silent:
                wake = min(wake, heard + self.quiet_limit)
            wake = max(wake, loop.time())
            await asyncio.sleep(wake - loop.time())
            now = loop.time()
            if now - wake > self.heartbeat / 4:
                # This process stalled: frames that came meanwhile are still unread, so
                # the stall is no silence of the iCS. Count the silence from now on.
                resumed = now
            heard = max(self._last_rx, resumed)
            if now >= heard + self.silence_limit:
                raise _LinkLost(f"no frame from the iCS for {self.silence_limit:g} s")
            if not self._silent and now >= heard + self.quiet_limit:
                self._set_silent(True)
            if now >= next_beat:
                next_beat = now + self.heartbeat
                if conn.session:
                    await conn.ws.send(protocol.encode(Heartbeat(conn.session)))

    # --- receiving -------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        async for frame in conn.ws:
            self._last_rx = loop.time()
            if self._silent:
                self._set_silent(False)
            try:
                messages = protocol.parse_server_frame(frame)
            except ProtocolError as exc:
                self.malformed(
                    "ignored a malformed frame from %s: %s: %.200r", self.url, exc, frame
                )
                continue
            for message in messages:
                self._dispatch(conn, message)
            if conn.raw:
                _answer_raw(conn, frame)

    def _dispatch(self, conn: _Connection, message: protocol.ServerMessage) -> None:
        match message:
            case ItemRecords(records=records, kind=kind, rejected=rejected):
                if rejected:
                    self.malformed(
                        "left out %d malformed records from %s, the first: %s",
                        len(rejected),
                        self.url,
                        rejected[0],
                    )
                updates = self.cache.apply(records)
                if self._writes:
                    self._confirm(updates)
                if kind == "response" and conn.responses:
                    waiter = conn.responses.popleft()
                    if not waiter.done():
                        waiter.set_result(updates)
            case Trigger(accepted=accepted) if conn.login is not None and not conn.login.done():
                conn.login.set_result(message)
            case Trigger(accepted=accepted):
                if not accepted:
                    log.warning("%s answered a write with trigger false", self.url)
                if conn.acks:
                    write = conn.acks.popleft()
                    if write is not None:
                        write.ack(accepted)
            case SessionError(message=text):
                raise _LinkLost(f"the iCS dropped the session: {text}")
            case ScriptReply():
                if conn.scripts and not conn.scripts[0].done():
                    conn.scripts.popleft().set_result(message)
            case ConfigReply():
                if conn.configs and not conn.configs[0].done():
                    conn.configs.popleft().set_result(message)

    def _confirm(self, updates: Sequence[Update]) -> None:
        writes = self._writes
        for update in updates:
            key = update.key
            if key in writes:
                for write in writes[key]:
                    write.see(update)
            if key.item in INPUT_ERROR_ITEMS:
                for item in list(writes):
                    if item.path == key.path:
                        for write in writes[item]:
                            write.see(update)

    # --- requests --------------------------------------------------------------

    def _ready(self, *, even_if_silent: bool = False) -> _Connection:
        conn = self._conn
        if conn is None or self._state is not LinkState.READY:
            raise LinkDown(f"iCS link {self.url} is {self._state}: nothing sent")
        if self._silent and not even_if_silent:  # it might be read, and applied, much later
            raise LinkDown(f"the iCS at {self.url} is silent: nothing sent")
        return conn

    async def _get_items(
        self, conn: _Connection, pairs: Sequence[tuple[Selector, str]]
    ) -> list[Update]:
        loop = asyncio.get_running_loop()
        packets = (Packet(Command.GET_ITEM, selector, item) for selector, item in pairs)
        waiters = []
        for frame in protocol.request_frames(conn.session, packets):
            waiter: asyncio.Future[list[Update]] = loop.create_future()
            conn.responses.append(waiter)
            waiters.append(waiter)
            await conn.ws.send(frame)
        async with asyncio.timeout(self.reply_timeout):
            replies = await asyncio.gather(*waiters)
        updates = [update for reply in replies for update in reply]
        self._subscribed.update(update.key for update in updates)
        return updates

    async def _resubscribe(self) -> None:
        conn = self._conn
        if conn is not None and self._subscriptions:
            updates = await self._get_items(conn, list(self._subscriptions))
            log.info("subscribed to %d items of %s", len(updates), self.url)

    async def subscribe(self, pairs: Iterable[tuple[Selector, str]]) -> list[Update]:
        """getItem every (selector, item) pair, keep it across reconnects; return the values."""
        new = [pair for pair in pairs if pair not in self._subscriptions]
        self._subscriptions.update(dict.fromkeys(new))
        conn = self._conn
        if not new or conn is None or self._state is not LinkState.READY:
            return []
        return await self._get_items(conn, new)

    async def subscribe_all(self) -> list[Update]:
        """Subscribe to every readable catalog item of every object the iCS has."""
        return await self.subscribe(everything(self.cache.catalog))

    async def set_item(
        self, key: ItemKey, value: values.Value, *, timeout: float | None = None
    ) -> values.Value:
        """Write one item and return the value the iCS confirmed.

        Sends a setItem with an explicit unit, then waits for the iCS's acknowledgement
        and for its readback of the item. Raises `LinkDown` at once if the link is not
        ready or the iCS is silent (nothing is queued; `SWITCHING_OFF` writes still go to a
        silent iCS), `WriteRejected`, `WriteUnconfirmed`
        (`WriteTimeout`) when it went out without a confirmation, `KeyError` for an item
        the catalog does not know there, `PermissionError` for a read-only item and
        `TypeError` for a value of the wrong type.
        """
        spec = self.cache.spec(key)
        if spec is None:
            raise KeyError(f"{key}: no such item at {key.path.level} level")
        if not spec.access.writable:
            raise PermissionError(f"{key}: read-only item")
        text, unit = values.encode(spec, value)
        switching_off = (key.item, value) in SWITCHING_OFF
        self._ready(even_if_silent=switching_off)
        if spec.access.readable:
            await self._watch(key)
        conn = self._ready(even_if_silent=switching_off)
        write = _Write(key, value, spec.access.readable, asyncio.get_running_loop().create_future())
        self._writes.setdefault(key, []).append(write)
        conn.acks.append(write)
        limit = timeout or self.write_timeout
        packet = Packet(Command.SET_ITEM, Selector(*key.path), key.item, text, unit)
        try:
            async with asyncio.timeout(limit):
                await conn.ws.send(protocol.encode(protocol.Request(conn.session, (packet,))))
                return await write.done
        except TimeoutError:
            reset(conn.ws)
            raise WriteTimeout(
                f"{UNCONFIRMED} (no confirmation within {limit:g} s; the link is reset, so "
                "what it has not sent yet never goes out)"
            ) from None
        except ConnectionClosed:
            raise WriteUnconfirmed(
                f"{UNCONFIRMED} (the link to {self.url} closed while it was sent)"
            ) from None
        finally:
            pending = self._writes[key]
            pending.remove(write)
            if not pending:
                del self._writes[key]
            if write in conn.acks:
                conn.acks[conn.acks.index(write)] = None

    async def _watch(self, key: ItemKey) -> None:
        keys = [key]
        if key.channel is not None:
            keys += [ItemKey(*key.path, item) for item in INPUT_ERROR_ITEMS]
        missing = [k for k in keys if k not in self._subscribed and self.cache.spec(k)]
        if missing:
            await self.subscribe((Selector(*k.path), k.item) for k in missing)

    async def get_config(self) -> str:
        """The iCS configuration file (XML), as the iCS sends it on getConfig."""
        conn = self._ready()
        waiter: asyncio.Future[ConfigReply] = asyncio.get_running_loop().create_future()
        conn.configs.append(waiter)
        await conn.ws.send(protocol.encode(GetConfig(conn.session)))
        async with asyncio.timeout(self.write_timeout):
            reply = await waiter
        try:
            return base64.b64decode(reply.data).decode("utf-8", "replace")
        except ValueError as exc:
            raise ProtocolError(f"configuration is not base64: {exc}") from None

    async def script(self, command: str, **args: object) -> ScriptReply:
        """Send a script command (startScript, availableScripts, ...) and return the reply."""
        conn = self._ready()
        waiter: asyncio.Future[ScriptReply] = asyncio.get_running_loop().create_future()
        conn.scripts.append(waiter)
        await conn.ws.send(protocol.encode(ScriptRequest(conn.session, command, args)))
        async with asyncio.timeout(self.write_timeout):
            return await waiter

    async def raw(self, frame: str) -> str:
        """Send one frame as it is and return the text of the frame the iCS answers it with.

        The frame is one request, script, getConfig or setConfig envelope; an empty or
        missing session id is filled in. The answer is the trigger of a request with a
        setItem or of a setConfig, the response of any other request, the script or
        configuration reply. Raises `ProtocolError` for any other frame, `LinkDown` and
        `TimeoutError` as `script` does.
        """
        conn = self._ready()
        messages = protocol.parse_client_frame(frame)
        if len(messages) != 1 or isinstance(messages[0], Login | Logout | Heartbeat):
            raise ProtocolError("a raw frame is one request, script or configuration envelope")
        envelope = json.loads(frame)
        envelope = envelope[0] if isinstance(envelope, list) else envelope
        if not envelope.get("i"):
            frame = json.dumps({**envelope, "i": conn.session}, ensure_ascii=False)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[str] = loop.create_future()
        placeholders = _expect_answers(conn, messages[0], loop)
        conn.raw.update(dict.fromkeys(placeholders, answer))
        try:
            await conn.ws.send(frame)
            async with asyncio.timeout(self.write_timeout):
                return await answer
        finally:
            for placeholder in placeholders:
                conn.raw.pop(placeholder, None)


def reset(ws: ClientConnection) -> None:
    """End a connection at once with a TCP reset, not a close: frames still in this host's
    send buffer are dropped, never sent. (Frames already in the iCS's receive buffer it may
    still read: Linux keeps that buffer across a reset. `core.unconfirmed` watches for them.)"""
    transport = ws.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()


LINGER_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, with no time to linger: close sends a reset."""


def _expect_answers(
    conn: _Connection, message: protocol.ClientMessage, loop: asyncio.AbstractEventLoop
) -> list[asyncio.Future[Any]]:
    """Queue the waiters that keep replies in step with requests; return their futures."""
    futures: list[asyncio.Future[Any]] = []

    def waiter() -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_consume)
        futures.append(future)
        return future

    commands = (
        {p.command for p in message.packets} if isinstance(message, protocol.Request) else set()
    )
    if Command.SET_ITEM in commands or isinstance(message, protocol.SetConfig):
        conn.acks.append(_Write(ItemKey(None, None, None, ""), "", False, waiter()))
    if commands - {Command.SET_ITEM}:
        conn.responses.append(waiter())
    if isinstance(message, ScriptRequest):
        conn.scripts.append(waiter())
    if isinstance(message, GetConfig):
        conn.configs.append(waiter())
    return futures


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _answer_raw(conn: _Connection, frame: str | bytes) -> None:
    """Give a frame to the raw waiters whose reply it carried."""
    for placeholder, answer in list(conn.raw.items()):
        if placeholder.done():
            del conn.raw[placeholder]
            if not answer.done():
                answer.set_result(frame if isinstance(frame, str) else frame.decode())
