"""Seconds from nothing to an OPC UA server serving N item variables, and its memory.

    python bench/opcua_startup.py [--modules 42] [--channels 16] [--json results.json]

Builds the mapping of a uniform topology (as discovery would), then times asyncua's
initialisation, the address-space build and the start of listening on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

from asyncua.server.server import Server
from saving import save

from icsbridge.mapping import build as mapping_build
from icsbridge.mapping.document import CrateEntry, Mapping, ModuleEntry
from icsbridge.mapping.naming import Naming
from icsbridge.opcua.space import build


def uniform(modules: int, channels: int) -> Mapping:
    """A mapping of one crate and `modules` HV modules of `channels` channels each."""
    return mapping_build.rebuild(
        Mapping(
            naming=Naming(serial="5230102"),
            crates=[CrateEntry(line=0)],
            modules=[
                ModuleEntry(
                    line=0,
                    address=a,
                    channels=channels,
                    voltage_nominal=3000,
                    current_nominal=1e-3,
                    options=["module_ramp"],
                )
                for a in range(modules)
            ],
        )
    )


async def measure(mapping: Mapping, port: int) -> dict[str, float]:
    """Time init, build and start of a server for the mapping."""
    started = time.perf_counter()
    server = Server()
    await server.init()
    initialised = time.perf_counter()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/icsbridge/")
    space = await build(server, mapping)
    built = time.perf_counter()
    await server.start()
    serving = time.perf_counter()
    await server.stop()
    return {
        "variables": len(space.variables),
        "init_seconds": initialised - started,
        "build_seconds": built - initialised,
        "start_to_serving_seconds": serving - started,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=42)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--port", type=int, default=48400)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    mapping = uniform(args.modules, args.channels)
    result = asyncio.run(measure(mapping, args.port)) | {"load_average_1min": os.getloadavg()[0]}
    print(
        f"{result['variables']:,} variables serving after "
        f"{result['start_to_serving_seconds']:.1f} s (init {result['init_seconds']:.1f} s, "
        f"build {result['build_seconds']:.1f} s), max RSS {result['max_rss_mib']:.0f} MiB "
        f"(load average {result['load_average_1min']:.2f})"
    )
    save(result, args.json)


if __name__ == "__main__":
    main()
