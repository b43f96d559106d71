"""`icsbridge serve` against an iCS that sends odd records: no face stops, quality still flows.

The simulator stands in for the iCS over a real WebSocket and sends raw frames as a broken
or hostile one would; libca and asyncua's client watch one set point through the bridge.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import epics
import psutil
import pytest
from asyncua import Client, ua
from asyncua import sync as ua_sync
from caproto import ChannelType, ErrorResponseReceived
from caproto.sync.client import read as ca_read
from caproto.sync.client import write as ca_write
from caproto.threading.client import Context as CaContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping import document
from icsbridge.model import ItemKey

from conftest import BridgeProcess, SimThread, eventually, free_port

MAPPING = Path(__file__).parents[1] / "mappings" / "default.yaml"
PV = "ISEG:5230102:0:2:5:VoltageSet"
NODE = "0.2.5.Control.voltageSet"
SENTINEL_PV = "ISEG:5230102:0:2:6:VoltageSet"
SENTINEL_NODE = "0.2.6.Control.voltageSet"
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


def record(
    value: str,
    stamp: str = "1.7e9",
    address: str = "2",
    item: str = "Control.voltageSet",
    channel: str = "5",
    line: str = "0",
) -> dict[str, object]:
    """One itemUpdated event of channel <line>.<address>.<channel>."""
    path = {"l": line, "a": address, "c": channel}
    return {"e": "itemUpdated", "d": {"p": path, "i": item, "v": value, "u": "V", "t": stamp}}


def frame(*events: dict[str, object]) -> str:
    return json.dumps([{"i": "", "t": "info", "r": "websocket", "c": list(events)}])


class Watch:
    """What a libca monitor of a set point has received: values and severities."""

    def __init__(self, name: str = PV) -> None:
        self.values: list[float] = []
        self.severities: list[int] = []
        self.changed = threading.Condition()
        self.pv = epics.PV(name, form="time", callback=self._take, auto_monitor=True)
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
    """What an OPC UA subscription of a set point has received."""

    def __init__(self) -> None:
        self.values: list[ua.DataValue] = []
        self.changed = threading.Condition()

    def datachange_notification(self, node: object, value: object, data: object) -> None:
        with self.changed:
            self.values.append(data.monitored_item.Value)  # type: ignore[attr-defined]
            self.changed.notify_all()

    def wait_for_value(self, value: float, timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: any(v.Value.Value == value for v in self.values), timeout
            )


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


# --- any records at all --------------------------------------------------------------------

SERVED = ("Control.voltageSet", "Status.voltageMeasure", "Setup.delayedTripTime",
          "Setup.delayedTripAction", "Control.on", "Status.runningState")  # fmt: skip
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
NUMBERS_AS_TEXT = (
    st.floats().map(repr)
    | st.integers(min_value=-(10**400), max_value=10**400).map(str)
    | st.sampled_from(["", "nan", "-inf", "1e999", "0x10", " 5 ", "1_000", "true"])
)
STAMPS = st.floats(min_value=-1e12, max_value=1e12).map(repr) | st.sampled_from(
    ["-1", "100", "1e308", "1.7e9", "4294967296", "631152000"]
)
"""Time stamps, most of them odd: before 1990, after 2106."""
PARTS = st.sampled_from(["0", "2", "5", "", "1000", "-1", "x", "99999999999999999999"]) | st.one_of(
    st.integers(), st.none(), st.booleans()
)


def mostly(likely: st.SearchStrategy[Any], rest: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`likely` three times in four, `rest` otherwise."""
    return st.one_of(likely, likely, likely, rest)


@st.composite
def wild_records(draw: st.DrawFn) -> dict[str, object]:
    """An itemUpdated event of any shape, most of it aimed at the items of channel 0.2.5."""
    wild_path = st.fixed_dictionaries({"l": PARTS, "a": PARTS, "c": PARTS})
    data: dict[str, object] = {
        "p": draw(mostly(st.just({"l": "0", "a": "2", "c": "5"}), wild_path | JSON_SCALARS)),
        "i": draw(mostly(st.sampled_from(SERVED), st.text(max_size=20) | JSON_SCALARS)),
        "v": draw(mostly(NUMBERS_AS_TEXT, JSON_SCALARS | st.lists(JSON_SCALARS, max_size=2))),
        "u": draw(mostly(st.sampled_from(["V", "kV", "", "A", "µA", "ms"]), JSON_SCALARS)),
    }
    data["t"] = draw(mostly(STAMPS, NUMBERS_AS_TEXT | JSON_SCALARS))
    return {"e": draw(mostly(st.just("itemUpdated"), st.text(max_size=8))), "d": data}


