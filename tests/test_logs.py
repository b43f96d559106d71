"""The bridge's log lines: one line each whatever a peer sends, floods throttled with a count."""

from __future__ import annotations

import io
import logging

import pytest

from icsbridge import logs


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.EscapingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_text_from_a_peer_cannot_break_or_forge_a_line(captured) -> None:
    logger, stream = captured
    forged = "alice\n2026-12-04 10:00:00 INFO icsbridge.core.writes: write X confirmed\r\x1b[2J"
    logger.warning("write by %s@%s", forged, "host\u2028two")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "alice\\n2026-12-04" in lines[0] and "\\r\\x1b[2J" in lines[0]
    assert "host\\u2028two" in lines[0]


def test_tracebacks_of_the_bridge_keep_their_lines(captured) -> None:
    logger, stream = captured
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    assert stream.getvalue().splitlines()[0] == "ERROR failed"
    assert "Traceback" in stream.getvalue()


def test_a_flood_is_throttled_and_counted(captured) -> None:
    logger, stream = captured
    now = [0.0]
    throttle = logs.Throttle(logger, period=10.0, burst=3, clock=lambda: now[0])
    for index in range(10_000):
        throttle("malformed frame %d", index)
    now[0] = 10.0
    throttle("malformed frame %d", 10_000)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["WARNING malformed frame 0", "WARNING malformed frame 1"]
    assert lines[2].startswith("WARNING malformed frame 2 (more like it held back")
    assert lines[3] == "WARNING malformed frame 10000 (9997 more like it left out before)"
    assert len(lines) == 4
    assert throttle.count == 10_001
