"""The direct monitor path: caproto's bytes, sent at once, and a slow client coalesced."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import caproto as ca
import pytest
from caproto import ChannelType
from rawca import RawClient

from icsbridge.core.writes import Writer
from icsbridge.epics import monitors
from icsbridge.epics.context import BridgeContext
from icsbridge.epics.pvs import DoublePV, EnumPV, IntegerPV, ItemPV, StringPV, make_pv
from icsbridge.ics.client import IcsClient
from icsbridge.mapping import document
from icsbridge.model import ItemKey, ItemPath

from conftest import eventually, free_port

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
ENTRIES = {entry.key: entry for entry in document.load(MAPPING).items}
WRITER = Writer(IcsClient("ws://127.0.0.1:9", "admin", "password"), ENTRIES)
CHANNEL = ItemPath(0, 2, 7)


def pv_of(item: str, path: ItemPath = CHANNEL) -> ItemPV:
    return make_pv(ENTRIES[ItemKey(*path, item)], WRITER)


def path_of(item: str) -> ItemPath:
    """The test channel, or its module for a module item."""
    return CHANNEL if ItemKey(*CHANNEL, item) in ENTRIES else ItemPath(0, 2, None)


CASES = [
    ("Status.voltageMeasure", -1234.5678, DoublePV),
    ("Control.channelEventMask", 3, IntegerPV),
    ("Control.on", True, EnumPV),
    ("Status.serialNumber", "4700002", StringPV),
]


def test_the_cases_cover_every_pv_kind_of_the_direct_path() -> None:
    kinds = {type(pv_of(item, path_of(item))) for item, _, _ in CASES}
    assert kinds == {DoublePV, IntegerPV, EnumPV, StringPV}


@pytest.mark.parametrize(("item", "value", "kind"), CASES)
@pytest.mark.parametrize("family", [0, 7, 14], ids=["plain", "sts", "time"])
async def test_payloads_are_byte_for_byte_what_caproto_sends(
    item: str, value: object, kind: type, family: int
) -> None:
    pv = pv_of(item, path_of(item))
    assert isinstance(pv, kind)
    pv.link(True)
    pv.apply(value, 1795500000.1234)  # type: ignore[arg-type]
    data_type = ChannelType(pv.data_type + family)  # type: ignore[attr-defined]
    metadata, values = await pv.read(data_type)  # type: ignore[attr-defined]
    theirs = ca.EventAddResponse(values, data_type, 1, 1, subscriptionid=42, metadata=metadata)
    layout = monitors.LAYOUTS[data_type.name]
    body = monitors.payload(pv, layout)
    header = monitors.HEADER.pack(monitors.EVENT_ADD, len(body), data_type, 1, 1, 42)
    assert header + body == bytes(theirs)


@pytest.fixture
async def served() -> AsyncIterator[tuple[BridgeContext, DoublePV, int]]:
    pv = pv_of("Status.voltageMeasure")
    assert isinstance(pv, DoublePV)
    pv.link(True)
    context = BridgeContext({"TEST:V": pv}, ["127.0.0.1"])
    context.ca_server_port = port = free_port()
    listening = asyncio.Event()

    async def started(async_lib: object) -> None:
        listening.set()

    server = asyncio.create_task(context.run(startup_hook=started))
    await listening.wait()
    yield context, pv, port
    await context.fanout.close()
    server.cancel()
    await asyncio.gather(server, return_exceptions=True)


async def test_a_client_that_stops_reading_gets_the_newest_value_when_it_resumes(
    served: tuple[BridgeContext, DoublePV, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, pv, port = served
    monkeypatch.setattr(monitors, "BACKLOG", 16 * 1024)
    client = RawClient(port)
    await asyncio.to_thread(client.subscribe, "TEST:V", 7)
    await eventually_subscribed(context)
    posted = 20_000
    for step in range(1, posted + 1):
        pv.apply(float(step), 1795500000.0 + step)
        context.fanout.post([pv])
        context.fanout.flush()
        if step % 500 == 0:
            await asyncio.sleep(0)
    events = [
        command
        for command in await asyncio.to_thread(client.receive, 1.0)
        if isinstance(command, ca.EventAddResponse)
    ]
    client.sock.close()
    values = [float(event.data[0]) for event in events]
    assert values[-1] == posted  # converged to the newest value
    assert len(values) < posted  # the backlog was cut short, not queued whole
    assert values == sorted(values)  # and never went back in time


async def eventually_subscribed(context: BridgeContext) -> None:
    """Wait for the subscription; then shrink the server's socket buffer, as a slow link."""
    await eventually(lambda: any(context.subscriptions.values()))
    for circuit in context.circuits:
        sock = circuit.client.writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
