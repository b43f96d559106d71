"""The bridge's link as a face in another process sees it: values, state and writes."""

from __future__ import annotations

import asyncio

import pytest

from icsbridge.core import pipe
from icsbridge.core.mirror import Mirror
from icsbridge.ics.cache import Update
from icsbridge.ics.client import LinkDown, LinkState, WriteRejected
from icsbridge.model import ItemKey

KEYS = [ItemKey(0, 1, channel, "Control.voltageSet") for channel in range(4)]


def mirror() -> tuple[Mirror, list[pipe.Message]]:
    sent: list[pipe.Message] = []
    return Mirror(KEYS, sent.append), sent


def test_values_reach_the_cache_and_its_subscribers() -> None:
    link, _ = mirror()
    seen: list[list[Update]] = []
    link.cache.subscribe(lambda updates: seen.append(list(updates)))
    link.take(pipe.Values([(2, 500.0, "V", 10.0), (0, 1.0, "V", None)]))
    expected = [Update(KEYS[2], 500.0, "V", 10.0), Update(KEYS[0], 1.0, "V", None)]
    assert seen == [expected]
    assert link.cache.get(KEYS[2]) == expected[0]
    assert link.cache.get(KEYS[1]) is None
    assert sorted(link.cache.values()) == sorted(expected)


def test_link_changes_reach_the_listeners() -> None:
    link, _ = mirror()
    states: list[tuple[LinkState, bool]] = []
    link.on_state(lambda state: states.append((state, link.silent)))
    link.start(pipe.Start(None, pipe.LinkChange(LinkState.READY, False), [], {}))  # type: ignore[arg-type]
    link.take(pipe.LinkChange(LinkState.READY, True))
    assert states == [(LinkState.READY, False), (LinkState.READY, True)]
    assert link.state is LinkState.READY and link.silent


async def test_a_write_ends_with_the_bridges_answer() -> None:
    link, sent = mirror()
    first = asyncio.create_task(link.write(KEYS[1], 500, who="op@host", via="OPC UA"))
    second = asyncio.create_task(link.write(KEYS[3], 9e9, who="op@host", via="OPC UA"))
    await asyncio.sleep(0)
    assert [(m.key, m.value, m.who, m.via) for m in sent if isinstance(m, pipe.Write)] == [
        (KEYS[1], 500, "op@host", "OPC UA"),
        (KEYS[3], 9e9, "op@host", "OPC UA"),
    ]
    one, two = (m.ident for m in sent if isinstance(m, pipe.Write))
    link.take(pipe.Written(two, error=WriteRejected("input error")))
    link.take(pipe.Written(one, value=499.0))
    assert await first == 499.0
    with pytest.raises(WriteRejected, match="input error"):
        await second


async def test_a_closed_pipe_fails_writes_in_flight_and_new_ones_and_loses_the_link() -> None:
    link, sent = mirror()
    link.take(pipe.LinkChange(LinkState.READY, False))
    pending = asyncio.create_task(link.write(KEYS[0], 1.0, who="op@host", via="OPC UA"))
    await asyncio.sleep(0)
    link.close()
    with pytest.raises(LinkDown):
        await pending
    with pytest.raises(LinkDown):
        await link.write(KEYS[0], 2.0, who="op@host", via="OPC UA")
    assert len(sent) == 1
    assert link.state is LinkState.LOST
