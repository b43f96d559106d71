"""New values reach a real OPC UA client: plain monitored items in place, filtered ones as
asyncua decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from asyncua import Client, Server, ua
from asyncua.ua import AttributeIds

from icsbridge.opcua.notify import SharedValue, set_value

from conftest import free_port

STEPS = [0.5, 2.0, 2.2, 5.0, 5.5]
DEADBAND = 1.0


class Received:
    """Every value a subscription reported, with an event for each arrival."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.arrived = asyncio.Event()

    def datachange_notification(self, node: object, value: float, data: object) -> None:
        self.values.append(value)
        self.arrived.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.values) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server, ua.NodeId, str]]:
    server = Server()
    await server.init()
    url = f"opc.tcp://127.0.0.1:{free_port()}/"
    server.set_endpoint(url)
    variable = await server.nodes.objects.add_variable(2, "voltage", 0.0)
    async with server:
        yield server, variable.nodeid, url


async def publish(server: Server, node: ua.NodeId, value: float) -> None:
    """Publish one value as the bridge's publisher does."""
    attribute = server.iserver.aspace[node].attributes[AttributeIds.Value]
    shared = SharedValue(ua.Variant(value, ua.VariantType.Double))
    for callback, handle in set_value(attribute, shared):
        await callback(handle, shared)


async def test_plain_items_get_every_value_and_filtered_ones_what_the_filter_passes(
    served: tuple[Server, ua.NodeId, str],
) -> None:
    server, node, url = served
    plain, filtered = Received(), Received()
    async with Client(url) as client:
        variable = client.get_node(node)
        every = await client.create_subscription(10, plain)
        await every.subscribe_data_change(variable, queuesize=len(STEPS) + 1)
        banded = await client.create_subscription(10, filtered)
        await banded.deadband_monitor(variable, DEADBAND, queuesize=len(STEPS) + 1)
        await plain.until(1)
        await filtered.until(1)
        for value in STEPS:
            await publish(server, node, value)
            await plain.until(len(plain.values) + 1)
        await publish(server, node, 9.0)  # passes the deadband: the filtered item's last word
        await plain.until(len(STEPS) + 2)
        await filtered.until(1 + 3)
    assert plain.values == [0.0, *STEPS, 9.0]
    # asyncua weighs each value against the one before it: 0.5 (+0.5), 2.0 (+1.5), 2.2,
    # 5.0 (+2.8), 5.5, 9.0 (+3.5)
    assert filtered.values == [0.0, 2.0, 5.0, 9.0]
