"""The node-opcua harness (an independent OPC UA stack) against a small asyncua server in the test.

The server runs in the test's event loop; node runs as a subprocess through `node_opcua_async`.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodeopcua
import pytest
import pytest_asyncio
from asyncua import Node, Server, ua
from asyncua.common.instantiate_util import instantiate
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from nodeopcua import (
    NodeOpcuaError,
    available,
    node_opcua,
    node_opcua_async,
    unavailable_reason,
)

from conftest import free_port


@pytest.fixture(autouse=True, scope="module")
def node_opcua_installed() -> None:
    """node-opcua must be there: `npm ci --prefix tests/opcua/node` (the README's test command)."""
    assert available(), unavailable_reason()


# One server for the module, so its tests share the module's event loop: an asyncua Server
# takes over a second to initialise.
in_module_loop = pytest.mark.asyncio(loop_scope="module")

URI = "urn:icsbridge"
VOLT = 5655636  # UNECE "VLT"
CEFACT = "http://www.opcfoundation.org/UA/units/un/cefact"
USER, PASSWORD = "operator", "s3cret"


@dataclass
class Served:
    server: Server
    endpoint: str
    idx: int
    voltage: Node
    setpoint: Node
    switch: Node
    label: Node


@dataclass
class Certs:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class Users:
    """Anonymous is a user; a user name needs its password."""

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User)
        return (
            User(role=UserRole.User, name=username)
            if (username, password) == (USER, PASSWORD)
            else None
        )


