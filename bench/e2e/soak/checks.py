"""What the soak demands of the bridge, checked against everything the run recorded.

Writes are matched to the simulator's setItems by item key and value: every write sets a
value no other write sets, so a setItem names its write, however late it came.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .bridge_log import BridgeLog
from .faults import Kind
from .memory import Growth
from .timeline import Fault, Timeline

ENDINGS = {"confirmed", "refused", "down", "unconfirmed"}
"""The outcomes a write may end with; "down" is a refusal because the link was not ready."""
NOT_SENT = {"refused", "down"}
EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Check:
    """One demand and whether the run met it."""

    name: str
    ok: bool
    detail: str


def value_key(key: str, value: float | str) -> tuple[str, float]:
    """How a write and a setItem are matched: item key and value to the hundredth."""
    return key, round(float(value), 2)


def annotate(writes: list[dict[str, Any]], set_items: list[dict[str, Any]], log: BridgeLog) -> None:
    """Mark each write: `reached` the simulator, `applied` there, `late` line logged."""
    received = {value_key(s["key"], s["value"]): s for s in set_items}
    late = {(line.key, round(number, 2)) for line in log.late for number in line.numbers}
    for write in writes:
        found = received.get(value_key(write["key"], write["value"]))
        write["reached"] = found is not None
        write["applied"] = bool(found and found["applied"])
        write["late"] = value_key(write["key"], write["value"]) in late


def _named(writes: Iterable[dict[str, Any]]) -> str:
    shown = [
        f"{w['face']} {w['name']}={w['value']} {w['outcome']}"
        + (f" ({w['detail'][:120]})" if w["detail"] else "")
        for w in writes
    ]
    return "; ".join(shown[:EXAMPLES])


def _writes_check(name: str, bad: list[dict[str, Any]], of: int, what: str) -> Check:
    if not bad:
        return Check(name, True, f"{of:,} {what}")
    return Check(name, False, f"{len(bad):,} of {of:,} {what}: {_named(bad)}")


def write_checks(writes: list[dict[str, Any]], log: BridgeLog) -> list[Check]:
    """Every write ended well, nothing refused was sent, late applications were logged."""
    ended = Counter(w["outcome"] for w in writes)
    summary = ", ".join(f"{count:,} {outcome}" for outcome, count in ended.most_common())
    checks = [
        Check(
            "every write confirmed, refused or unconfirmed",
            not [w for w in writes if w["outcome"] not in ENDINGS],
            summary
            + "".join(
                f"; {_named([w for w in writes if w['outcome'] == o])}"
                for o in ended
                if o not in ENDINGS
            ),
        ),
        _writes_check(
            "invalid writes refused",
            [w for w in writes if w["invalid"] and w["outcome"] != "refused"],
            sum(w["invalid"] for w in writes),
            "invalid writes",
        ),
        _writes_check(
            "no refused write reached the iCS",
            [w for w in writes if w["outcome"] in NOT_SENT and w["reached"]],
            sum(w["outcome"] in NOT_SENT for w in writes),
            "refused (link down included)",
        ),
        _writes_check(
            "confirmed writes applied by the iCS",
            [w for w in writes if w["outcome"] == "confirmed" and not w["applied"]],
            ended["confirmed"],
            "confirmed",
        ),
        _writes_check(
            'unconfirmed writes the iCS applied logged "applied late"',
            [w for w in writes if w["outcome"] == "unconfirmed" and w["applied"] and not w["late"]],
            sum(w["outcome"] == "unconfirmed" and w["applied"] for w in writes),
            "unconfirmed and applied",
        ),
    ]
    known = {
        value_key(w["key"], w["value"])
        for w in writes
        if w["applied"] and w["outcome"] != "confirmed"
    }
    false = [
        line for line in log.late if not any(value_key(line.key, n) in known for n in line.numbers)
    ]
    checks.append(
        Check(
            '"applied late" only for writes applied and not confirmed',
            not false,
            f"{len(log.late):,} lines"
            + "".join(f"; {line.text[-160:]}" for line in false[:EXAMPLES]),
        )
    )
    return checks


def in_flight(fault: Fault, writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Valid writes started while the fault lasted that the bridge did send."""
    return [
        w
        for w in writes
        if fault.began <= w["start"] < fault.ended
        and not w["invalid"]
        and w["outcome"] not in NOT_SENT
    ]


