"""The loop thread: coroutines run from synchronous code, with timeouts and a clean stop."""

from __future__ import annotations

import asyncio

import pytest

from icsbridge.compat.loop import LoopThread
from icsbridge.ics.client import LinkDown


async def answer(value: int, delay: float = 0.0) -> int:
    await asyncio.sleep(delay)
    return value


def test_a_call_returns_the_result_and_stop_ends_the_thread() -> None:
    loop = LoopThread("test loop")
    assert loop.call(answer(42), timeout=5) == 42
    loop.stop()
    assert not loop.running and not loop.thread.is_alive()
    with pytest.raises(LinkDown, match="test loop is disconnected"):
        loop.call(answer(1), timeout=5)
    loop.stop()


def test_a_call_that_takes_too_long_is_cancelled() -> None:
    loop = LoopThread("test loop")
    started: list[asyncio.Task[object]] = []

    async def slow() -> None:
        started.append(asyncio.current_task())  # type: ignore[arg-type]
        await asyncio.sleep(60)

    try:
        with pytest.raises(TimeoutError, match=r"no answer within 0\.05 s"):
            loop.call(slow(), timeout=0.05)
        assert loop.call(answer(0, 0.01), timeout=5) == 0
        assert started[0].cancelled()
    finally:
        loop.stop()


def test_stop_cancels_what_still_runs() -> None:
    loop = LoopThread("test loop")

    async def start_forever() -> asyncio.Task[int]:
        return asyncio.create_task(answer(1, 60))

    task = loop.call(start_forever(), timeout=5)
    loop.stop()
    assert task.cancelled()
