"""`icsbridge serve` over OPC UA, read, browsed and subscribed with asyncua's client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import epics
import pytest
from asyncua import Client, ua
from nodeopcua import node_opcua_async

from icsbridge.ics.sim.topology import Topology
from icsbridge.model import ItemKey

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
def users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A users file with an operator and a reader, made as a site would make it."""
    path = tmp_path_factory.mktemp("opcua") / "users.yaml"
    logins = (("op", "operator", "s3cret"), ("viewer", "reader", "r3ad"), ("boss", "admin", "b0ss"))
    for name, role, password in logins:
        done = subprocess.run(
            [sys.executable, "-m", "icsbridge", "user", "add", str(path), name, "--role", role],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=True,
        )
        assert f"{name} is {role}" in done.stdout
    assert "s3cret" not in path.read_text()
    return path


@pytest.fixture(scope="module")
def bridge(
    sim: SimThread, endpoint: str, users: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BridgeProcess]:
    state = tmp_path_factory.mktemp("state")
    process = BridgeProcess(
        sim.url,
        "--mapping",
        str(MAPPING),
        "--opcua-endpoint",
        endpoint,
        "--heartbeat",
        "0.5",
        "--users",
        str(users),
        "--opcua-state",
        str(state),
        "--write-timeout",
        "3",
    )
    process.wait_for_log(r"serving \d+ variables over OPC UA")
    yield process
    process.stop()


@pytest.fixture
async def client(bridge: BridgeProcess, endpoint: str) -> AsyncIterator[Client]:
    async with Client(endpoint) as connected:
        yield connected


@pytest.fixture
async def operator(bridge: BridgeProcess, endpoint: str) -> AsyncIterator[Client]:
    """A session of the operator, over a signed and encrypted channel."""
    connected = Client(endpoint)
    connected.set_user("op")
    connected.set_password("s3cret")
    async with connected:
        yield connected


async def write(client: Client, ident: str, value: object, kind: ua.VariantType) -> str:
    """Write a value and return the status code's name."""
    target = await node(client, ident)
    try:
        await target.write_attribute(ua.AttributeIds.Value, ua.DataValue(ua.Variant(value, kind)))
    except ua.UaStatusCodeError as exc:
        return ua.StatusCode(exc.code).name
    return "Good"


async def test_an_operator_write_is_good_once_the_ics_confirmed(
    operator: Client, sim: SimThread, bridge: BridgeProcess
) -> None:
    assert await write(operator, "0.2.4.Control.voltageSet", 77.5, ua.VariantType.Double) == "Good"
    assert sim.call(lambda: sim.sim.model.value(ItemKey(0, 2, 4, "Control.voltageSet"))) == 77.5
    bridge.wait_for_log(
        r"write \S+:VoltageSet \(0\.2\.4\.Control\.voltageSet\) by op via OPC UA: "
        r".* confirmed 77\.5"
    )
    assert (
        await write(operator, "0.2.4.Setup.delayedTripAction", 2, ua.VariantType.UInt32) == "Good"
    )
    assert sim.call(lambda: sim.sim.model.value(ItemKey(0, 2, 4, "Setup.delayedTripAction"))) == 2


@pytest.mark.parametrize(
    ("who", "ident", "value", "kind", "status"),
    [
        (
            "anonymous",
            "0.2.5.Control.voltageSet",
            10.0,
            ua.VariantType.Double,
            "BadUserAccessDenied",
        ),
        ("reader", "0.2.5.Control.voltageSet", 10.0, ua.VariantType.Double, "BadUserAccessDenied"),
        ("operator", "0.2.5.Control.voltageSet", 501.0, ua.VariantType.Double, "BadOutOfRange"),
        ("operator", "0.2.5.Control.voltageSet", 10, ua.VariantType.Int32, "BadTypeMismatch"),
        ("operator", "0.2.5.Status.voltageMeasure", 1.0, ua.VariantType.Double, "BadNotWritable"),
        ("operator", "0.2.5.Setup.delayedTripAction", 9, ua.VariantType.UInt32, "BadTypeMismatch"),
    ],
)
async def test_refused_writes_send_nothing(
    bridge: BridgeProcess,
    endpoint: str,
    sim: SimThread,
    who: str,
    ident: str,
    value: object,
    kind: ua.VariantType,
    status: str,
) -> None:
    session = Client(endpoint)
    if who != "anonymous":
        session.set_user({"reader": "viewer", "operator": "op"}[who])
        session.set_password({"reader": "r3ad", "operator": "s3cret"}[who])
    before = len(sim.set_items())
    async with session:
        assert await write(session, ident, value, kind) == status
    assert len(sim.set_items()) == before


