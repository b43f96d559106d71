"""The simulator's churn frames: what encoding its records gives, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from icsbridge.ics.protocol import ItemRecords, Login, encode
from icsbridge.ics.sim import QUIET, SimModel, Topology
from icsbridge.ics.sim.service import Service
from icsbridge.ics.values import Value
from icsbridge.model import ItemKey

STAMP = 1_796_000_000.123456


@pytest.mark.parametrize("units", [{}, {"V": "kV", "A": "mA"}], ids=["base units", "kV and mA"])
def test_churn_frames_are_what_encoding_the_records_gives(units: dict[str, str]) -> None:
    topology = Topology.load(Path(__file__).with_name("small_topology.yaml"))
    sim = Service(SimModel(topology, noise=QUIET), {"admin": "pw"}, output_units=units)
    session = sim.login(Login("admin", "pw"))
    assert session is not None
    moves: list[tuple[ItemKey, Value]] = []
    churn = sim.model.churn

    def recorded(count: int) -> list[tuple[ItemKey, Value]]:
        made = churn(count)
        moves.extend(made)
        return made

    sim.model.churn = recorded  # type: ignore[method-assign]
    readings = list(dict.fromkeys(key for key, _ in churn(100)))
    session.subscriptions.update(readings[::2])  # every other reading
    [(to, frame)] = sim.churn(5 * len(readings), STAMP)  # each reading moves five times
    records = tuple(
        sim.record(key, stamp=STAMP, value=value)
        for key, value in moves
        if key in session.subscriptions
    )
    assert to is session and len(records) == 5 * len(readings[::2])
    assert frame == encode(ItemRecords(session.id, records, "info"), array=True)
    assert len(json.loads(frame)[0]["c"]) == len(records)
