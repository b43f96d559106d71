"""One topology size: simulator, discovery, the bridge's run, then the softIoc's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .children import ChildError, child_env
from .items import Items, discover, start_simulator, topology_for
from .network import BeaconSink
from .results import Size
from .steps import Timing
from .systems import Plan, run_bridge, run_softioc


def measure_size(
    requested: int, loads: list[float], timing: Timing, readings: int | None = None
) -> Size:
    """Every figure of the bridge and of a softIoc serving about `requested` items, the
    load on every channel reading or on the first `readings`."""
    modules, channels = topology_for(requested)
    size = Size(requested, modules, channels)
    timeout = 60 + requested / 1000
    sink = BeaconSink()
    with tempfile.TemporaryDirectory(prefix="icsbridge-bench-") as tmp:
        folder = Path(tmp)
        mapping = folder / "mapping.yaml"
        try:
            sim, url = start_simulator(modules, channels, readings, timeout)
        except ChildError as exc:
            size.errors.append(f"simulator: {exc}")
            return size
        try:
            size.discover_seconds = discover(url, mapping, child_env({}), timeout)
            items = Items.of(mapping, readings)
            size.items, size.churned = len(items.entries), len(items.churned)
            plan = Plan(items, loads, timing, folder, sink)
            size.runs.append(run_bridge(sim, url, mapping, plan))
        except ChildError as exc:
            size.errors.append(f"discover: {exc}")
            return size
        finally:
            sim.stop()
        size.runs.append(run_softioc(plan))
    sink.close()
    return size
