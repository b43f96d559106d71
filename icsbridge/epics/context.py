"""caproto's asyncio server context: searches answered the way libca paces itself by,
channels connected in batches, item PV monitors sent through the direct path of
`monitors.Fanout`, and channel ids of 32 bits.

libca matches each search reply to its own datagram by the sequence number in the reply's
VERSION header. caproto 1.3 always sends 1 there, so after its first datagram libca takes
every reply as stale, never widens its search window and sends one datagram (25 names)
every 32 ms: about 780 connects per second, whatever the server's speed. Echoing the
client's sequence number, as EPICS base's rsrv does, lets libca connect at full speed
(measured 12.8 s -> 1.15 s for 10k PVs).

Once searches are answered at full speed, a client connecting a whole installation is
limited by caproto's per-command handling of CreateChan: two state machines, three command
objects and one socket write per channel, about 100 µs. Circuits here answer runs of
CreateChan for plain PV names directly, many per write.

A CA client is a peer the server cannot trust. A circuit that receives a message it
cannot read, a command out of protocol, or the header of a message larger than the server
takes logs one warning naming the client (throttled, for all circuits together) and closes
at once. The largest message is EPICS base's receive buffer: `EPICS_CA_MAX_ARRAY_BYTES`
plus 24 bytes of header, never less than 16384 bytes; the setting (default 16384) is read
when the context is made. The bridge's largest PV is a char array of 256 bytes, so the
default is ample: raise it only to let clients write longer arrays. A name whose channel
filter does not parse is neither found nor connected, as in EPICS base; a circuit keeps
nothing of a channel it refuses. A beacon that cannot be sent (no CA repeater listens where
it goes, and the port-unreachable answer fails the next send) is a throttled debug line.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
from typing import Any, NoReturn

import caproto as ca
from caproto._circuit import ServerChannel
from caproto._commands import Commands, bytes_needed_for_command
from caproto._utils import CLIENT, CONNECTED, SERVER, parse_channel_filter, parse_record_field
from caproto.asyncio.server import Context, VirtualCircuit
from caproto.server.common import CaprotoNetworkError, DisconnectedCircuit, LoopExit

from icsbridge.logs import Throttle, escape

from .monitors import Fanout

log = logging.getLogger(__name__)

SEQUENCE_VALID = 1
"""Bit of a UDP VERSION header's data type that says its parameter1 is a sequence number."""


CHANNEL_IDS = 1 << 32
"""Server channel ids are 32 bits on the wire; caproto 1.3 stops at 2**16 and then spins."""


CONNECTED_REPLY = struct.Struct(">" + "HHHHII" * 2)
"""ACCESS_RIGHTS then CREATE_CHAN reply headers: command, payload size, data type, data
count, then cid and access rights, or cid and sid."""

ACCESS_RIGHTS, CREATE_CHAN = 22, 18

CREATE_BATCH = 1000
"""Queued CreateChan requests answered in one go before other tasks may run."""

TYPED_REQUESTS = (
    ca.ReadRequest,
    ca.ReadNotifyRequest,
    ca.WriteRequest,
    ca.WriteNotifyRequest,
    ca.EventAddRequest,
    ca.EventCancelRequest,
)
"""Requests whose header names a DBR data type."""

CHANNEL_TYPES = frozenset(ca.ChannelType)
"""The numbers of the DBR data types."""

CLIENT_COMMANDS = frozenset(Commands[CLIENT])
"""The command numbers of the messages a CA client sends."""

SMALLEST_RECEIVE_BUFFER = 16384
"""EPICS base's receive buffer when `EPICS_CA_MAX_ARRAY_BYTES` asks for less (MAX_TCP)."""

HEADER_ROOM = 24
"""What EPICS base adds to `EPICS_CA_MAX_ARRAY_BYTES` for a message's (extended) header."""

FIRST_BEACON_PERIOD = 0.02
"""Seconds between the first two beacons; the period then doubles up to
`EPICS_CAS_BEACON_PERIOD`, as the CA specification recommends and caproto does."""

SHOWN_NAME = 40
"""Characters of a client's host or user name shown in the log."""

SHOWN_REASON = 160
"""Characters of the reason a client's message was refused shown in the log."""


