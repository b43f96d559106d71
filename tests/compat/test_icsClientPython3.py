"""The module as scripts use it: under iseg's names, the manual's Example 004, process exit."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulated import simulator, until

from icsbridge import __version__
from icsbridge.compat import icsClientPython3, install_alias
from icsbridge.ics.protocol import Logout

from conftest import SimThread

EXAMPLE = Path(__file__).parents[2] / "examples" / "example004.py"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with simulator() as running:
        yield running


def test_the_version_is_icsbridges() -> None:
    assert icsClientPython3.getVersion() == __version__


def test_the_alias_makes_iseg_imports_work() -> None:
    try:
        assert install_alias() is icsClientPython3
        import icsClientPython3 as iseg  # type: ignore[import-not-found]

        assert iseg is icsClientPython3 and iseg.connect is icsClientPython3.connect
    finally:
        sys.modules.pop("icsClientPython3", None)


def test_example_004_prints_every_module_and_channel(sim: SimThread) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), sim.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    (line,) = sim.sim.topology.lines
    for module in line.modules:
        assert f"module 0.{module.address}\n" in out
        assert f"firmware {module.firmware_name} {module.firmware_release}\n" in out
        assert f"serial number {module.serial}\n" in out
    temperatures = [float(t) for t in re.findall(r"^  temperature (\S+)$", out, re.M)]
    assert len(temperatures) == len(line.modules) and all(0 < t < 85 for t in temperatures)
    channels = sum(module.channels for module in line.modules)
    assert len(re.findall(r"^  channel 0\.\d+\.\d+$", out, re.M)) == channels
    voltages = re.findall(r"^    Status\.voltageMeasure (-?[\d.e+-]+)$", out, re.M)
    assert len(voltages) == channels
    hv = channels - line.modules[-1].channels  # the last module is low voltage
    assert len(re.findall(r"^    Status\.currentTrip False$", out, re.M)) == hv
    currents = [float(c) for c in re.findall(r"^    Control\.currentSet (\S+)$", out, re.M)]
    assert len(currents) == channels and all(c > 0 for c in currents)


def test_a_script_under_another_name_logs_out_when_it_ends(sim: SimThread) -> None:
    script = f"""
import importlib
from icsbridge.compat import install_alias
install_alias("icsClientPython_3_for_iCS")
icsClient = importlib.import_module("icsClientPython_3_for_iCS")
connection = icsClient.connect("script", {sim.url!r}, "admin", "password")
print(type(connection) == icsClient.connection, connection.getStatusConnectionStatus())
"""
    before = len(sim.sim.received)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True Configured\n"
    until(lambda: any(isinstance(m, Logout) for m in sim.sim.received[before:]))
