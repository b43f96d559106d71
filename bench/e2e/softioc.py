"""A real EPICS soft IOC serving the bench's records, with a load set at run time.

The records that churn moves in the simulator become `calc` records (VAL+1, a new value at
every processing); every other item is a passive `ai`. A load of R changes per second is k of
the calc records scanning every p seconds (R = k / p). Base's fastest scan is .1 s, so the
IOC loads a copy of menuScan.dbd with one extra choice per load, found first on the dbd path.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from epicscorelibs import ioc

from .children import Child, python_command

FASTEST = 0.001
"""Shortest scan period used: a scan thread at 1 kHz still keeps its rate here."""
SLOWEST = 0.1
"""Longest scan period used, so a window of seconds sees many scans, not a few bursts."""

STARTUP = """
import sys
from epicscorelibs import ioc
ioc.iocshRegisterCommon()
assert not ioc.dbLoadDatabase(b"base.dbd", sys.argv[1].encode(), None)
assert not ioc.registerRecordDeviceDriver(ioc.pdbbase)
ioc.ioc('dbLoadRecords "' + sys.argv[2] + '"')
ioc.ioc("iocInit")
ioc.Com.errlogFlush()
ioc.Com.iocsh(None)
"""
"""A soft IOC: base.dbd from the dbd path of argv[1], the records of argv[2], then iocsh."""

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
PROMPTS = re.compile(r"^(epics> )+")


def clean(line: str) -> str:
    """An iocsh output line without colours and prompts."""
    return PROMPTS.sub("", COLOUR.sub("", line))


@dataclass(frozen=True, slots=True)
class Load:
    """How the IOC offers a rate: `records` calc records scanning every `period` seconds."""

    records: int
    period: float

    @property
    def rate(self) -> float:
        """Changes per second this load offers."""
        return self.records / self.period

    @property
    def choice(self) -> str:
        """The SCAN menu choice of the period."""
        return f"{self.period:.6g} second"


def load_for(rate: float, pool: int) -> Load:
    """The load nearest to `rate` that `pool` calc records can carry (capped at FASTEST)."""
    period = min(max(pool / rate, FASTEST), SLOWEST)
    return Load(min(pool, max(1, round(rate * period))), period)


def scan_menu(periods: list[float]) -> str:
    """menuScan.dbd with base's choices and one per period, slowest first."""
    stock = [10, 5, 2, 1, 0.5, 0.2, 0.1]
    extra = sorted({p for p in periods if p not in stock}, reverse=True)
    choices = [("Passive", "Passive"), ("Event", "Event"), ("I_O_Intr", "I/O Intr")]
    choices += [(f"P{i}", f"{p:.6g} second") for i, p in enumerate(sorted(stock, reverse=True))]
    choices += [(f"X{i}", f"{p:.6g} second") for i, p in enumerate(extra)]
    lines = [f'\tchoice(menuScan{name},"{text}")' for name, text in choices]
    return "menu(menuScan) {\n" + "\n".join(lines) + "\n}\n"


def database(names: list[str], churned: set[str]) -> str:
    """One record per name: a counting calc for the churned ones, a passive ai for the rest."""
    out = []
    for name in names:
        if name in churned:
            out.append(f'record(calc, "{name}") {{\n  field(CALC, "VAL+1")\n}}\n')
        else:
            out.append(f'record(ai, "{name}") {{\n  field(VAL, "0")\n}}\n')
    return "".join(out)


class SoftIoc:
    """epicscorelibs' IOC as a child process, serving `names`, driven through iocsh."""

    def __init__(
        self,
        names: list[str],
        churned: list[str],
        loads: list[Load],
        folder: Path,
        env: dict[str, str],
    ) -> None:
        self.churned = churned
        (folder / "menuScan.dbd").write_text(scan_menu([load.period for load in loads]))
        records = folder / "bench.db"
        records.write_text(database(names, set(churned)))
        dbd_path = f"{folder}:{ioc.DEFAULT_DBD_PATH}"
        command = python_command("-c", STARTUP, dbd_path, str(records))
        self.child = Child("softIoc", command, env, stdin=True, merge_stderr=True)
        self._count = 0
        self._active: Load | None = None

    def run(self, command: str, timeout: float = 30.0) -> list[str]:
        """The output lines of iocsh commands (the empty command: everything so far)."""
        self._count += 1
        marker = f"end-of-command-{self._count}"
        self.child.send(f"{command}\necho {marker}\n")
        deadline = time.monotonic() + timeout
        lines = []
        while (line := clean(self.child.line(deadline - time.monotonic()))) != marker:
            lines.append(line)
        return lines

    def started(self, timeout: float) -> list[str]:
        """Wait until iocInit is done and iocsh answers; the IOC's output so far."""
        return self.run("", timeout)

    def offer(self, load: Load | None) -> None:
        """Scan `load.records` calc records at `load.period`; stop the rest (None: all)."""
        wanted = {} if load is None else dict.fromkeys(self.churned[: load.records], load.choice)
        active = self.churned[: self._active.records] if self._active else []
        lines = [f'dbpf {name}.SCAN "{choice}"' for name, choice in wanted.items()]
        lines += [f"dbpf {name}.SCAN Passive" for name in active if name not in wanted]
        self.run("\n".join(lines))
        self._active = load

    def processed(self) -> float:
        """Scans so far of the first churned record: the offered rate counter."""
        lines = self.run(f"dbgf {self.churned[0]}")
        (value,) = [line.split(":", 1)[1] for line in lines if line.startswith("DBF_")]
        return float(value)

    def stop(self) -> None:
        """Leave iocsh; kill the IOC if it does not end."""
        with contextlib.suppress(OSError):
            self.child.send("exit\n")
        self.child.stop()
