"""The live view: readable values and one row per channel of the simulator."""

from __future__ import annotations

import pytest
from rich.console import Console

from icsbridge.core.rate import UpdateRate
from icsbridge.ics.sim.server import Simulator
from icsbridge.live_view import engineering, render

from conftest import make_client


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.285e-08, "A", "12.85 nA"),
        (0.001, "A", "1 mA"),
        (6000.0, "V", "6 kV"),
        (-0.108, "V", "-108 mV"),
        (25.3, "°C", "25.3 °C"),
        (0.0, "V", "0 V"),
    ],
)
def test_values_read_with_si_prefixes(value: float, unit: str, text: str) -> None:
    assert engineering(value, unit) == text


async def test_the_view_shows_every_channel(sim: Simulator) -> None:
    async with make_client(sim) as client:
        await client.subscribe_all()
        console = Console(width=120, record=True)
        console.print(render(client, UpdateRate()))
    text = console.export_text()
    channels = sum(module.channels for line in sim.topology.lines for module in line.modules)
    assert "link ready" in text
    assert sum(line.lstrip().startswith("0.") for line in text.splitlines()) == channels
