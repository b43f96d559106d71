"""Unit strings of the iCS and their factors to the base units (V, A, °C, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


class UnitError(ValueError):
    """A unit string that the iCS does not use."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit as a multiple of its base unit: a value in `base` is `value * scale`."""

    base: str
    scale: Fraction

    def to_base(self, value: float) -> float:
        """Convert a value given in this unit to the base unit."""
        return value * self.scale.numerator / self.scale.denominator

    def from_base(self, value: float) -> float:
        """Convert a value given in the base unit to this unit."""
        return value * self.scale.denominator / self.scale.numerator


def _table() -> dict[str, Unit]:
    table: dict[str, Unit] = {}

    def add(base: str, names: dict[str, Fraction]) -> None:
        for name, scale in names.items():
            table[name] = Unit(base, scale)

    milli, micro, nano, kilo = (
        Fraction(1, 1000),
        Fraction(1, 10**6),
        Fraction(1, 10**9),
        Fraction(1000),
    )
    one = Fraction(1)
    add("V", {"V": one, "kV": kilo, "mV": milli})
    add("A", {"A": one, "kA": kilo, "mA": milli, "µA": micro, "μA": micro, "uA": micro, "nA": nano})
    add("°C", {"°C": one, "C": one, "degC": one})
    add("V/s", {"V/s": one, "kV/s": kilo})
    add("A/s", {"A/s": one, "mA/s": milli, "µA/s": micro, "μA/s": micro, "uA/s": micro})
    add("ms", {"ms": one, "s": kilo})
    for name in ("%/s", "%", "V/K", "Ω", "Ohm", "SPS", "samples"):
        table[name] = Unit("Ω" if name == "Ohm" else name, one)
    return table


UNITS: dict[str, Unit] = _table()
"""Every unit string the client and the simulator accept, including field spellings."""


def parse_unit(text: str) -> Unit:
    """Look up a unit string; raise `UnitError` for one the iCS does not use."""
    try:
        return UNITS[text.strip()]
    except KeyError:
        raise UnitError(f"unknown unit {text!r}") from None
