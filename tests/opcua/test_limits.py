"""The limits of one OPC UA server, met by real clients over a socket: what a client that asks
for too much is told, and that every other client carries on; and clients that send bytes
no OPC UA client may."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua
from nodeopcua import node_opcua_async

from icsbridge.core import pipe
from icsbridge.core.mirror import Mirror
from icsbridge.ics.client import LinkState
from icsbridge.mapping.build import rebuild
from icsbridge.mapping.document import load
from icsbridge.opcua.limits import Limits, chunk_refusal, hello_refusal
from icsbridge.opcua.server import UaServer

from conftest import eventually, free_port

SHARED_LOOP = pytest.mark.asyncio(loop_scope="module")
"""Tests against the module's server run in the module's event loop."""

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
SMALL = Limits(
    max_sessions=2,
    max_subscriptions_per_session=2,
    max_subscriptions=3,
    max_monitored_items_per_subscription=3,
    max_monitored_items=5,
    max_chunk_size=8192,
    max_message_size=96 * 1024,  # not asyncua's 64 KiB, to tell them apart
)
Status = ua.StatusCodes


@dataclass
class Served:
    """The module's server, its URL and some of its variables."""

    server: UaServer
    url: str
    nodes: list[ua.NodeId]

    @property
    def sessions(self) -> int:
        return self.server.server.sessions.count()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_server() -> AsyncIterator[Served]:
    """A server with `SMALL` limits, serving the default mapping's first module."""
    whole = load(MAPPING)
    mapping = rebuild(whole.model_copy(update={"modules": whole.modules[:1]}))
    mirror = Mirror([entry.key for entry in mapping.items], lambda message: None)
    mirror.start(pipe.Start(mapping, pipe.LinkChange(LinkState.READY, False), [], {}))
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/icsbridge/"
    server = UaServer(mirror, mapping, mirror, endpoint=url, limits=SMALL)
    await server.setup()
    serving = asyncio.create_task(server.run())
    async with asyncio.timeout(20):
        while not await answers(port):
            await asyncio.sleep(0.02)
    nodes = [variable.node for variable in server.space.variables.values()][:10]
    yield Served(server, url, nodes)
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)


@pytest_asyncio.fixture(loop_scope="module")
async def served(module_server: Served) -> AsyncIterator[Served]:
    """The module's server, left by every test with no session open."""
    yield module_server
    await eventually(lambda: module_server.sessions == 0)


async def answers(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


def server_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records of the server's side (not asyncua's client) that carry a traceback."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.exc_info
        and record.levelno > logging.DEBUG
        and not record.name.startswith("asyncua.client")
    ]


async def read_works(url: str, node: ua.NodeId) -> None:
    async with Client(url) as client:
        await client.get_node(node).read_value()


# --- sessions, subscriptions, monitored items -------------------------------------------------


@SHARED_LOOP
async def test_sessions_beyond_the_limit_are_refused_and_the_open_ones_carry_on(
    served: Served,
) -> None:
    first, second, third = Client(served.url), Client(served.url), Client(served.url)
    async with first, second:
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await third.connect()
        assert refused.value.code == Status.BadTooManySessions
        told = await node_opcua_async(
            {"command": "read", "endpoint": served.url, "items": [{"nodeId": "i=2259"}]},
            check=False,
        )
        assert told["statusCode"] == "BadTooManySessions"
        for client in (first, second):
            await client.get_node(served.nodes[0]).read_value()
        await second.disconnect()
        await eventually(lambda: served.sessions == 1)
        async with third:
            await third.get_node(served.nodes[0]).read_value()


@SHARED_LOOP
async def test_a_session_never_activated_makes_room_at_the_limit(served: Served) -> None:
    idle = Client(served.url)
    await idle.connect_socket()
    try:
        await idle.send_hello()
        await idle.open_secure_channel()
        created = await idle.create_session()
        assert created.MaxRequestMessageSize == SMALL.max_message_size
        async with Client(served.url), Client(served.url) as last:  # the idle one is closed
            with pytest.raises(ua.UaStatusCodeError) as refused:
                await read_works(served.url, served.nodes[0])
            assert refused.value.code == Status.BadTooManySessions
            await last.get_node(served.nodes[0]).read_value()
            with pytest.raises(ua.UaStatusCodeError) as closed:
                await idle.activate_session()
            assert closed.value.code == Status.BadSessionIdInvalid
    finally:
        idle.disconnect_socket()


@SHARED_LOOP
async def test_sessions_closed_or_dropped_free_their_place(served: Served) -> None:
    for round_ in range(10):
        client = Client(served.url)
        await client.connect()
        if round_ % 2:
            await client.disconnect()
        else:
            client.disconnect_socket()  # no CloseSession: the connection just ends
        await eventually(lambda: served.sessions == 0)


