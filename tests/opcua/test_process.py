"""The OPC UA server runs in a process of its own, which lives and ends with the bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from asyncua import Client

from icsbridge.ics.sim.topology import Topology

from conftest import BridgeProcess, SimThread, free_port

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
VOLTAGE = "0.0.0.Status.voltageMeasure"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(Topology.default())
    yield thread
    thread.stop()


def start_bridge(sim: SimThread, state: Path) -> tuple[BridgeProcess, str]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"
    bridge = BridgeProcess(
        sim.url,
        "--mapping",
        str(MAPPING),
        "--opcua-endpoint",
        endpoint,
        "--opcua-state",
        str(state),
    )
    bridge.wait_for_log(r"serving \d+ variables over OPC UA")
    return bridge, endpoint


def opcua_child(bridge: BridgeProcess) -> psutil.Process:
    (child,) = [
        process
        for process in psutil.Process(bridge.process.pid).children()
        if "icsbridge.opcua.process" in " ".join(process.cmdline())
    ]
    return child


async def test_a_lost_opcua_process_ends_the_bridge_with_the_reason(
    sim: SimThread, tmp_path: Path
) -> None:
    bridge, endpoint = start_bridge(sim, tmp_path)
    try:
        async with Client(endpoint) as client:
            node = client.get_node(f"ns=2;s={VOLTAGE}")
            assert isinstance(await node.read_value(), float)
        opcua_child(bridge).kill()
        bridge.wait_for_log(r"the OPC UA process ended \(exit code -9\)")
        assert bridge.process.wait(20) != 0
    finally:
        bridge.stop()


def test_the_opcua_process_ends_with_the_bridge(sim: SimThread, tmp_path: Path) -> None:
    bridge, _ = start_bridge(sim, tmp_path)
    child = opcua_child(bridge)
    bridge.stop()
    gone, alive = psutil.wait_procs([child], timeout=15)
    assert gone and not alive