def fault_checks(faults: list[Fault], writes: list[dict[str, Any]]) -> list[Check]:
    """Every fault showed in time on every item, everything was good again in time."""
    not_ready = [f for f in faults if f.ready is None]
    checks = [
        Check(
            "link ready again after every fault",
            not not_ready,
            f"{len(faults)} faults"
            + "".join(f"; minute {f.minute} {f.kind}: never ready" for f in not_ready),
        )
    ]
    for check, name in (
        ("bad", "bad in time after every fault"),
        ("good", "good again within the limit of the link being ready"),
    ):
        failing = [
            f"minute {f.minute} {f.kind} {face}: {v.failed()} of {v.watched} "
            f"({v.late} late, {v.missing} never"
            + (f", {v.early} good while down" if v.early else "")
            + f") e.g. {', '.join(v.examples)}"
            for f in faults
            for face, verdicts in f.verdicts.items()
            if (v := verdicts[check]).failed()
        ]
        watched = sum(v[check].watched for f in faults for v in f.verdicts.values())
        before = sum(v[check].before for f in faults for v in f.verdicts.values())
        judged = f"{watched:,} items judged" + (
            f", {before:,} left out (bad before the fault)" if before else ""
        )
        checks.append(Check(name, not failing, "; ".join([*failing, judged])))
    stops = [f for f in faults if f.kind is Kind.STOPPED]
    empty = [f.minute for f in stops if not in_flight(f, writes)]
    checks.append(
        Check(
            "writes in flight while the iCS was stopped",
            not empty,
            f"{sum(len(in_flight(f, writes)) for f in stops)} writes in {len(stops)} stops"
            + (f"; none in minute(s) {empty}" if empty else ""),
        )
    )
    return checks


def memory_check(growth: dict[str, Growth], limit: float) -> Check:
    """No process grew by `limit` % or more after the warm-up."""
    over = {name: g for name, g in growth.items() if g.percent >= limit}
    shown = over or growth
    return Check(
        f"memory grows less than {limit:g} % after warm-up",
        bool(growth) and not over,
        ", ".join(
            f"{name} {g.start_mib:.0f}→{g.end_mib:.0f} MiB ({g.percent:+.1f} %)"
            for name, g in shown.items()
        )
        or "no samples",
    )


def log_check(log: BridgeLog, limit: int) -> Check:
    """No minute of the soak had more than `limit` log lines."""
    floods = {minute: n for minute, n in sorted(log.lines.items()) if minute >= 0 and n > limit}
    busiest = max((n for minute, n in log.lines.items() if minute >= 0), default=0)
    return Check(
        f"at most {limit} log lines a minute",
        not floods,
        f"busiest minute {busiest} lines"
        + "".join(
            f"; minute {m}: {n} lines ({log.warnings[m]} warnings or worse)"
            for m, n in floods.items()
        ),
    )


def client_check(stats: dict[str, Any]) -> Check:
    """The session processes did come and go, and the bridge took their monitored items."""
    sessions = {name: s.get("sessions", 0) for name, s in stats.items()}
    refused = sum(s.get("refused", 0) for s in stats.values())
    errors = {
        name: s.get("last_error") or s["error"]
        for name, s in stats.items()
        if s.get("last_error") or s.get("error")
    }
    return Check(
        "clients came and went",
        all(sessions.values()) and not refused,
        ", ".join(f"{name}: {n} sessions" for name, n in sessions.items())
        + (f"; {refused} monitored items refused" if refused else "")
        + "".join(f"; {name} last error: {error[:160]}" for name, error in errors.items()),
    )


def all_checks(
    timeline: Timeline,
    growth: dict[str, Growth],
    *,
    memory_limit: float,
    log_limit: int,
    stats: dict[str, Any],
    died: str | None,
) -> list[Check]:
    """Every check of the run, in the order they are shown."""
    log = timeline.system.log
    return [
        Check("no process died", died is None, died or "all ran to the end"),
        client_check(stats),
        *fault_checks(timeline.faults, timeline.writes),
        *write_checks(timeline.writes, log),
        memory_check(growth, memory_limit),
        log_check(log, log_limit),
    ]
