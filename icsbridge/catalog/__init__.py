"""What every iCS item is: level, EPICS name suffix, access, type, unit, range, states, text.

The data lives in `items.yaml` beside this module and is validated on load; everything
else in icsbridge (simulator, client, PVs, OPC UA nodes) derives item metadata from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import IntEnum, StrEnum
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ruamel.yaml import YAML

from icsbridge.model import Level


class Access(StrEnum):
    """Who may do what with an item."""

    READ = "r"
    WRITE = "w"
    READ_WRITE = "rw"
    PUSH = "push"

    @property
    def readable(self) -> bool:
        """Whether a getItem returns the item."""
        return self is not Access.WRITE

    @property
    def writable(self) -> bool:
        """Whether a setItem may change the item."""
        return self in (Access.WRITE, Access.READ_WRITE)


class ValueType(StrEnum):
    """The type of an item's value once decoded from its wire string."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    TEXT = "text"


class ModuleKind(StrEnum):
    """The family of a module: iseg high voltage or W-IE-NE-R low voltage."""

    HV = "hv"
    LV = "lv"


class ModuleOption(StrEnum):
    """Hardware options that decide which optional module and channel items exist."""

    MODULE_RAMP = "module_ramp"
    CHANNEL_RAMP = "channel_ramp"
    VCT = "vct"
    STACK = "stack"
    HV_MODE = "hv_mode"
    POLARITY = "polarity"
    ARC = "arc"
    MICC = "micc"


INPUT_ERROR_ITEMS = ("Status.inputError", "Event.inputError")
"""Channel items the iCS sets when it refuses a value it acknowledged."""


class Severity(IntEnum):
    """Alarm severity of an item's state, as EPICS orders them.

    The rule: error latches, trips and other faults present now are MAJOR when set; event
    latches other than those of normal operation (ramps, constant voltage) are MINOR when
    set; good-flags are MAJOR when clear; a `runningState` of
    `error` is MAJOR.
    """

    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2


ALARM_FLAGS = frozenset(
    {
        "currentTrip",
        "emergency",
        "externalInhibitActive",
        "needService",
        "inputError",
        "voltageLimitExceeded",
        "currentLimitExceeded",
        "arc",
    }
)
"""Status flags that are faults while set."""

ROUTINE_EVENTS = frozenset(
    {
        "endOfRamp",
        "endOfCurrentRamp",
        "voltageRampUp",
        "voltageRampDown",
        "currentRampUp",
        "currentRampDown",
        "constantVoltage",
    }
)
"""Event latches of normal operation: no alarm."""

GOOD_FLAGS = frozenset(
    {
        "isAlive",
        "mainsGood",
        "supplyGood",
        "batteryGood",
        "temperatureGood",
        "safetyLoopClosed",
    }
)
"""Status flags that are faults while clear."""


class ItemSpec(BaseModel):
    """One item of one level, as the iCS defines it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^(Status|Control|Setup|Event|Error|System)\.[A-Za-z0-9]+$")
    # EPICS record-name suffix after the level's path: ISEG:<SN>:<line>:<addr>[:<chan>]:<pv>
    pv: str = Field(pattern=r"^[A-Za-z0-9_:-]+$")
    level: Level
    access: Access
    type: ValueType
    unit: str = ""
    min: float | None = None
    max: float | None = None
    states: dict[str, str] = Field(default_factory=dict)
    length: int = Field(default=39, ge=1)
    """Longest text value; over 39 characters does not fit an EPICS string."""
    description: str = Field(max_length=40)
    kinds: frozenset[ModuleKind] = frozenset({ModuleKind.HV})
    requires: frozenset[ModuleOption] = frozenset()

    @model_validator(mode="after")
    def _consistent(self) -> ItemSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} > max {self.max}")
        if self.type is ValueType.BOOL and self.states and set(self.states) != {"0", "1"}:
            raise ValueError(f"{self.name}: bool states must be keyed '0' and '1'")
        return self

    @property
    def severities(self) -> dict[str, Severity]:
        """The alarm severity of each wire value that raises one (see `Severity`)."""
        category, _, word = self.name.partition(".")
        if self.type is ValueType.BOOL:
            if category == "Error" or (category == "Status" and word in ALARM_FLAGS):
                return {"1": Severity.MAJOR}
            if category == "Event" and word not in ROUTINE_EVENTS:
                return {"1": Severity.MINOR}
            if word in GOOD_FLAGS:
                return {"0": Severity.MAJOR}
        if word == "runningState":
            return {"error": Severity.MAJOR}
        return {}

    def exists_on(self, kind: ModuleKind, options: Iterable[ModuleOption]) -> bool:
        """Whether a module of this kind and with these options carries the item."""
        return kind in self.kinds and self.requires <= frozenset(options)


class Catalog:
    """All item specs, looked up by level and name."""

    def __init__(self, specs: Iterable[ItemSpec]) -> None:
        self._specs: dict[tuple[Level, str], ItemSpec] = {}
        by_pv: dict[tuple[Level, str], str] = {}
        for spec in specs:
            key = (spec.level, spec.name)
            if key in self._specs:
                raise ValueError(f"duplicate item {spec.level}:{spec.name}")
            other = by_pv.setdefault((spec.level, spec.pv), spec.name)
            if other != spec.name:
                raise ValueError(
                    f"duplicate PV suffix {spec.level}:{spec.pv} of {other} and {spec.name}"
                )
            self._specs[key] = spec

    def __iter__(self) -> Iterator[ItemSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, level: Level, name: str) -> ItemSpec | None:
        """The spec of an item at a level, or None if the iCS has no such item there."""
        return self._specs.get((level, name))

    def level(
        self,
        level: Level,
        kind: ModuleKind = ModuleKind.HV,
        options: Iterable[ModuleOption] = (),
    ) -> list[ItemSpec]:
        """Every item that an object of this level, kind and options carries."""
        chosen = frozenset(options)
        specs = (spec for (lvl, _), spec in self._specs.items() if lvl is level)
        if level in (Level.MODULE, Level.CHANNEL):
            return [spec for spec in specs if spec.exists_on(kind, chosen)]
        return list(specs)


def parse(text: str) -> Catalog:
    """Build a catalog from YAML text shaped `{level: {item name: {field: value}}}`."""
    data = YAML(typ="safe").load(text)
    return Catalog(
        ItemSpec(name=name, level=level, **fields)
        for level, items in data.items()
        for name, fields in items.items()
    )


@cache
def catalog() -> Catalog:
    """The catalog shipped with icsbridge."""
    return parse(resources.files(__package__).joinpath("items.yaml").read_text("utf-8"))
