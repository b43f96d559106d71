"""Search replies echo libca's sequence number, so libca paces its searches at full speed;
channels connect in batches, answered as caproto answers them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import caproto as ca
from caproto._commands import read_datagram
from caproto.asyncio.server import Context
from rawca import RawClient

from icsbridge.epics.context import BridgeContext

from conftest import free_port


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


def doubles(names: list[str]) -> dict[str, ca.ChannelData]:
    return {name: ca.ChannelDouble(value=1.0) for name in names}


@contextlib.asynccontextmanager
async def serving(
    pvdb: dict[str, ca.ChannelData], kind: type[Context] = BridgeContext
) -> AsyncIterator[tuple[Context, int]]:
    """A context of this kind serving `pvdb` on a free port."""
    context = kind(pvdb, ["127.0.0.1"])
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


async def test_a_circuit_sends_at_once(no_task_leaks: None) -> None:
    """No Nagle's algorithm: a small monitor update does not wait for the client's
    acknowledgement of the one before, as it would with caproto's own socket."""
    async with serving(doubles(["TEST:PV"])) as (context, port):
        client = RawClient(port)
        await asyncio.to_thread(client.receive, 0.2)  # the server's version reply
        (circuit,) = context.circuits
        sock = circuit.client.writer.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.sock.close()


class ReadOnly(ca.ChannelDouble):
    def check_access(self, hostname: str, username: str) -> ca.AccessRights:
        return ca.AccessRights.READ


async def conversation(kind: type[Context]) -> list[bytes]:
    """What a server of this kind answers a client that connects a mix of channels in one
    go (known, unknown, record fields), then uses two of them, cancels a subscription and
    clears a channel."""
    pvdb: dict[str, ca.ChannelData] = {
        "TEST:D": ca.ChannelDouble(value=1.5, timestamp=1e9),
        "TEST:I": ca.ChannelInteger(value=7),
        "TEST:E": ca.ChannelEnum(value="on", enum_strings=["off", "on"]),
        "TEST:S": ca.ChannelString(value="text", max_length=12),
        "TEST:RO": ReadOnly(value=2.0),
    }
    names = ["TEST:D", "TEST:I", "TEST:NONE", "TEST:E", "TEST:D.DESC", "TEST:S", "TEST:RO"]
    async with serving(pvdb, kind) as (_, port):
        client = RawClient(port)
        replies = await asyncio.to_thread(client.take, 1)  # the version
        channels = [ca.ClientChannel(name, client.circuit) for name in names]
        client.send(*(channel.create() for channel in channels))
        replies += await asyncio.to_thread(client.take, 2 * len(names) - 2)  # two fail
        double, integer = channels[:2]
        client.send(
            double.subscribe(data_type=ca.ChannelType.TIME_DOUBLE, subscriptionid=1),
            integer.read(ioid=2),
            integer.write(9, ioid=3, notify=True),
            integer.read(ioid=4),
        )
        used = await asyncio.to_thread(client.take, 4)
        client.send(double.unsubscribe(1), double.clear())
        ended = await asyncio.to_thread(client.take, 2)
        client.sock.close()
    # caproto sends a subscription's first value from a task of its own: it may come before
    # or after the replies to the reads and the write
    return [bytes(reply) for reply in replies] + sorted(map(bytes, used)) + list(map(bytes, ended))


def test_batched_connects_answer_as_caproto_does() -> None:
    # each server on its own loop: a caproto server leaves its listener to the loop it ran on
    bridge, stock = (asyncio.run(conversation(kind)) for kind in (BridgeContext, Context))
    assert bridge == stock
