"""PV names by preset, template and alias; NodeIds; name checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from icsbridge.mapping.naming import Naming, Preset, node_id, pv_problems
from icsbridge.model import CRATE_ADDRESS, ItemKey, Level

CHANNEL = ItemKey(0, 3, 5, "Control.voltageSet")
CRATE = ItemKey(0, CRATE_ADDRESS, None, "Control.power")
SYSTEM = ItemKey(None, None, None, "Status.heartBeat")


def test_iseg_names_follow_iseg_integrated_ioc() -> None:
    naming = Naming(serial="5230102")
    assert naming.pv(CHANNEL, "VoltageSet") == "ISEG:5230102:0:3:5:VoltageSet"
    assert naming.pv(CRATE, "PowerOn") == "ISEG:5230102:0:1000:PowerOn"
    assert naming.pv(ItemKey(0, 1, None, "Status.temperature"), "Temperature") == (
        "ISEG:5230102:0:1:Temperature"
    )
    assert naming.pv(SYSTEM, "CycleCounter") == "ISEG:5230102:CycleCounter"


def test_short_preset_and_prefix() -> None:
    naming = Naming(preset=Preset.SHORT, prefix="HV:")
    assert naming.pv(CHANNEL, "VoltageSet") == "HV:M3:C5:VoltageSet"
    assert naming.pv(ItemKey(2, 3, 5, "Control.on"), "Control:setOn") == "HV:L2:M3:C5:Control:setOn"
    assert naming.pv(CRATE, "PowerOn") == "HV:CRATE:PowerOn"


def test_free_templates() -> None:
    naming = Naming(
        preset=Preset.TEMPLATE,
        prefix="DET:",
        templates={
            Level.SYSTEM: "{prefix}ICS:{name}",
            Level.CRATE: "{prefix}CR{line}:{name}",
            Level.MODULE: "{prefix}{line}-{address}:{name}",
            Level.CHANNEL: "{prefix}{line}-{address}-{channel}:{item}",
        },
    )
    assert naming.pv(CHANNEL, "VoltageSet") == "DET:0-3-5:Control:voltageSet"
    assert naming.pv(CRATE, "PowerOn") == "DET:CR0:PowerOn"


def test_aliases_and_node_ids() -> None:
    naming = Naming(serial="5230102")
    assert naming.alias_pv("DRIFT3", "VoltageSet") == "ISEG:5230102:DRIFT3:VoltageSet"
    assert node_id(ItemKey(0, 3, 5, "Status.voltageMeasure")) == "0.3.5.Status.voltageMeasure"
    assert node_id(CRATE) == "0.1000.Control.power"


@pytest.mark.parametrize(
    "fields",
    [{"preset": "iseg"}, {"preset": "template"}, {"preset": "short", "templates": {"system": "x"}}],
    ids=["iseg-without-serial", "template-without-templates", "templates-on-a-preset"],
)
def test_incomplete_naming_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Naming.model_validate(fields)


def test_name_problems_are_named() -> None:
    assert pv_problems("ISEG:5230102:0:3:5:VoltageSet") == []
    (too_long,) = pv_problems("A" * 60)
    assert "60 characters" in too_long
    (bad,) = pv_problems("HV M3/C5")
    assert "characters outside" in bad and "/" in bad