@pytest.fixture(scope="module")
def sentinels(bridge: BridgeProcess, endpoint: str) -> Iterator[tuple[Watch, Notes]]:
    """A libca monitor and an OPC UA subscription of a set point no wild record names,
    beside monitors and subscriptions of every item the wild records aim at."""
    watch, notes = Watch(SENTINEL_PV), Notes()
    names = {entry.key: entry.pv for entry in document.load(MAPPING).items}
    aimed = [ItemKey(0, 2, 5, item) for item in SERVED]
    others = [epics.PV(names[key], form="time", auto_monitor=True) for key in aimed]
    with ua_sync.Client(endpoint) as client:
        ns = client.get_namespace_index("urn:icsbridge")
        subscription = client.create_subscription(20, notes)
        nodes = [ua.NodeId(str(key), ns) for key in aimed] + [ua.NodeId(SENTINEL_NODE, ns)]
        subscription.subscribe_data_change([client.get_node(node) for node in nodes])
        yield watch, notes
    for pv in (watch.pv, *others):
        pv.disconnect()


SENT = iter(range(1, 1_000_000))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(wild_records(), min_size=1, max_size=12))
def test_any_records_leave_both_faces_publishing(
    sim: SimThread,
    bridge: BridgeProcess,
    sentinels: tuple[Watch, Notes],
    records: list[dict[str, object]],
) -> None:
    watch, notes = sentinels
    mark = 1000.0 + next(SENT) / 8
    sim.call(lambda: sim.sim.faults.send_raw(frame(*records)))
    sim.call(lambda: sim.sim.faults.send_raw(frame(record(str(mark), channel="6"))))
    assert watch.wait(lambda: mark in watch.values), "Channel Access stopped publishing"
    assert notes.wait_for_value(mark), "OPC UA stopped publishing"
    assert bridge.process.poll() is None
    assert "Traceback" not in "".join(bridge.log)


def test_a_flood_of_malformed_frames_is_logged_a_few_times_and_counted(
    sim: SimThread, bridge: BridgeProcess, sentinels: tuple[Watch, Notes]
) -> None:
    watch, _ = sentinels
    before = len(bridge.log)
    flood = ["{not json", frame(record("1", address="-1")), json.dumps({"t": "teleport"})] * 3000
    sim.call(lambda: [sim.sim.faults.send_raw(text) for text in flood])
    mark = 999.5
    sim.call(lambda: sim.sim.faults.send_raw(frame(record(str(mark), channel="6"))))
    assert watch.wait(lambda: mark in watch.values)
    lines = [line for line in bridge.log[before:] if "malformed" in line]
    assert len(lines) <= 4, lines  # 9,000 lines before


def test_the_health_pvs_are_read_only(bridge: BridgeProcess) -> None:
    for name in ("LinkState", "FrameAge", "UpdateRate", "UnconfirmedWrites", "LateWrites"):
        pv = epics.PV(f"ISEG:5230102:Bridge:{name}")
        assert pv.wait_for_connection(5)
        assert pv.read_access and not pv.write_access, name
        with pytest.raises(epics.ca.CASeverityException, match="Write access denied"):
            epics.ca.put(pv.chid, 1, wait=True)
        pv.disconnect()


