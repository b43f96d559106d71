"""Channel Access clients that keep coming and going: one libca context each, in threads.

    python -m e2e.soak.ca_sessions        (bench/ on the path; see e2e.soak.module_command)

Each client connects a random subset of the PVs, monitors them (DBR_TIME of the native type,
DBE_VALUE|DBE_ALARM), stays a random while, then clears every channel and stays away a
moment, so libca closes its circuit and the server sees the client leave, and starts again
with another subset. Every KEEP_EVERY-th client does not stay away: it goes on to its next
subset at once, as a display manager opening and closing screens does, and libca carries on
with the same circuit. A client keeps its libca context: destroying and creating contexts
grew the process by ~40 kB a session.
Severity INVALID counts as bad. Callbacks come on the threads of the circuit, which end with
it, so no thread state is kept for them (`ca_client.keep_thread_state` would leak one per
circuit). One command per stdin line, one JSON answer each:

- `start COUNT SIZE_MIN SIZE_MAX LIFE_MIN LIFE_MAX NAMES_FILE SEED LINK_PV KEEP_EVERY`: run
  COUNT clients on the PV names of NAMES_FILE (KEEP_EVERY 0: all leave); LINK_PV (or `-`)
  is monitored by one more context that stays, as a string -> `started`.
- `open` / `judge FAULT BAD_LIMIT READY GOOD_LIMIT`: a fault window (e2e.soak.windows).
- `link`: changes of LINK_PV since the last `link` -> `changes` ([time, text], ...).
- `stats` -> `sessions`, `watching`, `events`, `unconnected`, `errors`, `last_error`.
- `stop`: every client leaves -> `stopped`.
"""

from __future__ import annotations

import ctypes
import json
import random
import sys
import threading
import time
from collections import deque
from pathlib import Path

from ..ca_client import (
    CONNECT,
    CS_CONN,
    DBE_ALARM,
    DBE_VALUE,
    DBR_TIME_OFFSET,
    ECA_NORMAL,
    EVENT,
    EventArgs,
    Stamp,
    _libca,
)
from .windows import Watch, Windows, judgement

INVALID = 3
"""The CA alarm severity the bridge gives every PV while the iCS link is not ready."""
DBR_TIME_STRING = 14
STRING_OFFSET = 12
"""Bytes from the start of a dbr_time_string to its value."""
CONNECT_TIMEOUT = 10.0
AWAY = (1.0, 3.0)
"""Seconds a client that leaves stays away before its next session."""
LINK_CHANGES = 200
"""Changes of the link PV kept until asked for."""
NO_CALLBACK = CONNECT()
"""A null connection callback: `ca_pend_io` waits for such channels to connect."""


