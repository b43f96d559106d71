"""How a channel behaves: switching, ramps, constant-current regulation, trips, measurements.

Everything here is a function of a `Channel` and explicit simulated times; nothing reads
a clock. Voltages and currents are magnitudes; measured values get the channel's sign.
"""

from __future__ import annotations

from enum import IntEnum

from icsbridge.ics.sim.nodes import Channel

MASK_EVENTS: dict[int, str] = {
    15: "Event.voltageLimitExceeded",
    14: "Event.currentLimitExceeded",
    13: "Event.currentTrip",
    12: "Event.externalInhibitActive",
    11: "Event.voltageBoundExceeded",
    10: "Event.currentBoundExceeded",
    9: "Event.arcError",
    7: "Event.constantVoltage",
    6: "Event.constantCurrent",
    5: "Event.emergency",
    4: "Event.endOfRamp",
    2: "Event.inputError",
    1: "Event.arc",
}
"""The event latch behind each bit of `Control.channelEventMask`."""

DEFAULT_EVENT_MASK = sum(1 << bit for bit in (15, 14, 13, 12, 5))
"""Blocking events at power-up: limits, trip, external inhibit and emergency off."""

DEFAULT_TRIP_TIME_MS = 100
FULL_SCALE_PER_SECOND = 100.0
"""Ramp speed (% of Vnom per second) of modules without a ramp-speed item (LV)."""

MIN_SPEED = 1e-3
"""Slowest ramp (V/s): the hardware's 1 mV/s."""

LOW_CURRENT_RANGE = 20e-6
"""Below this current (A) the hardware measures in its low range."""

MAX_EVENTS = 16
"""Most state changes one channel goes through in one call of `evolve`."""


class Action(IntEnum):
    """What a channel does on a delayed trip (0..4) or an external inhibit (0..3)."""

    NONE = 0
    RAMP_DOWN = 1
    OFF = 2
    MODULE_OFF = 3
    DISABLED = 4


def _action(ch: Channel, item: str, default: Action) -> Action:
    return Action(int(ch.values.get(item, default)))


def blocked(ch: Channel) -> bool:
    """Whether a latched event that the channel's event mask marks blocks switching on."""
    values = ch.values
    mask = int(values.get("Control.channelEventMask", DEFAULT_EVENT_MASK))
    return any(mask >> bit & 1 and values.get(name) for bit, name in MASK_EVENTS.items())


def can_switch_on(ch: Channel) -> bool:
    """Whether nothing (standby, emergency, blocking event, inhibit) holds the channel off."""
    inhibited = ch.inhibit and (
        _action(ch, "Setup.externalInhibitAction", Action.OFF) is not Action.NONE
    )
    return (
        ch.module.alive
        and not ch.values.get("Control.emergency", False)
        and not inhibited
        and not blocked(ch)
    )


def apply_switch(ch: Channel) -> None:
    """Make the output follow `Control.on` as far as the channel may."""
    if ch.values["Control.on"]:
        if not ch.on and can_switch_on(ch):
            ch.on = True
    else:
        ch.on = False


def switch_off(ch: Channel) -> None:
    """Switch the channel off with a ramp down."""
    ch.on = False
    ch.put("Control.on", False)


def off_now(ch: Channel) -> None:
    """Switch the channel off without a ramp: the output drops to zero at once."""
    switch_off(ch)
    ch.output = 0.0
    ch.ramp = 0
    ch.regulating = False
    ch.over_since = None
    refresh(ch)


def _act(ch: Channel, action: Action) -> None:
    if action is Action.RAMP_DOWN:
        switch_off(ch)
    elif action is Action.OFF:
        off_now(ch)
    elif action is Action.MODULE_OFF:
        for other in ch.module.channels:
            off_now(other)


def trip(ch: Channel, action: Action) -> None:
    """Trip the channel now: latch the trip, then carry out the action (NONE: event only)."""
    ch.trip_reported = True
    ch.put("Status.currentTrip", True)
    ch.latch("Event.currentTrip")
    if action is not Action.NONE:
        ch.latch("Error.currentTrip")
        _act(ch, action)


def force_trip(ch: Channel) -> None:
    """Trip the channel as its delayed-trip action says; off without ramp for 0 and 4."""
    action = _action(ch, "Setup.delayedTripAction", Action.OFF)
    trip(ch, action if action in (Action.RAMP_DOWN, Action.MODULE_OFF) else Action.OFF)


def set_inhibit(ch: Channel, active: bool) -> None:
    """Raise or drop the external inhibit input; raising it runs the inhibit action."""
    ch.inhibit = active
    ch.put("Status.externalInhibitActive", active)
    if active:
        relatch(ch)
        _act(ch, _action(ch, "Setup.externalInhibitAction", Action.OFF))


