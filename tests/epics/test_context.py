"""Search replies echo libca's sequence number, so libca paces its searches at full speed;
channels connect in batches, answered as caproto answers them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator

import caproto as ca
import pytest
from caproto._commands import read_datagram
from caproto.asyncio.server import Context
from rawca import RawClient

from icsbridge.epics.context import BridgeContext

from conftest import eventually, free_port


async def search(port: int, name: str, sequence: int | None, *others: str) -> list[object]:
    """Send one search datagram, as libca does, and return the commands of the reply; the
    names searched have cids 7, 8 and on."""
    version = ca.VersionRequest(priority=0, version=ca.DEFAULT_PROTOCOL_VERSION)
    if sequence is not None:
        version.header.data_type = 1  # the sequence number is valid
        version.header.parameter1 = sequence
    requests = [
        ca.SearchRequest(each, cid=cid, version=ca.DEFAULT_PROTOCOL_VERSION)
        for cid, each in enumerate((name, *others), 7)
    ]
    datagram = bytes(version) + b"".join(map(bytes, requests))
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        await loop.sock_sendto(udp, datagram, ("127.0.0.1", port))
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


# --- clients that break the protocol, and beacons no one hears --------------------------


def connect(port: int, name: str, host: str = "test") -> tuple[RawClient, ca.ClientChannel]:
    """A raw client past its handshake, with a channel to `name`."""
    client = RawClient(port, host)
    channel = ca.ClientChannel(name, client.circuit)
    client.send(channel.create())
    client.take(3)  # the version, the access rights, the channel
    return client, channel


def read(client: RawClient, channel: ca.ClientChannel) -> float:
    """The value of the channel, read from the server."""
    client.send(channel.read())
    (reply,) = client.take(1)
    return float(reply.data[0])  # type: ignore[attr-defined]


def watch(port: int, name: str) -> RawClient:
    """A raw client subscribed to `name`, its first update taken."""
    client, channel = connect(port, name)
    client.send(channel.subscribe(data_type=ca.ChannelType.DOUBLE, subscriptionid=1))
    client.take(1)
    return client


def send(client: RawClient, data: bytes) -> None:
    """Send `data`, whether or not the server closes the circuit while it goes."""
    with contextlib.suppress(ConnectionError):
        client.sock.sendall(data)


async def still_serving(context: Context, port: int, watcher: RawClient) -> None:
    """The server goes on: the watcher's monitor gets a new value, a new client reads it."""
    await context.pvdb["TEST:PV"].write(2.5)
    (update,) = await asyncio.to_thread(watcher.take, 1)
    assert update.data[0] == 2.5  # type: ignore[attr-defined]
    client, channel = await asyncio.to_thread(connect, port, "TEST:PV")
    assert await asyncio.to_thread(read, client, channel) == 2.5
    client.sock.close()
    watcher.sock.close()


