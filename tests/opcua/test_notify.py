"""New values reach a real OPC UA client: plain monitored items in place, filtered ones as
asyncua decides; notifications are encoded byte for byte as asyncua encodes them."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from asyncua import Client, Server, ua
from asyncua.ua import AttributeIds
from asyncua.ua.ua_binary import extensionobject_to_binary, struct_to_binary
from asyncua.ua.uatypes import datetime_to_win_epoch

from icsbridge.opcua.notify import (
    Now,
    SharedValue,
    check_encodes,
    encode_datachanges,
    in_range,
    set_value,
    ticks,
    variant,
)

from conftest import free_port

Status = ua.StatusCodes
STEPS = [0.5, 2.0, 2.0, 2.2, 5.0, 5.5]
"""Values published in turn; the repeated 2.0 changes nothing, so no client hears it."""
CHANGES = [0.5, 2.0, 2.2, 5.0, 5.5]
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
        for previous, value in zip([0.0, *STEPS], STEPS, strict=False):
            await publish(server, node, value)
            if value != previous:  # a repeat would arrive before the next change
                await plain.until(len(plain.values) + 1)
        await publish(server, node, 9.0)  # passes the deadband: the filtered item's last word
        await plain.until(len(CHANGES) + 2)
        await filtered.until(1 + 3)
    assert plain.values == [0.0, *CHANGES, 9.0]
    # asyncua weighs each value against the one before it: 0.5 (+0.5), 2.0 (+1.5), 2.2,
    # 5.0 (+2.8), 5.5, 9.0 (+3.5)
    assert filtered.values == [0.0, 2.0, 5.0, 9.0]


NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
VALUES = [
    SharedValue(ua.Variant(1.5, ua.VariantType.Double), StatusCode=ua.StatusCode(0),
                SourceTimestamp=NOW - timedelta(seconds=3), ServerTimestamp=NOW),
    SharedValue(ua.Variant(-7, ua.VariantType.Int32), StatusCode=ua.StatusCode(0),
                SourceTimestamp=NOW, ServerTimestamp=NOW),
    SharedValue(ua.Variant("ramp up", ua.VariantType.String),
                StatusCode=ua.StatusCode(Status.UncertainLastUsableValue),
                SourceTimestamp=NOW, ServerTimestamp=NOW),
    SharedValue(ua.Variant(True, ua.VariantType.Boolean), StatusCode=ua.StatusCode(0),
                SourceTimestamp=NOW, ServerTimestamp=NOW),
    SharedValue(ua.Variant(None, ua.VariantType.Null),
                StatusCode=ua.StatusCode(Status.BadCommunicationError),
                SourceTimestamp=NOW, ServerTimestamp=NOW),
    SharedValue(ua.Variant(2.5, ua.VariantType.Float)),  # no status, no timestamps
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=lambda value: value.Value.VariantType.name)
def test_a_value_is_encoded_as_asyncua_encodes_it(value: SharedValue) -> None:
    assert value.binary == struct_to_binary(value)


def test_ticks_are_what_asyncua_makes_of_a_datetime_from_the_time() -> None:
    rng = random.Random(7)
    times = [rng.uniform(0, 4e9) for _ in range(20_000)]
    times += [1_796_000_000 + n / 2e6 for n in range(-5, 6)]  # half microseconds: to even
    times += [1_796_000_000.9999996, 0.0, 1e-7]
    for time in times:
        assert ticks(time) == datetime_to_win_epoch(datetime.fromtimestamp(time, UTC)), time


STAMPED = [
    (variant(1.5, ua.VariantType.Double), ua.StatusCode(0), 1_796_000_000.123456),
    (variant(-7, ua.VariantType.Int32), ua.StatusCode(0), 1_796_000_000.9999996),
    (variant(3, ua.VariantType.UInt32), ua.StatusCode(Status.UncertainLastUsableValue), 1.0),
    (variant(True, ua.VariantType.Boolean), ua.StatusCode(0), 1_796_000_000.0),
    (variant("ramp up", ua.VariantType.String), ua.StatusCode(0), 1_796_000_000.5),
    (variant(None, ua.VariantType.Null), ua.StatusCode(Status.BadCommunicationError), 2.0),
    (variant(0.25, ua.VariantType.Double), ua.StatusCode(0), None),  # stamped now
]


@pytest.mark.parametrize("made", STAMPED, ids=lambda made: made[0].VariantType.name)
def test_a_stamped_value_is_the_value_the_dataclass_makes_and_encodes_alike(
    made: tuple[ua.Variant, ua.StatusCode, float | None],
) -> None:
    value, status, source = made
    now = Now.read()
    shared = SharedValue.stamped(value, status, source, now)
    plain = ua.DataValue(
        ua.Variant(value.Value, value.VariantType),
        StatusCode=status,
        SourceTimestamp=now.time if source is None else datetime.fromtimestamp(source, UTC),
        ServerTimestamp=now.time,
    )
    assert value == plain.Value and repr(value) == repr(plain.Value)
    assert all(getattr(shared, field) == getattr(plain, field) for field in plain.__slots__)
    assert shared.binary == struct_to_binary(plain)


@pytest.mark.parametrize(
    "source", [-1.0, -1e12, 253_402_300_799.0, 1e20, 1e308, math.nan, math.inf]
)
def test_a_source_time_opc_ua_cannot_carry_is_the_server_time(source: float) -> None:
    now = Now.read()
    shared = SharedValue.stamped(variant(1.5, ua.VariantType.Double), ua.StatusCode(0), source, now)
    assert not in_range(source)
    assert shared.SourceTimestamp == shared.ServerTimestamp == now.time
    assert shared.binary == struct_to_binary(shared)


def test_times_from_1970_to_the_last_second_of_9999_are_carried() -> None:
    for time in (0.0, 100.0, 1_796_000_000.5, 253_402_300_798.5):
        assert in_range(time)
        assert ticks(time) == datetime_to_win_epoch(datetime.fromtimestamp(time, UTC)), time


Kind = ua.VariantType
CHECKED = [
    (1.5, Kind.Double, True),
    (10**400, Kind.Double, False),
    ("1.5", Kind.Double, False),
    (-(2**31), Kind.Int32, True),
    (2**31, Kind.Int32, False),
    (1.5, Kind.Int32, False),
    (2**32 - 1, Kind.UInt32, True),
    (-1, Kind.UInt32, False),
    (True, Kind.Boolean, True),
    ("on", Kind.String, True),
    (5, Kind.String, False),
    ("\ud800", Kind.String, False),  # a lone surrogate has no UTF-8
]


@pytest.mark.parametrize(
    ("value", "kind", "fits"), CHECKED, ids=[f"{k.name}-{n}" for n, (_, k, _) in enumerate(CHECKED)]
)
def test_a_value_is_checked_to_encode_as_its_encoding_would_tell(
    value: object, kind: ua.VariantType, fits: bool
) -> None:
    made = variant(value, kind)
    shared = SharedValue.stamped(made, ua.StatusCode(0), 1_796_000_000.0, Now.read())
    for encode in (
        lambda: check_encodes(made),
        lambda: shared.binary,
        lambda: struct_to_binary(shared),
    ):
        if fits:
            encode()
        else:
            with pytest.raises(Exception):  # noqa: B017  whatever the packer raises
                encode()


def test_queued_data_changes_are_encoded_as_asyncua_encodes_them() -> None:
    notifications = [
        ua.MonitoredItemNotification(ClientHandle=handle, Value=value)
        for handle, value in enumerate(
            [*VALUES, ua.DataValue(ua.Variant(3, ua.VariantType.UInt32))]
        )
    ]
    queued = SimpleNamespace(_triggered_datachanges={1: notifications[:4], 2: notifications[4:]})
    result = ua.PublishResult()
    encode_datachanges(queued, result)  # type: ignore[arg-type]
    (encoded,) = result.NotificationMessage.NotificationData
    expected = ua.DataChangeNotification(MonitoredItems=notifications)
    assert extensionobject_to_binary(encoded) == extensionobject_to_binary(expected)
    assert queued._triggered_datachanges == {}
