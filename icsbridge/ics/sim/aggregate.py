"""Summaries up the tree: running states, event and error counters, crate HV-on."""

from __future__ import annotations

from icsbridge.ics.sim.nodes import Channel, Crate, Ledger, Module

RANK = {"off": 0, "ok": 1, "info": 2, "error": 3, "disabled": 4}
"""Precedence of `Status.runningState`: a summary takes the highest of its parts."""

COUNTER_MAX = 65535
HV_ON_VOLTS = 63.0
"""A crate shows HV on while some output measures more than this."""


def channel_state(ch: Channel) -> str:
    """The channel's `Status.runningState`."""
    if not ch.module.alive:
        return "disabled"
    if ch.own_errors:
        return "error"
    if ch.ramp:
        return "info"
    return "ok" if ch.on else "off"


def _worst(state: str, other: str) -> str:
    return other if RANK[other] > RANK[state] else state


def _counters(node: Channel | Module | Crate, events: int, errors: int, state: str) -> None:
    node.put("Status.eventCounter", min(events, COUNTER_MAX))
    node.put("Status.errorCounter", min(errors, COUNTER_MAX))
    node.put("Status.runningState", state)


def _module(module: Module) -> tuple[int, int, str, bool]:
    events, errors = module.own_events, module.own_errors
    state = "error" if errors else "off"
    lit = False
    for ch in module.channels:
        events += ch.own_events
        errors += ch.own_errors
        state = _worst(state, channel_state(ch))
        lit = lit or ch.on or ch.output > HV_ON_VOLTS
    if not module.alive:
        state = "disabled"
    _counters(module, events, errors, state)
    return events, errors, state, lit


def _crate(crate: Crate) -> None:
    events, errors = crate.own_events, crate.own_errors
    state = "error" if errors else "off"
    lit = False
    for module in crate.modules:
        m_events, m_errors, m_state, m_lit = _module(module)
        events += m_events
        errors += m_errors
        state = _worst(state, m_state)
        lit = lit or m_lit
    if not crate.powered:
        state = "disabled"
    _counters(crate, events, errors, state)
    crate.put("Status.on", lit)


def aggregate(ledger: Ledger) -> None:
    """Recount and summarise every object the ledger marks dirty, and the objects above it."""
    if not ledger.dirty:
        return
    crates: set[Crate] = set()
    for node in ledger.dirty:
        if node.latches_dirty:
            node.recount()
        if isinstance(node, Channel):
            _counters(node, node.own_events, node.own_errors, channel_state(node))
            crates.add(node.module.crate)
        elif isinstance(node, Module):
            crates.add(node.crate)
        elif isinstance(node, Crate):
            crates.add(node)
    ledger.dirty.clear()
    for crate in crates:
        _crate(crate)