class StrictCircuit(VirtualCircuit):
    """A client's circuit that takes from the client only what the protocol allows, and
    keeps nothing of a channel it refuses.

    A message it cannot read, a command out of protocol, or the header of a message larger
    than the server takes logs one warning naming the client and closes the circuit at
    once, where caproto logs a traceback, may leave the circuit without a reader, or waits
    for the whole message, however large.
    """

    async def recv(self) -> None:
        """Take in what the client sent next, as caproto does, and cut the client off if it
        cannot be read or announces a message larger than the server takes."""
        try:
            await super().recv()
        except DisconnectedCircuit:
            raise
        except Exception as exc:  # what caproto could not parse
            await self._cut_off("sent a message that cannot be read (%s)", reason(exc))
        command, size = announced(self.circuit._data)
        if command is not None and command not in CLIENT_COMMANDS:
            await self._cut_off("sent a message of no CA command (%#x)", command)
        if size > self.context.largest_message:
            await self._cut_off(
                "announced a message of %d bytes, over the %d this server takes "
                "(EPICS_CA_MAX_ARRAY_BYTES)",
                size,
                self.context.largest_message,
            )

    async def _cut_off(self, why: str, *args: object) -> NoReturn:
        """Log why, close the client's socket and stop serving it, dropping what it queued."""
        self._complain(why, *args)
        await self._on_disconnect()
        await self.tasks.cancel_all(wait=True)
        raise DisconnectedCircuit

    def _complain(self, why: str, *args: object) -> None:
        """One throttled warning that this client is cut off, and why."""
        self.context.refusals("CA client %s " + why + "; circuit closed", self._who(), *args)

    def _who(self) -> str:
        """The client as the log names it: its address, host and user as it reported them."""
        address, port = self.circuit.address
        host, user = shown(self.client_hostname), shown(self.client_username)
        return f"{address}:{port} (host {host}, user {user})"

    async def _command_queue_iteration(self, command: Any) -> Any:
        """The replies to one command; a channel refused is then forgotten."""
        response = await self._handle(command)
        if type(command) is ca.CreateChanRequest and failed_to_connect(response):
            await self.send(*response)
            self.circuit.channels.pop(command.cid, None)
            return None
        return response

    async def _handle(self, command: Any) -> Any:
        """The replies to one command, as caproto makes them, except that a command out of
        protocol cuts the client off (caproto logs a traceback, and may stop reading), and
        a CreateChan for a name no channel can have is refused (caproto does not answer)."""
        try:
            self._take_in(command)
        except Exception as exc:
            if type(command) is ca.CreateChanRequest:  # a name no channel has: a bad filter
                await self._send_buffers(bytes(ca.CreateChFailResponse(command.cid)))
                return None
            self._complain("sent a command out of protocol (%s)", reason(exc))
            raise DisconnectedCircuit from exc
        if command is ca.DISCONNECTED:
            raise DisconnectedCircuit
        try:
            return await self._process_command(command)
        except ca.RemoteProtocolError as exc:  # a request caproto cannot make sense of
            self._complain("sent a request out of protocol (%s)", reason(exc))
            raise DisconnectedCircuit from exc
        except Exception as exc:
            return self._failed(command, exc)

    def _take_in(self, command: Any) -> None:
        """Take a command into the circuit's state; raise if it is out of protocol, with two
        checks caproto leaves to chance: the sid of every command on a channel, and the data
        type of every request for a value."""
        sid = getattr(command, "sid", None)
        if sid is not None and sid not in self.circuit.channels_sid:
            raise ca.RemoteProtocolError(f"no channel of sid {sid}")
        if isinstance(command, TYPED_REQUESTS) and command.header.data_type not in CHANNEL_TYPES:
            raise ca.RemoteProtocolError(f"no data type {command.header.data_type}")
        self.circuit.process_command(command)

    async def _cull_subscriptions(self, db_entry: Any, func: Any) -> Any:
        """Remove subscriptions as caproto does, then the lists they leave empty: caproto
        keeps one for every kind of subscription a circuit (and the context) ever had, so a
        display opening and closing screens on one circuit grew the bridge without bound."""
        removed = await super()._cull_subscriptions(db_entry, func)
        shared = self.context.subscriptions
        for spec, _ in removed:
            for kept in (self.subscriptions, shared, self.subscriptions_to_resend):
                if spec in kept and not kept[spec]:
                    del kept[spec]
        return removed

    def _failed(self, command: Any, exc: Exception) -> list[ca.ErrorResponse] | None:
        """The server's own failure on a command: logged with its traceback, as caproto does,
        and answered with an error if the command is on a channel."""
        if not self.connected:
            raise LoopExit("server error after the client left") from exc
        channel = self.circuit.channels_sid.get(getattr(command, "sid", None))
        name = None if channel is None else channel.name
        self.log.exception("Server failed to process command (%r): %s", name, command)
        if channel is None:
            return None
        message = f"Python exception: {type(exc).__name__} {exc}"
        status = ca.CAStatus.ECA_INTERNAL
        return [ca.ErrorResponse(command, channel.cid, status=status, error_message=message)]