def relatch(ch: Channel) -> None:
    """Latch again the events of conditions that are still present (inhibit, emergency)."""
    if ch.inhibit:
        ch.latch("Event.externalInhibitActive")
        if _action(ch, "Setup.externalInhibitAction", Action.OFF) is not Action.NONE:
            ch.latch("Error.externalInhibitActive")
    if ch.values.get("Control.emergency"):
        ch.latch("Event.emergency")
        ch.latch("Error.emergency")


def emergency(ch: Channel, active: bool) -> None:
    """Emergency off (output to zero at once, switch-on locked) or its release."""
    ch.put("Status.emergency", active)
    if active:
        off_now(ch)
        relatch(ch)
    else:
        apply_switch(ch)


def _speed(ch: Channel, direction: int) -> float:
    values = ch.values
    if "Control.voltageRampspeedUp" in values:
        item = "Control.voltageRampspeedUp" if direction > 0 else "Control.voltageRampspeedDown"
        speed = float(values[item])
    else:
        percent = ch.module.values.get("Control.voltageRampspeed", FULL_SCALE_PER_SECOND)
        speed = float(percent) / 100.0 * ch.nominal_voltage
    return max(speed, MIN_SPEED)


def _ramp_flags(ch: Channel, direction: int, desired: float) -> None:
    if direction == ch.ramp:
        return
    if direction > 0:
        ch.latch("Event.voltageRampUp")
    elif direction < 0:
        ch.latch("Event.voltageRampDown")
    elif ch.output == desired:
        ch.latch("Event.endOfRamp")
    ch.ramp = direction


def evolve(ch: Channel, t0: float, t1: float) -> None:
    """Run a channel from time t0 to t1 (seconds): ramp, regulate, trip; then refresh it."""
    t = t0
    for _ in range(MAX_EVENTS):
        values = ch.values
        limit = float(values["Control.currentSet"]) * ch.load
        desired = float(values["Control.voltageSet"]) if ch.on else 0.0
        if ch.on and ch.output > limit:
            ch.output = limit
        ch.regulating = ch.on and desired > 0.0 and limit <= desired and ch.output >= limit
        deadline = None
        if ch.regulating:
            if ch.over_since is None:
                ch.over_since = t
                ch.latch("Event.constantCurrent")
            action = _action(ch, "Setup.delayedTripAction", Action.DISABLED)
            if ch.module.values.get("Control.kill"):
                trip(ch, Action.OFF)
                continue
            if action is not Action.DISABLED and not ch.trip_reported:
                delay = values.get("Setup.delayedTripTime", DEFAULT_TRIP_TIME_MS)
                deadline = ch.over_since + float(delay) / 1000.0
                if t >= deadline:
                    trip(ch, action)
                    continue
        else:
            ch.over_since = None
            ch.trip_reported = False
        goal = min(desired, limit)
        direction = (goal > ch.output) - (goal < ch.output)
        _ramp_flags(ch, direction, desired)
        if t >= t1:
            break
        t_next = t1 if deadline is None else min(t1, deadline)
        if direction:
            speed = _speed(ch, direction)
            reach = t + abs(goal - ch.output) / speed
            if reach <= t_next:
                t_next = reach
                ch.output = goal
            else:
                ch.output += direction * speed * (t_next - t)
        t = t_next
    refresh(ch)


def refresh(ch: Channel) -> None:
    """Write the channel's state into its status items and measurements."""
    ramping = ch.ramp != 0
    steady = ch.on and not ramping and not ch.regulating
    ch.put("Status.on", ch.on)
    ch.put("Status.ramping", ramping)
    ch.put("Status.voltageRamping", ramping)
    ch.put("Status.voltageRampUp", ch.ramp > 0)
    ch.put("Status.voltageRampDown", ch.ramp < 0)
    ch.put("Status.constantVoltage", steady)
    ch.put("Status.constantCurrent", ch.regulating)
    if steady:
        ch.latch("Event.constantVoltage")
    measure(ch)
    ch.ledger.dirty.add(ch)


def measure(ch: Channel) -> None:
    """Update the measured values, with noise while the module is alive."""
    voltage = ch.output
    current = voltage / ch.load
    noise = ch.ledger.noise
    if ch.module.alive and (noise.voltage or noise.current):
        gauss = ch.ledger.rng.gauss
        voltage += gauss(0.0, noise.voltage * ch.nominal_voltage)
        current += gauss(0.0, noise.current * ch.nominal_current)
    sign = ch.sign
    ch.put("Status.voltageMeasure", round(sign * voltage, 3))
    ch.put("Status.currentMeasure", round(sign * current, 12))
    ch.put(
        "Status.voltageTerminalMeasure", round(sign * (voltage + current * ch.lead_resistance), 3)
    )
    ch.put("Status.lowCurrentRange", abs(current) < LOW_CURRENT_RANGE)
