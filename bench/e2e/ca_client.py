"""A Channel Access client for the bench: libca through ctypes, one command per stdin line.

    python bench/e2e/ca_client.py

pyepics' monitor path costs tens of microseconds of Python per event, so this client calls
libca (the one pyepics loads) with its own ctypes callbacks: per event it only reads the
DBR_TIME stamp, so a client can take far more events per second than the servers deliver.
Every command is answered with one JSON line:

- `connect FILE TIMEOUT`: create a channel for every name in FILE (one a line), wait until
  all are connected -> `connected`, `of`, `seconds` (to the last connection), `circuits`.
- `subscribe TIMEOUT`: DBR_TIME of each channel's native type, DBE_VALUE|DBE_ALARM; wait until
  every channel sent its initial value -> `subscribed`, `initial`, `seconds`.
- `watch NAME...`: remember the newest monitored value of these (double) channels.
- `track FILE`: only events of the channels named in FILE count for `quiet`.
- `window`: start counting afresh -> `time`.
- `report`: events since `window`, their latency (arrival - DBR_TIME stamp, ms) percentiles.
- `quiet SECONDS TIMEOUT`: wait until no tracked event came for SECONDS -> `last` (arrival).
- `check`: read every watched channel now -> `equal` (monitored value == read value).
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time
from pathlib import Path

from epics import ca

EPICS_EPOCH = 631_152_000
"""POSIX time of the EPICS epoch, 1990-01-01."""
ECA_NORMAL = 1
CS_CONN = 2
CA_OP_CONN_UP = 6
DBE_VALUE, DBE_ALARM = 1, 4
DBR_DOUBLE, DBR_TIME_DOUBLE = 6, 20
CIRCUIT_CHANNELS = 50_000
"""Most channels on one circuit: caproto 1.3 numbers a circuit's channels with 16 bits and
spins forever once all 65,536 are taken, so channels are spread over circuits (one per
CA priority), as a client connecting that many PVs from one server must."""
DBR_TIME_OFFSET = 14
"""DBR_TIME_<type> is the field type plus this."""
VALUE_OFFSET = 16
"""Bytes from the start of a dbr_time_double to its value."""


class ConnectionArgs(ctypes.Structure):
    _fields_ = (("chid", ctypes.c_void_p), ("op", ctypes.c_long))


class EventArgs(ctypes.Structure):
    _fields_ = (
        ("usr", ctypes.c_void_p),
        ("chid", ctypes.c_void_p),
        ("type", ctypes.c_long),
        ("count", ctypes.c_long),
        ("dbr", ctypes.c_void_p),
        ("status", ctypes.c_int),
    )


class Stamp(ctypes.Structure):
    """The head every DBR_TIME_* shares: status, severity, time stamp."""

    _fields_ = (
        ("status", ctypes.c_short),
        ("severity", ctypes.c_short),
        ("secs", ctypes.c_uint32),
        ("nsec", ctypes.c_uint32),
    )


_thread = threading.local()


def keep_thread_state() -> None:
    """Keep a Python thread state on this (libca) thread for good.

    Without it ctypes makes and frees a thread state for every callback from a thread Python
    did not start, which costs ~9 µs (mmap/munmap of its frame stack): a ceiling of ~110k
    events/s at a full core. With it an event costs ~1.4 µs.
    """
    _thread.kept = True
    ctypes.pythonapi.PyGILState_Ensure()


CONNECT = ctypes.CFUNCTYPE(None, ConnectionArgs)
EVENT = ctypes.CFUNCTYPE(None, EventArgs)


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of latencies in seconds, in milliseconds."""
    if not latencies:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(latencies)
    last = len(ordered) - 1
    return {
        "p50": ordered[last // 2] * 1e3,
        "p99": ordered[int(last * 0.99)] * 1e3,
        "max": ordered[last] * 1e3,
    }


def _libca() -> ctypes.CDLL:
    lib = ca.initialize_libca()
    lib.ca_create_channel.argtypes = (
        ctypes.c_char_p,
        CONNECT,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_void_p),
    )
    lib.ca_create_subscription.argtypes = (
        ctypes.c_long,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_long,
        EVENT,
        ctypes.c_void_p,
        ctypes.c_void_p,
    )
    lib.ca_array_get.argtypes = (ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p)
    lib.ca_state.argtypes = (ctypes.c_void_p,)
    lib.ca_clear_channel.argtypes = (ctypes.c_void_p,)
    lib.ca_field_type.argtypes = (ctypes.c_void_p,)
    lib.ca_field_type.restype = ctypes.c_short
    lib.ca_element_count.argtypes = (ctypes.c_void_p,)
    lib.ca_element_count.restype = ctypes.c_ulong
    return lib  # type: ignore[no-any-return]