class WideCircuit(StrictCircuit):
    """A client's circuit that can hold more than 65,536 channels, as one libca client
    connecting a whole installation needs (it puts every channel of a server on one),
    connects channels in batches, and is strict.

    Its socket sends at once (TCP_NODELAY), as EPICS base's own server's does. caproto makes
    its listening socket without naming the protocol, so asyncio leaves Nagle's algorithm
    on: a monitor update then waited for the client's delayed acknowledgement of the one
    before, 20-40 ms, for one in a few dozen updates at light load.
    """

    def __init__(self, circuit: Any, client: Any, context: Any) -> None:
        super().__init__(circuit, client, context)
        circuit._channel_id_counter.MAX_ID = CHANNEL_IDS
        sock = client.writer.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _command_queue_iteration(self, command: Any) -> Any:
        """Answer a run of queued CreateChan requests with one write, the rest one by one."""
        replies: list[bytes] = []
        while type(command) is ca.CreateChanRequest and len(replies) < CREATE_BATCH:
            reply = self._connect(command)
            if reply is None:
                break
            replies.append(reply)
            try:
                command = self.command_queue.get_nowait()
            except asyncio.QueueEmpty:
                command = None
        if replies:
            await self._send_buffers(*replies)
        if command is None:
            return None
        response = await super()._command_queue_iteration(command)
        if type(command) is ca.EventAddRequest:
            self._keep_own_copy(command)
        return response

    def _keep_own_copy(self, request: ca.EventAddRequest) -> None:
        """caproto keeps each EventAddRequest for the life of its subscription; as parsed,
        it holds on to the receive buffer it came in (2 KiB on average, 200 MiB for 100k
        subscriptions). Keep a copy of its own 32 bytes instead."""
        kept = self.circuit.event_add_commands
        if kept.get(request.subscriptionid) is request:
            kept[request.subscriptionid] = ca.EventAddRequest(
                request.data_type, request.data_count, request.sid, request.subscriptionid,
                request.low, request.high, request.to, request.mask,
            )  # fmt: skip

    def _connect(self, request: ca.CreateChanRequest) -> bytes | None:
        """Connect a channel to a PV of the database by its plain name, in the state and
        with the replies caproto's own path gives it; None leaves the request to caproto
        (unknown names, record fields, modifiers, a circuit not yet connected, a reused cid)."""
        circuit = self.circuit
        name, cid = request.name, request.cid
        pv = self.context.pvdb.get(name)
        if (
            pv is None
            or "$" in name
            or "{" in name
            or cid in circuit.channels
            or circuit.states[SERVER] is not CONNECTED
        ):
            return None
        access = pv.check_access(self.client_hostname, self.client_username)
        channel = ServerChannel(name, circuit, cid)
        channel.states.states.update({CLIENT: CONNECTED, SERVER: CONNECTED})
        channel.native_data_type, channel.native_data_count = pv.data_type, pv.max_length
        channel.access_rights = access
        channel.sid = sid = circuit.new_channel_id()
        circuit.channels_sid[sid] = channel
        return CONNECTED_REPLY.pack(
            ACCESS_RIGHTS, 0, 0, 0, cid, access,
            CREATE_CHAN, 0, pv.data_type, pv.max_length, cid, sid,
        )  # fmt: skip


