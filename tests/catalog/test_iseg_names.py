"""PV suffixes: iseg's own iCS IOC names where iseg has a record, and every name fits CA."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from icsbridge.catalog import catalog, parse
from icsbridge.model import Level

SYSTEM, CRATE, MODULE, CHANNEL = Level.SYSTEM, Level.CRATE, Level.MODULE, Level.CHANNEL

# Every record of iseg's iseg_epics.db (Ref 1.02) that has an iCS JSON equivalent, as the names
# table of the project (shared/iseg-epics-names.md, section 2) gives it:
# (table row, level, JSON item, suffix the bridge must use). Typos are iseg's and intended.
ISEG_NAMES: list[tuple[int, Level, str, str]] = [
    (6, SYSTEM, "Status.heartBeat", "CycleCounter"),
    # The DB says Control:doClear; the real iCS's PV list says Control:0, and that wins.
    (19, CRATE, "Control.clearEvents", "Control:0"),
    (21, CRATE, "Control.power", "PowerOn"),
    (22, CRATE, "Status.firmwareRelease", "FirmwareRelease"),
    (23, CRATE, "Status.firmwareName", "FirmwareName"),
    (29, MODULE, "Control.moduleEventMask", "EventMask"),
    (30, MODULE, "Control.clearEvents", "Control:doClear"),
    (31, MODULE, "Control.adjustment", "Control:setFineAdjustment"),
    (32, MODULE, "Control.kill", "Control:setKillEnable"),
    (34, MODULE, "Control.voltageRampspeed", "VoltageRampSpeed"),
    (35, MODULE, "Control.currentRampspeed", "CurrentRampSpeed"),
    (38, MODULE, "Status.temperature", "Temperature"),
    (39, MODULE, "Status.serialNumber", "SerialNumber"),
    (41, MODULE, "Setup.adcSampleRate", "SampleRate"),
    (42, MODULE, "Setup.digitalFilter", "DigitalFilter"),
    (43, MODULE, "Status.firmwareRelease", "FirmwareRelease"),
    (44, MODULE, "Status.firmwareName", "FirmwareName"),
    (46, MODULE, "Status.adjustment", "isAdjustment"),
    (48, MODULE, "Status.needService", "needService"),
    (52, MODULE, "Status.safetyLoopClosed", "isSafetyLoopGood"),
    (55, MODULE, "Status.supplyGood", "isSuppliesGodd"),
    (56, MODULE, "Status.temperatureGood", "isTemperatureGood"),
    (59, MODULE, "Error.needService", "EventService"),
    (61, MODULE, "Event.safetyLoopWasOpened", "EventSafetyLoopNotGood"),
    (62, MODULE, "Event.supplyNotGood", "EventSuppliesNotGood"),
    (63, MODULE, "Event.temperatureNotGood", "EventTemperatureNotGood"),
    (64, CHANNEL, "Control.voltageSet", "VoltageSet"),
    (65, CHANNEL, "Control.currentSet", "CurrentSet"),
    (66, CHANNEL, "Status.voltageMeasure", "VoltageMeasure"),
    (67, CHANNEL, "Status.currentMeasure", "CurrentMeasure"),
    (68, CHANNEL, "Control.voltageBounds", "VoltageBounds"),
    (69, CHANNEL, "Control.currentBounds", "CurrentBounds"),
    (70, CHANNEL, "Status.voltageNominal", "VoltageNominal"),
    (71, CHANNEL, "Status.currentNominal", "CurrentNominal"),
    (72, CHANNEL, "Status.temperatureExternal", "TemperatureExternal"),
    (73, CHANNEL, "Control.vctCoefficient", "VctCoefficient"),
    (75, CHANNEL, "Control.on", "Control:setOn"),
    (76, CHANNEL, "Control.emergency", "Control:setEmergency"),
    (78, CHANNEL, "Control.channelEventMask", "EventMask"),
    (79, CHANNEL, "Setup.delayedTripAction", "DelayedTripAction"),
    (80, CHANNEL, "Setup.delayedTripTime", "DelayedTripTime"),
    (81, CHANNEL, "Setup.externalInhibitAction", "ExternalInhibitAction"),
    (82, CHANNEL, "Status.inputError", "InputError"),
    (83, CHANNEL, "Status.on", "isOn"),
    (84, CHANNEL, "Status.ramping", "isVoltageRamp"),
    (85, CHANNEL, "Status.emergency", "isEmergency"),
    (86, CHANNEL, "Status.constantCurrent", "isCC"),
    (87, CHANNEL, "Status.constantVoltage", "isCV"),
    (88, CHANNEL, "Status.currentBoundExceeded", "isCurrentBound"),
    (89, CHANNEL, "Status.voltageBoundExceeded", "isVoltageBound"),
    (90, CHANNEL, "Status.externalInhibitActive", "isEventInhibit"),
    (91, CHANNEL, "Status.currentTrip", "isTrip"),
    (92, CHANNEL, "Status.currentLimitExceeded", "isCurrentLimit"),
    (93, CHANNEL, "Status.voltageLimitExceeded", "isVoltageLimit"),
    (94, CHANNEL, "Event.inputError", "EventInputError"),
    (96, CHANNEL, "Event.endOfRamp", "EventEndOfRamp"),
    (97, CHANNEL, "Event.emergency", "EventEmergency"),
    (98, CHANNEL, "Event.constantCurrent", "ECC"),
    (99, CHANNEL, "Event.constantVoltage", "ECV"),
    (100, CHANNEL, "Event.currentBoundExceeded", "ECurrentBounds"),
    (101, CHANNEL, "Event.voltageBoundExceeded", "EVVoltageBounds"),
    (102, CHANNEL, "Event.externalInhibitActive", "EventExternalInhibit"),
    (103, CHANNEL, "Event.currentTrip", "EventTrip"),
    (104, CHANNEL, "Event.currentLimitExceeded", "EventCurrentLimit"),
    (105, CHANNEL, "Event.voltageLimitExceeded", "EventVoltageLimit"),
]

# A second iseg record for an item that already has one above: the catalogue gives an item a
# single name, so the write record (row 32, an isegHAL Control bit) wins over this read-back
# decode. The name stays reserved for that item.
SHADOWED: list[tuple[int, Level, str, str]] = [
    (57, MODULE, "Control.kill", "isKillEnable"),
]

# iseg suffixes of records without a JSON equivalent (and the DB's crate clear name, which the
# real iCS publishes differently): no catalogue item may take them, so that a name never means
# two things. The channel also keeps off the module's VoltageLimit/CurrentLimit (%), which the
# names table warns must not be reused one level down for the channel values in V and A.
RESERVED: dict[Level, set[str]] = {
    SYSTEM: {"Status", "BitRate", "ModuleNumber", "CrateNumber", "CrateList"},
    CRATE: {"StatusLow", "StatusHigh", "EventStatusLow", "EventStatusHigh", "EventMask"}
    | {"FanSpeed", "Control:doClear", "SerialNumber", "Article"},
    MODULE: {"Status", "StatusLow", "StatusHigh", "EventStatus", "VoltageLimit", "CurrentLimit"}
    | {"Control:disableVoltageRampSpeedLimit", "ChannelNumber", "Article"}
    | {"Status:isLiveInsertion", "isInputError", "isNoSumError", "isNoRamp", "isEVentActive"}
    | {"isModuleGood", "EventLiveInsertion", "EventInputError"},
    CHANNEL: {"Status", "EventStatus", "EOn2Off", "VoltageLimit", "CurrentLimit"},
}

# The longest path of each level: SN of 7 digits, line 15, module 63, crate 1015, channel 47.
WORST_PATH = {
    SYSTEM: "ISEG:1234567:",
    CRATE: "ISEG:1234567:15:1015:",
    MODULE: "ISEG:1234567:15:63:",
    CHANNEL: "ISEG:1234567:15:63:47:",
}
CA_NAME_LIMIT = 59
"""caproto's client refuses longer names."""


