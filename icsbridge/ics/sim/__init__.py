"""The simulated iCS: a sans-I/O model of crates, modules and channels behind a WebSocket server."""

from icsbridge.ics.sim.model import SimModel
from icsbridge.ics.sim.nodes import QUIET, Noise
from icsbridge.ics.sim.server import Faults, Simulator, run
from icsbridge.ics.sim.topology import CrateConfig, LineConfig, ModuleConfig, Topology
from icsbridge.ics.sim.writes import Outcome, WriteResult

__all__ = [
    "QUIET",
    "CrateConfig",
    "Faults",
    "LineConfig",
    "ModuleConfig",
    "Noise",
    "Outcome",
    "SimModel",
    "Simulator",
    "Topology",
    "WriteResult",
    "run",
]