class BridgeContext(Context):
    """caproto's server context with search replies that echo the client's sequence number,
    wide circuits, the direct monitor path (`fanout`) that item PVs subscribe through, and
    beacons that fail quietly."""

    CircuitClass = WideCircuit

    def __init__(self, pvdb: dict[str, Any], interfaces: list[str] | None = None) -> None:
        super().__init__(pvdb, interfaces)
        self.fanout = Fanout(self.subscriptions)
        self.largest_message = largest_message(self.environ["EPICS_CA_MAX_ARRAY_BYTES"])
        """Bytes, header included, of the largest message a client may send."""
        self.refusals = Throttle(log)
        """Warnings about clients cut off for what they sent, shared by all circuits."""
        self.unsent_beacons = Throttle(log, level=logging.DEBUG)
        """Debug lines about beacons that could not be sent."""

    async def broadcast_beacon_loop(self) -> None:
        """Send beacons at caproto's pace, first every 20 ms, then ever more slowly."""
        period, longest = FIRST_BEACON_PERIOD, self.environ["EPICS_CAS_BEACON_PERIOD"]
        while True:
            await self._send_beacons()
            self.beacon_count += 1
            if period < longest:
                period = min(longest, period * 2)
            await asyncio.sleep(period)

    async def _send_beacons(self) -> None:
        """One beacon to each beacon address; one that cannot be sent is a debug line."""
        for address, (interface, sock) in self.beacon_socks.items():
            beacon = ca.Beacon(ca.DEFAULT_PROTOCOL_VERSION, self.port, self.beacon_count, interface)
            try:
                await sock.send(self.broadcaster.send(beacon))
            except OSError as exc:
                cause = exc.__cause__ or exc
                self.unsent_beacons("beacon to %s:%d not sent: %s", *address, cause)

    async def _broadcaster_queue_iteration(self, addr: Any, commands: list[Any]) -> None:
        self.broadcaster.process_commands(commands)
        if addr in self.ignore_addresses:
            return
        version: ca.VersionRequest | None = None
        replies = []
        for command in commands:
            if isinstance(command, ca.VersionRequest):
                version = command
            elif isinstance(command, ca.SearchRequest) and self._knows(command.name):
                # an address of None tells the client to take it from the datagram
                replies.append(
                    ca.SearchResponse(self.port, None, command.cid, ca.DEFAULT_PROTOCOL_VERSION)
                )
        if not replies:
            return
        if version is not None:
            replies.insert(0, echo(version))
        datagram = self.broadcaster.send(*replies)
        for sock in self.udp_socks.values():
            try:
                await sock.sendto(datagram, addr)
            except OSError as exc:
                host, port = addr
                raise CaprotoNetworkError(f"Failed to send to {host}:{port}") from exc

    def _knows(self, name: str) -> bool:
        """Whether a channel of this name can be made: its PV exists, its filter parses."""
        try:
            modifiers = parse_record_field(name).modifiers
            if modifiers is not None:
                parse_channel_filter(modifiers.filter_)
            return self[name] is not None
        except (KeyError, ValueError):
            return False


def echo(request: ca.VersionRequest) -> ca.VersionResponse:
    """The VERSION reply to a search datagram, carrying its sequence number if it had one."""
    response = ca.VersionResponse(ca.DEFAULT_PROTOCOL_VERSION)
    valid = request.header.data_type & SEQUENCE_VALID
    response.header.data_type = SEQUENCE_VALID if valid else 0
    response.header.parameter1 = request.header.parameter1 if valid else 0
    return response


def failed_to_connect(replies: list[Any] | None) -> bool:
    """Whether these replies to a CreateChan refuse the channel: EPICS base then keeps
    nothing of it, where caproto keeps the channel (about 1 KiB, for as long as the circuit
    lasts) and takes a new CreateChan with the same cid as out of protocol."""
    return any(type(reply) is ca.CreateChFailResponse for reply in replies or ())


def largest_message(max_array_bytes: int) -> int:
    """The largest message, header included, a server takes, as EPICS base sizes it."""
    return max(SMALLEST_RECEIVE_BUFFER, max_array_bytes + HEADER_ROOM)


def announced(received: bytearray) -> tuple[int | None, int]:
    """The command and size, header included, of the message that `received` begins with;
    None and 0 until its header is in."""
    header, _ = bytes_needed_for_command(received, CLIENT)
    if header is None:
        return None, 0
    return header.command, ctypes.sizeof(header) + header.payload_size


def reason(exc: BaseException) -> str:
    """What went wrong, in one short line."""
    lines = str(exc).splitlines()
    return escape(f"{type(exc).__name__}: {lines[0] if lines else ''}"[:SHOWN_REASON])


def shown(name: str | None) -> str:
    """A name a client reported, quoted and cut short for the log; `?` if it reported none."""
    if name is None:
        return "?"
    return repr(name[:SHOWN_NAME] + ("..." if len(name) > SHOWN_NAME else ""))
