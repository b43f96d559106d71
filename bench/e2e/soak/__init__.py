"""The chaos soak (run bench/soak.py): the bridge against a simulated iCS whose link drops
every minute, with clients that come and go, confirmed writes from both faces, memory and
log lines watched throughout.

The session and writer processes run as `python -m e2e.soak.<module>` with `bench/` on
their path (`module_command`), so they import the bench's modules as the soak itself does.
"""

from __future__ import annotations

import os

from ..children import ROOT, child_env, python_command

BENCH = ROOT / "bench"


def module_command(module: str) -> list[str]:
    """This Python running one of the soak's modules, e.g. `ca_sessions`."""
    return python_command("-m", f"e2e.soak.{module}")


def module_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a soak module's process: `bench/` and the checkout on its path."""
    env = child_env(extra)
    env["PYTHONPATH"] = os.pathsep.join((str(BENCH), env["PYTHONPATH"]))
    return env
