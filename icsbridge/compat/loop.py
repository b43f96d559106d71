"""An asyncio event loop in a thread of its own, driven from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from icsbridge.ics.client import LinkDown

T = TypeVar("T")


class LoopThread:
    """A daemon thread running one event loop; `call` runs a coroutine there and waits."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        """Whether the loop still takes work."""
        return self.thread.is_alive() and not self._loop.is_closed()

    def call(self, work: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `work` on the loop and return its result; `TimeoutError` after `timeout` s.

        Raises `LinkDown` once the loop has been stopped.
        """
        if not self.running:
            work.close()
            raise LinkDown(f"{self.thread.name} is disconnected")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.thread.name}: no answer within {timeout:g} s") from None

    def stop(self) -> None:
        """Cancel what still runs on the loop, end the thread and close the loop."""
        if not self.running:
            return
        asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self.thread.join()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _cancel_others() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