def warnings_and_tracebacks(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The messages of the WARNING-or-above records, and of those with a traceback."""
    records = caplog.records
    return (
        [r.getMessage() for r in records if r.levelno >= logging.WARNING],
        [r.getMessage() for r in records if r.exc_info or r.exc_text],
    )


EXTENDED_4GIB = struct.pack(">HHHHIIII", 19, 0xFFFF, 6, 0, 0, 1, 0xFFFF_FFF0, 1)
"""A WriteNotify's extended header announcing a payload of 4 GiB."""

LONG_WRITES = (struct.pack(">HHHHII", 19, 0xFFFF, 6, 1, 0, 1) + bytes(0xFFFF)) * 2
"""WriteNotifys whose plain headers announce 65,535 bytes each, the payloads following."""


@pytest.mark.parametrize(
    ("message", "size"),
    [(EXTENDED_4GIB, 24 + 0xFFFF_FFF0), (LONG_WRITES, 16 + 0xFFFF)],
    ids=["extended header of 4 GiB", "plain headers of 64 KiB"],
)
async def test_a_client_announcing_too_large_a_message_is_cut_off(
    message: bytes,
    size: int,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    no_task_leaks: None,
) -> None:
    """Before its payload comes, with one warning that names the client and the sizes."""
    monkeypatch.delenv("EPICS_CA_MAX_ARRAY_BYTES", raising=False)
    caplog.set_level(logging.INFO)
    async with serving(doubles(["TEST:PV"])) as (context, port):
        watcher = await asyncio.to_thread(watch, port, "TEST:PV")
        hostile, _ = await asyncio.to_thread(connect, port, "TEST:PV", "evil\nERROR forged")
        address = "{}:{}".format(*hostile.sock.getsockname())
        await asyncio.to_thread(send, hostile, message)
        assert await asyncio.to_thread(hostile.closed_by_server)
        await eventually(lambda: len(context.circuits) == 1)
        await still_serving(context, port, watcher)
    warnings, tracebacks = warnings_and_tracebacks(caplog)
    (warning,) = warnings
    assert address in warning and f" {size} bytes" in warning and " 16408 " in warning
    assert "host 'evil\\nERROR forged', user 'test'" in warning
    assert not tracebacks


def host_name(size: int) -> bytes:
    """A HostNameRequest of `size` bytes, header included."""
    return struct.pack(">HHHHII", 21, size - 16, 0, 0, 0, 0) + b"h" * (size - 17) + b"\0"


@pytest.mark.parametrize(
    ("setting", "size", "taken"),
    [
        (None, 16408, True),
        (None, 16416, False),
        ("1000", 16384, True),  # never less than 16384
        ("1000", 16392, False),
        ("40000", 40024, True),
        ("40000", 40032, False),
    ],
)
async def test_the_largest_message_taken_is_the_receive_buffer_of_epics_base(
    setting: str | None,
    size: int,
    taken: bool,
    monkeypatch: pytest.MonkeyPatch,
    no_task_leaks: None,
) -> None:
    """EPICS_CA_MAX_ARRAY_BYTES plus 24 bytes of header, and never less than 16384."""
    if setting is None:
        monkeypatch.delenv("EPICS_CA_MAX_ARRAY_BYTES", raising=False)
    else:
        monkeypatch.setenv("EPICS_CA_MAX_ARRAY_BYTES", setting)
    async with serving(doubles(["TEST:PV"])) as (_, port):
        client, channel = await asyncio.to_thread(connect, port, "TEST:PV")
        await asyncio.to_thread(send, client, host_name(size))
        if taken:
            assert await asyncio.to_thread(read, client, channel) == 1.0
        else:
            assert await asyncio.to_thread(client.closed_by_server)
        client.sock.close()


GARBAGE = [
    pytest.param(random.Random(0).randbytes(256), False, id="random bytes"),
    pytest.param(struct.pack(">HHHHII", 0x1234, 0, 0, 0, 0, 0), False, id="unknown command"),
    pytest.param(bytes(ca.ReadNotifyRequest(6, 1, 999, 1)), False, id="read of no channel"),
    # a subscription to the client's one channel (sid 0) in a data type that does not exist
    pytest.param(struct.pack(">HHHHII", 1, 16, 999, 1, 0, 1) + bytes(16), False, id="no data type"),
    pytest.param(b"\x00\x0f\x00\x10\x00\x06", True, id="truncated header, then close"),
]


@pytest.mark.parametrize(("garbage", "then_close"), GARBAGE)
async def test_a_client_sending_garbage_is_cut_off_without_a_traceback(
    garbage: bytes, then_close: bool, caplog: pytest.LogCaptureFixture, no_task_leaks: None
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(doubles(["TEST:PV"])) as (context, port):
        watcher = await asyncio.to_thread(watch, port, "TEST:PV")
        hostile, _ = await asyncio.to_thread(connect, port, "TEST:PV")
        await asyncio.to_thread(send, hostile, garbage)
        if then_close:
            hostile.sock.shutdown(socket.SHUT_WR)
        assert await asyncio.to_thread(hostile.closed_by_server)
        await still_serving(context, port, watcher)
    warnings, tracebacks = warnings_and_tracebacks(caplog)
    assert len(warnings) <= 1 and not tracebacks
    assert "Traceback" not in caplog.text


def receive(client: RawClient, size: int) -> list[object]:
    """The commands in the next `size` bytes, kept out of the client circuit's state."""
    client.sock.settimeout(5.0)
    data = b""
    while len(data) < size:
        more = client.sock.recv(size - len(data))
        assert more, f"the server closed the circuit after {data!r}"
        data += more
    commands, _ = ca.VirtualCircuit(ca.CLIENT, client.circuit.address, 0).recv(data)
    return list(commands)


async def test_a_refused_channel_leaves_nothing_behind(no_task_leaks: None) -> None:
    """As in EPICS base, a circuit keeps nothing of a CreateChan for a name it does not
    serve (caproto keeps a channel, about 1 KiB each), so the client may use the cid again."""
    async with serving(doubles(["TEST:PV"])) as (context, port):
        client = RawClient(port)
        await asyncio.to_thread(client.take, 1)  # the version
        unknown = [ca.ClientChannel(f"TEST:NONE{i}", client.circuit) for i in range(1000)]
        client.send(*(channel.create() for channel in unknown))
        refused = await asyncio.to_thread(client.take, len(unknown))
        assert {type(reply) for reply in refused} == {ca.CreateChFailResponse}
        (circuit,) = context.circuits
        assert not circuit.circuit.channels
        again = ca.CreateChanRequest("TEST:PV", unknown[0].cid, ca.DEFAULT_PROTOCOL_VERSION)
        client.sock.sendall(bytes(again))
        replies = await asyncio.to_thread(receive, client, 32)
        assert [type(reply) for reply in replies] == [
            ca.AccessRightsResponse,
            ca.CreateChanResponse,
        ]
        client.sock.close()


async def test_a_circuit_keeps_nothing_of_the_subscriptions_it_cancelled(
    no_task_leaks: None,
) -> None:
    names = [f"TEST:PV{i}" for i in range(200)]
    async with serving(doubles(["TEST:PV", *names])) as (context, port):
        client = RawClient(port)
        await asyncio.to_thread(client.take, 1)  # the version
        channels = [ca.ClientChannel(name, client.circuit) for name in names]
        client.send(*(channel.create() for channel in channels))
        await asyncio.to_thread(client.take, 2 * len(channels))
        for kind in (ca.ChannelType.DOUBLE, ca.ChannelType.TIME_DOUBLE):  # two specs each
            client.send(
                *(c.subscribe(data_type=kind, subscriptionid=i) for i, c in enumerate(channels))
            )
            await asyncio.to_thread(client.take, len(channels))
            client.send(*(c.unsubscribe(i) for i, c in enumerate(channels)))
            await asyncio.to_thread(client.take, len(channels))
        (circuit,) = context.circuits
        assert not circuit.subscriptions and not context.subscriptions
        await still_serving(context, port, await asyncio.to_thread(watch, port, "TEST:PV"))
        client.sock.close()


async def test_a_channel_of_a_bad_filter_is_refused_as_epics_base_refuses_it(
    caplog: pytest.LogCaptureFixture, no_task_leaks: None
) -> None:
    """Not found by a search, refused by a CreateChan, with the circuit kept: a typo in one
    name costs the client no other channel."""
    caplog.set_level(logging.INFO)
    bad = "TEST:PV.{bad"
    async with serving(doubles(["TEST:PV"])) as (_, port):
        _, *found = await search(port, "TEST:PV", None, bad)
        assert [reply.cid for reply in found] == [7]  # type: ignore[attr-defined]
        client, channel = await asyncio.to_thread(connect, port, "TEST:PV")
        client.sock.sendall(bytes(ca.CreateChanRequest(bad, 99, ca.DEFAULT_PROTOCOL_VERSION)))
        (refused,) = await asyncio.to_thread(receive, client, 16)
        assert type(refused) is ca.CreateChFailResponse and refused.cid == 99
        assert await asyncio.to_thread(read, client, channel) == 1.0
        client.sock.close()
    assert warnings_and_tracebacks(caplog) == ([], [])


async def test_beacons_no_one_hears_are_no_news(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, no_task_leaks: None
) -> None:
    """Where no CA repeater listens, the port-unreachable answer to one beacon fails the
    send of the next: no traceback, no warning."""
    monkeypatch.setenv("EPICS_CAS_BEACON_PORT", str(free_port()))  # no one listens there
    monkeypatch.setenv("EPICS_CAS_BEACON_PERIOD", "0.05")
    caplog.set_level(logging.INFO)
    async with serving(doubles(["TEST:PV"])) as (context, _):
        await eventually(lambda: context.beacon_count >= 8)
    warnings, tracebacks = warnings_and_tracebacks(caplog)
    assert not warnings and not tracebacks
    assert context.unsent_beacons.count >= 2
