"""A face's task kept running: restarted after each failure, ever more slowly while it fails."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from icsbridge.core.supervise import keep_running

LOG = logging.getLogger("tests.supervise")


async def test_a_failing_task_restarts_with_growing_pauses_and_a_traceback_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    restarts: list[float] = []
    done = asyncio.Event()

    async def run() -> None:
        starts.append(loop.time())
        if len(starts) == 5:
            done.set()
            await asyncio.Event().wait()
        raise RuntimeError("broken")

    with caplog.at_level(logging.ERROR):
        task = asyncio.create_task(
            keep_running(run, "test task", lambda: restarts.append(0), LOG, (0.02, 1.0))
        )
        await done.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    pauses = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(longer > shorter for shorter, longer in itertools.pairwise(pauses))
    assert pauses[0] >= 0.02 and len(restarts) == 4
    assert [r.exc_info is not None for r in caplog.records] == [True] * 4
    assert "the test task failed; it starts over" in caplog.text
