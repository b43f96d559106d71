"""Search replies echo libca's sequence number, so libca paces its searches at full speed;
a circuit answers a run of connection requests in one write, in order with everything else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import caproto as ca
from caproto import ChannelData, ChannelType
from caproto._commands import read_datagram
from rawca import RawClient

from icsbridge.epics.context import BridgeContext

from conftest import eventually, free_port

READ_WRITE = ca.AccessRights.READ | ca.AccessRights.WRITE
CREATED = ["AccessRightsResponse", "CreateChanResponse"]
"""The replies that open a channel."""


async def search(port: int, name: str, sequence: int | None) -> list[object]:
    """Send one search datagram, as libca does, and return the commands of the reply."""
    version = ca.VersionRequest(priority=0, version=ca.DEFAULT_PROTOCOL_VERSION)
    if sequence is not None:
        version.header.data_type = 1  # the sequence number is valid
        version.header.parameter1 = sequence
    request = ca.SearchRequest(name, cid=7, version=ca.DEFAULT_PROTOCOL_VERSION)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        await loop.sock_sendto(udp, bytes(version) + bytes(request), ("127.0.0.1", port))
        async with asyncio.timeout(5):
            data, address = await loop.sock_recvfrom(udp, 4096)
    return read_datagram(data, address, ca.SERVER)  # the role of the sender


def doubles(names: list[str]) -> dict[str, ChannelData]:
    """Double PVs of these names, each holding its position in `names` (from 1)."""
    return {name: ca.ChannelDouble(value=float(n)) for n, name in enumerate(names, 1)}


@contextlib.asynccontextmanager
async def serving(pvdb: dict[str, ChannelData]) -> AsyncIterator[tuple[BridgeContext, int]]:
    """A BridgeContext serving these PVs on a free port."""
    context = BridgeContext(pvdb, ["127.0.0.1"])
    context.ca_server_port = port = free_port()
    listening = asyncio.Event()

    async def started(async_lib: object) -> None:
        listening.set()

    server = asyncio.create_task(context.run(startup_hook=started))
    try:
        await listening.wait()
        yield context, port
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


async def test_search_replies_echo_the_sequence_number(no_task_leaks: None) -> None:
    async with serving(doubles(["TEST:PV"])) as (_, port):
        version, found = await search(port, "TEST:PV", 0xABCD)
        assert isinstance(version, ca.VersionResponse)
        assert (version.header.data_type, version.header.parameter1) == (1, 0xABCD)
        assert isinstance(found, ca.SearchResponse) and found.cid == 7
        version, _ = await search(port, "TEST:PV", None)
        assert (version.header.data_type, version.header.parameter1) == (0, 0)


async def test_a_circuit_hands_out_channel_ids_past_16_bits(no_task_leaks: None) -> None:
    names = [f"TEST:PV{index}" for index in range(3)]
    async with serving(doubles(names)) as (context, port):
        client = RawClient(port)
        await asyncio.to_thread(client.receive, 0.2)  # the server's version reply
        (circuit,) = context.circuits
        circuit.circuit._channel_id_counter.value = (1 << 16) - 2  # 65,534 channels made
        sids = []
        for name in names:
            channel = ca.ClientChannel(name, client.circuit)
            client.send(channel.create())
            replies = await asyncio.to_thread(client.receive, 0.5)
            sids += [r.sid for r in replies if isinstance(r, ca.CreateChanResponse)]
        client.sock.close()
        assert sids == [65535, 65536, 65537]


class Wire:
    """A CA client on a plain socket: it writes what it is given in one send, checks no
    order on its side, and reads replies by count."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.parser = ca.VirtualCircuit(ca.CLIENT, ("127.0.0.1", port), priority=0)

    def send(self, *requests: Any) -> None:
        self.sock.sendall(b"".join(bytes(request) for request in requests))

    async def replies(self, count: int) -> list[Any]:
        """The next `count` replies of the server."""
        return await asyncio.to_thread(self._read, count)

    def _read(self, count: int) -> list[Any]:
        replies: list[Any] = []
        while len(replies) < count:
            data = self.sock.recv(65536)
            assert data, f"the server closed the circuit after {replies}"
            received, _ = self.parser.recv(data)
            replies += received
        return replies

    async def connect(self, name: str, cid: int) -> int:
        """Greet the server and create one channel; its server id."""
        self.send(*greeting(), create(name, cid))
        _, _, created = await self.replies(3)
        return int(created.sid)


@contextlib.contextmanager
def wire(port: int) -> Iterator[Wire]:
    """A Wire to the server on `port`, closed on leaving."""
    client = Wire(port)
    with client.sock:
        yield client


def greeting() -> list[Any]:
    """What libca sends first on a circuit."""
    return [
        ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
        ca.HostNameRequest("test"),
        ca.ClientNameRequest("test"),
    ]


