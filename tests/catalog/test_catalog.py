"""The shipped item catalogue: facts the rest of icsbridge relies on."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydantic import ValidationError

from icsbridge.catalog import (
    Access,
    ItemSpec,
    ModuleKind,
    ModuleOption,
    ValueType,
    catalog,
    parse,
)
from icsbridge.model import Level


def spec(level: Level, name: str) -> ItemSpec:
    found = catalog().get(level, name)
    assert found is not None, f"{level}:{name} missing"
    return found


def names(
    level: Level, kind: ModuleKind = ModuleKind.HV, options: Iterable[ModuleOption] = ()
) -> set[str]:
    return {s.name for s in catalog().level(level, kind, options)}


def test_counts_per_level() -> None:
    # Exact on purpose: adding or removing an item must be a conscious change.
    counts = {level: len(catalog().level(level, options=list(ModuleOption))) for level in Level}
    assert counts == {
        Level.SYSTEM: 35,
        Level.CRATE: 30,
        Level.MODULE: 40,
        Level.CHANNEL: 97,
    }
    assert len(catalog()) == 202


def test_channel_voltage_set() -> None:
    s = spec(Level.CHANNEL, "Control.voltageSet")
    assert s.access is Access.READ_WRITE
    assert s.type is ValueType.FLOAT
    assert s.unit == "V"
    assert s.min == 0 and s.max is None
    assert s.access.readable and s.access.writable


def test_channel_current_items_use_ampere() -> None:
    assert spec(Level.CHANNEL, "Control.currentSet").unit == "A"
    assert spec(Level.CHANNEL, "Status.currentMeasure").unit == "A"
    assert spec(Level.CHANNEL, "Control.currentRampspeedUp").unit == "A/s"


def test_crate_power() -> None:
    s = spec(Level.CRATE, "Control.power")
    assert s.access is Access.READ_WRITE
    assert s.type is ValueType.BOOL
    assert s.states == {"0": "standby", "1": "on"}


def test_crate_and_module_twins_are_distinct() -> None:
    for name in ("Status.runningState", "Control.clearAll", "Status.errorCounter"):
        crate, module = spec(Level.CRATE, name), spec(Level.MODULE, name)
        assert crate.description != module.description
    assert spec(Level.CRATE, "Status.runningState").states.keys() == {
        "disabled",
        "off",
        "ok",
        "info",
        "error",
    }


def test_module_ramp_option() -> None:
    s = spec(Level.MODULE, "Control.voltageRampspeed")
    assert s.requires == {ModuleOption.MODULE_RAMP}
    assert (s.unit, s.min, s.max) == ("%/s", 0, 20)
    assert "Control.voltageRampspeed" not in names(
        Level.MODULE, ModuleKind.HV, [ModuleOption.CHANNEL_RAMP]
    )
    assert "Control.voltageRampspeed" in names(
        Level.MODULE, ModuleKind.HV, [ModuleOption.MODULE_RAMP]
    )
    assert "Control.voltageRampspeedUp" in names(
        Level.CHANNEL, ModuleKind.HV, [ModuleOption.CHANNEL_RAMP]
    )
    assert "Control.voltageRampspeedUp" not in names(Level.CHANNEL)


def test_lv_channels_are_a_small_subset() -> None:
    all_options = list(ModuleOption)
    hv = names(Level.CHANNEL, ModuleKind.HV, all_options)
    lv = names(Level.CHANNEL, ModuleKind.LV, all_options)
    assert lv < hv
    assert len(lv) < len(hv) // 2
    assert {
        "Control.voltageSet",
        "Control.currentSet",
        "Control.on",
        "Status.voltageMeasure",
        "Status.voltageTerminalMeasure",
        "Status.currentMeasure",
        "Status.on",
        "Status.runningState",
    } <= lv
    assert "Status.arc" not in lv and "Setup.delayedTripAction" not in lv
    assert names(Level.MODULE, ModuleKind.LV) < names(Level.MODULE, ModuleKind.HV)


def test_every_bool_has_panel_states() -> None:
    for s in catalog():
        if s.type is ValueType.BOOL:
            assert set(s.states) == {"0", "1"}, s.name


def test_text_limits() -> None:
    for s in catalog():
        assert 0 < len(s.description) <= 40, s.name
        assert not s.description.endswith("."), s.name
        for label in s.states.values():
            assert 0 < len(label) <= 25, (s.name, label)


def test_integer_enums_span_their_codes() -> None:
    for level, name in (
        (Level.CHANNEL, "Setup.delayedTripAction"),
        (Level.CHANNEL, "Setup.externalInhibitAction"),
        (Level.MODULE, "Setup.adcSampleRate"),
        (Level.MODULE, "Setup.digitalFilter"),
    ):
        s = spec(level, name)
        assert s.type is ValueType.INT
        codes = [int(code) for code in s.states]
        assert (s.min, s.max) == (min(codes), max(codes)), name
    assert set(spec(Level.CHANNEL, "Setup.externalInhibitAction").states) == {"0", "1", "2", "3"}


def test_write_only_items_are_not_readable() -> None:
    write_only = [s for s in catalog() if s.access is Access.WRITE]
    assert {s.name for s in write_only} >= {"Control.clearAll", "Control.reboot"}
    for s in write_only:
        assert not s.access.readable and s.access.writable, s.name


def test_push_items_are_neither_readable_nor_writable() -> None:
    for level in (Level.CRATE, Level.MODULE):
        s = spec(level, "Event.firmwareUpdateDone")
        assert s.access is Access.PUSH and not s.access.writable
    assert spec(Level.SYSTEM, "Event.hardwareChanged").access is Access.PUSH


def test_kinds_and_requires_only_below_crate() -> None:
    for s in catalog():
        if s.level in (Level.SYSTEM, Level.CRATE):
            assert s.kinds == {ModuleKind.HV} and not s.requires, s.name


GOOD = 'channel:\n  Control.on: {pv: "Control:setOn", access: rw, type: bool, description: "On"}\n'


def test_parse_accepts_a_good_entry() -> None:
    assert parse(GOOD).get(Level.CHANNEL, "Control.on") is not None


@pytest.mark.parametrize(
    "fields",
    [
        '{pv: VoltageMeasure, access: r, type: float, description: "' + "x" * 41 + '"}',
        '{pv: VoltageMeasure, access: r, type: float, description: "ok", colour: red}',
        '{pv: VoltageMeasure, access: r, type: float, min: 5, max: 1, description: "ok"}',
        '{pv: VoltageMeasure, access: r, type: bool, states: {"0": a, "2": b}, description: "ok"}',
        '{pv: VoltageMeasure, access: rx, type: float, description: "ok"}',
    ],
    ids=["long-description", "unknown-field", "min-above-max", "bool-states", "bad-access"],
)
def test_parse_rejects_bad_entries(fields: str) -> None:
    with pytest.raises(ValidationError):
        parse(f"channel:\n  Status.voltageMeasure: {fields}\n")


def test_an_item_name_has_one_type_and_unit_on_every_level() -> None:
    """The cache decodes by item name and unit alone, so twins across levels must agree."""
    seen: dict[str, tuple[object, str]] = {}
    for spec in catalog():
        assert seen.setdefault(spec.name, (spec.type, spec.unit)) == (spec.type, spec.unit), spec