class Heard:
    """Every data change a subscription reported."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def datachange_notification(self, node: object, value: object, data: object) -> None:
        self.values.append(value)


@SHARED_LOOP
async def test_subscriptions_beyond_the_limit_of_a_session_are_refused(served: Served) -> None:
    async with Client(served.url) as first, Client(served.url) as second:
        heard = Heard()
        kept = [await first.create_subscription(20, heard) for _ in range(2)]
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await first.create_subscription(20, Heard())
        assert refused.value.code == Status.BadTooManySubscriptions
        await second.create_subscription(20, Heard())  # a limit per session
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await second.create_subscription(20, Heard())  # and one for all
        assert refused.value.code == Status.BadTooManySubscriptions
        await kept[0].subscribe_data_change(first.get_node(served.nodes[0]))
        await eventually(lambda: len(heard.values) == 1)


@SHARED_LOOP
async def test_monitored_items_beyond_the_limits_are_refused_one_by_one(
    served: Served,
) -> None:
    async with Client(served.url) as client:
        heard = Heard()
        one, two = [await client.create_subscription(20, heard) for _ in range(2)]
        nodes = [client.get_node(node) for node in served.nodes]
        too_many = ua.StatusCode(Status.BadTooManyMonitoredItems)
        first = await one.subscribe_data_change(nodes[:5])
        assert [isinstance(handle, int) for handle in first] == [True] * 3 + [False] * 2
        assert first[3:] == [too_many] * 2  # 3 in a subscription at most
        second = await two.subscribe_data_change(nodes[5:10])
        assert [isinstance(handle, int) for handle in second] == [True] * 2 + [False] * 3
        assert second[2:] == [too_many] * 3  # 5 in all
        await eventually(lambda: len(heard.values) == 5)


@SHARED_LOOP
async def test_node_opcua_is_told_which_monitored_items_are_too_many(served: Served) -> None:
    idents = [f"ns=2;s={node.Identifier}" for node in served.nodes[:5]]
    heard = await node_opcua_async(
        {"command": "subscribe", "endpoint": served.url, "nodeIds": idents, "count": 3}
    )
    statuses = [item["statusCode"] for item in heard["items"]]
    assert statuses == ["Good"] * 3 + ["BadTooManyMonitoredItems"] * 2


@SHARED_LOOP
async def test_the_limits_are_advertised(served: Served) -> None:
    capability = "Server_ServerCapabilities_"
    async with Client(served.url) as client:
        read = {
            name: await client.get_node(getattr(ua.ObjectIds, capability + name)).read_value()
            for name in (
                "MaxSessions",
                "MaxSubscriptions",
                "MaxSubscriptionsPerSession",
                "MaxMonitoredItems",
                "MaxMonitoredItemsPerSubscription",
            )
        }
    assert read == {
        "MaxSessions": 2,
        "MaxSubscriptions": 3,
        "MaxSubscriptionsPerSession": 2,
        "MaxMonitoredItems": 5,
        "MaxMonitoredItemsPerSubscription": 3,
    }


@SHARED_LOOP
async def test_a_request_over_the_message_size_ends_only_its_connection(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    async with Client(served.url) as other:
        client = Client(served.url)
        await client.connect()
        try:
            many = [client.get_node(served.nodes[0])] * 5000  # some 120 KB
            with pytest.raises(ua.UaStatusCodeError) as refused:
                await client.read_values(many)
            assert refused.value.code == Status.BadRequestTooLarge
        finally:
            client.disconnect_socket()
        await other.get_node(served.nodes[0]).read_value()
    assert not server_tracebacks(caplog)


def test_the_limits_refuse_to_be_smaller_than_opc_ua_allows() -> None:
    with pytest.raises(ValueError, match="8192"):
        Limits(max_chunk_size=4096)
    with pytest.raises(ValueError, match="positive"):
        Limits(max_sessions=0)


# --- bytes no client may send ------------------------------------------------------------------


def hello(
    receive: int = 65_535, send: int = 65_535, *, url: bytes = b"opc.tcp://127.0.0.1/"
) -> bytes:
    """A Hello message (Part 6, 7.1.2.3)."""
    body = struct.pack("<5I", 0, receive, send, 0, 0) + struct.pack("<i", len(url)) + url
    return b"HELF" + struct.pack("<I", 8 + len(body)) + body


def chunk(kind: bytes, size: int, body: bytes = b"") -> bytes:
    """The start of a chunk declaring `size` bytes, channel 0."""
    return kind + struct.pack("<II", size, 0) + body


GOOD_HELLO = hello()
BAD_BYTES = {
    "garbage": (b"GET / HTTP/1.1\r\nHost: icsbridge\r\n\r\n", "BadTcpMessageTypeInvalid"),
    "an acknowledge": (b"ACKF" + GOOD_HELLO[4:], "BadTcpMessageTypeInvalid"),
    "a hello with tiny buffers": (hello(1, 1), "BadConnectionRejected"),
    "a hello with a huge url": (hello(url=b"x" * 5000), "BadTcpEndpointUrlInvalid"),
    "a huge chunk": (GOOD_HELLO + chunk(b"MSGF", 2**32 - 1, bytes(999)), "BadTcpMessageTooLarge"),
    "a chunk over the size": (GOOD_HELLO + chunk(b"MSGF", 8193), "BadTcpMessageTooLarge"),
    "an empty chunk": (GOOD_HELLO + chunk(b"MSGF", 0), "BadDecodingError"),
    "a truncated hello": (b"HELF" + struct.pack("<I", 20) + GOOD_HELLO[8:20], "BadDecodingError"),
    "a truncated message": (GOOD_HELLO + chunk(b"MSGF", 16, b"\1\0\0\0"), "Bad"),
    "an absurd string": (
        b"HELF" + struct.pack("<I", 36) + GOOD_HELLO[8:28] + struct.pack("<i", 2**31 - 1) + b"abcd",
        "BadDecodingError",
    ),
}  # fmt: skip
"""What a client sends, and the status code of the ERR message it gets back."""


def messages(received: bytes) -> list[tuple[bytes, Any]]:
    """The messages a server sent: an ACK's five sizes, an ERR's status code name."""
    found: list[tuple[bytes, Any]] = []
    while len(received) >= 8:
        kind, size = received[:3], struct.unpack("<I", received[4:8])[0]
        body, received = received[8:size], received[size:]
        if kind == b"ACK":
            found.append((kind, struct.unpack("<5I", body[:20])))
        elif kind == b"ERR":
            found.append((kind, ua.StatusCode(struct.unpack("<I", body[:4])[0]).name))
        else:
            found.append((kind, body))
    return found


async def exchange(port: int, sent: bytes) -> list[tuple[bytes, Any]]:
    """Send bytes on a connection of its own; the messages received until the server closes
    it (or 10 s pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    received = b""
    try:
        async with asyncio.timeout(10):
            while data := await reader.read(65536):
                received += data
    finally:
        writer.close()
    return messages(received)


@SHARED_LOOP
@pytest.mark.parametrize("case", BAD_BYTES)
async def test_bytes_no_client_may_send_end_their_connection_with_an_error(
    served: Served, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    sent, status = BAD_BYTES[case]
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    before = served.server.server.refused.count
    received = await exchange(port, sent)
    kinds = [kind for kind, _ in received]
    assert kinds in ([b"ERR"], [b"ACK", b"ERR"]), received
    assert received[-1][1].startswith(status), received
    assert served.server.server.refused.count == before + 1
    await read_works(served.url, served.nodes[0])
    assert not server_tracebacks(caplog)


@SHARED_LOOP
async def test_a_hello_with_huge_sizes_gets_the_servers_own(served: Served) -> None:
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(hello(0xFFFF_FFFF, 0xFFFF_FFFF))
    try:
        data = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    ((kind, sizes),) = messages(data)
    assert kind == b"ACK"
    _, receive, send, message, chunks = sizes
    assert (receive, send, message) == (8192, 8192, SMALL.max_message_size)
    assert chunks == SMALL.max_message_size // 8192


@SHARED_LOOP
async def test_half_a_chunk_then_a_closed_socket_leaves_no_trace(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(served.url.rsplit(":", 1)[1].split("/")[0])
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GOOD_HELLO[:20])
    await writer.drain()
    writer.close()
    await read_works(served.url, served.nodes[0])
    assert not server_tracebacks(caplog)


def test_chunk_headers_are_judged_before_their_bodies_arrive() -> None:
    assert chunk_refusal(b"", 8192) is None
    assert chunk_refusal(b"HELF\x20\x00", 8192) is None  # more to come
    assert chunk_refusal(GOOD_HELLO + b"MSGF", 8192) is None
    assert chunk_refusal(GOOD_HELLO + chunk(b"MSGC", 8192), 8192) is None
    refused = chunk_refusal(GOOD_HELLO + chunk(b"MSGF", 8193), 8192)
    assert refused is not None and refused.status == Status.BadTcpMessageTooLarge
    refused = chunk_refusal(chunk(b"OPNC", 100), 8192)  # an OpenSecureChannel is one chunk
    assert refused is not None and refused.status == Status.BadTcpMessageTypeInvalid


def test_a_hello_needs_buffers_of_8192_bytes() -> None:
    assert hello_refusal(ua.Hello(ReceiveBufferSize=8192, SendBufferSize=8192)) is None
    refused = hello_refusal(ua.Hello(ReceiveBufferSize=8191, SendBufferSize=65535))
    assert refused is not None and refused.status == Status.BadConnectionRejected
