"""Writes left unconfirmed, watched through the resync: the simulator over a real WebSocket."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsbridge.core.writes import Writer
from icsbridge.ics.client import LinkDown, LinkState, WriteUnconfirmed
from icsbridge.ics.sim.server import Simulator
from icsbridge.mapping import document
from icsbridge.model import ItemKey

from conftest import eventually, make_client

MAPPING = Path(__file__).parents[2] / "mappings" / "default.yaml"
ENTRIES = {entry.key: entry for entry in document.load(MAPPING).items}
KEY = ItemKey(0, 2, 1, "Control.voltageSet")


async def test_a_late_application_is_told_though_a_later_write_found_the_link_down(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(sim, write_timeout=0.3) as client:
        await client.subscribe_all()
        writer = Writer(client, ENTRIES)
        sim.faults.reply_delay = 0.6  # the iCS applies it, after the write timed out
        with pytest.raises(WriteUnconfirmed):
            await writer.write(KEY, 21.0, who="op@host", via="test")
        await eventually(lambda: client.state is not LinkState.READY)  # the link is reset
        with pytest.raises(LinkDown, match="nothing sent"):
            await writer.write(KEY, 22.0, who="op@host", via="test")
        sim.faults.reply_delay = 0.0
        await client.wait_for_state(LinkState.READY)
        await eventually(lambda: writer.unconfirmed.late == 1)
        assert writer.unconfirmed.count == 1
        assert "21.0, reported unconfirmed, applied late: the iCS reports 21.0" in caplog.text
