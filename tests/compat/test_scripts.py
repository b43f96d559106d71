"""Script management through script frames, answered by the simulated iCS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simulated import connected, simulator

from icsbridge.compat.icsClientPython3 import IcsError, connection


@pytest.fixture
def conn() -> Iterator[connection]:
    with simulator() as sim, connected(sim) as made:
        yield made


def test_scripts_are_listed_started_and_stopped(conn: connection) -> None:
    assert [(s["name"], s["status"]) for s in conn.availableScripts()] == [
        ("logger.py", "stopped"),
        ("ramp.py", "stopped"),
    ]
    started = conn.startScript("logger.py")
    assert (started["e"], started["d"], started["n"]) == ("scriptStatus", "running", "logger.py")
    assert started["i"]
    assert [s["name"] for s in conn.runningScripts()] == ["logger.py"]
    assert conn.scriptStatus(script_id=started["i"])["d"] == "running"
    assert conn.stopScript("logger.py")["d"] == "stopped"
    assert conn.runningScripts() == []


def test_a_script_is_killed_and_talked_to(conn: connection) -> None:
    script_id = conn.startScript("ramp.py")["i"]
    answer = conn.scriptCommand({"ramp": [0, 100]}, script_id=script_id)
    assert (answer["e"], answer["d"]) == ("scriptData", {"ramp": [0, 100]})
    assert conn.killScript("ramp.py", script_id)["d"] == "stopped"


def test_autostart_is_switched(conn: connection) -> None:
    assert conn.autoScript("ramp.py", True) == ["ramp.py"]
    assert {s["name"]: s["autostart"] for s in conn.availableScripts()} == {
        "logger.py": "false",
        "ramp.py": "true",
    }
    assert conn.autoScript("ramp.py", False) == []


def test_an_unknown_script_raises(conn: connection) -> None:
    with pytest.raises(IcsError, match=r"no script 'missing\.py'"):
        conn.startScript("missing.py")
