"""getX()/setX(value) methods made from the catalogue, one pair per item of a level.

`Status.voltageMeasure` becomes `getStatusVoltageMeasure()`, `Control.voltageSet` becomes
`setControlVoltageSet(value)`: a getter for every readable item, a setter for every
writable one. iseg's own spellings where they differ from the wire name are there too:
`getStatusTrip()` for `Status.currentTrip` (and the `Event`/`Error` latches), and
`RampSpeed` beside `Rampspeed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from icsbridge.catalog import ItemSpec, ValueType
from icsbridge.ics.values import Value, decode

ISEG_NAMES = {
    "Status.currentTrip": "Status.trip",
    "Event.currentTrip": "Event.trip",
    "Error.currentTrip": "Error.trip",
}
"""Items whose method in iseg's module is named after another spelling of the item."""


PYTHON_TYPES = {
    ValueType.FLOAT: "float",
    ValueType.INT: "int",
    ValueType.BOOL: "bool",
    ValueType.TEXT: "str",
}
"""The Python type of each catalogue type, as help() shows it."""


class ItemAccess(Protocol):
    """An object that reads its items from the cache and writes them to the iCS."""

    def _read(self, item: str) -> Value | None: ...

    def _write(self, item: str, value: Value) -> Value: ...


def method_name(verb: str, item: str) -> str:
    """`get`/`set` and an item name as one camel-case method name."""
    group, _, name = item.partition(".")
    return f"{verb}{group}{name[:1].upper()}{name[1:]}"


def _meaning(spec: ItemSpec) -> str:
    unit = f" [{spec.unit}]" if spec.unit else ""
    states = ", ".join(f"{value} = {text}" for value, text in spec.states.items())
    return f"{spec.description}{unit}{f' ({states})' if states else ''}"


def _getter(spec: ItemSpec) -> Callable[[ItemAccess], Value | None]:
    def get(self: ItemAccess) -> Value | None:
        return self._read(spec.name)

    get.__name__ = get.__qualname__ = method_name("get", spec.name)
    get.__annotations__ = {"return": f"{PYTHON_TYPES[spec.type]} | None"}
    get.__doc__ = (
        f"{_meaning(spec)}.\n\nReads `{spec.name}` ({spec.type.value}) from the live cache; "
        "None until the iCS reports it."
    )
    return get


def _setter(spec: ItemSpec) -> Callable[[ItemAccess, Value], Value]:
    def set_(self: ItemAccess, value: Value) -> Value:
        if isinstance(value, str) and spec.type is not ValueType.TEXT:
            value = decode(spec, value, spec.unit)[0]
        return self._write(spec.name, value)

    set_.__name__ = set_.__qualname__ = method_name("set", spec.name)
    set_.__annotations__ = {"value": PYTHON_TYPES[spec.type], "return": PYTHON_TYPES[spec.type]}
    set_.__doc__ = (
        f"Set: {_meaning(spec)}.\n\nWrites `{spec.name}` ({spec.type.value}, or its text) and "
        "returns the value the iCS confirmed; raises IcsError when the iCS refuses, does not "
        "confirm in time or the link is down."
    )
    return set_


def item_methods(specs: Iterable[ItemSpec]) -> dict[str, Callable[..., Any]]:
    """Every method for these items, by name, iseg's spellings included."""
    methods: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        made: list[Callable[..., Any]] = []
        if spec.access.readable:
            made.append(_getter(spec))
        if spec.access.writable:
            made.append(_setter(spec))
        for function in made:
            verb = function.__name__[:3]
            names = {function.__name__, function.__name__.replace("Rampspeed", "RampSpeed")}
            if spec.name in ISEG_NAMES:
                names.add(method_name(verb, ISEG_NAMES[spec.name]))
            methods.update(dict.fromkeys(names, function))
    return methods
