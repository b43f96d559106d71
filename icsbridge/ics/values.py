"""Item values between their wire strings and typed values in base units."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

from icsbridge.catalog import ItemSpec, ValueType
from icsbridge.ics.protocol import ProtocolError, format_value
from icsbridge.ics.units import UnitError, parse_unit

Value = bool | int | float | str
"""A decoded item value: float in the base unit, int, bool or text."""

Decoder = Callable[[str], Value]


def _as_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "1.0"):
        return True
    if word in ("0", "false", "0.0"):
        return False
    raise ValueError(f"not a boolean: {text!r:.40}")


INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
"""What an iCS int item holds, and what CA's LONG and OPC UA's Int32 carry."""


def int32(number: int) -> int:
    """The number, if an iCS int item can hold it."""
    if not INT_MIN <= number <= INT_MAX:
        raise ValueError("beyond 32 bits")
    return number


def _as_int(text: str) -> int:
    return int32(integral(parse_number(text)))


def parse_number(text: str) -> int | float:
    """A number a person typed: an int if it is written as one, else a float."""
    word = text.strip()
    if not word:
        raise ValueError("empty text is no number")
    try:
        return int(word)
    except ValueError:
        return float(word)


def integral(number: int | float) -> int:
    """The number as an int, if it is a whole number."""
    if isinstance(number, float):
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"{number!r} is not a whole number")
        return int(number)
    return number


def decoder(type_: ValueType | None, unit: str) -> tuple[Decoder, str]:
    """A function from wire strings in `unit` to typed base values, and that base unit.

    Items the catalog does not know (`type_` None) decode to floats when they carry a
    physical unit and stay text otherwise.
    """
    try:
        known = parse_unit(unit) if unit else None
    except UnitError as exc:
        raise ProtocolError(str(exc)) from None
    base = known.base if known else unit
    if type_ is ValueType.BOOL:
        return _as_bool, base
    if type_ is ValueType.INT:
        if known is None or known.scale == 1:
            return _as_int, base
        return (lambda text: int32(round(known.to_base(float(text))))), base
    if type_ is ValueType.TEXT or (type_ is None and known is None):
        return str, base
    if known is None or known.scale == 1:
        return float, base
    return (lambda text: known.to_base(float(text))), base


def decode(spec: ItemSpec | None, text: str, unit: str) -> tuple[Value, str]:
    """One wire value in `unit` as a typed value in the item's base unit, and that unit."""
    convert, base = decoder(spec.type if spec else None, unit)
    try:
        return convert(text), base
    except ValueError:
        raise ProtocolError(f"bad value {text!r:.40} for {spec.name if spec else 'item'}") from None


def coerce(type_: ValueType, value: object) -> Value:
    """The value as one of `type_`: ints pass as floats, integral floats as ints, 0/1 as bools.

    Raises `TypeError` for anything else, including NaN and infinities.
    """
    match type_:
        case ValueType.FLOAT:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and math.isfinite(value):  # type: ignore[arg-type]
                return float(value)  # type: ignore[arg-type]
        case ValueType.INT:
            if isinstance(value, int | float) and not isinstance(value, bool):
                with contextlib.suppress(ValueError):
                    return int32(integral(value))
        case ValueType.BOOL:
            if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
                return bool(value)
        case ValueType.TEXT:
            if isinstance(value, str):
                return value
    raise TypeError(f"not a {type_.value}: {value!r:.40}")


def encode(spec: ItemSpec, value: Value) -> tuple[str, str]:
    """A typed value as the wire string and explicit unit of a setItem for `spec`.

    Raises `TypeError` when the value does not fit the item's type.
    """
    try:
        return format_value(coerce(spec.type, value)), spec.unit
    except TypeError as exc:
        raise TypeError(f"{spec.name}: {exc}") from None