def strangers(first: int, count: int) -> str:
    """One frame of `count` records of channels no mapping holds, numbered from `first`."""
    numbers = range(first, first + count)
    events = [
        record("1.5", line="7", address=str(n // 1000), channel=str(n % 1000)) for n in numbers
    ]
    return frame(*events)


def test_records_of_items_not_served_are_not_kept(
    sim: SimThread, bridge: BridgeProcess, sentinels: tuple[Watch, Notes]
) -> None:
    watch, _ = sentinels
    process = psutil.Process(bridge.process.pid)
    sizes = []
    for round_ in range(4):
        text = strangers(round_ * 150_000, 150_000)  # 24 MB, under --max-frame
        sim.call(lambda text=text: sim.sim.faults.send_raw(text))
        mark = 2000.0 + round_
        sim.call(lambda mark=mark: sim.sim.faults.send_raw(frame(record(str(mark), channel="6"))))
        assert watch.wait(lambda mark=mark: mark in watch.values)
        sizes.append(process.memory_info().rss)
    growth = (sizes[-1] - sizes[1]) / 2**20
    assert growth < 50, f"{growth:.0f} MiB more after 300,000 records of unknown items"


def test_a_frame_above_the_limit_loses_the_link_before_it_is_read_whole(
    sim: SimThread, bridge: BridgeProcess, sentinels: tuple[Watch, Notes]
) -> None:
    watch, _ = sentinels
    process = psutil.Process(bridge.process.pid)
    before = process.memory_info().rss
    text = strangers(0, 260_000)  # 42 MB, over the default 32 MiB
    sim.call(lambda: sim.sim.faults.send_raw(text))
    bridge.wait_for_log(r"iCS link .* lost: .*message too big")
    bridge.wait_for_log(r"iCS link .*: ready")
    mark = 3000.0
    sim.call(lambda: sim.sim.faults.send_raw(frame(record(str(mark), channel="6"))))
    assert watch.wait(lambda: mark in watch.values)
    assert (process.memory_info().rss - before) / 2**20 < 100


@pytest.fixture
def stoppable_ics() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`icsbridge sim` in a process of its own, which a test may stop and continue."""
    port = free_port()
    command = [sys.executable, "-m", "icsbridge", "sim", "--port", str(port)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "no simulator"
            time.sleep(0.05)
    yield process, f"ws://127.0.0.1:{port}"
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(10)


def test_a_write_to_a_stopped_ics_is_unconfirmed_and_its_late_application_told(
    stoppable_ics: tuple[subprocess.Popen[bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ics, url = stoppable_ics
    port = str(free_port())  # a CA port of its own, beside the module's bridge
    ports = {"EPICS_CA_SERVER_PORT": port, "EPICS_CAS_SERVER_PORT": port}
    for variable, value in ports.items():
        monkeypatch.setenv(variable, value)
    bridge = BridgeProcess(url, "--mapping", str(MAPPING), "--write-timeout", "1", env=ports)
    try:
        name = "ISEG:5230102:0:2:7:VoltageSet"
        (before,) = ca_read(name, timeout=10, repeater=False).data
        ics.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(ErrorResponseReceived, match="unconfirmed: the iCS may still"):
                ca_write(name, [before + 123.0], notify=True, timeout=10, repeater=False)
            bridge.wait_for_log(r"iCS link .*: lost")
        finally:
            ics.send_signal(signal.SIGCONT)
        # The setItem reached the iCS's socket before the reset: on Linux its receive queue
        # outlives a reset, so the iCS reads and applies it on resuming. The bridge says so.
        bridge.wait_for_log(r"7:VoltageSet .* reported unconfirmed, applied late: .* 123")
        assert ca_read(name, timeout=10, repeater=False).data[0] == before + 123.0
    finally:
        bridge.stop()


def test_a_user_name_cannot_forge_a_line_of_the_write_log(
    bridge: BridgeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = "eve\n2026-12-04 10:00:00,000 INFO icsbridge.core.writes: write forged confirmed"
    monkeypatch.setenv("LOGNAME", forged)  # the CA client name caproto's client sends
    ca_write("ISEG:5230102:0:2:10:VoltageSet", [17.5], notify=True, timeout=10, repeater=False)
    line = bridge.wait_for_log(r"write .*0:2:10:VoltageSet .* by eve").string
    assert "eve\\n2026-12-04 10:00:00,000 INFO" in line and line.endswith("confirmed 17.5\n")
    assert not any(entry.startswith("2026-12-04 10:00:00,000") for entry in bridge.log)


def test_refused_puts_leave_one_log_line_each_and_no_traceback(bridge: BridgeProcess) -> None:
    before = len(bridge.log)
    with CaContext() as context:
        (pv,) = context.get_pvs("ISEG:5230102:0:2:10:Control:setEmergency")
        pv.wait_for_connection(timeout=10)
        for _ in range(200):
            pv.write([float("nan")], data_type=ChannelType.DOUBLE, wait=False)
        for _ in range(200):
            bridge.wait_for_log(r"setEmergency .* refused: .*not a whole number")
    lines = bridge.log[before:]
    assert sum("setEmergency" in line for line in lines) == 200
    assert not [line for line in lines if "Traceback" in line or "Invalid write" in line]