def _make_cert(
    directory: Path, name: str, uri: str, use: x509.ObjectIdentifier
) -> tuple[Path, Path]:
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        name,
        {},
        [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        extended=[use],
        days=2,
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("pki")
    server = _make_cert(d, "server", "urn:icsbridge:test:server", ExtendedKeyUsageOID.SERVER_AUTH)
    client = _make_cert(d, "client", "urn:icsbridge:test:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Certs(*server, *client)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(certs: Certs) -> AsyncIterator[Served]:
    server = Server(user_manager=Users())  # type: ignore[arg-type]
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/icsbridge"
    server.set_endpoint(endpoint)
    server.set_server_name("icsbridge harness test")
    await server.set_application_uri("urn:icsbridge:test:server")
    server.set_security_policy(
        [
            ua.SecurityPolicyType.NoSecurity,
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ]
    )
    await server.load_certificate(str(certs.server_cert))
    await server.load_private_key(str(certs.server_key))
    idx = await server.register_namespace(URI)

    channel = await server.nodes.objects.add_object(
        ua.NodeId("0.3.5", idx), ua.QualifiedName("Channel", idx)
    )
    voltage = (
        await instantiate(
            channel,
            server.get_node(ua.ObjectIds.AnalogItemType),
            nodeid=ua.NodeId("0.3.5.Status.voltageMeasure", idx),
            bname=ua.QualifiedName("voltageMeasure", idx),
            dname=ua.LocalizedText("Measured voltage"),
        )
    )[0]
    await voltage.write_attribute(
        ua.AttributeIds.DataType,
        ua.DataValue(ua.Variant(ua.NodeId(ua.ObjectIds.Double), ua.VariantType.NodeId)),
    )
    await voltage.write_value(ua.Variant(12.5, ua.VariantType.Double))
    await (await voltage.get_child("0:EURange")).write_value(ua.Range(Low=0.0, High=3000.0))
    await (await voltage.get_child("0:EngineeringUnits")).write_value(
        ua.EUInformation(
            NamespaceUri=CEFACT,
            UnitId=VOLT,
            DisplayName=ua.LocalizedText("V"),
            Description=ua.LocalizedText("volt"),
        )
    )

    setpoint = await channel.add_variable(
        ua.NodeId("0.3.5.Control.voltageSet", idx),
        ua.QualifiedName("voltageSet", idx),
        0.0,
        ua.VariantType.Double,
    )
    switch = await channel.add_variable(
        ua.NodeId("0.3.5.Control.on", idx),
        ua.QualifiedName("on", idx),
        False,
        ua.VariantType.Boolean,
    )
    label = await channel.add_variable(
        ua.NodeId("0.3.5.Setup.name", idx),
        ua.QualifiedName("name", idx),
        "ch 5",
        ua.VariantType.String,
    )
    for node in (setpoint, switch, label):
        await node.set_writable()

    async with server:
        yield Served(server, endpoint, idx, voltage, setpoint, switch, label)


def nid(name: str) -> str:
    return f"nsu={URI};s=0.3.5.{name}"


@in_module_loop
async def test_namespaces(served: Served) -> None:
    res = await node_opcua_async({"command": "namespaces", "endpoint": served.endpoint})
    assert res["namespaces"][0] == "http://opcfoundation.org/UA/"
    assert res["namespaces"].index(URI) == served.idx


@in_module_loop
async def test_browse_finds_nodes_with_type_definitions(served: Served) -> None:
    res = await node_opcua_async({"command": "browse", "endpoint": served.endpoint, "depth": 3})
    nodes = {n["nodeId"]: n for n in res["nodes"]}
    ns = f"ns={served.idx};s=0.3.5"
    assert nodes[ns]["browseName"] == f"{served.idx}:Channel"
    assert nodes[ns]["nodeClass"] == "Object"
    assert nodes[ns]["parent"] == "i=85"
    voltage = nodes[f"{ns}.Status.voltageMeasure"]
    assert voltage == voltage | {
        "browseName": f"{served.idx}:voltageMeasure",
        "displayName": "Measured voltage",
        "nodeClass": "Variable",
        "typeDefinition": "i=2368",
        "typeDefinitionName": "AnalogItemType",
        "referenceType": "HasComponent",
        "path": [f"{served.idx}:Channel", f"{served.idx}:voltageMeasure"],
    }
    props = {n["browseName"]: n for n in res["nodes"] if n["parent"] == voltage["nodeId"]}
    assert {"EURange", "EngineeringUnits"} <= props.keys()
    assert props["EURange"]["typeDefinitionName"] == "PropertyType"
    assert props["EURange"]["referenceType"] == "HasProperty"
    for name in ("Control.voltageSet", "Control.on", "Setup.name"):
        assert nodes[f"{ns}.{name}"]["typeDefinition"] == "i=63"  # BaseDataVariableType
    # the tree holds the same, nested under the start node
    assert res["tree"]["nodeId"] == "i=85"
    [channel] = [c for c in res["tree"]["children"] if c["nodeId"] == ns]
    assert {c["nodeId"] for c in channel["children"]} >= {voltage["nodeId"]}

    # a start node given in expanded form, depth 1
    sub = await node_opcua_async(
        {"command": "browse", "endpoint": served.endpoint, "nodeId": nid("Status.voltageMeasure")}
    )
    assert sub["tree"]["browseName"] == f"{served.idx}:voltageMeasure"
    assert {n["browseName"] for n in sub["nodes"]} >= {"EURange", "EngineeringUnits"}
    assert all(n["children"] == [] for n in sub["tree"]["children"])


@in_module_loop
async def test_read_values_units_and_range(served: Served) -> None:
    v = nid("Status.voltageMeasure")
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    res = await node_opcua_async(
        {
            "command": "read",
            "endpoint": served.endpoint,
            "items": [
                {"nodeId": v},
                {"nodeId": v, "attribute": "DataType"},
                {"nodeId": v, "attribute": "DisplayName"},
                {"nodeId": v, "attribute": "AccessLevel"},
                {"nodeId": v, "path": ["EURange"]},
                {"nodeId": v, "path": ["EngineeringUnits"]},
                {"nodeId": nid("Control.on")},
                {"nodeId": nid("Setup.name")},
                {"nodeId": nid("Control.voltageSet"), "attribute": "UserAccessLevel"},
                {"nodeId": nid("nope")},
                {"nodeId": v, "path": ["InstrumentRangeX"]},
            ],
        }
    )
    value, dtype, dname, access, eurange, units, on, name, user_access, unknown, no_path = res[
        "results"
    ]
    assert value["statusCode"] == "Good"
    assert value["value"] == await served.voltage.read_value()
    assert value["dataType"] == "Double"
    assert datetime.datetime.fromisoformat(value["sourceTimestamp"]) > before
    assert dtype["value"] == "i=11" and dtype["dataTypeName"] == "Double"
    assert dname["value"]["text"] == "Measured voltage"
    assert access["value"] & 0x01  # CurrentRead
    assert not access["value"] & 0x02  # a measurement is not writable
    assert eurange["resolvedNodeId"] == f"ns={served.idx};s=0.3.5.Status.voltageMeasure.EURange"
    assert eurange["typeName"] == "Range"
    assert eurange["value"] == {"low": 0.0, "high": 3000.0}
    assert units["typeName"] == "EUInformation"
    assert units["value"]["unitId"] == VOLT
    assert units["value"]["namespaceUri"] == CEFACT
    assert units["value"]["displayName"]["text"] == "V"
    assert (on["value"], on["dataType"]) == (False, "Boolean")
    assert (name["value"], name["dataType"]) == ("ch 5", "String")
    assert user_access["value"] & 0x03 == 0x03
    assert unknown["statusCode"] == "BadNodeIdUnknown"
    assert (no_path["statusCode"], no_path["resolvedNodeId"]) == ("BadNoMatch", None)


@in_module_loop
async def test_write_reaches_the_server(served: Served) -> None:
    single, multi = await asyncio.gather(
        node_opcua_async(
            {
                "command": "write",
                "endpoint": served.endpoint,
                "nodeId": nid("Control.voltageSet"),
                "value": 1234.5,
                "dataType": "Double",
            }
        ),
        node_opcua_async(
            {
                "command": "write",
                "endpoint": served.endpoint,
                "items": [
                    {"nodeId": nid("Control.on"), "value": True, "dataType": "Boolean"},
                    {"nodeId": nid("Setup.name"), "value": "HV 5", "dataType": "String"},
                    {"nodeId": nid("Status.voltageMeasure"), "value": 1.0, "dataType": "Double"},
                    {"nodeId": nid("Control.voltageSet"), "value": 7, "dataType": "Int32"},
                ],
            }
        ),
    )
    assert single["statusCode"] == "Good"
    assert single["resolvedNodeId"] == f"ns={served.idx};s=0.3.5.Control.voltageSet"
    statuses = [r["statusCode"] for r in multi["results"]]
    assert statuses[:2] == ["Good", "Good"]
    assert statuses[2] in ("BadNotWritable", "BadUserAccessDenied")
    assert statuses[3] == "BadTypeMismatch"
    assert await served.setpoint.read_value() == 1234.5
    assert await served.switch.read_value() is True
    assert await served.label.read_value() == "HV 5"


@in_module_loop
async def test_subscribe_receives_a_server_change(served: Served) -> None:
    before = await served.voltage.read_value()
    assert before != 1500.25
    first = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "notification":
            first.set()

    run = asyncio.create_task(
        node_opcua_async(
            {
                "command": "subscribe",
                "endpoint": served.endpoint,
                "events": True,
                "nodeIds": [nid("Status.voltageMeasure"), nid("nope")],
                "publishingInterval": 50,
                "count": 2,
                "duration": 20000,
            },
            timeout=30,
            on_event=on_event,
        )
    )
    initial = asyncio.create_task(first.wait())
    await asyncio.wait({run, initial}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        initial.cancel()
        pytest.fail(f"harness ended before the initial notification: {run.result()}")
    await served.voltage.write_value(ua.Variant(1500.25, ua.VariantType.Double))
    res = await run

    assert res["reason"] == "count"
    assert [i["statusCode"] for i in res["items"]] == ["Good", "BadNodeIdUnknown"]
    assert [n["value"] for n in res["notifications"]] == [before, 1500.25]
    assert all(n["nodeId"] == nid("Status.voltageMeasure") for n in res["notifications"])
    assert all(n["statusCode"] == "Good" for n in res["notifications"])
    t0, t1 = (datetime.datetime.fromisoformat(n["sourceTimestamp"]) for n in res["notifications"])
    assert t1 >= t0


@in_module_loop
async def test_security_and_users(served: Served, certs: Certs) -> None:
    secure = {
        "endpoint": served.endpoint,
        "securityMode": "SignAndEncrypt",
        "securityPolicy": "Basic256Sha256",
        "certificate": str(certs.client_cert),
        "privateKey": str(certs.client_key),
    }

    async def failure(command: dict[str, Any]) -> NodeOpcuaError:
        with pytest.raises(NodeOpcuaError) as err:
            await node_opcua_async(command)  # check=True: a failure raises, result attached
        return err.value

    ok, signed, bad_password, unreachable = await asyncio.gather(
        node_opcua_async(
            {
                **secure,
                "command": "write",
                "user": USER,
                "password": PASSWORD,
                "nodeId": nid("Control.voltageSet"),
                "value": 42.0,
                "dataType": "Double",
            }
        ),
        node_opcua_async(
            {
                **secure,
                "command": "read",
                "securityMode": "Sign",
                "items": [{"nodeId": nid("Status.voltageMeasure")}],
            }
        ),
        node_opcua_async(
            {**secure, "command": "namespaces", "user": USER, "password": "wrong"}, check=False
        ),
        failure({"command": "namespaces", "endpoint": f"opc.tcp://127.0.0.1:{free_port()}/none"}),
    )
    assert ok["statusCode"] == "Good"
    assert await served.setpoint.read_value() == 42.0
    assert signed["results"][0]["value"] == await served.voltage.read_value()
    assert bad_password["ok"] is False and bad_password["stage"] == "session"
    assert bad_password["statusCode"] in ("BadUserAccessDenied", "BadIdentityTokenRejected")
    assert unreachable.result is not None and unreachable.result["stage"] == "connect"
    assert "failed at connect" in str(unreachable)


def test_blocking_wrapper_usage_errors_and_availability(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # an invalid command is no OPC UA outcome: exit 2, raised whatever `check`
    with pytest.raises(NodeOpcuaError, match="exited 2") as err:
        node_opcua({"command": "nope", "endpoint": "opc.tcp://127.0.0.1:1"}, check=False)
    assert err.value.result is not None and err.value.result["usage"] is True
    monkeypatch.setattr(nodeopcua, "HARNESS_DIR", tmp_path)
    assert not available()
    assert "npm ci --prefix tests/opcua/node" in unavailable_reason()
