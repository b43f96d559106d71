"""The sans-I/O protocol core: round trips, field variants, and only typed errors."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icsbridge.ics.protocol import (
    MAX_PACKETS,
    Command,
    ConfigReply,
    GetConfig,
    Heartbeat,
    ItemRecord,
    ItemRecords,
    Login,
    Logout,
    Mode,
    Packet,
    ProtocolError,
    Request,
    ScriptEvent,
    ScriptReply,
    ScriptRequest,
    Selector,
    SessionError,
    SetConfig,
    Trigger,
    encode,
    format_value,
    parse_client_frame,
    parse_server_frame,
    request_frames,
)
from icsbridge.model import CRATE_ADDRESS, ItemPath

text = st.text(max_size=20)
modes = st.sampled_from(Mode)
lines = st.integers(0, 15)
modules = st.integers(0, 63)
channels = st.integers(0, 47)
crates = st.integers(CRATE_ADDRESS, CRATE_ADDRESS + 15)

paths = st.one_of(
    st.just(ItemPath()),
    st.builds(ItemPath, lines, crates, st.none()),
    st.builds(ItemPath, lines, modules, st.none()),
    st.builds(ItemPath, lines, modules, channels),
)
star = st.just("*")
selectors = st.one_of(
    st.just(Selector()),
    st.builds(Selector, lines | star, crates | modules | star, st.none()),
    st.builds(Selector, lines | star, modules | star, channels | star),
)
times = st.none() | st.integers(0, 2 * 10**13).map(lambda n: float(f"{n / 10**4:.4f}"))
records = st.builds(ItemRecord, paths, text.filter(bool), text, text, times)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)

client_messages = st.one_of(
    st.builds(Login, text, text, text, modes),
    st.builds(
        Request,
        text,
        st.lists(st.builds(Packet, st.sampled_from(Command), selectors, text, text, text)).map(
            tuple
        ),
        modes,
    ),
    st.builds(Heartbeat, text, modes),
    st.builds(Logout, text, modes),
    st.builds(
        ScriptRequest,
        text,
        text.filter(bool),
        st.dictionaries(text.filter(lambda k: k != "c"), text, max_size=3),
        modes,
    ),
    st.builds(GetConfig, text, modes),
    st.builds(SetConfig, text, text, text, modes),
)
server_messages = st.one_of(
    st.builds(Trigger, text, st.booleans()),
    st.builds(ItemRecords, text, st.lists(records, min_size=1).map(tuple), st.just("info")),
    st.builds(ItemRecords, text, st.lists(records).map(tuple), st.just("response")),
    st.builds(SessionError, text, text),
    st.builds(Heartbeat, text, modes),
    st.builds(
        ScriptReply,
        text,
        st.lists(st.builds(ScriptEvent, text, json_values, text, text)).map(tuple),
    ),
    st.builds(ConfigReply, text, text, text),
)


@given(client_messages, st.booleans())
def test_client_messages_round_trip(message: Any, array: bool) -> None:
    assert parse_client_frame(encode(message, array=array)) == [message]


@given(server_messages, st.booleans())
def test_server_messages_round_trip(message: Any, array: bool) -> None:
    assert parse_server_frame(encode(message, array=array)) == [message]


def _parse_or_protocol_error(frame: str | bytes) -> None:
    for parse in (parse_client_frame, parse_server_frame):
        with contextlib.suppress(ProtocolError):
            parse(frame)


@given(json_values)
def test_random_json_raises_only_protocol_error(value: Any) -> None:
    _parse_or_protocol_error(json.dumps(value))


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_random_bytes_raise_only_protocol_error(frame: str | bytes) -> None:
    _parse_or_protocol_error(frame)


def _mutate(data: Any, draw: st.DrawFn) -> Any:
    """Replace, delete or retype one node somewhere in a JSON document."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data)))
        mutated = dict(data)
        if draw(st.booleans()):
            del mutated[key]
        else:
            mutated[key] = _mutate(data[key], draw)
        return mutated
    if isinstance(data, list) and data and draw(st.booleans()):
        index = draw(st.integers(0, len(data) - 1))
        return [*data[:index], _mutate(data[index], draw), *data[index + 1 :]]
    return draw(json_values)