async def node(client: Client, ident: str) -> object:
    ns = await client.get_namespace_index("urn:icsbridge")
    return client.get_node(ua.NodeId(ident, ns))


def test_the_log_holds_the_bridge_not_asyncuas_node_by_node_start(
    bridge: BridgeProcess,
) -> None:
    log = "".join(bridge.log)
    assert "serving" in log
    assert not [line for line in bridge.log if " INFO asyncua." in line]


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
        self.nodes: list[tuple[object, ua.DataValue]] = []
        self.arrived = asyncio.Event()

    def datachange_notification(self, node: object, value: object, data: object) -> None:
        self.values.append((value, data.monitored_item.Value))  # type: ignore[attr-defined]
        self.nodes.append((node, data.monitored_item.Value))  # type: ignore[attr-defined]
        self.arrived.set()

    async def until(self, check: object, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():  # type: ignore[operator]
                self.arrived.clear()
                await self.arrived.wait()


SAMPLED = [
    "0.2.3.Control.voltageSet",
    "0.2.3.Status.voltageMeasure",
    "0.2.3.Control.on",
    "0.2.3.Status.runningState",
    "0.2.3.Setup.delayedTripTime",
    "0.1000.Control.power",
    "Status.protocols",
]
"""One variable of every kind: analog set and measured, two-state, multi-state, int, text."""


async def test_an_admin_renames_one_variable_not_every_one_of_its_item(
    bridge: BridgeProcess, endpoint: str, client: Client
) -> None:
    admin = Client(endpoint)
    admin.set_user("boss")
    admin.set_password("b0ss")
    renamed = "0.2.4.Status.currentMeasure"
    handler = Changes()
    subscription = await client.create_subscription(20, handler)
    watched = await node(client, renamed)
    await subscription.subscribe_data_change(watched, ua.AttributeIds.DisplayName)
    await handler.until(lambda: len(handler.values) == 1)
    async with admin:
        target = await node(admin, renamed)
        label = ua.LocalizedText("I4 leakage")
        await target.write_attribute(ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(label)))
    await handler.until(lambda: len(handler.values) == 2)
    assert handler.values[-1][0] == label
    assert (await watched.read_display_name()) == label
    for other in ("0.2.5.Status.currentMeasure", "0.3.4.Status.currentMeasure"):
        name = await (await node(client, other)).read_display_name()
        assert name.Text == "Status.currentMeasure"
    await subscription.delete()


async def test_link_loss_marks_every_variable_bad_then_good(
    client: Client, operator: Client, sim: SimThread
) -> None:
    handler = Changes()
    subscription = await client.create_subscription(20, handler)
    for ident in SAMPLED:
        await subscription.subscribe_data_change(await node(client, ident))
    await handler.until(lambda: len(handler.values) >= len(SAMPLED))

    def statuses() -> set[int]:
        latest = {str(n): dv.StatusCode.value for n, dv in handler.nodes[-len(SAMPLED) * 4 :]}
        return set(latest.values()) if len(latest) == len(SAMPLED) else {-1}

    loop = asyncio.get_running_loop()
    started = loop.time()
    sim.call(lambda: setattr(sim.sim.faults, "silent", True))
    sim.call(sim.sim.faults.drop_all)
    await handler.until(lambda: statuses() == {ua.StatusCodes.BadCommunicationError})
    assert loop.time() - started < 2.0
    assert all(value is None for value, _ in handler.values[-len(SAMPLED) :])  # Part 4, 7.7.1
    before = len(sim.set_items())
    status = await write(operator, "0.2.3.Control.voltageSet", 5.0, ua.VariantType.Double)
    assert status == "BadCommunicationError"
    sim.call(lambda: setattr(sim.sim.faults, "silent", False))
    await handler.until(lambda: statuses() == {ua.StatusCodes.Good})
    await subscription.delete()
    assert len(sim.set_items()) == before


