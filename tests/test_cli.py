"""The `icsbridge` commands as a user runs them: separate processes on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import free_port

ICSBRIDGE = [sys.executable, "-m", "icsbridge"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ICSBRIDGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for_line(stream: object, pattern: str) -> re.Match[str]:
    for line in stream:  # type: ignore[attr-defined]
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"the process ended without printing /{pattern}/")


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """`icsbridge sim` on a free port; its URL read from the line it logs."""
    process = _start("sim", "--port", "0", "--time-scale", "50")
    try:
        yield _wait_for_line(process.stderr, r"listening on (ws://\S+)").group(1)
    finally:
        _stop(process)


def _ics(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ICSBRIDGE, "ics", *args, "--ics", url], capture_output=True, text=True, timeout=60
    )


def test_ics_set_prints_the_confirmed_value_in_base_units(sim_url: str) -> None:
    done = _ics(sim_url, "set", "0", "0", "2", "Control.voltageSet", "0.25", "kV")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^0\.0\.2\.Control\.voltageSet\s+250\.0 V\s", done.stdout)


def test_ics_get_expands_wildcards(sim_url: str) -> None:
    done = _ics(sim_url, "get", "0", "0", "*", "Control.voltageSet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 8  # module 0 of the default topology has 8 channels
    assert all(line.startswith("0.0.") for line in lines)


def test_ics_set_of_a_read_only_item_fails_visibly(sim_url: str) -> None:
    done = _ics(sim_url, "set", "0", "0", "2", "Status.voltageMeasure", "5")
    assert done.returncode == 1
    assert "read-only" in done.stderr


def test_ics_set_with_a_wrong_password_says_so(sim_url: str) -> None:
    done = _ics(sim_url, "get", "-", "-", "-", "Status.heartBeat", "--password", "nope")
    assert done.returncode != 0
    assert "refused the login" in done.stderr


def test_ics_watch_prints_changes(sim_url: str) -> None:
    process = _start("ics", "watch", "-", "-", "-", "Status.heartBeat", "--ics", sim_url)
    try:
        counters = [
            int(_wait_for_line(process.stdout, r"^Status\.heartBeat\s+(\d+)").group(1))
            for _ in range(3)
        ]
    finally:
        _stop(process)
    assert counters == sorted(counters) and len(set(counters)) == 3


def test_serve_simulate_comes_up_ready() -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/icsbridge/"
    process = _start("serve", "--simulate", "--time-scale", "50", "--opcua-endpoint", endpoint)
    try:
        _wait_for_line(process.stderr, r"iCS link ws://\S+: ready")
        faces = {"Channel Access", "OPC UA"}
        while faces:
            faces.discard(_wait_for_line(process.stderr, r"over (Channel Access|OPC UA)").group(1))
    finally:
        _stop(process)


def test_sim_takes_its_users_from_the_command_line() -> None:
    process = _start("sim", "--port", "0", "--user", "operator:s3cret")
    try:
        url = _wait_for_line(process.stderr, r"listening on (ws://\S+)").group(1)
        refused = _ics(url, "get", "-", "-", "-", "Status.heartBeat")
        accepted = _ics(
            url,
            "get",
            "-",
            "-",
            "-",
            "Status.heartBeat",
            "--user",
            "operator",
            "--password",
            "s3cret",
        )
    finally:
        _stop(process)
    assert refused.returncode != 0 and "refused the login" in refused.stderr
    assert accepted.returncode == 0 and accepted.stdout.startswith("Status.heartBeat")
