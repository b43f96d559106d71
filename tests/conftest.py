"""Fixtures shared by the suite: a simulated iCS on 127.0.0.1 and clients of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient
from icsbridge.ics.protocol import Command, Packet, Request
from icsbridge.ics.sim.server import Simulator
from icsbridge.ics.sim.topology import Topology
from icsbridge.model import ItemKey

TIME_SCALE = 50.0
"""Simulated seconds per wall-clock second in tests: a 1 s cycle takes 20 ms."""


@pytest.fixture
async def no_task_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done()]
    leaked = [t for t in leaked if t is not asyncio.current_task()]
    assert not leaked, f"tasks leaked: {leaked}"


@pytest.fixture
async def sim(no_task_leaks: None) -> AsyncIterator[Simulator]:
    """The default topology, served on a free port, running fast."""
    async with Simulator(Topology.default(), time_scale=TIME_SCALE).serve("127.0.0.1", 0) as s:
        yield s


def make_client(sim: Simulator, **options: object) -> IcsClient:
    """A client of the simulator with test-sized timing (heartbeat 0.5 s, quick reconnect)."""
    settings: dict[str, object] = {"heartbeat": 0.5, "write_timeout": 5.0, "reconnect": (0.02, 0.2)}
    settings.update(options)
    return IcsClient(sim.url, "admin", "password", **settings)  # type: ignore[arg-type]


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[IcsClient]:
    """A logged-in client of `sim`, subscribed to nothing yet."""
    async with make_client(sim) as c:
        yield c


async def wait_until(
    client: IcsClient, key: ItemKey, predicate: Callable[[object], bool], timeout: float = 10.0
) -> Update:
    """Wait for the first cached value of `key` that satisfies `predicate`; return it."""
    current = client.cache.get(key)
    if current is not None and predicate(current.value):
        return current
    found: asyncio.Future[Update] = asyncio.get_running_loop().create_future()

    def check(updates: object) -> None:
        for update in updates:  # type: ignore[attr-defined]
            if update.key == key and predicate(update.value) and not found.done():
                found.set_result(update)

    stop = client.cache.subscribe(check)
    try:
        async with asyncio.timeout(timeout):
            return await found
    finally:
        stop()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition that no event announces, checking it every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


# --- the bridge as a separate process, the simulator in a thread of this one ---------------


def free_port() -> int:
    """A port that is free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


CA_PORT = free_port()
BEACON_SINK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
BEACON_SINK.bind(("127.0.0.1", 0))
"""Where the servers of the suite send their beacons (no caRepeater runs here)."""
EPICS_ENV = {
    "EPICS_CA_ADDR_LIST": "127.0.0.1",
    "EPICS_CA_AUTO_ADDR_LIST": "NO",
    "EPICS_CA_SERVER_PORT": str(CA_PORT),
    "EPICS_CAS_SERVER_PORT": str(CA_PORT),
    "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
    "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
    "EPICS_CAS_BEACON_PORT": str(BEACON_SINK.getsockname()[1]),
    "EPICS_CA_REPEATER_PORT": str(free_port()),
    "EPICS_CA_CONN_TMO": "2.0",
}
"""All Channel Access traffic of the suite stays on 127.0.0.1, on ports no one else uses."""
os.environ.update(EPICS_ENV)


class SimThread:
    """A simulator serving from its own event loop in a thread, for out-of-process clients."""

    def __init__(self, topology: Topology, time_scale: float = TIME_SCALE) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = Simulator(topology, time_scale=time_scale)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.sim.start("127.0.0.1", 0))

    @property
    def url(self) -> str:
        return self.sim.url

    def call(self, work: Coroutine[Any, Any, Any] | Callable[[], Any]) -> Any:
        """Run a coroutine or a function on the simulator's loop and return its result."""

        async def run() -> Any:
            return await work if asyncio.iscoroutine(work) else work()  # type: ignore[operator]

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def set_items(self) -> list[Packet]:
        """Every setItem packet the simulator has received so far."""
        return [
            packet
            for message in list(self.sim.received)
            if isinstance(message, Request)
            for packet in message.packets
            if packet.command is Command.SET_ITEM
        ]

    def stop(self) -> None:
        self.call(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class BridgeProcess:
    """`icsbridge serve` as a user starts it, against a simulator, on the suite's CA port."""

    def __init__(self, url: str, *args: str, env: dict[str, str] | None = None) -> None:
        opcua = () if any(arg.startswith("--opcua") for arg in args) else ("--no-opcua",)
        command = [sys.executable, "-m", "icsbridge", "serve", "--ics", url, *opcua, *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **EPICS_ENV, **(env or {})},
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.output: queue.Queue[str] = queue.Queue()
        """Lines the bridge printed, read as they come so it never blocks on a full pipe."""
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_output, daemon=True).start()
        self.wait_for_log(r"serving \d+ PVs over Channel Access")

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self._lines.put(line)

    def _pump_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.put(line)

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """The first log line from now on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                log = "".join(self.log)
                raise AssertionError(f"no log line /{pattern}/; log:\n{log}") from None
            found = re.search(pattern, line)
            if found:
                return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


COLOUR = re.compile(r"\x1b\[[0-9;]*m")
PROMPTS = re.compile(r"^(epics> )+")
"""ANSI colours and iocsh prompts, stripped from the IOC's output lines."""

STARTUP = """
import sys
from epicscorelibs import ioc
ioc.iocshRegisterCommon()
assert not ioc.dbLoadDatabase(b"base.dbd", ioc.DEFAULT_DBD_PATH.encode(), None)
assert not ioc.registerRecordDeviceDriver(ioc.pdbbase)
ioc.ioc('dbLoadTemplate "' + sys.argv[1] + '"')
ioc.ioc("iocInit")
ioc.Com.errlogFlush()
ioc.Com.iocsh(None)
"""
"""A soft IOC: base records, the substitutions file of argv[1], then iocsh on stdin."""


class SoftIoc:
    """A soft IOC of epicscorelibs as a subprocess, driven through its iocsh."""

    def __init__(self, substitutions: Path, templates: Path) -> None:
        port = str(free_port())
        env = {
            **os.environ,
            "EPICS_CA_SERVER_PORT": port,
            "EPICS_CAS_SERVER_PORT": port,
            "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_DB_INCLUDE_PATH": str(templates),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", STARTUP, str(substitutions)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._count = 0
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self.startup = self.run("")
        except AssertionError:
            self.stop()
            raise

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(PROMPTS.sub("", COLOUR.sub("", line.rstrip("\n"))))

    def run(self, command: str, timeout: float = 15.0) -> list[str]:
        """The output lines of an iocsh command (the empty command: everything so far)."""
        assert self.process.stdin is not None
        self._count += 1
        marker = f"end-of-command-{self._count}"
        self.process.stdin.write(f"{command}\necho {marker}\n")
        self.process.stdin.flush()
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no answer to {command!r}; output: {lines}") from None
            if line == marker:
                return lines
            lines.append(line)

    def field(self, name: str) -> str:
        """A record field's value as `dbgf` prints it, without type, hex form and quotes."""
        (line,) = self.run(f"dbgf {name}")
        value = re.sub(r" = 0x[0-9a-f]+$", "", line.split(":", 1)[1].strip()).strip('"')
        raw = value.encode("latin-1", "backslashreplace").decode("unicode_escape")
        return raw.encode("latin-1").decode("utf-8")  # dbgf escapes the bytes of UTF-8

    def stop(self) -> None:
        """Leave iocsh; kill the IOC if it does not end."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write("exit\n")
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
