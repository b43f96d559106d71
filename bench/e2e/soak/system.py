"""The soak's processes: simulated iCS, bridge, session processes and writers.

Everything runs on 127.0.0.1 on free ports, Channel Access pinned there (e2e.network). The
bridge's standard error goes to the soak's `BridgeLog`; every child is stopped at the end
(and killed at exit whatever happens, e2e.children).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from icsbridge.mapping.document import load

from ..children import Child, ChildError, child_env, python_command
from ..items import Items, discover, key_text, start_simulator, topology_for
from ..network import BeaconSink, epics_env, free_port
from ..systems import SERVING
from . import module_command, module_env
from .bridge_log import BridgeLog

USER, PASSWORD = "soak", "soak-operator"
"""The OPC UA operator the writers log in as."""
START_TIMEOUT = 180.0
"""Seconds the simulator, discovery and the bridge may each take to start."""
SIMULATOR_ENV = {"PYTHONMALLOC": "malloc"}
"""The simulator allocates with the C library: with Python's own allocator each resync's
frames of 20k records left its arenas fragmented, 50 to 62 MiB over the first ~20
reconnects and flat after; with malloc it is flat from the start. It is not what the soak
measures, and its memory should only move if it leaks."""
SET_POINT = "Control.voltageSet"
"""The item the writers set, on every channel (even channels over CA, odd over OPC UA)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the soak runs: sizes, rates, timing of the bridge, the clients."""

    items: int
    churn: float
    heartbeat: float
    write_timeout: float
    ca_clients: int
    ca_processes: int
    ca_sizes: tuple[int, int]
    ca_lives: tuple[float, float]
    ca_keep_every: int
    ua_sessions: int
    ua_sizes: tuple[int, int]
    ua_lives: tuple[float, float]
    write_rate: float
    invalid_every: int
    seed: int


class System:
    """Every process of the soak, started in order by `start`, stopped by `stop`."""

    def __init__(self, plan: Plan, folder: Path, log: BridgeLog) -> None:
        self.plan = plan
        self.folder = folder
        self.log = log
        self.sink = BeaconSink()
        self.children: list[Child] = []
        self.ca_port = free_port()
        self.env = epics_env(self.ca_port, self.sink.port)
        self.endpoint = f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"
        self.ca: list[Child] = []
        self.pids: dict[str, int] = {}

    def _keep(self, child: Child, name: str) -> Child:
        self.children.append(child)
        self.pids[name] = child.process.pid
        return child

    def start(self) -> None:
        """Simulator, discovery, bridge, then the clients."""
        modules, channels = topology_for(self.plan.items)
        sim, url = start_simulator(modules, channels, None, START_TIMEOUT, SIMULATOR_ENV)
        self.sim = self._keep(sim, "simulator")
        mapping = self.folder / "mapping.yaml"
        discover(url, mapping, child_env({}), START_TIMEOUT)
        self.items = Items.of(mapping)
        self.prefix = load(mapping).naming.effective_prefix
        self.bridge = self._keep(self._bridge(url, mapping), "bridge")
        for protocol in SERVING:
            self.bridge.wait_for(protocol, START_TIMEOUT)
        self.pids["bridge OPC UA"] = opcua_child(self.bridge.process.pid)
        self.sim.ask(f"churn {self.plan.churn}", 10)
        self._clients()

    def _users(self) -> Path:
        path = self.folder / "users.yaml"
        command = python_command("-m", "icsbridge", "user", "add", str(path), USER)
        done = subprocess.run(
            [*command, "--role", "operator"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=child_env({}),
        )
        if done.returncode != 0:
            raise ChildError(f"icsbridge user add: {done.stderr[-500:]}")
        return path

    def _bridge(self, url: str, mapping: Path) -> Child:
        command = python_command(
            "-m",
            "icsbridge",
            "serve",
            "--ics",
            url,
            "--mapping",
            str(mapping),
            "--heartbeat",
            f"{self.plan.heartbeat:g}",
            "--write-timeout",
            f"{self.plan.write_timeout:g}",
            "--opcua-endpoint",
            self.endpoint,
            "--users",
            str(self._users()),
            "--opcua-state",
            str(self.folder / "opcua"),
        )
        env = child_env(self.env)
        return Child("bridge", command, env, patterns=SERVING, on_stderr=self.log.line)

    def _clients(self) -> None:
        """Session processes on the readable items (a write-only one has no value to lose),
        and the writers."""
        plan = self.plan
        readable = [entry for entry in self.items.entries if entry.access.readable]
        names = self.folder / "pvs.txt"
        names.write_text("".join(entry.pv + "\n" for entry in readable), "utf-8")
        ids = self.folder / "nodeids.txt"
        ids.write_text("".join(entry.nodeid + "\n" for entry in readable), "utf-8")
        share = -(-plan.ca_clients // plan.ca_processes)
        for index in range(plan.ca_processes):
            count = min(share, plan.ca_clients - index * share)
            name = f"CA sessions {index + 1}"
            child = self._keep(
                Child(name, module_command("ca_sessions"), module_env(self.env), stdin=True), name
            )
            child.reply(30)
            link = f"{self.prefix}Bridge:LinkState" if index == 0 else "-"
            sizes, lives = " ".join(map(str, plan.ca_sizes)), " ".join(map(str, plan.ca_lives))
            seed, keep = plan.seed + index, plan.ca_keep_every
            child.ask(f"start {count} {sizes} {lives} {names} {seed} {link} {keep}", 30)
            self.ca.append(child)
        command = [*module_command("ua_sessions"), self.endpoint, self.items.namespace]
        self.ua = self._keep(
            Child("UA sessions", command, module_env({}), stdin=True), "UA sessions"
        )
        self.ua.reply(30)
        sizes, lives = " ".join(map(str, plan.ua_sizes)), " ".join(map(str, plan.ua_lives))
        self.ua.ask(f"start {plan.ua_sessions} {sizes} {lives} {ids} {plan.seed + 100}", 30)
        command = [
            *module_command("writers"),
            str(self.ca_port),
            self.endpoint,
            USER,
            PASSWORD,
            str(self._targets()),
        ]
        self.writers = self._keep(
            Child("writers", command, module_env(self.env), stdin=True), "writers"
        )
        self.writers.reply(30)
        answer_timeout = plan.write_timeout + 10
        self.writers.ask(f"start {plan.write_rate} {plan.invalid_every} {answer_timeout}", 30)

    def _targets(self) -> Path:
        points = [e for e in self.items.entries if e.item == SET_POINT and e.channel is not None]
        faces: dict[str, object] = {"namespace": self.items.namespace}
        for face, parity, ident in (("CA", 0, "pv"), ("OPC UA", 1, "nodeid")):
            faces[face] = [
                {"name": getattr(e, ident), "key": key_text(e), "high": e.drive_high or 0.0}
                for e in points
                if (e.channel or 0) % 2 == parity
            ]
        path = self.folder / "targets.json"
        path.write_text(json.dumps(faces), "utf-8")
        return path

    @property
    def sessions(self) -> list[Child]:
        """The processes whose clients are judged at every fault."""
        return [*self.ca, self.ua]

    def dead(self) -> list[str]:
        """The children that ended on their own, with their exit status."""
        return [
            f"{c.name} exited {c.process.returncode}"
            for c in self.children
            if c.process.poll() is not None
        ]

    def stop(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(self.children):
            child.stop()
        self.sink.close()


def opcua_child(pid: int) -> int:
    """The bridge's OPC UA process (its child running icsbridge.opcua.process)."""
    for child in psutil.Process(pid).children(recursive=True):
        if "icsbridge.opcua.process" in " ".join(child.cmdline()):
            return int(child.pid)
    raise ChildError("the bridge has no OPC UA process")
