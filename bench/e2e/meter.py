"""CPU and memory of process trees over a window, with the machine's load beside them."""

from __future__ import annotations

import os
import time

import psutil

from .children import Usage
from .results import Resources

MIB = 1 << 20


def rss_mib(pid: int) -> float:
    """Resident memory of the process tree rooted at `pid` now, in MiB."""
    return Usage.of(pid).rss / MIB


class Meter:
    """Measures a server's process tree, its clients' trees and the tree making the changes
    (if another) between `start` and `stop`."""

    def __init__(self, server: int, clients: dict[str, int], source: int | None) -> None:
        self.server = server
        self.clients = clients
        self.source = source
        self._began = 0.0
        self._before: dict[str, Usage] = {}

    def _usage(self) -> dict[str, Usage]:
        pids = {"server": self.server, **self.clients}
        if self.source is not None:
            pids["source"] = self.source
        return {name: Usage.of(pid) for name, pid in pids.items()}

    def start(self) -> None:
        """Begin a window."""
        psutil.cpu_percent(None)
        self._before = self._usage()
        self._began = time.monotonic()

    def stop(self) -> Resources:
        """End the window: CPU as % of one core over it, memory and load at its end."""
        after = self._usage()
        seconds = time.monotonic() - self._began
        cpu = {name: 100 * (after[name].cpu - self._before[name].cpu) / seconds for name in after}
        return Resources(
            cpu_percent=cpu.pop("server"),
            rss_mib=after["server"].rss / MIB,
            source_cpu_percent=cpu.pop("source", None),
            clients_cpu_percent=cpu,
            system_cpu_percent=psutil.cpu_percent(None),
            load_average=os.getloadavg()[0],
        )
