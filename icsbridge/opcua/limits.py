"""What one OPC UA server takes on at most, and what a client that asks for more is told.

Sessions, subscriptions per session, monitored items (per subscription and in all) and the
sizes of what a client sends are capped; a request beyond a cap gets the status code OPC UA
names for it: BadTooManySessions (CreateSession), BadTooManySubscriptions
(CreateSubscription), BadTooManyMonitoredItems (each item of CreateMonitoredItems beyond a
cap), BadTcpMessageTooLarge or BadRequestTooLarge (an ERR message, which ends the
connection). The caps are advertised in Server.ServerCapabilities.

asyncua 2.1.0 has knobs for the sizes (`Server.limits`) and for subscriptions in all; the
other caps wrap its services, as `server.py` wraps others. Its connections buffer a chunk of
whatever size the client declares, and log a traceback for bytes they cannot decode, then
wait for more; here a connection ends at once, with an ERR message and a log line (a few per
period), at a chunk of a type or size no client may send, a Hello with buffers under the
8192 bytes Part 6 requires, or a message that fails to decode.
This extends asyncua's private parts (its listener and connection classes, a subscription's
monitored items): asyncua is pinned, and tests/opcua/test_limits.py covers them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from asyncua import ua
from asyncua.common.connection import TransportLimits
from asyncua.common.utils import Buffer, ServiceError
from asyncua.crypto import uacrypto
from asyncua.server.binary_server_asyncio import BinaryServer, OPCUAProtocol
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession, SessionState
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.server import Server
from asyncua.server.subscription_service import SubscriptionService
from asyncua.ua.ua_binary import struct_from_binary, uatcp_to_binary

from icsbridge.logs import Throttle

log = logging.getLogger(__name__)
Status = ua.StatusCodes

LEAST_BUFFER = 8192
"""Bytes Part 6 requires of every chunk size a client or server states."""
LONGEST_URL = 4096
"""Bytes of the longest EndpointUrl a Hello may carry (Part 6)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one OPC UA server takes on at most: sized for the SCADA of a 100,000-item site."""

    max_sessions: int = 100
    """Sessions open at a time (default 100): SCADA servers, often a redundant pair,
    historians, engineering tools and operator stations make tens."""
    max_subscriptions_per_session: int = 100
    """Subscriptions of one session (default 100): a SCADA makes one per publishing rate,
    or per screen."""
    max_subscriptions: int = 1_000
    """Subscriptions in all (default asyncua's 1,000): each runs a task of its own."""
    max_monitored_items_per_subscription: int = 200_000
    """Monitored items of one subscription (default 200,000): every item of the site in one
    subscription, twice over."""
    max_monitored_items: int = 1_000_000
    """Monitored items in all (default 1,000,000): ten clients monitoring the whole site;
    each costs the server about a KiB."""
    max_chunk_size: int = 65_535
    """Bytes of the largest message chunk either side sends (default asyncua's 65,535)."""
    max_message_size: int = 32 * 1024 * 1024
    """Bytes of the largest request (default 32 MiB): CreateMonitoredItems for 200,000
    items takes about 15 MB."""

    def __post_init__(self) -> None:
        if self.max_chunk_size < LEAST_BUFFER:
            raise ValueError(f"max_chunk_size {self.max_chunk_size} is under {LEAST_BUFFER}")
        if min(dataclasses.astuple(self)) < 1:
            raise ValueError(f"limits must be positive: {self}")


LIMITS = Limits()
"""The limits of a server unless told otherwise."""


class LimitedServer(Server):
    """asyncua's server within `Limits`."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        super().__init__()
        self.caps = limits
        self.refused = Throttle(log)
        """Connections ended for what they sent: counted, a few logged per period."""
        self.limits = TransportLimits(
            max_recv_buffer=limits.max_chunk_size,
            max_send_buffer=limits.max_chunk_size,
            max_chunk_count=math.ceil(limits.max_message_size / limits.max_chunk_size),
            max_message_size=limits.max_message_size,
        )
        iserver = self.iserver
        iserver.max_subscriptions = limits.max_subscriptions
        self.sessions = Sessions(iserver, limits)
        _limit_subscriptions(iserver.subscription_service, limits)
        _limit_monitored_items(iserver.subscription_service, limits)

    async def init(self, shelf_file: Path | None = None) -> None:
        """Load the standard address space, with the limits in its ServerCapabilities."""
        await super().init(shelf_file)
        for ident, value in _capabilities(self.caps).items():
            variant = ua.Variant(value, ua.VariantType.UInt32)
            await self.write_attribute_value(ua.NodeId(ident), ua.DataValue(variant))

    async def start(self) -> None:
        """Listen, as asyncua's `Server.start` does, on connections that end at the first
        chunk or message no client may send."""
        if self.iserver.certificate is not None:
            uacrypto.check_certificate(
                self.iserver.certificate, self._application_uri, socket.gethostname()
            )
        await self._setup_server_nodes()
        await self.iserver.start()
        try:
            host, port = self._get_bind_socket_info()
            listener = _Listener(self.iserver, host, port, self.limits)
            listener.refused = self.refused
            listener.set_policies(self._policies)
            self.bserver = listener
            await listener.start()
        except Exception:
            await self.iserver.stop()
            raise


def _capabilities(limits: Limits) -> dict[int, int]:
    """The ServerCapabilities variables that tell clients the limits, with their values."""
    ids = ua.ObjectIds
    return {
        ids.Server_ServerCapabilities_MaxSessions: limits.max_sessions,
        ids.Server_ServerCapabilities_MaxSubscriptions: limits.max_subscriptions,
        ids.Server_ServerCapabilities_MaxSubscriptionsPerSession: (
            limits.max_subscriptions_per_session
        ),
        ids.Server_ServerCapabilities_MaxMonitoredItems: limits.max_monitored_items,
        ids.Server_ServerCapabilities_MaxMonitoredItemsPerSubscription: (
            limits.max_monitored_items_per_subscription
        ),
    }


# --- sessions, subscriptions, monitored items ------------------------------------------------


class Sessions:
    """The sessions clients opened, at most `max_sessions` of them.

    At the limit, CreateSession first closes the oldest session not activated, as Part 4
    (5.6.2) wants against clients that never activate theirs; if every one is activated,
    it is refused with BadTooManySessions. CreateSession's answer also states the largest
    request the server takes.
    """

    def __init__(self, iserver: InternalServer, limits: Limits) -> None:
        self.most = limits.max_sessions
        self.message_size = limits.max_message_size
        self.refused = Throttle(log)
        """CreateSession requests refused: counted, a few logged per period."""
        self._open: list[InternalSession] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._create = iserver.create_session
        iserver.create_session = self.create  # type: ignore[method-assign,assignment]

    def count(self) -> int:
        """Sessions open now."""
        self._open = [s for s in self._open if s.state is not SessionState.Closed]
        return len(self._open)

    def create(self, name: str, **options: Any) -> InternalSession:
        """asyncua's `InternalServer.create_session`, within the limit for clients' sessions."""
        if not options.get("external"):  # the server's own
            return self._create(name, **options)
        if self.count() >= self.most:
            self._make_room()
        session = self._create(name, **options)
        self._open.append(session)
        session.create_session = self._stating_size(session.create_session)  # type: ignore[method-assign]
        return session

    def _make_room(self) -> None:
        idle = next((s for s in self._open if s.state is SessionState.Created), None)
        if idle is None:
            self.refused("refused an OPC UA session: %d are open, the most there may be", self.most)
            raise ServiceError(Status.BadTooManySessions)
        log.info("closing OPC UA session %s, never activated, to make room", idle.name)
        self._open.remove(idle)
        task = asyncio.get_running_loop().create_task(idle.close_session())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _stating_size(self, create: Any) -> Any:
        """A session's CreateSession, whose answer states the largest request taken."""

        async def create_session(*args: Any, **kwargs: Any) -> ua.CreateSessionResult:
            result: ua.CreateSessionResult = await create(*args, **kwargs)
            result.MaxRequestMessageSize = self.message_size
            return result

        return create_session


def _limit_subscriptions(service: SubscriptionService, limits: Limits) -> None:
    """CreateSubscription refused with BadTooManySubscriptions for a session that holds
    `max_subscriptions_per_session` already (asyncua's own cap is for all sessions)."""
    create = service.create_subscription
    most = limits.max_subscriptions_per_session
    refused = Throttle(log)

    async def create_limited(
        params: ua.CreateSubscriptionParameters,
        callback: Any,
        session_id: ua.NodeId,
        request_callback: Any = None,
    ) -> ua.CreateSubscriptionResult:
        held = sum(1 for s in service.subscriptions.values() if s.session_id == session_id)
        if held >= most:
            refused("refused an OPC UA subscription: its session holds %d, the most", most)
            raise ServiceError(Status.BadTooManySubscriptions)
        return await create(params, callback, session_id, request_callback=request_callback)

    service.create_subscription = create_limited  # type: ignore[method-assign]


def _limit_monitored_items(service: SubscriptionService, limits: Limits) -> None:
    """CreateMonitoredItems with BadTooManyMonitoredItems for each item beyond
    `max_monitored_items_per_subscription` in its subscription or `max_monitored_items` in
    all; the items before them are created."""
    create = service.create_monitored_items
    refused = Throttle(log)

    async def create_limited(
        params: ua.CreateMonitoredItemsParameters,
    ) -> list[ua.MonitoredItemCreateResult]:
        subscription = service.subscriptions.get(params.SubscriptionId)
        items = params.ItemsToCreate
        if subscription is None:  # asyncua answers
            return await create(params)
        room = min(
            limits.max_monitored_items_per_subscription - _monitored(subscription),
            limits.max_monitored_items - sum(map(_monitored, service.subscriptions.values())),
        )
        if len(items) <= room:
            return await create(params)
        room = max(room, 0)
        refused("refused %d OPC UA monitored items: beyond the limits", len(items) - room)
        created = await create(dataclasses.replace(params, ItemsToCreate=items[:room]))
        too_many = ua.StatusCode(Status.BadTooManyMonitoredItems)
        return created + [ua.MonitoredItemCreateResult(StatusCode=too_many) for _ in items[room:]]

    service.create_monitored_items = create_limited  # type: ignore[method-assign]


def _monitored(subscription: InternalSubscription) -> int:
    """The monitored items of a subscription."""
    return len(subscription.monitored_item_srv._monitored_items)


# --- what a client sends ---------------------------------------------------------------------


class Refusal(NamedTuple):
    """Why a connection ends: the status code of its ERR message, and the reason."""

    status: int
    reason: str


_CHUNK_TYPES = {b"HEL": b"F", b"OPN": b"F", b"CLO": b"F", b"MSG": b"FCA"}
"""The message types a client sends, with the chunk types each may have."""


def chunk_refusal(stream: bytes, largest: int) -> Refusal | None:
    """Why to end a connection, judged from the header of every chunk in `stream` (bytes a
    client sent, from the start of a chunk): a type no client sends, a size smaller than its
    header or larger than `largest`; None while nothing is wrong."""
    at = 0
    while at + 8 <= len(stream):
        kind, chunk = stream[at : at + 3], stream[at + 3 : at + 4]
        size = int.from_bytes(stream[at + 4 : at + 8], "little")
        if chunk not in _CHUNK_TYPES.get(kind, b""):
            return Refusal(Status.BadTcpMessageTypeInvalid, f"no message type {kind + chunk!r}")
        least = 8 if kind == b"HEL" else 12
        if size <= least:
            return Refusal(Status.BadDecodingError, f"a {kind.decode()} chunk of {size} bytes")
        if size > largest:
            return Refusal(Status.BadTcpMessageTooLarge, f"a chunk of {size} bytes, over {largest}")
        at += size
    return None


def hello_refusal(hello: ua.Hello) -> Refusal | None:
    """Why to refuse a Hello: buffers under 8192 bytes or an endpoint URL over 4096 (Part 6)."""
    buffers = hello.ReceiveBufferSize, hello.SendBufferSize
    if min(buffers) < LEAST_BUFFER:
        return Refusal(
            Status.BadConnectionRejected, f"buffers of {buffers} bytes, under {LEAST_BUFFER}"
        )
    if len((hello.EndpointUrl or "").encode()) > LONGEST_URL:
        return Refusal(Status.BadTcpEndpointUrlInvalid, f"an endpoint URL over {LONGEST_URL}")
    return None


def failure_refusal(error: Exception) -> Refusal:
    """Why to end a connection whose message asyncua failed on: its status code if it has
    one, else BadDecodingError."""
    if isinstance(error, uacrypto.InvalidSignature):
        return Refusal(Status.BadSecurityChecksFailed, "a bad signature")
    code = getattr(error, "code", None)
    status = code if isinstance(code, int) else Status.BadDecodingError
    return Refusal(status, f"{type(error).__name__}: {error}"[:200])


class _Connection(OPCUAProtocol):
    """asyncua's connection to one client, ended with an ERR message at the first chunk or
    message no client may send, rather than buffered or logged with a traceback."""

    refused: Throttle

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        stream = self._buffer + data if self._buffer else data
        refusal = chunk_refusal(stream, self.limits.max_recv_buffer)
        if refusal is None:
            super().data_received(data)
        else:
            self._refuse(refusal)

    async def _process_one_msg(self, header: Any, buf: Buffer) -> bool:
        try:
            refusal = None
            if header.MessageType == ua.MessageType.Hello:
                refusal = hello_refusal(struct_from_binary(ua.Hello, buf.copy()))
            if refusal is None:
                return await super()._process_one_msg(header, buf)
        except Exception as error:
            log.debug("OPC UA message from %s failed", self.peer_name, exc_info=True)
            refusal = failure_refusal(error)
        self._refuse(refusal)
        return False

    def _refuse(self, refusal: Refusal) -> None:
        name = ua.StatusCode(refusal.status).name
        self.refused(
            "ended OPC UA connection from %s: %s: %s", self.peer_name, name, refusal.reason
        )
        self._buffer = b""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            error = ua.ErrorMessage(ua.StatusCode(refusal.status), refusal.reason)
            transport.write(uatcp_to_binary(ua.MessageType.Error, error))
            transport.close()


class _Listener(BinaryServer):
    """asyncua's listener, whose connections are `_Connection`s."""

    refused: Throttle

    def _make_protocol(self) -> OPCUAProtocol:
        connection = _Connection(
            iserver=self.iserver,
            policies=self._policies,
            clients=self.clients,
            closing_tasks=self.closing_tasks,
            limits=self.limits,
        )
        connection.refused = self.refused
        return connection
