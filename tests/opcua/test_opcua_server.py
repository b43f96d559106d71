"""`icsbridge serve` over OPC UA, read, browsed and subscribed with asyncua's client; and
`UaServer` in this process, fed values no iCS would send, as the OPC UA process feeds it."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import epics
import pytest
from asyncua import Client, ua
from nodeopcua import node_opcua_async

from icsbridge.catalog import ValueType
from icsbridge.core import pipe
from icsbridge.core.mirror import Mirror
from icsbridge.ics.client import LinkState
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping.build import rebuild
from icsbridge.mapping.document import Mapping, load
from icsbridge.model import ItemKey
from icsbridge.opcua import server as ua_server
from icsbridge.opcua.notify import Now
from icsbridge.opcua.server import UaServer

from conftest import BridgeProcess, SimThread, eventually, free_port

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


# --- UaServer in this process, fed through a Mirror ------------------------------------------


@pytest.fixture(scope="module")
def small() -> Mapping:
    """The default mapping cut to its first module: quick to serve."""
    whole = load(MAPPING)
    return rebuild(whole.model_copy(update={"modules": whole.modules[:1]}))


class Face:
    """A `UaServer` in this process, fed through a `Mirror` as the OPC UA process feeds it."""

    def __init__(self, mapping: Mapping, **options: Any) -> None:
        keys = [entry.key for entry in mapping.items]
        self.index = {key: at for at, key in enumerate(keys)}
        self.mirror = Mirror(keys, lambda message: None)
        self.mirror.start(pipe.Start(mapping, pipe.LinkChange(LinkState.READY, False), [], {}))
        self.url = f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"
        self.server = UaServer(self.mirror, mapping, self.mirror, endpoint=self.url, **options)

    def put(self, *updates: tuple[ItemKey, object, float | None]) -> None:
        """New values of items, with their iCS times, as the bridge sends them."""
        rows = [(self.index[key], value, "", time) for key, value, time in updates]
        self.mirror.take(pipe.Values(rows))  # type: ignore[arg-type]

    def lose_link(self) -> None:
        self.mirror.take(pipe.LinkChange(LinkState.LOST, False))

    def node(self, client: Client, key: ItemKey) -> Any:
        return client.get_node(self.server.space.variables[key].node)


@pytest.fixture
async def face(small: Mapping) -> AsyncIterator[Face]:
    served = Face(small)
    await served.server.setup()
    serving = asyncio.create_task(served.server.run())
    try:
        await listening(served.url)
        yield served
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def listening(url: str) -> None:
    """Wait until a server takes connections at `url`."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    async with asyncio.timeout(20):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return


