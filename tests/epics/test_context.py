"""Search replies echo libca's sequence number, so libca paces its searches at full speed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import caproto as ca
from caproto._commands import read_datagram
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


@contextlib.asynccontextmanager
async def serving(names: list[str]) -> AsyncIterator[tuple[BridgeContext, int]]:
    """An BridgeContext serving doubles of these names on a free port."""
    context = BridgeContext({name: ca.ChannelDouble(value=1.0) for name in names}, ["127.0.0.1"])
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
    async with serving(["TEST:PV"]) as (_, port):
        version, found = await search(port, "TEST:PV", 0xABCD)
        assert isinstance(version, ca.VersionResponse)
        assert (version.header.data_type, version.header.parameter1) == (1, 0xABCD)
        assert isinstance(found, ca.SearchResponse) and found.cid == 7
        version, _ = await search(port, "TEST:PV", None)
        assert (version.header.data_type, version.header.parameter1) == (0, 0)


async def test_a_circuit_hands_out_channel_ids_past_16_bits(no_task_leaks: None) -> None:
    names = [f"TEST:PV{index}" for index in range(3)]
    async with serving(names) as (context, port):
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
