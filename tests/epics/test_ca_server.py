"""`icsbridge serve` against the simulator, read and written with libca (pyepics)."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import epics
import pytest
from caproto import ErrorResponseReceived
from caproto.sync.client import write as ca_write
from epics import ca, dbr

from icsbridge.epics.database import write_templates
from icsbridge.epics.records import record_type
from icsbridge.epics.substitutions import substitutions
from icsbridge.ics.client import IcsClient
from icsbridge.ics.protocol import Selector
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping import document
from icsbridge.mapping.document import ItemEntry, Mapping
from icsbridge.model import ItemKey

from conftest import BridgeProcess, SimThread, SoftIoc

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
P = "ISEG:5230102:"
ECA_NORMAL = 1
HEARTBEAT = 0.5


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(Topology.default())
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def bridge(sim: SimThread) -> Iterator[BridgeProcess]:
    process = BridgeProcess(
        sim.url, "--mapping", str(MAPPING), "--write-timeout", "3", "--heartbeat", str(HEARTBEAT)
    )
    yield process
    process.stop()


DBR_CTYPES = {
    dbr.CHAR: ctypes.c_uint8,
    dbr.SHORT: ctypes.c_int16,
    dbr.ENUM: ctypes.c_uint16,
    dbr.LONG: ctypes.c_int32,
    dbr.FLOAT: ctypes.c_float,
    dbr.DOUBLE: ctypes.c_double,
}


def read_until(name: str, expected: object, timeout: float = 10.0) -> object:
    """The PV's value once it is `expected`, or the last one read when `timeout` has passed
    (for PVs the bridge updates on a period, such as its health PVs)."""
    deadline = time.monotonic() + timeout
    while (value := epics.caget(name, use_monitor=False)) != expected:
        if time.monotonic() > deadline:
            break
        ca.poll(evt=0.05)
    return value


def put_status(name: str, value: object, timeout: float = 10.0, ftype: int | None = None) -> int:
    """Put with callback (like `caput -c`) and return the status the server reported.

    The value goes as DBR_STRING, DBR_LONG (ints to ENUM and LONG PVs) or DBR_DOUBLE, or as
    `ftype` when given (DBR_CHAR, DBR_SHORT, DBR_FLOAT, DBR_ENUM too)."""
    pv = epics.PV(name)
    assert pv.wait_for_connection(5), f"{name} did not connect"
    done = threading.Event()
    status: list[int] = []

    def completed(args: dbr.event_handler_args) -> None:
        status.append(args.status)
        done.set()

    callback = dbr.make_callback(completed, dbr.event_handler_args)
    count = 1
    if ftype is None:
        if isinstance(value, str):
            ftype = dbr.STRING
        elif isinstance(value, int) and pv.ftype in (dbr.ENUM, dbr.LONG, dbr.TIME_ENUM):
            ftype = dbr.LONG
        else:
            ftype = dbr.DOUBLE
    if ftype == dbr.STRING:
        data = (ctypes.c_char * 40)(*str(value).encode()[:39])
    else:
        data = (DBR_CTYPES[ftype] * 1)(value)
    ret = ca.libca.ca_array_put_callback(ftype, count, pv.chid, data, callback, None)
    if ret != ECA_NORMAL:
        return int(ret)  # refused by libca itself, e.g. ECA_NOWTACCESS
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        ca.poll(evt=0.01)
    assert status, f"no put completion from {name}"
    return status[0]


def until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait for a condition of monitored values, letting libca deliver meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        ca.poll(evt=0.01)
    return True


def read(name: str) -> object:
    """A fresh read from the server, not a cached monitor value."""
    return epics.caget(name, use_monitor=False, as_string=False, timeout=5)


def sim_value(sim: SimThread, key: ItemKey) -> object:
    return sim.call(lambda: sim.sim.model.value(key))


def test_a_measured_voltage_reads_with_its_metadata(sim: SimThread, bridge: BridgeProcess) -> None:
    name = f"{P}0:0:1:VoltageMeasure"
    pv = epics.PV(name, form="ctrl")
    assert pv.wait_for_connection(5)
    value = pv.get(use_monitor=False)
    assert value == pytest.approx(
        sim_value(sim, ItemKey(0, 0, 1, "Status.voltageMeasure")), abs=0.5
    )
    assert pv.units == "V" and pv.precision == 3
    assert (pv.lower_disp_limit, pv.upper_disp_limit) == (0.0, 6000.0)
    fields = {
        f: epics.caget(f"{name}.{f}", as_string=True)
        for f in ("EGU", "PREC", "DESC", "HOPR", "LOPR", "RTYP", "STAT", "SEVR")
    }
    assert fields == {
        "EGU": "V",
        "PREC": "3",
        "DESC": "Measured output voltage",
        "HOPR": "6000",
        "LOPR": "0",
        "RTYP": "ai",
        "STAT": "NO_ALARM",
        "SEVR": "NO_ALARM",
    }
    assert epics.caget(f"{P}0:0:1:VoltageSet.DRVH") == 6000.0


def test_enums_read_as_their_state_strings(bridge: BridgeProcess) -> None:
    assert epics.caget(f"{P}0:0:1:Control:setOn", as_string=True) == "off"
    assert epics.caget(f"{P}0:0:1:RunningState", as_string=True) == "off"
    trip = epics.PV(f"{P}0:0:1:DelayedTripAction", form="ctrl")
    assert trip.wait_for_connection(5)
    assert trip.enum_strs[:2] == ("none", "ramp down")


def test_a_long_text_reads_whole(bridge: BridgeProcess) -> None:
    text = epics.caget(f"{P}Protocols", as_string=True)
    assert text == "CAN,TCP/IP (Ethernet),TCP/IP (Wi-Fi),USB,USB"


def test_put_with_callback_completes_once_the_ics_confirmed(
    sim: SimThread, bridge: BridgeProcess
) -> None:
    assert put_status(f"{P}0:2:0:VoltageSet", 123.5) == ECA_NORMAL
    assert sim_value(sim, ItemKey(0, 2, 0, "Control.voltageSet")) == 123.5
    bridge.wait_for_log(
        r"write ISEG:5230102:0:2:0:VoltageSet \(0\.2\.0\.Control\.voltageSet\) by \S+@\S+ via CA: "
        r"0\.0 -> 123\.5 confirmed 123\.5"
    )
    assert read(f"{P}0:2:0:VoltageSet") == 123.5


def test_a_monitor_sees_every_step_of_a_ramp(sim: SimThread, bridge: BridgeProcess) -> None:
    key = ItemKey(0, 0, 2, "Status.voltageMeasure")
    pushed: list[tuple[float, float]] = []  # what the simulator sent, seen by another client

    async def watch() -> IcsClient:
        client = IcsClient(sim.url, "admin", "password")
        await client.start()
        client.cache.subscribe(
            lambda updates: pushed.extend((u.value, u.time) for u in updates if u.key == key)
        )  # type: ignore[misc]
        await client.subscribe([(Selector(*key.path), key.item)])
        return client

    observer = sim.call(watch())
    steps: list[tuple[float, float]] = []
    arrived = threading.Condition()

    def changed(value: float, timestamp: float, **_: object) -> None:
        with arrived:
            steps.append((value, timestamp))
            arrived.notify_all()

    monitor = epics.PV(f"{P}0:0:2:VoltageMeasure", callback=changed, auto_monitor=True, form="time")
    assert monitor.wait_for_connection(5)
    assert put_status(f"{P}0:0:VoltageRampSpeed", 0.3) == ECA_NORMAL  # 18 V/s: 33 s to 600 V
    assert put_status(f"{P}0:0:2:VoltageSet", 600.0) == ECA_NORMAL
    assert put_status(f"{P}0:0:2:Control:setOn", 1) == ECA_NORMAL
    with arrived:
        assert arrived.wait_for(lambda: steps and abs(steps[-1][0] - 600.0) < 1.0, timeout=30)
    monitor.clear_callbacks()
    sim.call(observer.close())

    def ramp(values: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(v, round(t, 4)) for v, t in values if 5.0 < v < 595.0]

    assert len(ramp(steps)) >= 3, steps
    assert [v for v, _ in ramp(steps)] == [v for v, _ in ramp(pushed)], "a step was lost"
    assert ramp(steps) == ramp(pushed), "time stamps must be the iCS's own"
    assert epics.caget(f"{P}0:0:2:Control:setOn", as_string=True, use_monitor=False) == "on"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        (f"{P}0:2:1:VoltageSet", 501.0, "above the limit"),  # 500 V module
        (f"{P}0:2:1:VoltageSet", -1.0, "below the limit"),
        (f"{P}0:2:1:DelayedTripTime", 5000, "above the limit"),
        (f"{P}0:2:1:VoltageSet", "lots", "not a float"),
    ],
)
def test_refused_writes_fail_and_send_nothing(
    sim: SimThread, bridge: BridgeProcess, name: str, value: object, reason: str
) -> None:
    before = sim.set_items()
    assert put_status(name, value) != ECA_NORMAL
    bridge.wait_for_log(reason)
    assert sim.set_items() == before


NAN, HUGE = float("nan"), 1e308


@pytest.mark.parametrize(
    ("name", "value", "ftype", "reason"),
    [
        ("Control:setEmergency", NAN, dbr.DOUBLE, "not a whole number"),
        ("DelayedTripAction", NAN, dbr.DOUBLE, "not a whole number"),
        ("DelayedTripAction", -HUGE, dbr.DOUBLE, "no state index"),
        ("Control:setOn", NAN, dbr.DOUBLE, "not a whole number"),
        ("Control:setOn", 0.5, dbr.DOUBLE, "not a whole number"),
        ("Control:setOn", HUGE, dbr.DOUBLE, "no state index"),
        ("Control:setOn", 2, dbr.SHORT, "no state index"),
        ("Control:setOn", "maybe", dbr.STRING, "none of"),
        ("VoltageSet", "", dbr.STRING, "empty text"),
        ("VoltageSet", NAN, dbr.DOUBLE, "not a float"),
        ("VoltageSet", float("inf"), dbr.FLOAT, "not a float"),
        ("DelayedTripTime", 10.5, dbr.DOUBLE, "not a whole number"),
        ("DelayedTripTime", HUGE, dbr.DOUBLE, "not a int"),
    ],
)
def test_puts_of_any_type_are_checked_as_the_items_own(
    sim: SimThread, bridge: BridgeProcess, name: str, value: object, ftype: int, reason: str
) -> None:
    before = sim.set_items()
    assert put_status(f"{P}0:2:8:{name}", value, ftype=ftype) != ECA_NORMAL
    bridge.wait_for_log(rf"0:2:8:{name} .* refused: .*{reason}")
    assert sim.set_items() == before


@pytest.mark.parametrize(
    ("name", "value", "ftype", "sent"),
    [
        ("Control:setOn", 0.0, dbr.DOUBLE, "0"),  # switching off stays possible in any type
        ("Control:setOn", "0", dbr.STRING, "0"),
        ("Control:setOn", "off", dbr.STRING, "0"),
        ("Control:setOn", 0, dbr.CHAR, "0"),
        ("Control:setEmergency", 1.0, dbr.FLOAT, "1"),
        ("VoltageSet", 5e-324, dbr.DOUBLE, "0"),  # a plain, short number
        ("VoltageSet", " 12.5 ", dbr.STRING, "12.5"),
        ("DelayedTripTime", 250.0, dbr.DOUBLE, "250"),
    ],
)
def test_puts_of_any_type_that_fit_go_out_in_the_items_own_form(
    sim: SimThread, bridge: BridgeProcess, name: str, value: object, ftype: int, sent: str
) -> None:
    assert put_status(f"{P}0:2:9:{name}", value, ftype=ftype) == ECA_NORMAL
    assert sim.set_items()[-1].value == sent


def test_a_write_the_ics_does_not_confirm_is_unconfirmed_and_a_late_application_told(
    sim: SimThread, bridge: BridgeProcess
) -> None:
    late = epics.caget(f"{P}Bridge:LateWrites", use_monitor=False)
    sim.call(lambda: setattr(sim.sim.faults, "reply_delay", 4.0))  # applies it after 4 s
    try:
        with pytest.raises(ErrorResponseReceived, match="unconfirmed: the iCS may still apply"):
            ca_write(f"{P}0:2:2:VoltageSet", [42.0], notify=True, timeout=10, repeater=False)
        bridge.wait_for_log(r"0:2:2:VoltageSet .* -> 42.0 unconfirmed: the iCS may still apply")
    finally:
        sim.call(lambda: setattr(sim.sim.faults, "reply_delay", 0.0))
    bridge.wait_for_log(
        r"0:2:2:VoltageSet .* 42.0, reported unconfirmed, applied late: .* 42.0", 20
    )
    assert read_until(f"{P}Bridge:LateWrites", late + 1) == late + 1
    assert epics.caget(f"{P}0:2:2:VoltageSet", use_monitor=False) == 42.0


def test_read_only_items_refuse_writes(sim: SimThread, bridge: BridgeProcess) -> None:
    before = sim.set_items()
    pv = epics.PV(f"{P}0:2:1:VoltageMeasure")
    assert pv.wait_for_connection(5)
    assert not pv.write_access
    assert put_status(f"{P}0:2:1:VoltageMeasure", 5.0) != ECA_NORMAL
    assert sim.set_items() == before


def test_a_trip_shows_in_the_on_off_pv(sim: SimThread, bridge: BridgeProcess) -> None:
    channel = f"{P}0:0:5:"
    assert put_status(channel + "CurrentSet", 5e-6) == ECA_NORMAL
    assert put_status(channel + "DelayedTripAction", 2) == ECA_NORMAL
    assert put_status(channel + "VoltageSet", 600.0) == ECA_NORMAL
    assert put_status(channel + "Control:setOn", 1) == ECA_NORMAL
    switch = epics.PV(channel + "Control:setOn", auto_monitor=True)
    assert switch.wait_for_connection(5)
    state = {
        item: ItemKey(0, 0, 5, item)
        for item in (
            "Control.on",
            "Status.voltageMeasure",
            "Status.currentMeasure",
            "Error.currentTrip",
        )
    }
    assert until(lambda: switch.get(as_string=True) == "off"), (
        {item: sim_value(sim, key) for item, key in state.items()},
        read(channel + "Control:setOn"),
        switch.get(as_string=True),
        [line for line in bridge.log if "0:0:5" in line],
    )
    assert epics.caget(channel + "ErrorTrip", as_string=True, use_monitor=False) == "latched"
    severities = {
        suffix: epics.caget(f"{channel}{suffix}.SEVR", as_string=True, use_monitor=False)
        for suffix in ("ErrorTrip", "isTrip", "RunningState", "EventTrip", "EventEndOfRamp")
    }
    assert severities == {
        "ErrorTrip": "MAJOR",
        "isTrip": "MAJOR",
        "RunningState": "MAJOR",
        "EventTrip": "MINOR",
        "EventEndOfRamp": "NO_ALARM",
    }


SAMPLE = [
    f"{P}0:0:1:VoltageMeasure",
    f"{P}0:0:1:VoltageSet",
    f"{P}0:0:1:Control:setOn",
    f"{P}0:0:1:RunningState",
    f"{P}0:0:1:DelayedTripTime",
    f"{P}0:1000:PowerOn",
    f"{P}Protocols",
]
"""One PV of every kind: ai, ao, bo, mbbi, longout, crate bo, long string."""


def alarms(names: list[str]) -> set[tuple[str, str]]:
    """The current (STAT, SEVR) of every PV, read from the server."""
    return {
        (
            epics.caget(f"{name}.STAT", as_string=True, use_monitor=False),
            epics.caget(f"{name}.SEVR", as_string=True, use_monitor=False),
        )
        for name in names
    }


def link_faults_then_recovery(sim: SimThread, bridge: BridgeProcess, fault: str) -> float:
    """Cut the link, see every PV go INVALID/COMM and come back; return how long it took.

    The simulator stays silent throughout, so a dropped link cannot come back at once.
    """
    before = sim.set_items()
    started = time.monotonic()
    sim.call(lambda: setattr(sim.sim.faults, "silent", True))  # no new session either
    if fault == "drop":
        sim.call(sim.sim.faults.drop_all)
    assert until(lambda: alarms(SAMPLE) == {("COMM", "INVALID")}, timeout=10)
    took = time.monotonic() - started
    values = {name: epics.caget(name, as_string=True, use_monitor=False) for name in SAMPLE}
    assert None not in values.values(), "values must be kept"
    assert put_status(f"{P}0:0:1:VoltageSet", 77.0) != ECA_NORMAL
    bridge.wait_for_log(r"VoltageSet .* failed: iCS link .* is (lost|connecting)")
    assert alarms([f"{P}0:0:1:VoltageSet"]) == {("COMM", "INVALID")}
    unchanged = {name: epics.caget(name, as_string=True, use_monitor=False) for name in SAMPLE}
    assert unchanged == values, "values must stay as they were while the link is down"
    sim.call(lambda: setattr(sim.sim.faults, "silent", False))
    assert until(lambda: ("COMM", "INVALID") not in alarms(SAMPLE), timeout=20)
    assert sim.set_items() == before, "the bridge wrote something on its own"
    return took


def test_a_dropped_link_turns_every_pv_invalid_within_2_s(
    sim: SimThread, bridge: BridgeProcess
) -> None:
    assert link_faults_then_recovery(sim, bridge, "drop") < 2.0


def test_a_silent_link_turns_every_pv_invalid_within_3_heartbeats(
    sim: SimThread, bridge: BridgeProcess
) -> None:
    assert link_faults_then_recovery(sim, bridge, "silence") < 3 * HEARTBEAT + 1.0


def samples(mapping: Mapping) -> list[ItemEntry]:
    """One enabled item of every (level, record type, unit), negative modules included."""
    chosen: dict[tuple[object, ...], ItemEntry] = {}
    for entry in mapping.items:
        negative = entry.address == 1  # the -3 kV module of the default topology
        kind = (entry.key.path.level, record_type(entry), entry.unit, negative)
        chosen.setdefault(kind, entry)
    return list(chosen.values())


@pytest.fixture(scope="module")
def soft_ioc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftIoc]:
    """A real soft IOC with the templates and the substitutions of the same mapping."""
    folder = tmp_path_factory.mktemp("db")
    write_templates(folder / "templates")
    file = folder / "default.substitutions"
    file.write_text(substitutions(document.load(MAPPING)), "utf-8")
    ioc = SoftIoc(file, folder / "templates")
    yield ioc
    ioc.stop()


FIELDS = {
    "ai": ("EGU", "PREC", "HOPR", "LOPR"),
    "ao": ("EGU", "PREC", "HOPR", "LOPR", "DRVH", "DRVL"),
    "longin": ("EGU", "HOPR", "LOPR"),
    "longout": ("EGU", "HOPR", "LOPR", "DRVH", "DRVL"),
}


def test_the_bridge_and_a_soft_ioc_of_the_same_mapping_agree(
    bridge: BridgeProcess, soft_ioc: SoftIoc
) -> None:
    sampled = samples(document.load(MAPPING))
    assert len({record_type(entry) for entry in sampled}) >= 8
    for entry in sampled:
        kind = epics.caget(f"{entry.pv}.RTYP", as_string=True, use_monitor=False)
        assert kind == soft_ioc.field(f"{entry.pv}.RTYP") == record_type(entry), entry.pv
        for field in FIELDS.get(kind, ()):
            ours = epics.caget(f"{entry.pv}.{field}", as_string=field == "EGU", use_monitor=False)
            theirs = soft_ioc.field(f"{entry.pv}.{field}")
            if field == "EGU":
                assert ours == theirs, f"{entry.pv}.{field}: {ours!r} != {theirs!r}"
            else:
                assert float(ours) == pytest.approx(float(theirs)), f"{entry.pv}.{field}"
