"""The bench's clients as child processes: libca (ca_client.py), node-opcua (ua_client.mjs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .children import ROOT, Child, ChildError, python_command

HERE = Path(__file__).resolve().parent
HARNESS = ROOT / "tests" / "opcua" / "node"
"""The test suite's node-opcua install, which the OPC UA client borrows."""


def ensure_node_opcua(timeout: float = 300.0) -> str | None:
    """Install node-opcua for the harness if it is missing; the reason it cannot be, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not on PATH"
    if (HARNESS / "node_modules" / "node-opcua").is_dir():
        return None
    done = subprocess.run(
        ["npm", "ci", "--prefix", str(HARNESS)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return None if done.returncode == 0 else f"npm ci failed: {done.stderr[-500:]}"


def start_ca(env: dict[str, str], timeout: float = 30.0) -> Child:
    """The libca client, ready for commands."""
    child = Child("CA client", python_command(str(HERE / "ca_client.py")), env, stdin=True)
    child.reply(timeout)
    return child


def start_ua(endpoint: str, timeout: float = 60.0) -> Child:
    """The node-opcua client, connected with a session to `endpoint`."""
    node = shutil.which("node")
    if node is None:
        raise ChildError("node is not on PATH")
    command = [node, str(HERE / "ua_client.mjs"), endpoint]
    child = Child("UA client", command, dict(os.environ), stdin=True)
    answer = child.reply(timeout)
    if not answer.get("ready"):
        child.stop()
        raise ChildError(f"UA client: {answer}")
    return child
