"""What caproto logs of what CA clients send: no traceback a peer can provoke."""

from __future__ import annotations

import logging

import pytest
from caproto import DBR_TYPES, ChannelType

from icsbridge.core.writes import TypeRefused
from icsbridge.epics import server  # noqa: F401 (installs the filter)


def test_alarm_fields_out_of_range_in_a_put_log_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metadata = DBR_TYPES[ChannelType.STS_DOUBLE](status=999, severity=77)
    with caplog.at_level(logging.WARNING, logger="caproto"):
        metadata.to_dict()
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("Invalid alarm status: 999")
    assert messages[1].startswith("Invalid alarm severity: 77")
    assert all(record.exc_info is None for record in caplog.records)


def test_a_refused_put_is_left_to_the_write_log(caplog: pytest.LogCaptureFixture) -> None:
    circuit = logging.getLogger("caproto.circ")
    with caplog.at_level(logging.WARNING, logger="caproto.circ"):
        try:
            raise TypeRefused("X: nan is not a whole number")
        except TypeRefused:
            circuit.exception("Invalid write request by %s (%s): %r", "eve", "host", "cmd")
        try:
            raise RuntimeError("odd")
        except RuntimeError:
            circuit.exception("Invalid write request by %s (%s): %r", "eve", "host", "cmd")
    (record,) = caplog.records
    assert record.exc_info is None and record.getMessage().endswith("RuntimeError: odd")
