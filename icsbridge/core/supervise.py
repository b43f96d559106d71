"""A face's one long-running task kept running: what the bridge does should it ever fail.

A failure is logged with its traceback, and the task starts over after a pause that doubles
while failures repeat (so one that recurs cannot spin or flood the log), from the first
pause again once a run lasted longer than the longest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

RESTART_PAUSES = (0.1, 60.0)
"""Seconds before a failed task starts over: the first, and the longest."""


async def keep_running(
    run: Callable[[], Awaitable[None]],
    what: str,
    restarted: Callable[[], None],
    log: logging.Logger,
    pauses: tuple[float, float] = RESTART_PAUSES,
) -> None:
    """Await `run()` again and again until cancelled, each failure logged to `log`; call
    `restarted` before each rerun."""
    loop = asyncio.get_running_loop()
    first, longest = pauses
    pause = 0.0
    while True:
        started = loop.time()
        try:
            await run()
        except Exception:
            log.exception("the %s failed; it starts over, with every value", what)
        calm = loop.time() - started > longest
        pause = first if calm or not pause else min(2 * pause, longest)
        await asyncio.sleep(pause)
        restarted()