class CaSessions:
    """The clients of one process, their watches and the link PV's changes."""

    def __init__(self) -> None:
        self.lib = _libca()
        self.lib.ca_context_create.argtypes = (ctypes.c_int,)
        self.lib.ca_pend_io.argtypes = (ctypes.c_double,)
        self.windows = Windows()
        self.watches: dict[int, Watch] = {}
        self.ids = iter(range(1, 1 << 62))
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.link: deque[tuple[float, str]] = deque(maxlen=LINK_CHANGES)
        self.link_state = ""
        self.sessions = self.events = self.unconnected = self.errors = 0
        self.error = ""
        self._on_event = EVENT(self._event)
        self._on_link = EVENT(self._link_event)

    def _event(self, args: EventArgs) -> None:
        watch = self.watches.get(args.usr or 0)
        if args.status != ECA_NORMAL or watch is None:
            return
        self.events += 1
        severity = Stamp.from_address(args.dbr).severity
        self.windows.see(watch, severity >= INVALID, time.time())

    def _link_event(self, args: EventArgs) -> None:
        if args.status == ECA_NORMAL:
            text = ctypes.string_at(args.dbr + STRING_OFFSET).decode("latin-1")
            if text != self.link_state:
                self.link_state = text
                self.link.append((time.time(), text))

    def _channels(self, names: list[str]) -> list[tuple[str, ctypes.c_void_p]]:
        """Channels of `names` in this thread's context, those connected within the timeout."""
        chids = []
        for name in names:
            chid = ctypes.c_void_p()
            self.lib.ca_create_channel(name.encode(), NO_CALLBACK, None, 0, ctypes.byref(chid))
            chids.append((name, chid))
        self.lib.ca_pend_io(CONNECT_TIMEOUT)
        connected = [(name, chid) for name, chid in chids if self.lib.ca_state(chid) == CS_CONN]
        self.unconnected += len(chids) - len(connected)
        return connected

    def session(self, names: list[str], life: float) -> None:
        """One client: connect and monitor `names`, stay `life` seconds, clear every channel
        (libca then closes the circuit: the server sees the client leave)."""
        idents: list[int] = []
        channels = self._channels(names)
        try:
            self.sessions += 1
            for name, chid in channels:
                ident = next(self.ids)
                self.watches[ident] = self.windows.add(name)
                idents.append(ident)
                self.lib.ca_create_subscription(
                    self.lib.ca_field_type(chid) + DBR_TIME_OFFSET,
                    self.lib.ca_element_count(chid),
                    chid,
                    DBE_VALUE | DBE_ALARM,
                    self._on_event,
                    ident,
                    None,
                )
            self.lib.ca_flush_io()
            self.stopping.wait(life)
        finally:
            for _, chid in channels:
                self.lib.ca_clear_channel(chid)
            self.lib.ca_flush_io()
            self.windows.leave([self.watches.pop(ident) for ident in idents], time.time())

    def client(
        self,
        names: list[str],
        sizes: tuple[int, int],
        lives: tuple[float, float],
        seed: int,
        keeps: bool,
    ) -> None:
        """Sessions one after the other until stopped: away a moment between two (so the
        circuit closes), or, if the client `keeps` its circuit, none."""
        rng = random.Random(seed)
        self.stopping.wait(rng.uniform(0, 2))
        self.lib.ca_context_create(1)
        try:
            while not self.stopping.is_set():
                try:
                    self.session(rng.sample(names, rng.randint(*sizes)), rng.uniform(*lives))
                except Exception as exc:
                    self.errors += 1
                    self.error = f"{type(exc).__name__}: {exc}"[:300]
                    self.stopping.wait(1)
                if not keeps:
                    self.stopping.wait(rng.uniform(*AWAY))
        finally:
            self.lib.ca_context_destroy()

    def watch_link(self, name: str) -> None:
        """Monitor the link PV as a string until stopped."""
        self.lib.ca_context_create(1)
        try:
            for _, chid in self._channels([name]):
                self.lib.ca_create_subscription(
                    DBR_TIME_STRING, 1, chid, DBE_VALUE, self._on_link, None, None
                )
            self.lib.ca_flush_io()
            self.stopping.wait()
        finally:
            self.lib.ca_context_destroy()

    def start(
        self,
        count: str,
        low: str,
        high: str,
        shortest: str,
        longest: str,
        path: str,
        seed: str,
        link: str,
        keep_every: str,
    ) -> dict[str, object]:
        """Start the clients (and the link PV's watcher)."""
        names = Path(path).read_text("utf-8").split()
        sizes, lives = (int(low), int(high)), (float(shortest), float(longest))
        for index in range(int(count)):
            keeps = int(keep_every) > 0 and index % int(keep_every) == 0
            args = (names, sizes, lives, int(seed) * 1000 + index, keeps)
            self.threads.append(threading.Thread(target=self.client, args=args, daemon=True))
        if link != "-":
            self.threads.append(threading.Thread(target=self.watch_link, args=(link,), daemon=True))
        for thread in self.threads:
            thread.start()
        return {"started": int(count)}

    def stop(self) -> dict[str, object]:
        """Make every client leave; how many threads ended."""
        self.stopping.set()
        deadline = time.monotonic() + 30
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return {"stopped": sum(not thread.is_alive() for thread in self.threads)}

    def run(self, line: str) -> dict[str, object]:
        """The answer to one command line."""
        command, *args = line.split()
        match command:
            case "start":
                return self.start(*args)
            case "open":
                self.windows.open(time.time())
                return {"time": time.time()}
            case "judge":
                return judgement(self.windows, args)
            case "link":
                changes = list(self.link)
                self.link.clear()
                return {"changes": changes}
            case "stats":
                return {
                    "sessions": self.sessions,
                    "watching": len(self.watches),
                    "events": self.events,
                    "unconnected": self.unconnected,
                    "errors": self.errors,
                    "last_error": self.error,
                }
            case "stop":
                return self.stop()
        raise ValueError(f"unknown command {command!r}")


def main() -> None:
    """Answer commands from stdin until it closes."""
    sessions = CaSessions()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = sessions.run(line)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    sessions.stop()


if __name__ == "__main__":
    main()