def keys_of(mapping: Mapping, kind: ValueType, count: int) -> list[ItemKey]:
    """The first `count` items of a type, without states."""
    return [e.key for e in mapping.items if e.type is kind and not e.states][:count]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log records of this process that carry a traceback."""
    return [r.getMessage() for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]


GOOD_TIME = 1_796_000_000.0
BAD_TIMES = [-1.0, 1e308, 1e20, math.nan, math.inf]
"""iCS times OPC UA cannot carry: before 1970, past 9999, no number."""


async def test_values_no_variable_can_hold_are_refused_each_on_its_own(
    face: Face, small: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    ints = keys_of(small, ValueType.INT, 4)
    floats = keys_of(small, ValueType.FLOAT, len(BAD_TIMES) + 1)
    (text,) = keys_of(small, ValueType.TEXT, 1)
    watched = [*ints, *floats, text]
    handler = Changes()
    async with Client(face.url) as client:
        nodes = {str(face.server.space.variables[key].node): key for key in watched}
        subscription = await client.create_subscription(20, handler)
        await subscription.subscribe_data_change(
            [face.node(client, key) for key in watched], queuesize=10
        )

        def latest() -> dict[ItemKey, ua.DataValue]:
            return {nodes[str(node.nodeid)]: data for node, data in handler.nodes}

        await handler.until(lambda: len(latest()) == len(watched))
        face.put(
            (ints[0], 10**400, GOOD_TIME),
            (ints[1], 2**31, GOOD_TIME),
            (ints[2], 1.5, GOOD_TIME),  # a float for an Int32
            (text, 5, GOOD_TIME),  # a number for a String
            (ints[3], 42, GOOD_TIME),
            *[
                (key, 1.0 + n, t)
                for n, (key, t) in enumerate(zip(floats[:-1], BAD_TIMES, strict=True))
            ],
            (floats[-1], 100.5, 100.0),  # 1970-01-01 00:01:40: early, but a time
        )
        out_of_range = ua.StatusCodes.BadOutOfRange
        await handler.until(lambda: latest()[ints[3]].Value.Value == 42)
        await handler.until(lambda: latest()[floats[-1]].Value.Value == 100.5)
        now = latest()
        for key in (*ints[:3], text):
            assert now[key].StatusCode.value == out_of_range and now[key].Value.Value is None
        for n, key in enumerate(floats[:-1]):
            assert now[key].Value.Value == 1.0 + n and now[key].StatusCode.is_good()
            assert now[key].SourceTimestamp == now[key].ServerTimestamp  # the server time
        early = now[floats[-1]].SourceTimestamp
        assert early.replace(tzinfo=UTC) == datetime(1970, 1, 1, 0, 1, 40, tzinfo=UTC)
        read = await face.node(client, ints[0]).read_data_value(raise_on_bad_status=False)
        assert read.StatusCode.value == out_of_range
        face.put((ints[0], 7, GOOD_TIME), (ints[1], -8, GOOD_TIME), (floats[0], 9.5, GOOD_TIME))
        await handler.until(
            lambda: [latest()[k].Value.Value for k in (ints[0], ints[1], floats[0])] == [7, -8, 9.5]
        )
        face.lose_link()
        communication = ua.StatusCodes.BadCommunicationError
        await handler.until(
            lambda: {data.StatusCode.value for data in latest().values()} == {communication}
        )
    assert face.server.bad_values.count == 4
    assert face.server.bad_times.count >= len(BAD_TIMES)
    assert not tracebacks(caplog)


async def test_node_opcua_hears_a_refused_value_and_the_next(face: Face, small: Mapping) -> None:
    key = keys_of(small, ValueType.INT, 1)[0]
    ident = f"nsu=urn:icsbridge;s={face.server.space.variables[key].node.Identifier}"

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "subscribed":
            face.put((key, 2**40, 1e20))
            face.put((key, 12, GOOD_TIME))

    heard = await node_opcua_async(
        {"command": "subscribe", "endpoint": face.url, "nodeIds": [ident], "count": 3}
        | {"publishingInterval": 20, "events": True},
        timeout=30,
        on_event=on_event,
    )
    _, refused, later = heard["notifications"]
    assert (refused["statusCode"], refused["value"]) == ("BadOutOfRange", None)
    assert (later["statusCode"], later["value"]) == ("Good", 12)


async def test_a_failed_publisher_says_so_and_starts_over(
    face: Face, small: Mapping, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = keys_of(small, ValueType.FLOAT, 1)[0]
    handler = Changes()
    async with Client(face.url) as client:
        subscription = await client.create_subscription(20, handler)
        await subscription.subscribe_data_change(face.node(client, key))
        await handler.until(lambda: handler.values)

        class FailingOnce(Now):
            failed = False

            @classmethod
            def read(cls) -> Now:
                if not cls.failed:
                    cls.failed = True
                    raise RuntimeError("the clock broke")
                return Now.read()

        monkeypatch.setattr(ua_server, "Now", FailingOnce)
        face.put((key, 3.25, GOOD_TIME))
        await eventually(lambda: FailingOnce.failed)
        face.put((key, 4.5, GOOD_TIME))
        await handler.until(lambda: handler.values[-1][0] == 4.5)
    failures = [r for r in caplog.records if r.name == ua_server.__name__ and r.exc_info]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    assert "the clock broke" in caplog.text
