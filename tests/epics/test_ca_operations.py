"""Running the CA server as a site does: ports, PV list, health PVs, read-only, alarm limits."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import epics
import pytest

from icsbridge.ics.sim.topology import Topology

from conftest import BridgeProcess, SimThread, free_port

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
P = "ISEG:5230102:"
HEALTH = f"{P}Bridge:"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    thread = SimThread(Topology.default())
    yield thread
    thread.stop()


def with_overrides(tmp_path: Path, overrides: str) -> Path:
    """The shipped mapping with an alias and some overrides, regenerated as discovery would."""
    from icsbridge.mapping import build, document

    text = MAPPING.read_text().replace("overrides: {}", f"overrides: {overrides}")
    text = text.replace("aliases: {}", "aliases: {0.2.7: DRIFT7}")
    settings, mapping = document.load_settings(text), build.rebuild(document.parse(text))
    path = tmp_path / "site.yaml"
    path.write_text(document.dump(settings, mapping))
    return path


@pytest.fixture(scope="module")
def site_mapping(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped mapping with an alias and alarm limits on one measured voltage."""
    return with_overrides(
        tmp_path_factory.mktemp("mapping"),
        "{0.2.7.Status.voltageMeasure: {alarm_high: -1, warn_low: -2}}",
    )


@pytest.fixture(scope="module")
def read_only(sim: SimThread, site_mapping: Path) -> Iterator[BridgeProcess]:
    """A read-only bridge of the site mapping that lists its PVs."""
    process = BridgeProcess(sim.url, "--mapping", str(site_mapping), "--read-only", "--list-pvs")
    yield process
    process.stop()


def test_list_pvs_prints_every_pv_name_once_serving(
    read_only: BridgeProcess, site_mapping: Path
) -> None:
    from icsbridge.mapping import document

    expected = [
        name for item in document.load(site_mapping).items for name in (item.pv, *item.aliases)
    ]
    names = [read_only.output.get(timeout=10).strip() for _ in expected]
    assert names == expected


def test_read_only_mode_refuses_every_write(sim: SimThread, read_only: BridgeProcess) -> None:
    before = len(sim.set_items())
    pv = epics.PV(f"{P}0:2:3:VoltageSet")
    assert pv.wait_for_connection(5)
    assert not pv.write_access
    with pytest.raises(epics.ca.CASeverityException, match="Write access denied"):
        pv.put(10.0, wait=True, timeout=3)
    assert epics.caget(f"{P}0:2:3:VoltageSet", use_monitor=False) == 0.0
    assert len(sim.set_items()) == before


def test_health_pvs(read_only: BridgeProcess) -> None:
    assert epics.caget(f"{HEALTH}LinkState", as_string=True) == "ready"
    rate = epics.PV(f"{HEALTH}UpdateRate", auto_monitor=True)
    seen = threading.Event()
    rate.add_callback(lambda value, **_: value > 0 and seen.set())
    assert seen.wait(10), "no item updates counted"
    assert 0.0 <= epics.caget(f"{HEALTH}FrameAge", use_monitor=False) < 2.0
    assert epics.caget(f"{HEALTH}PROCESS_ID", timeout=5) == read_only.process.pid  # caproto's
    assert epics.caget(f"{HEALTH}UPTIME", as_string=True, timeout=5)


def test_alarm_limits_from_the_mapping(read_only: BridgeProcess) -> None:
    name = f"{P}0:2:7:VoltageMeasure"
    pv = epics.PV(name, form="ctrl")
    assert pv.wait_for_connection(5)
    assert pv.get_ctrlvars()["upper_alarm_limit"] == -1.0
    alarm = (
        epics.caget(f"{name}.STAT", as_string=True, use_monitor=False),
        epics.caget(f"{name}.SEVR", as_string=True, use_monitor=False),
    )
    assert alarm in {("HIHI", "MAJOR"), ("LOW", "MINOR")}  # noise around 0 V


def test_the_cas_port_wins_over_the_ca_port(sim: SimThread) -> None:
    port = free_port()
    process = BridgeProcess(sim.url, env={"EPICS_CAS_SERVER_PORT": str(port)})  # no mapping
    try:
        serving = "".join(process.log)
        assert re.search(rf"serving \d+ PVs over Channel Access on port {port}\b", serving)
    finally:
        process.stop()


def test_an_alias_is_a_second_name_of_the_same_pv(read_only: BridgeProcess) -> None:
    by_alias = epics.caget(f"{P}DRIFT7:VoltageNominal", use_monitor=False)
    assert by_alias == epics.caget(f"{P}0:2:7:VoltageNominal", use_monitor=False) == 500.0
