"""`IcsClient.raw`: frames sent as they are, and the frame that answers each."""

from __future__ import annotations

import asyncio
import json

import pytest

from icsbridge.ics.client import IcsClient, LinkDown
from icsbridge.ics.protocol import ProtocolError, Request
from icsbridge.ics.sim.server import Simulator
from icsbridge.model import ItemKey

from conftest import eventually, wait_until


def request(command: str, item: str, value: str = "", session: str = "") -> str:
    packet = {"c": command, "p": {"p": {"l": "0", "a": "0", "c": "1"}, "i": item, "v": value}}
    return json.dumps({"i": session, "t": "request", "r": "websocket", "c": [packet]})


async def test_a_get_item_answers_with_its_response(client: IcsClient) -> None:
    reply = json.loads(await client.raw(request("getItem", "Status.voltageNominal")))
    (record,) = reply[0]["c"]
    assert reply[0]["t"] == "response"
    assert record["d"]["i"] == "Status.voltageNominal" and record["d"]["v"] == "6000"
    assert client.cache.get(ItemKey(0, 0, 1, "Status.voltageNominal")) is not None


async def test_a_set_item_answers_with_its_trigger_and_takes_effect(
    sim: Simulator, client: IcsClient
) -> None:
    reply = json.loads(await client.raw(request("setItem", "Control.voltageSet", "321")))
    assert reply[0]["t"] == "trigger" and reply[0]["trigger"] == "true"
    assert sim.model.value(ItemKey(0, 0, 1, "Control.voltageSet")) == 321.0


async def test_the_session_is_filled_in_only_when_empty(sim: Simulator, client: IcsClient) -> None:
    await client.raw(request("getItem", "Status.on"))
    sent = [m for m in sim.received if isinstance(m, Request)]
    assert list(sim.service.sessions) == [sent[-1].session]
    with pytest.raises(LinkDown):  # the iCS drops a session it does not know
        await client.raw(request("getItem", "Status.on", session="not-mine"))


async def test_script_and_config_frames_get_their_replies(client: IcsClient) -> None:
    frame = json.dumps({"i": "", "t": "script", "c": {"c": "availableScripts"}})
    (event,) = json.loads(await client.raw(frame))["c"]
    assert event["e"] == "availableScripts" and {row["name"] for row in event["d"]} == {
        "logger.py",
        "ramp.py",
    }
    config = json.loads(await client.raw(json.dumps({"t": "getConfig", "c": []})))
    assert config["t"] == "getConfig" and config["d"]


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        json.dumps({"i": "", "t": "login", "c": {"l": "admin", "p": "password"}}),
        json.dumps({"i": "", "t": "logout", "c": {}}),
        json.dumps([{"t": "getConfig", "c": []}, {"t": "getConfig", "c": []}]),
    ],
)
async def test_frames_that_are_not_commands_are_refused(client: IcsClient, frame: str) -> None:
    with pytest.raises(ProtocolError):
        await client.raw(frame)


async def test_replies_stay_in_step_with_concurrent_writes(
    sim: Simulator, client: IcsClient
) -> None:
    refused = request("setItem", "Status.voltageNominal", "1")  # read-only: trigger false
    voltage = ItemKey(0, 0, 2, "Control.voltageSet")
    raw, written = await asyncio.gather(client.raw(refused), client.set_item(voltage, 42.0))
    assert json.loads(raw)[0]["trigger"] == "false"
    assert written == 42.0
    await wait_until(client, voltage, lambda value: value == 42.0)


async def test_a_lost_link_fails_the_waiting_frame(sim: Simulator, client: IcsClient) -> None:
    sim.faults.silent = True
    before = len(sim.received)
    pending = asyncio.create_task(client.raw(request("getItem", "Status.on")))
    await eventually(lambda: len(sim.received) > before)
    sim.faults.drop_all()
    sim.faults.silent = False
    with pytest.raises(LinkDown):
        await pending