async def test_node_opcua_reads_units_and_writes_as_operator(
    bridge: BridgeProcess, endpoint: str, sim: SimThread
) -> None:
    voltage = "nsu=urn:icsbridge;s=0.0.3.Status.voltageMeasure"
    read = await node_opcua_async(
        {
            "command": "read",
            "endpoint": endpoint,
            "items": [
                {"nodeId": voltage},
                {"nodeId": voltage, "path": ["EURange"]},
                {"nodeId": voltage, "path": ["EngineeringUnits"]},
            ],
        }
    )
    value, limits, units = read["results"]
    # a Double: its value may be whole, which JSON writes without a point
    assert value["statusCode"] == "Good" and value["dataType"] == "Double"
    assert isinstance(value["value"], int | float)
    assert limits["value"] == {"low": 0, "high": 6000}
    assert units["value"]["unitId"] == 5655636 and units["value"]["displayName"]["text"] == "V"
    anonymous = await node_opcua_async(
        {
            "command": "write",
            "endpoint": endpoint,
            "dataType": "Double",
            "value": 12.5,
            "nodeId": "nsu=urn:icsbridge;s=0.2.6.Control.voltageSet",
        },
        check=False,
    )
    assert anonymous["statusCode"].startswith("BadUserAccessDenied")
    assert sim.call(lambda: sim.sim.model.value(ItemKey(0, 2, 6, "Control.voltageSet"))) == 0.0
    operator = await node_opcua_async(
        {
            "command": "write",
            "endpoint": endpoint,
            "dataType": "Double",
            "value": 12.5,
            "nodeId": "nsu=urn:icsbridge;s=0.2.6.Control.voltageSet",
            "securityMode": "SignAndEncrypt",
            "user": "op",
            "password": "s3cret",
        },
        check=False,
    )
    assert operator["statusCode"] == "Good"
    assert sim.call(lambda: sim.sim.model.value(ItemKey(0, 2, 6, "Control.voltageSet"))) == 12.5


async def test_a_subscription_receives_every_step_of_a_ramp(
    client: Client, operator: Client
) -> None:
    handler = Changes()
    subscription = await client.create_subscription(20, handler)
    await subscription.subscribe_data_change(await node(client, "0.2.10.Status.voltageMeasure"))
    await handler.until(lambda: handler.values)
    assert await write(operator, "0.2.Control.voltageRampspeed", 1.0, ua.VariantType.Double) == (
        "Good"
    )  # 5 V/s: 50 simulated seconds, about 50 pushes, to 250 V
    assert await write(operator, "0.2.10.Control.voltageSet", 250.0, ua.VariantType.Double) == (
        "Good"
    )
    assert await write(operator, "0.2.10.Control.on", True, ua.VariantType.Boolean) == "Good"
    await handler.until(lambda: abs(handler.values[-1][0] - 250.0) < 1.0)  # type: ignore[operator]
    rising = [v for v, _ in handler.values if 5.0 < v < 245.0]  # type: ignore[operator]
    assert len(rising) >= 3 and rising == sorted(rising), handler.values
    stamps = [dv.SourceTimestamp for _, dv in handler.values]
    assert stamps == sorted(stamps)
    await subscription.delete()


