"""Frames between the bridge and a face in its own process: what goes in comes out."""

from __future__ import annotations

from pathlib import Path

import pytest

from icsbridge.core import pipe
from icsbridge.ics.client import LinkState, WriteRejected
from icsbridge.mapping import document
from icsbridge.model import ItemKey

MAPPING = document.load(Path(__file__).parents[2] / "mappings" / "default.yaml")

MESSAGES: list[pipe.Message] = [
    pipe.Start(
        MAPPING,
        pipe.LinkChange(LinkState.READY, False),
        [(0, 1.5, "V", 1700000000.25), (7, True, "", None)],
        {"endpoint": "opc.tcp://127.0.0.1:4840/", "verbose": 1},
    ),
    pipe.Values([(3, "text", "", 1.0), (4, 12, "ms", 2.0)]),
    pipe.LinkChange(LinkState.LOST, True),
    pipe.Write(1, ItemKey(0, 3, 5, "Control.voltageSet"), 500.0, "op@host", "OPC UA"),
    pipe.Written(1, value=499.5),
]


def test_messages_come_out_as_they_went_in_whatever_the_chunks() -> None:
    data = b"".join(map(pipe.encode, MESSAGES))
    whole = pipe.Frames().feed(data)
    frames = pipe.Frames()
    bytewise = [message for i in range(len(data)) for message in frames.feed(data[i : i + 1])]
    assert whole == bytewise == MESSAGES


def test_a_failed_write_carries_its_exception() -> None:
    (written,) = pipe.Frames().feed(pipe.encode(pipe.Written(2, error=WriteRejected("no"))))
    assert isinstance(written, pipe.Written)
    assert isinstance(written.error, WriteRejected) and str(written.error) == "no"


@pytest.mark.parametrize("cut", [1, 3, 4, 10])
def test_nothing_comes_out_of_a_partial_frame(cut: int) -> None:
    data = pipe.encode(pipe.Values([(1, 2.0, "V", None)]))
    frames = pipe.Frames()
    assert frames.feed(data[:cut]) == []
    assert frames.feed(data[cut:]) == [pipe.Values([(1, 2.0, "V", None)])]
