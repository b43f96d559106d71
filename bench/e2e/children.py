"""Child processes of the bench: started, talked to, measured and always killed.

Every child is registered and killed at exit, whatever ends the bench. Output is read by
threads, so no child ever blocks on a full pipe and every wait has a deadline.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
"""The checkout the bench lives in: its `icsbridge` is the one measured."""

_running: list[Child] = []


def python_command(*args: str) -> list[str]:
    """This Python, with these arguments."""
    return [sys.executable, *args]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment, the checkout first on PYTHONPATH, plus `extra`."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


class ChildError(RuntimeError):
    """A child died, answered with an error, or did not answer in time."""


class Child:
    """A subprocess whose stdout lines queue up and whose stderr is kept (its tail) and searched.

    `patterns` maps names to regular expressions; the first stderr line matching each is
    recorded with its time, for `wait_for`. `on_stderr`, if given, is called with every
    stderr line (from the reading thread).
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        *,
        stdin: bool = False,
        merge_stderr: bool = False,
        patterns: dict[str, str] | None = None,
        on_stderr: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._on_stderr = on_stderr
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        _running.append(self)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self._patterns = {key: re.compile(value) for key, value in (patterns or {}).items()}
        self.found: dict[str, tuple[float, re.Match[str]]] = {}
        self._found = threading.Condition()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        if not merge_stderr:
            threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.tail.append(line.rstrip("\n"))
            if self._on_stderr is not None:
                self._on_stderr(line.rstrip("\n"))
            for key, pattern in self._patterns.items():
                if key not in self.found and (match := pattern.search(line)):
                    with self._found:
                        self.found[key] = (time.monotonic(), match)
                        self._found.notify_all()

    def wait_for(self, key: str, timeout: float) -> tuple[float, re.Match[str]]:
        """Seconds from start to the first stderr line matching pattern `key`, and the match."""
        deadline = time.monotonic() + timeout
        with self._found:
            while key not in self.found:
                if self.process.poll() is not None:
                    raise self.error(f"exited ({self.process.returncode}) before /{key}/")
                if time.monotonic() >= deadline:
                    raise self.error(f"no /{key}/ in {timeout:.0f} s")
                self._found.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            when, match = self.found[key]
        return when - self.started, match

    def send(self, text: str) -> None:
        """Write to the child's stdin."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(text)
            self.process.stdin.flush()
        except OSError as exc:
            raise self.error(f"stdin closed: {exc}") from exc

    def line(self, timeout: float) -> str:
        """The next stdout line."""
        try:
            line = self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise self.error(f"no output in {timeout:.0f} s") from None
        if line is None:
            self.lines.put(None)
            raise self.error(f"exited ({self.process.wait()})")
        return line

    def reply(self, timeout: float) -> dict[str, Any]:
        """The next JSON object on stdout (other lines are skipped); raise if it is an error."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(deadline - time.monotonic())
            if line.startswith("{"):
                answer: dict[str, Any] = json.loads(line)
                if "error" in answer:
                    raise self.error(answer["error"])
                return answer

    def ask(self, command: str, timeout: float) -> dict[str, Any]:
        """Send one command line and return its JSON answer."""
        self.send(command + "\n")
        return self.reply(timeout)

    def error(self, what: str) -> ChildError:
        """An error about this child, with the tail of its stderr."""
        tail = "\n".join(list(self.tail)[-10:])
        return ChildError(f"{self.name}: {what}" + (f"\n{tail}" if tail else ""))

    def stop(self, grace: float = 5.0) -> None:
        """Terminate the child (and its process group); kill it if it lingers."""
        if self.process.poll() is None:
            _signal(self.process, kill=False)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal(self.process, kill=True)
                self.process.wait(grace)
        if self in _running:
            _running.remove(self)


def _signal(process: subprocess.Popen[str], *, kill: bool) -> None:
    """Terminate or kill a child and every process of its own session."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        try:
            if kill:
                proc.kill()
            else:
                proc.terminate()
        except psutil.NoSuchProcess:
            pass


@atexit.register
def _kill_all() -> None:
    for child in list(_running):
        child.stop(grace=2.0)


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds used so far and resident memory of a process and all its descendants."""

    cpu: float
    rss: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        """The usage of the process tree rooted at `pid` now."""
        root = psutil.Process(pid)
        cpu, rss = 0.0, 0
        for proc in (root, *root.children(recursive=True)):
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return cls(cpu, rss)