async def test_a_write_on_either_side_shows_on_the_other(
    client: Client, operator: Client, bridge: BridgeProcess
) -> None:
    handler = Changes()
    subscription = await client.create_subscription(20, handler)
    await subscription.subscribe_data_change(await node(client, "0.2.11.Control.voltageSet"))
    await handler.until(lambda: handler.values)
    loop = asyncio.get_running_loop()
    done = await loop.run_in_executor(
        None, lambda: epics.caput("ISEG:5230102:0:2:11:VoltageSet", 33.0, wait=True, timeout=10)
    )
    assert done == 1
    await handler.until(lambda: handler.values[-1][0] == 33.0)
    await subscription.delete()
    assert await write(operator, "0.2.12.Control.voltageSet", 44.0, ua.VariantType.Double) == (
        "Good"
    )
    read = await loop.run_in_executor(
        None, lambda: epics.caget("ISEG:5230102:0:2:12:VoltageSet", use_monitor=False)
    )
    assert read == 44.0


@pytest.mark.parametrize("security", ["None", "SignAndEncrypt"])
async def test_node_opcua_browses_reads_subscribes_and_writes(
    bridge: BridgeProcess, endpoint: str, sim: SimThread, security: str
) -> None:
    login = {"securityMode": security, "user": "op", "password": "s3cret"}
    channel = f"nsu=urn:icsbridge;s=0.2.{13 if security == 'None' else 14}"
    tree = await node_opcua_async(
        {"command": "browse", "endpoint": endpoint, "nodeId": "nsu=urn:icsbridge;s=0.2", "depth": 2}
        | login
    )
    nodes = {n["nodeId"].split(";s=", 1)[-1]: n for n in tree["nodes"]}
    assert nodes[channel.split(";s=")[1]]["typeDefinition"].endswith("s=ChannelType")
    kinds = {
        name: nodes[f"0.2.0.{name}"]["typeDefinitionName"]
        for name in ("Status.voltageMeasure", "Control.on", "Status.runningState")
    }
    assert kinds == {
        "Status.voltageMeasure": "AnalogItemType",
        "Control.on": "TwoStateDiscreteType",
        "Status.runningState": "MultiStateDiscreteType",
    }
    target = f"{channel}.Control.voltageSet"
    written = await node_opcua_async(
        {
            "command": "write",
            "endpoint": endpoint,
            "nodeId": target,
            "value": 55.5,
            "dataType": "Double",
        }
        | login
    )
    assert written["statusCode"] == "Good"
    changes = await node_opcua_async(
        {
            "command": "subscribe",
            "endpoint": endpoint,
            "nodeIds": [target],
            "count": 1,
            "duration": 10000,
        }
        | login
    )
    assert [n["value"] for n in changes["notifications"]] == [55.5]
    read = await node_opcua_async(
        {"command": "read", "endpoint": endpoint, "items": [{"nodeId": target}]} | login
    )
    assert read["results"][0]["value"] == 55.5


async def test_a_silent_link_is_uncertain_with_the_last_value_then_bad(
    client: Client, sim: SimThread
) -> None:
    handler = Changes()
    subscription = await client.create_subscription(20, handler)
    await subscription.subscribe_data_change(await node(client, "0.2.15.Status.voltageNominal"))
    await handler.until(lambda: handler.values)
    sim.call(lambda: setattr(sim.sim.faults, "silent", True))
    try:
        uncertain = ua.StatusCodes.UncertainLastUsableValue
        await handler.until(lambda: handler.values[-1][1].StatusCode.value == uncertain)
        assert handler.values[-1][0] == 500.0, "the last usable value is kept"
        bad = ua.StatusCodes.BadCommunicationError
        await handler.until(lambda: handler.values[-1][1].StatusCode.value == bad)
    finally:
        sim.call(lambda: setattr(sim.sim.faults, "silent", False))
    await handler.until(lambda: handler.values[-1][1].StatusCode.is_good())
    await subscription.delete()
