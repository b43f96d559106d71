"""The getX/setX methods: one per catalogue item, at its level, named and documented as iseg's."""

from __future__ import annotations

import pydoc

import pytest

from icsbridge.catalog import catalog
from icsbridge.compat.icsClientPython3 import channel, connection, crate, module
from icsbridge.compat.items import method_name
from icsbridge.compat.objects import IcsObject
from icsbridge.model import Level

CLASSES: dict[Level, type[IcsObject]] = {
    Level.SYSTEM: connection,
    Level.CRATE: crate,
    Level.MODULE: module,
    Level.CHANNEL: channel,
}


def test_names_follow_the_item_names() -> None:
    assert method_name("get", "Status.voltageMeasure") == "getStatusVoltageMeasure"
    assert method_name("set", "Control.voltageSet") == "setControlVoltageSet"
    assert method_name("get", "System.time") == "getSystemTime"
    assert method_name("get", "Status.runningStateCAN") == "getStatusRunningStateCAN"


@pytest.mark.parametrize("level", list(Level))
def test_every_item_has_its_methods_at_its_level_and_nowhere_else(level: Level) -> None:
    cls = CLASSES[level]
    wrong = []
    for name in {spec.name for spec in catalog()}:
        spec = catalog().get(level, name)
        for verb, expected in (
            ("get", spec is not None and spec.access.readable),
            ("set", spec is not None and spec.access.writable),
        ):
            if hasattr(cls, method_name(verb, name)) != expected:
                wrong.append(f"{cls.__name__}.{method_name(verb, name)}: expected {expected}")
    assert not wrong, wrong


LIBRARY = {"getCrates", "getModules", "getStatusConnectionName", "getStatusConnectionStatus"}
ISEG_SPELLINGS = {"getStatusTrip", "getEventTrip", "getErrorTrip"}


def test_a_level_has_exactly_the_methods_of_its_items() -> None:
    for level, cls in CLASSES.items():
        specs = [spec for spec in catalog() if spec.level is level]
        expected = {method_name("get", s.name) for s in specs if s.access.readable} | {
            method_name("set", s.name) for s in specs if s.access.writable
        }
        made = {n for n in dir(cls) if n.startswith(("get", "set")) and "RampSpeed" not in n}
        assert made - LIBRARY - ISEG_SPELLINGS == expected


def test_iseg_spellings_name_the_same_methods() -> None:
    assert channel.getStatusTrip is channel.getStatusCurrentTrip
    assert channel.getEventTrip is channel.getEventCurrentTrip
    assert channel.getErrorTrip is channel.getErrorCurrentTrip
    assert module.setControlVoltageRampSpeed is module.setControlVoltageRampspeed
    assert channel.getStatusVoltageRampSpeedMax is channel.getStatusVoltageRampspeedMax


def test_methods_carry_their_item_name_and_description() -> None:
    getter, setter = channel.getStatusVoltageMeasure, channel.setControlOn
    assert getter.__name__ == "getStatusVoltageMeasure"
    assert getter.__doc__ is not None and getter.__doc__.startswith("Measured output voltage [V]")
    assert "Status.voltageMeasure" in getter.__doc__
    assert setter.__doc__ is not None and "(0 = off, 1 = on)" in setter.__doc__
    assert "Control.on" in setter.__doc__ and "confirmed" in setter.__doc__


def test_help_shows_the_catalogue_descriptions() -> None:
    text = pydoc.render_doc(channel, renderer=pydoc.plaintext)
    for spec in catalog().level(Level.CHANNEL):
        assert spec.description in text
    assert "getStatusVoltageMeasure(self) -> 'float | None'" in text
    assert "setControlVoltageSet(self, value: 'float') -> 'float'" in text


def test_an_item_may_not_hide_a_method_of_the_library() -> None:
    with pytest.raises(TypeError, match="getStatusOn would hide"):

        class broken(IcsObject, level=Level.CHANNEL):
            def getStatusOn(self) -> bool:
                return True