@given(client_messages | server_messages, st.data())
def test_mutated_frames_raise_only_protocol_error(message: Any, data: st.DataObject) -> None:
    frame = json.loads(encode(message, array=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 3))):
        frame = _mutate(frame, data.draw)
    _parse_or_protocol_error(json.dumps(frame))


def test_field_variants_are_accepted() -> None:
    frame = {
        "i": "s-1",
        "t": "info",
        "extra": {"ignored": True},
        "c": [
            {
                "e": "itemUpdated",
                "d": {"p": {"l": 0, "a": "", "c": ""}, "i": "Control.power", "v": 1, "q": "002"},
            },
            {
                "e": "itemUpdated",
                "d": {
                    "p": {"l": "0", "a": 3, "c": "5"},
                    "i": "Status.voltageMeasure",
                    "v": "1.5",
                    "u": "kV",
                    "t": 1700000000.25,
                },
            },
            {"e": "somethingNew", "d": {}},
        ],
    }
    (message,) = parse_server_frame(json.dumps(frame))  # a bare object, not an array
    assert message == ItemRecords(
        "s-1",
        (
            ItemRecord(ItemPath(0, CRATE_ADDRESS, None), "Control.power", "1", "", None),
            ItemRecord(ItemPath(0, 3, 5), "Status.voltageMeasure", "1.5", "kV", 1700000000.25),
        ),
        "info",
    )


def test_connection_error_and_login_refusal() -> None:
    frame = '{"i":"s-1","t":"info","c":[{"e":"connection-error","d":{"m":"session expired"}}]}'
    assert parse_server_frame(frame) == [SessionError("s-1", "session expired")]
    refused = '{"i":"","t":"trigger","c":[],"trigger":"false","r":"websocket"}'
    assert parse_server_frame(refused) == [Trigger("", accepted=False)]


@pytest.mark.parametrize("frame", ['{"t":"teleport"}', "[1, 2]", "{"])
def test_invalid_frames_name_the_problem(frame: str) -> None:
    with pytest.raises(ProtocolError):
        parse_server_frame(frame)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"p":{"l":"x"},"i":"A.b","v":"1"}', "line is not a number"),
        ('{"p":{"l":"0","a":"-3","c":""},"i":"A.b","v":"1"}', "address is not a number"),
        ('{"p":{"l":"","a":"3"},"i":"A.b","v":"1"}', "path without a line"),
        ('{"p":{"l":"0"},"i":"","v":"1"}', "record without an item name"),
        ('{"p":{"l":"0"},"i":"A.b","t":"soon"}', "bad time stamp"),
        ('{"p":{"l":"0"},"i":"A.b","t":"nan"}', "bad time stamp"),
        ('{"p":{"l":"0"},"i":"A.b","v":{"x":1}}', "'v' is not a string"),
        ('"itemUpdated"', "record is not an object"),
    ],
)
def test_a_bad_record_is_left_out_on_its_own(record: str, reason: str) -> None:
    good = '{"p":{"l":"0","a":"3","c":"5"},"i":"Status.on","v":"1","u":"","t":"1.5e9"}'
    events = ",".join(f'{{"e":"itemUpdated","d":{d}}}' for d in (good, record, good))
    (message,) = parse_server_frame(f'{{"i":"s","t":"info","c":[{events}]}}')
    assert isinstance(message, ItemRecords)
    assert [r.item for r in message.records] == ["Status.on", "Status.on"]
    (rejected,) = message.rejected
    assert reason in rejected


def test_requests_are_batched_at_most_100_packets() -> None:
    packets = [Packet(Command.GET_ITEM, Selector(0, 3, c % 48), "Status.on") for c in range(250)]
    frames = [json.loads(f) for f in request_frames("s-1", packets)]
    assert [len(f["c"]) for f in frames] == [MAX_PACKETS, MAX_PACKETS, 50]
    assert frames[0]["c"][0] == {
        "c": "getItem",
        "p": {"p": {"l": "0", "a": "3", "c": "0"}, "i": "Status.on", "v": "", "u": ""},
    }


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (True, "1"),
        (False, "0"),
        (1500.0, "1500"),
        (1e-06, "0.000001"),
        (2.5e-9, "0.0000000025"),
        (-3.25, "-3.25"),
        (7, "7"),
        ("ok", "ok"),
    ],
)
def test_values_are_sent_without_exponents(value: Any, wire: str) -> None:
    assert format_value(value) == wire