def row_id(row: tuple[int, Level, str, str]) -> str:
    number, level, item, suffix = row
    return f"{number}-{level}-{item}-{suffix}"


@pytest.mark.parametrize("row", ISEG_NAMES, ids=row_id)
def test_iseg_record_name(row: tuple[int, Level, str, str]) -> None:
    _, level, item, suffix = row
    spec = catalog().get(level, item)
    assert spec is not None, f"{level}:{item} missing"
    assert spec.pv == suffix


def test_the_table_covers_65_items() -> None:
    assert len({(level, item) for _, level, item, _ in ISEG_NAMES}) == len(ISEG_NAMES) == 65


@pytest.mark.parametrize("row", SHADOWED, ids=row_id)
def test_shadowed_iseg_name_is_not_reused(row: tuple[int, Level, str, str]) -> None:
    _, level, item, suffix = row
    assert (level, item) in {(lvl, name) for _, lvl, name, _ in ISEG_NAMES}
    assert all(spec.pv != suffix for spec in catalog().level(level) if spec.name != item)


@pytest.mark.parametrize("level", list(RESERVED), ids=str)
def test_no_item_takes_an_iseg_name_of_another_meaning(level: Level) -> None:
    taken = {spec.name: spec.pv for spec in catalog() if spec.level is level}
    assert {name: pv for name, pv in taken.items() if pv in RESERVED[level]} == {}


def test_suffixes_are_unique_per_level() -> None:
    counts = Counter((spec.level, spec.pv) for spec in catalog())
    assert [key for key, n in counts.items() if n > 1] == []


def test_suffix_characters() -> None:
    bad = [spec.name for spec in catalog() if not re.fullmatch(r"[A-Za-z0-9_:-]+", spec.pv)]
    assert bad == []


def test_worst_case_names_fit_channel_access() -> None:
    long = {
        f"{WORST_PATH[spec.level]}{spec.pv}": len(WORST_PATH[spec.level] + spec.pv)
        for spec in catalog()
        if len(WORST_PATH[spec.level] + spec.pv) > CA_NAME_LIMIT
    }
    assert long == {}


def test_loader_rejects_a_duplicate_suffix_on_one_level() -> None:
    text = (
        "channel:\n"
        '  Control.on: {pv: isOn, access: rw, type: bool, description: "Output switch"}\n'
        '  Status.on: {pv: isOn, access: r, type: bool, description: "Output is on"}\n'
    )
    with pytest.raises(ValueError, match=r"isOn of Control\.on and Status\.on"):
        parse(text)


def test_loader_accepts_one_suffix_on_two_levels() -> None:
    text = (
        "crate:\n"
        '  Status.firmwareName: {pv: FirmwareName, access: r, type: text, description: "a"}\n'
        "module:\n"
        '  Status.firmwareName: {pv: FirmwareName, access: r, type: text, description: "b"}\n'
    )
    assert len(parse(text)) == 2
