"""What hardware the simulator pretends to have: lines, crates and modules, from YAML."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ruamel.yaml import YAML

from icsbridge.catalog import ModuleKind, ModuleOption

MAX_MODULES_PER_LINE = 64
"""Module addresses on one line run from 0 to 63."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModuleConfig(_Frozen):
    """One module in a crate slot, with its channel count, ratings and load."""

    address: int = Field(ge=0, le=MAX_MODULES_PER_LINE - 1)
    type: str = "EHS 8060n"
    kind: ModuleKind = ModuleKind.HV
    firmware_name: str = "E08F2"
    firmware_release: str = "5.15"
    serial: int = Field(ge=0)
    channels: int = Field(ge=8, le=48)
    voltage_nominal: float = Field(description="V; negative for negative polarity")
    current_nominal: float = Field(gt=0, description="A")
    options: tuple[ModuleOption, ...] = (ModuleOption.MODULE_RAMP,)
    load: float | tuple[float, ...] = Field(default=1e7, description="ohms per channel")
    voltage_limit_percent: float = Field(default=100.0, gt=0, le=100)
    current_limit_percent: float = Field(default=100.0, gt=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.voltage_nominal == 0:
            raise ValueError("voltage_nominal must not be 0")
        loads = self.load if isinstance(self.load, tuple) else (self.load,)
        if isinstance(self.load, tuple) and len(self.load) != self.channels:
            raise ValueError(f"load lists {len(self.load)} values for {self.channels} channels")
        if any(value <= 0 for value in loads):
            raise ValueError("every load must be positive")
        return self

    def load_of(self, channel: int) -> float:
        """The load resistance on one channel, in ohms."""
        return self.load[channel] if isinstance(self.load, tuple) else self.load


class CrateConfig(_Frozen):
    """The crate controller of a line (address 1000)."""

    serial: int = Field(default=5230102, ge=0)
    firmware_name: str = "CC24"
    firmware_release: str = "2.6.3"


class LineConfig(_Frozen):
    """One line: a crate controller and the modules in its slots."""

    line: int = Field(ge=0, le=15)
    crate: CrateConfig = CrateConfig()
    modules: tuple[ModuleConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_addresses(self) -> Self:
        addresses = [module.address for module in self.modules]
        if len(addresses) != len(set(addresses)):
            raise ValueError(f"line {self.line}: module addresses are not unique")
        return self


class Topology(_Frozen):
    """Every line of the simulated iCS."""

    lines: tuple[LineConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_lines(self) -> Self:
        numbers = [line.line for line in self.lines]
        if len(numbers) != len(set(numbers)):
            raise ValueError("line numbers are not unique")
        return self

    def modules(self) -> Iterator[tuple[int, ModuleConfig]]:
        """Every module with the number of its line."""
        for line in self.lines:
            for module in line.modules:
                yield line.line, module

    def counts(self) -> tuple[int, int, int]:
        """How many lines, modules and channels the topology holds."""
        modules = list(self.modules())
        return len(self.lines), len(modules), sum(m.channels for _, m in modules)

    @classmethod
    def parse(cls, text: str) -> Topology:
        """A topology from YAML text."""
        return cls.model_validate(YAML(typ="safe").load(text))

    @classmethod
    def load(cls, path: str | Path) -> Topology:
        """A topology from a YAML file."""
        return cls.parse(Path(path).read_text("utf-8"))

    @classmethod
    def default(cls) -> Topology:
        """The shipped topology: one CC24 crate with a mix of HV modules and one LV module."""
        text = resources.files(__package__).joinpath("default_topology.yaml").read_text("utf-8")
        return cls.parse(text)

    @classmethod
    def uniform(cls, modules: int, channels: int) -> Topology:
        """Identical 6 kV HV modules, 64 to a line, for scale runs."""
        if modules < 1:
            raise ValueError("need at least one module")
        lines = []
        for line in range((modules + MAX_MODULES_PER_LINE - 1) // MAX_MODULES_PER_LINE):
            first = line * MAX_MODULES_PER_LINE
            count = min(MAX_MODULES_PER_LINE, modules - first)
            lines.append(
                LineConfig(
                    line=line,
                    crate=CrateConfig(serial=5230000 + line),
                    modules=tuple(
                        ModuleConfig(
                            address=address,
                            serial=4700000 + first + address,
                            channels=channels,
                            voltage_nominal=6000.0,
                            current_nominal=1e-3,
                            load=60e6,
                        )
                        for address in range(count)
                    ),
                )
            )
        return cls(lines=tuple(lines))