class Client:
    """Channels, their subscriptions and the tally of what arrived."""

    def __init__(self) -> None:
        self.lib = _libca()
        self.names: list[str] = []
        self.chids: list[ctypes.c_void_p | None] = []
        self.connected = 0
        self.connected_at = 0.0
        self.seen = bytearray()
        self.tracked = bytearray()
        self.initial = 0
        self.latencies: list[float] = []
        self.start = time.time()
        self.last = 0.0
        self.watched: dict[int, str] = {}
        self.newest: dict[int, float] = {}
        self._on_connect = CONNECT(self._connection)
        self._on_event = EVENT(self._event)

    def _connection(self, args: ConnectionArgs) -> None:
        if args.op == CA_OP_CONN_UP:
            self.connected += 1
            self.connected_at = time.time()

    def _event(self, args: EventArgs) -> None:
        if not getattr(_thread, "kept", False):
            keep_thread_state()
        if args.status != ECA_NORMAL:
            return
        now = time.time()
        index = args.usr - 1
        stamp = Stamp.from_address(args.dbr)
        self.latencies.append(now - EPICS_EPOCH - stamp.secs - stamp.nsec * 1e-9)
        if self.tracked[index]:
            self.last = now
        if not self.seen[index]:
            self.seen[index] = 1
            self.initial += 1
        if index in self.watched and args.type == DBR_TIME_DOUBLE:
            self.newest[index] = ctypes.c_double.from_address(args.dbr + VALUE_OFFSET).value

    def connect(self, path: str, timeout: str) -> dict[str, object]:
        """Connect every named channel; clear those still unconnected at the timeout."""
        self.names = Path(path).read_text("utf-8").split()
        self.seen = bytearray(len(self.names))
        self.tracked = bytearray(b"\1" * len(self.names))
        circuits = -(-len(self.names) // CIRCUIT_CHANNELS)
        start = time.time()
        for index, name in enumerate(self.names):
            chid = ctypes.c_void_p()
            priority = index % circuits
            self.lib.ca_create_channel(
                name.encode(), self._on_connect, None, priority, ctypes.byref(chid)
            )
            self.chids.append(chid)
        self.lib.ca_flush_io()
        wait(lambda: self.connected >= len(self.names), float(timeout))
        for index, known in enumerate(self.chids):
            if known is not None and self.lib.ca_state(known) != CS_CONN:
                self.lib.ca_clear_channel(known)
                self.chids[index] = None
        self.lib.ca_flush_io()
        seconds = self.connected_at - start
        return {"connected": self.connected, "of": len(self.names), "seconds": seconds,
                "circuits": circuits}  # fmt: skip

    def subscribe(self, timeout: str) -> dict[str, object]:
        start = time.time()
        subscribed = 0
        for index, chid in enumerate(self.chids):
            if chid is None:
                continue
            kind = self.lib.ca_field_type(chid)
            status = self.lib.ca_create_subscription(
                kind + DBR_TIME_OFFSET,
                self.lib.ca_element_count(chid),
                chid,
                DBE_VALUE | DBE_ALARM,
                self._on_event,
                index + 1,
                None,
            )
            subscribed += status == ECA_NORMAL
        self.lib.ca_flush_io()
        wait(lambda: self.initial >= subscribed, float(timeout))
        seconds = time.time() - start
        return {"subscribed": subscribed, "initial": self.initial, "seconds": seconds}

    def watch(self, *names: str) -> dict[str, object]:
        where = {name: index for index, name in enumerate(self.names)}
        self.watched = {where[name]: name for name in names if name in where}
        return {"watched": len(self.watched)}

    def track(self, path: str) -> dict[str, object]:
        tracked = set(Path(path).read_text("utf-8").split())
        self.tracked = bytearray(name in tracked for name in self.names)
        return {"tracked": sum(self.tracked)}

    def check(self) -> dict[str, object]:
        """Read every watched channel and compare with its newest monitored value."""
        values = {index: ctypes.c_double() for index in self.watched}
        for index, value in values.items():
            self.lib.ca_array_get(DBR_DOUBLE, 1, self.chids[index], ctypes.byref(value))
        status = self.lib.ca_pend_io(ctypes.c_double(5.0))
        read = {self.watched[i]: value.value for i, value in values.items()}
        seen = {self.watched[i]: self.newest.get(i) for i in values}
        return {"equal": status == ECA_NORMAL and read == seen, "read": read, "monitored": seen}

    def report(self) -> dict[str, object]:
        """Events since `window`, their rate and latency."""
        latencies, end = self.latencies, time.time()
        self.latencies = []
        seconds = end - self.start
        answer: dict[str, object] = {"events": len(latencies), "seconds": seconds}
        return answer | {"rate": len(latencies) / seconds} | percentiles(latencies)

    def quiet(self, gap: float, timeout: float) -> dict[str, object]:
        """Wait until no event arrived for `gap` seconds; the arrival time of the last one."""
        wait(lambda: time.time() - self.last >= gap, timeout)
        return {"last": self.last, "quiet": time.time() - self.last >= gap}

    def run(self, line: str) -> dict[str, object]:
        command, *args = line.split()
        match command:
            case "connect":
                return self.connect(*args)
            case "subscribe":
                return self.subscribe(*args)
            case "watch":
                return self.watch(*args)
            case "track":
                return self.track(*args)
            case "check":
                return self.check()
            case "window":
                self.latencies, self.start = [], time.time()
                return {"time": self.start}
            case "report":
                return self.report()
            case "quiet":
                return self.quiet(float(args[0]), float(args[1]))
        raise ValueError(f"unknown command {command!r}")


def wait(done: object, timeout: float) -> None:
    """Poll `done()` until it is true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def main() -> None:
    client = Client()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = client.run(line)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
