"""db templates and substitutions: current with the catalogue, and loaded by a real soft IOC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from icsbridge.catalog import ModuleKind, ModuleOption
from icsbridge.epics.database import COMMAND, outdated_templates, write_templates
from icsbridge.epics.substitutions import substitutions
from icsbridge.mapping import build
from icsbridge.mapping.document import CrateEntry, Mapping, ModuleEntry, Override
from icsbridge.mapping.naming import Naming

from conftest import SoftIoc

TEMPLATES = Path(__file__).parents[2] / "db_templates"
PROBLEMS = re.compile(r"error|warning|illegal|can't|not found|failed|invalid|bad ", re.IGNORECASE)
"""Words that mark an IOC message about a problem."""


def small_mapping() -> Mapping:
    """An HV module with module ramps, one with every channel option, an LV module."""
    hv, lv, option = ModuleKind.HV, ModuleKind.LV, ModuleOption
    every = [option.CHANNEL_RAMP, option.VCT, option.HV_MODE, option.POLARITY, option.ARC]
    return build.rebuild(
        Mapping(
            naming=Naming(serial="5230102"),
            crates=[CrateEntry(line=0)],
            modules=[
                ModuleEntry(
                    line=0,
                    address=0,
                    kind=hv,
                    options=[option.MODULE_RAMP],
                    channels=2,
                    voltage_nominal=3000,
                    current_nominal=0.003,
                ),
                ModuleEntry(
                    line=0,
                    address=3,
                    kind=hv,
                    options=[*every, option.STACK],
                    channels=2,
                    voltage_nominal=-6000,
                    current_nominal=0.001,
                ),
                ModuleEntry(
                    line=0, address=5, kind=lv, channels=2, voltage_nominal=8, current_nominal=10
                ),
            ],
        )
    )


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return small_mapping()


@pytest.fixture(scope="module")
def ioc(mapping: Mapping, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftIoc]:
    """The soft IOC with fresh templates and the substitutions of the small mapping."""
    folder = tmp_path_factory.mktemp("db")
    write_templates(folder / "templates")
    file = folder / "small.substitutions"
    file.write_text(substitutions(mapping), "utf-8")
    soft_ioc = SoftIoc(file, folder / "templates")
    yield soft_ioc
    soft_ioc.stop()


def test_committed_templates_are_current() -> None:
    outdated = outdated_templates(TEMPLATES)
    assert not outdated, f"db_templates/ is out of date ({', '.join(outdated)}): run `{COMMAND}`"


def test_write_templates_replaces_obsolete_ones_only(tmp_path: Path) -> None:
    write_templates(tmp_path)
    (tmp_path / "channel.template").write_text("edited\n")
    obsolete = (tmp_path / "channel-hv.template").read_text().replace("hv", "xx")
    (tmp_path / "channel-xx.template").write_text(obsolete)
    (tmp_path / "site.template").write_text("record(ai, $(P)X) {}\n")
    assert outdated_templates(tmp_path) == ["channel.template", "channel-xx.template"]
    write_templates(tmp_path)
    assert outdated_templates(tmp_path) == []
    assert (tmp_path / "site.template").exists()


def test_substitutions_refuse_a_pv_override(mapping: Mapping) -> None:
    override = {"0.3.1.Control.voltageSet": Override(pv="HV:BEAMLINE:VSET")}
    changed = build.rebuild(mapping.model_copy(update={"overrides": override}))
    problem = r"0\.3\.1\.Control\.voltageSet: PV HV:BEAMLINE:VSET, the templates make ISEG:"
    with pytest.raises(ValueError, match=problem):
        substitutions(changed)


def test_ioc_loads_everything_without_complaint(ioc: SoftIoc) -> None:
    assert "iocRun: All initialization complete" in ioc.startup
    assert [line for line in ioc.startup if PROBLEMS.search(line)] == []


def test_ioc_has_exactly_the_mappings_pvs(ioc: SoftIoc, mapping: Mapping) -> None:
    names = ioc.run("dbl")
    wanted = {item.pv for item in mapping.items if not item.disabled}
    assert len(names) == len(set(names))
    assert set(names) == wanted
    assert {"ISEG:5230102:0:3:1:OutputPolarity", "ISEG:5230102:0:0:VoltageRampSpeed"} < wanted


def test_ioc_records_carry_the_catalogues_fields(ioc: SoftIoc) -> None:
    vset = "ISEG:5230102:0:3:1:VoltageSet"
    assert ioc.field(f"{vset}.RTYP") == "ao"
    assert ioc.field(f"{vset}.DESC") == "Voltage set point"
    assert ioc.field(f"{vset}.EGU") == "V"
    assert ioc.field(f"{vset}.PREC") == "3"
    assert ioc.field(f"{vset}.DRVH") == "6000"
    assert ioc.field("ISEG:5230102:0:3:1:VoltageMeasure.LOPR") == "-6000"
    assert ioc.field("ISEG:5230102:0:5:0:CurrentSet.DRVH") == "10"
    on = "ISEG:5230102:0:0:1:Control:setOn"
    assert (ioc.field(f"{on}.ZNAM"), ioc.field(f"{on}.ONAM")) == ("off", "on")
    assert ioc.field("ISEG:5230102:0:0:ErrorSafetyLoopNotGood.OSV") == "MAJOR"
    assert ioc.field("ISEG:5230102:0:0:isSafetyLoopGood.ZSV") == "MAJOR"
    assert ioc.field("ISEG:5230102:0:0:0:EventTrip.OSV") == "MINOR"  # an event, not the trip
    assert ioc.field("ISEG:5230102:0:0:0:EventMaxPower.OSV") == "MINOR"
    assert ioc.field("ISEG:5230102:0:0:0:EventEndOfRamp.OSV") == "NO_ALARM"
    assert ioc.field("ISEG:5230102:0:0:SampleRate.THVL") == "500"
    assert ioc.field("ISEG:5230102:0:3:0:OutputPolarity.ONST") == "negative"
    assert ioc.field("ISEG:5230102:0:0:Control:doInstallFirmware.SIZV") == "256"
    assert ioc.field("ISEG:5230102:0:1000:Temperature0.EGU") == "°C"  # sent as UTF-8
