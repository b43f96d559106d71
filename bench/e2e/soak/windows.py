"""What the soak's clients saw of each fault: every monitored PV or variable, judged per fault.

A session process keeps one `Watch` per monitored item of each of its sessions. The soak
opens a window just before it injects a fault; while the window is open every watch keeps
the times its item turned bad or good (its first value counts as a change). Once the link
is ready again and the limits have passed, the soak asks for the judgement:

- bad: every item monitored since before the fault turned bad within the limit;
- good: every item monitored since before the link was ready again turned good within the
  limit after it, and none was good in between: none turned good again after it had turned
  bad, and none first seen after the bad limit had passed came good.

Items whose session left before they could be judged are left out; so are items first seen
after the moment they are judged at, and items already bad when the window opened (counted
as `before`: an item the iCS never reported stays bad whatever the link does).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

EARLY = 0.5
"""Seconds a good value may come before the link counts as ready (the two are seen by
different processes, and a log line is read a little after it was written)."""
EXAMPLES = 3
"""Names of failing items kept per judgement."""


@dataclass(eq=False, slots=True)
class Watch:
    """One monitored item of one session."""

    name: str
    since: float = 0.0
    """Arrival of its first value; 0 until then."""
    bad: bool = False
    """Whether its newest value is bad."""
    changes: list[tuple[float, bool]] = field(default_factory=list)
    """(arrival, bad) of every change while a window is open."""
    left: float = 0.0
    """When its session left; 0 while it stays."""
    before: bool = False
    """Whether it was bad already when the window opened."""


@dataclass(slots=True)
class Verdict:
    """How the items of one check fared in one fault."""

    watched: int = 0
    ok: int = 0
    late: int = 0
    missing: int = 0
    early: int = 0
    """Good while the link was still down (only for the good check)."""
    before: int = 0
    """Bad already before the fault: not judged."""
    worst: float | None = None
    """Seconds to the slowest item's change, of those that changed."""
    examples: list[str] = field(default_factory=list)

    def count(self, name: str, delay: float | None, limit: float) -> None:
        """Add one item that changed after `delay` seconds (None: it never did)."""
        self.watched += 1
        if delay is not None:
            self.worst = delay if self.worst is None else max(self.worst, delay)
        if delay is None:
            self.missing += 1
        elif delay > limit:
            self.late += 1
        else:
            self.ok += 1
            return
        if len(self.examples) < EXAMPLES:
            self.examples.append(name if delay is None else f"{name} ({delay:.1f} s)")

    def failed(self) -> int:
        """Items that broke the check."""
        return self.late + self.missing + self.early

    def merge(self, other: Verdict) -> None:
        """Add another process's verdict of the same check to this one."""
        self.watched += other.watched
        self.ok += other.ok
        self.late += other.late
        self.missing += other.missing
        self.early += other.early
        self.before += other.before
        if other.worst is not None:
            self.worst = other.worst if self.worst is None else max(self.worst, other.worst)
        self.examples = (self.examples + other.examples)[:EXAMPLES]


def first_change(watch: Watch, bad: bool, after: float) -> float | None:
    """Arrival of the watch's first change to `bad` at or after `after`, if any."""
    return next((t for t, state in watch.changes if state is bad and t >= after), None)


class Windows:
    """Every watch of one process, and the fault window they are judged in (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[Watch] = set()
        self.gone: list[Watch] = []
        self.opened = 0.0

    def add(self, name: str) -> Watch:
        """A new watch of a session's item, not seen yet."""
        watch = Watch(name)
        with self.lock:
            self.live.add(watch)
        return watch

    def see(self, watch: Watch, bad: bool, now: float) -> None:
        """A value of the watched item arrived at `now`."""
        with self.lock:
            if watch.since and watch.bad is bad:
                return
            if not watch.since:
                watch.since = now
            watch.bad = bad
            if self.opened:
                watch.changes.append((now, bad))

    def leave(self, watches: list[Watch], now: float) -> None:
        """A session left: its watches end (kept for the open window's judgement)."""
        with self.lock:
            for watch in watches:
                self.live.discard(watch)
                watch.left = now
                if self.opened and watch.since:
                    self.gone.append(watch)

    def open(self, now: float) -> None:
        """Begin a window: from now on every change is kept."""
        with self.lock:
            for watch in self.live:
                watch.changes.clear()
                watch.before = bool(watch.since) and watch.bad
            self.gone.clear()
            self.opened = now

    def judge(
        self, fault: float, bad_limit: float, ready: float, good_limit: float
    ) -> dict[str, Verdict]:
        """The verdicts of the open window, then close it.

        `fault`: when the fault began; `ready`: when the link was ready again (0: never).
        """
        with self.lock:
            watches = [*self.live, *self.gone]
            bad, good = Verdict(), Verdict()
            for watch in watches:
                if watch.since and watch.since < fault:
                    judge_bad(watch, bad, fault, bad_limit)
                if ready and watch.since and watch.since < ready - EARLY:
                    judge_good(watch, good, fault, bad_limit, ready, good_limit)
            for watch in self.live:
                watch.changes.clear()
            self.gone.clear()
            self.opened = 0.0
        return {"bad": bad, "good": good}


def judge_bad(watch: Watch, verdict: Verdict, fault: float, limit: float) -> None:
    """Count a watch monitored before the fault: did it turn bad in time?"""
    if watch.before:
        verdict.before += 1
        return
    turned = first_change(watch, True, fault)
    if turned is None and watch.left and watch.left < fault + limit:
        return
    verdict.count(watch.name, None if turned is None else max(0.0, turned - fault), limit)


def good_while_down(watch: Watch, fault: float, bad_limit: float, ready: float) -> float | None:
    """When the watch showed good while the link was down, if it did: good again after bad,
    or a first value that was good once the bad limit had passed."""
    turned_bad = False
    for when, bad in watch.changes:
        if when < fault:
            continue
        if when >= ready - EARLY:
            break
        if bad:
            turned_bad = True
        elif turned_bad or when > fault + bad_limit:
            return when
    return None


def judge_good(
    watch: Watch, verdict: Verdict, fault: float, bad_limit: float, ready: float, limit: float
) -> None:
    """Count a watch monitored before the link was ready: good again in time, not before?"""
    if watch.before:
        return
    early = good_while_down(watch, fault, bad_limit, ready)
    if early is not None:
        verdict.watched += 1
        verdict.early += 1
        if len(verdict.examples) < EXAMPLES:
            verdict.examples.append(f"{watch.name} (good {ready - early:.1f} s before ready)")
        return
    if watch.since < fault and not any(bad for _, bad in watch.changes):
        return  # never bad: the bad check counts it
    turned = first_change(watch, False, ready - EARLY)
    if turned is None and watch.left and watch.left < ready + limit:
        return
    verdict.count(watch.name, None if turned is None else max(0.0, turned - ready), limit)


def judgement(windows: Windows, args: list[str]) -> dict[str, object]:
    """The answer to a session process's `judge FAULT BAD_LIMIT READY GOOD_LIMIT`."""
    fault, bad_limit, ready, good_limit = map(float, args)
    verdicts = windows.judge(fault, bad_limit, ready, good_limit)
    return {name: dataclasses.asdict(verdict) for name, verdict in verdicts.items()}
