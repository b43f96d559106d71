"""`icsbridge serve` against an iCS that sends odd records: no face stops, quality still flows.

The simulator stands in for the iCS over a real WebSocket and sends raw frames as a broken
or hostile one would; libca and asyncua's client watch one set point through the bridge.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import epics
import pytest
from asyncua import Client, ua

from icsbridge.ics.sim.topology import Topology

from conftest import BridgeProcess, SimThread, eventually, free_port

MAPPING = Path(__file__).parents[1] / "mappings" / "default.yaml"
PV = "ISEG:5230102:0:2:5:VoltageSet"
NODE = "0.2.5.Control.voltageSet"
INVALID = 3


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(Topology.default())
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"


@pytest.fixture(scope="module")
def bridge(
    sim: SimThread, endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BridgeProcess]:
    process = BridgeProcess(
        sim.url,
        "--mapping",
        str(MAPPING),
        "--opcua-endpoint",
        endpoint,
        "--opcua-state",
        str(tmp_path_factory.mktemp("state")),
        "--heartbeat",
        "0.5",
    )
    process.wait_for_log(r"serving \d+ variables over OPC UA")
    yield process
    process.stop()


def record(value: str, stamp: str = "1.7e9", address: str = "2", item: str = "Control.voltageSet"):
    """One itemUpdated event of channel 0.<address>.5."""
    path = {"l": "0", "a": address, "c": "5"}
    return {"e": "itemUpdated", "d": {"p": path, "i": item, "v": value, "u": "V", "t": stamp}}


def frame(*events: dict[str, object]) -> str:
    return json.dumps([{"i": "", "t": "info", "r": "websocket", "c": list(events)}])


class Watch:
    """What a libca monitor of the set point has received: values and severities."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.severities: list[int] = []
        self.changed = threading.Condition()
        self.pv = epics.PV(PV, form="time", callback=self._take, auto_monitor=True)
        assert self.pv.wait_for_connection(5)

    def _take(self, value: float, severity: int, **_: object) -> None:
        with self.changed:
            self.values.append(value)
            self.severities.append(severity)
            self.changed.notify_all()

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


class Notes:
    """What an OPC UA subscription of the set point has received."""

    def __init__(self) -> None:
        self.values: list[ua.DataValue] = []

    def datachange_notification(self, node: object, value: object, data: object) -> None:
        self.values.append(data.monitored_item.Value)  # type: ignore[attr-defined]


async def test_odd_records_stop_no_face_and_a_later_loss_still_reaches_every_client(
    sim: SimThread, bridge: BridgeProcess, endpoint: str
) -> None:
    watch = Watch()
    notes = Notes()
    async with Client(endpoint) as client:
        ns = await client.get_namespace_index("urn:icsbridge")
        subscription = await client.create_subscription(20, notes)
        await subscription.subscribe_data_change(client.get_node(ua.NodeId(NODE, ns)))
        odd = [
            frame(record("11", stamp="-1")),  # an iCS clock at 1970 after a power cut
            frame(record("12", stamp="100"), record("7" * 400, item="Setup.delayedTripTime")),
            frame(record("13", stamp="1e308")),
            frame(record("1", address="-1"), record("14")),  # a bad record beside a good one
            frame(record("15", stamp="1.8e9")),
        ]
        for text in odd:
            sim.call(lambda text=text: sim.sim.faults.send_raw(text))
        assert watch.wait(lambda: 15.0 in watch.values), watch.values
        assert {11.0, 12.0, 13.0, 14.0} <= set(watch.values)
        await eventually(lambda: any(v.Value.Value == 15.0 for v in notes.values))
        assert {11.0, 12.0, 13.0, 14.0} <= {v.Value.Value for v in notes.values}

        sim.call(lambda: setattr(sim.sim.faults, "silent", True))
        try:
            assert watch.wait(lambda: watch.severities[-1] == INVALID), watch.severities
            await eventually(
                lambda: notes.values[-1].StatusCode.value == ua.StatusCodes.BadCommunicationError
            )
        finally:
            sim.call(lambda: setattr(sim.sim.faults, "silent", False))
        assert watch.wait(lambda: watch.severities[-1] != INVALID), watch.severities
        await eventually(lambda: notes.values[-1].StatusCode.is_good())
    watch.pv.disconnect()
    log = "".join(bridge.log)
    assert "Traceback" not in log
    assert "stamped on arrival" in log and "beyond 32 bits" in log and "left out" in log
