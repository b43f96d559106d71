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
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import caproto as ca
from caproto._circuit import ServerChannel
from caproto._utils import CLIENT, CONNECTED, SERVER
from caproto.asyncio.server import Context, VirtualCircuit
from caproto.server.common import CaprotoNetworkError

from .monitors import Fanout

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


class WideCircuit(VirtualCircuit):
    """A client's circuit that can hold more than 65,536 channels, as one libca client
    connecting a whole installation needs (it puts every channel of a server on one), and
    connects channels in batches.

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
        """Answer a run of queued CreateChan requests with one write, the rest as caproto."""
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
    wide circuits, and the direct monitor path (`fanout`) that item PVs subscribe through."""

    CircuitClass = WideCircuit

    def __init__(self, pvdb: dict[str, Any], interfaces: list[str] | None = None) -> None:
        super().__init__(pvdb, interfaces)
        self.fanout = Fanout(self.subscriptions)

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
        try:
            return self[name] is not None
        except KeyError:
            return False


def echo(request: ca.VersionRequest) -> ca.VersionResponse:
    """The VERSION reply to a search datagram, carrying its sequence number if it had one."""
    response = ca.VersionResponse(ca.DEFAULT_PROTOCOL_VERSION)
    valid = request.header.data_type & SEQUENCE_VALID
    response.header.data_type = SEQUENCE_VALID if valid else 0
    response.header.parameter1 = request.header.parameter1 if valid else 0
    return response
