"""`icsbridge serve` over OPC UA, read, browsed and subscribed with asyncua's client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua

from icsbridge.ics.sim.topology import Topology

from conftest import BridgeProcess, SimThread, free_port

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(Topology.default())
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"


@pytest.fixture(scope="module")
def bridge(sim: SimThread, endpoint: str) -> Iterator[BridgeProcess]:
    process = BridgeProcess(
        sim.url, "--mapping", str(MAPPING), "--opcua-endpoint", endpoint, "--heartbeat", "0.5"
    )
    process.wait_for_log(r"serving \d+ variables over OPC UA")
    yield process
    process.stop()


@pytest.fixture
async def client(bridge: BridgeProcess, endpoint: str) -> AsyncIterator[Client]:
    async with Client(endpoint) as connected:
        yield connected


async def node(client: Client, ident: str) -> object:
    ns = await client.get_namespace_index("urn:icsbridge")
    return client.get_node(ua.NodeId(ident, ns))


async def test_browse_crate_module_channel_by_type(client: Client) -> None:
    ns = await client.get_namespace_index("urn:icsbridge")
    ics = await client.nodes.objects.get_child([f"{ns}:iCS"])
    crate = await ics.get_child([f"{ns}:0.1000"])
    assert (await crate.read_type_definition()) == ua.NodeId("CrateType", ns)
    module = await crate.get_child([f"{ns}:0.3"])
    assert (await module.read_type_definition()) == ua.NodeId("ModuleType", ns)
    assert (await module.read_display_name()).Text == "Module 0.3 EHS F 16 60n"
    channel = await module.get_child([f"{ns}:0.3.5"])
    assert (await channel.read_type_definition()) == ua.NodeId("ChannelType", ns)
    names = {(await child.read_browse_name()).Name for child in await channel.get_children()}
    assert {"Control.voltageSet", "Status.voltageMeasure", "Setup.outputPolarity"} <= names
    declarations = await client.get_node(ua.NodeId("ChannelType", ns)).get_children()
    assert len(declarations) >= len(names)


async def test_a_voltage_reads_with_units_and_range(client: Client, sim: SimThread) -> None:
    voltage = await node(client, "0.0.1.Status.voltageMeasure")
    assert (await voltage.read_type_definition()) == ua.NodeId(ua.ObjectIds.AnalogItemType)
    value = await voltage.read_data_value()
    assert value.StatusCode.is_good() and isinstance(value.Value.Value, float)
    units = await (await voltage.get_child(["0:EngineeringUnits"])).read_value()
    assert (units.DisplayName.Text, units.UnitId) == ("V", 5655636)  # UNECE VLT
    assert await (await voltage.get_child(["0:EURange"])).read_value() == ua.Range(0.0, 6000.0)
    on = await node(client, "0.0.1.Control.on")
    assert (await on.read_type_definition()) == ua.NodeId(ua.ObjectIds.TwoStateDiscreteType)
    assert (await (await on.get_child(["0:TrueState"])).read_value()).Text == "on"
    state = await node(client, "0.0.1.Status.runningState")
    strings = await (await state.get_child(["0:EnumStrings"])).read_value()
    assert strings[await state.read_value()].Text == "off"
    assert (await voltage.read_description()).Text == "Measured output voltage"


async def test_source_timestamps_are_the_ics_time(client: Client) -> None:
    beat = await node(client, "Status.heartBeat")
    first = await beat.read_data_value()
    assert first.SourceTimestamp is not None
    assert first.SourceTimestamp != first.ServerTimestamp


class Changes:
    """A subscription handler that keeps every data change."""

    def __init__(self) -> None:
        self.values: list[tuple[object, ua.DataValue]] = []
        self.arrived = asyncio.Event()

    def datachange_notification(self, node: object, value: object, data: object) -> None:
        self.values.append((value, data.monitored_item.Value))  # type: ignore[attr-defined]
        self.arrived.set()

    async def until(self, check: object, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():  # type: ignore[operator]
                self.arrived.clear()
                await self.arrived.wait()


async def test_link_loss_marks_every_variable_bad_then_good(client: Client, sim: SimThread) -> None:
    handler = Changes()
    subscription = await client.create_subscription(50, handler)
    voltage = await node(client, "0.2.3.Control.voltageSet")
    await subscription.subscribe_data_change(voltage)
    await handler.until(lambda: handler.values)
    sim.call(lambda: setattr(sim.sim.faults, "silent", True))
    sim.call(sim.sim.faults.drop_all)
    await handler.until(
        lambda: handler.values[-1][1].StatusCode.value == ua.StatusCodes.BadCommunicationError
    )
    assert handler.values[-1][0] is None  # OPC UA Part 4, 7.7.1: a Bad status nulls the value
    sim.call(lambda: setattr(sim.sim.faults, "silent", False))
    await handler.until(lambda: handler.values[-1][1].StatusCode.is_good())
    await subscription.delete()