def create(name: str, cid: int) -> ca.CreateChanRequest:
    """CREATE_CHAN, as libca sends it."""
    return ca.CreateChanRequest(name, cid, ca.DEFAULT_PROTOCOL_VERSION)


def read(sid: int, ioid: int) -> ca.ReadNotifyRequest:
    """READ_NOTIFY of a double."""
    return ca.ReadNotifyRequest(ChannelType.DOUBLE, 1, sid, ioid)


def kinds(replies: list[Any]) -> list[str]:
    """The command names of these replies."""
    return [type(reply).__name__ for reply in replies]


async def test_connection_requests_in_one_segment_are_all_answered_in_order(
    no_task_leaks: None,
) -> None:
    requests = [
        *greeting(),
        create("TEST:A", 1),
        create("TEST:NONE", 2),
        create("TEST:B", 3),
        ca.EchoRequest(),
    ]
    async with serving(doubles(["TEST:A", "TEST:B"])) as (_, port):
        with wire(port) as client:
            client.send(*requests)
            replies = await client.replies(7)
    expected = ["VersionResponse", *CREATED, "CreateChFailResponse", *CREATED, "EchoResponse"]
    assert kinds(replies) == expected
    _, rights_a, created_a, _, rights_b, created_b, _ = replies
    assert [reply.cid for reply in replies[1:6]] == [1, 1, 2, 3, 3]
    assert rights_a.access_rights == rights_b.access_rights == READ_WRITE
    created = [(reply.data_type, reply.data_count) for reply in (created_a, created_b)]
    assert created == [(ChannelType.DOUBLE, 1)] * 2
    assert created_a.sid != created_b.sid


async def test_other_commands_in_the_segment_are_answered_in_order(no_task_leaks: None) -> None:
    names = ["TEST:A", "TEST:B", "TEST:C"]
    async with serving(doubles(names)) as (_, port):
        with wire(port) as client:
            sid = await client.connect("TEST:A", 1)
            subscribe = ca.EventAddRequest(ChannelType.DOUBLE, 1, sid, 5, 0, 0, 0, 1)
            client.send(create("TEST:B", 2), read(sid, 9), create("TEST:C", 3), subscribe)
            replies = await client.replies(6)
    assert kinds(replies) == [*CREATED, "ReadNotifyResponse", *CREATED, "EventAddResponse"]
    _, created_b, value, _, created_c, event = replies
    assert (created_b.cid, created_c.cid) == (2, 3)
    assert (value.ioid, list(value.data)) == (9, [1.0])
    assert (event.subscriptionid, list(event.data)) == (5, [1.0])


class GatedDouble(ca.ChannelDouble):  # type: ignore[misc]
    """A double whose reads wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__(value=7.0)
        self.reading = asyncio.Event()
        self.gate = asyncio.Event()

    async def read(self, data_type: Any) -> Any:
        self.reading.set()
        await self.gate.wait()
        return await super().read(data_type)


async def test_a_create_chan_waits_for_the_reply_of_a_command_before_it(
    no_task_leaks: None,
) -> None:
    slow = GatedDouble()
    async with serving({"TEST:SLOW": slow, **doubles(["TEST:B"])}) as (context, port):
        with wire(port) as client:
            sid = await client.connect("TEST:SLOW", 1)
            client.send(read(sid, 9))
            await slow.reading.wait()
            client.send(create("TEST:B", 2))
            (circuit,) = context.circuits
            await eventually(lambda: not circuit.command_queue.empty())  # read and held back
            slow.gate.set()
            replies = await client.replies(3)
    assert kinds(replies) == ["ReadNotifyResponse", *CREATED]
    assert (replies[0].ioid, list(replies[0].data), replies[2].cid) == (9, [7.0], 2)


LIBCA_READ = """
import json, sys
from epics import ca
chids = [ca.create_channel(name, connect=False, auto_cb=False) for name in sys.argv[1:]]
if all(ca.connect_channel(chid, timeout=20) for chid in chids):
    print(json.dumps([[ca.field_type(c), ca.element_count(c), ca.get(c)] for c in chids]))
"""
"""A libca client (pyepics): connect channels to the PVs named in argv, then read each:
native type, element count and value."""


async def test_libca_connects_and_reads_hundreds_of_pvs(no_task_leaks: None) -> None:
    names = [f"TEST:MANY{index}" for index in range(300)]
    async with serving(doubles(names)) as (_, port):
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LIBCA_READ,
            *names,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "EPICS_CA_SERVER_PORT": str(port)},
        )
        output, _ = await client.communicate()
    assert json.loads(output) == [[ChannelType.DOUBLE, 1, float(n)] for n in range(1, 301)]
