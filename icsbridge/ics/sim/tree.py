"""The simulated object tree at power-up: every object with every item at its initial value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from icsbridge.catalog import Catalog, ItemSpec, ModuleKind, ModuleOption, ValueType
from icsbridge.ics.sim.nodes import Channel, Crate, Ledger, Module, Node, Shape
from icsbridge.ics.sim.physics import DEFAULT_EVENT_MASK, DEFAULT_TRIP_TIME_MS, Action
from icsbridge.ics.sim.topology import LineConfig, ModuleConfig, Topology
from icsbridge.ics.values import Value
from icsbridge.model import CRATE_ADDRESS, ItemPath, Level

MODULE_RAMP_PERCENT = 5.0
"""Power-up `Control.voltageRampspeed` (% of Vnom per second)."""

CHANNEL_RAMP_FRACTION = 0.05
"""Power-up per-channel ramp speed, as a fraction of Vnom (or Inom) per second."""

LV_LEAD_RESISTANCE = 0.02
"""Ohms between sense and terminal of an LV output: the terminal reads slightly higher."""

_ZERO: dict[ValueType, Value] = {
    ValueType.BOOL: False,
    ValueType.INT: 0,
    ValueType.FLOAT: 0.0,
    ValueType.TEXT: "",
}
_TYPES: dict[ValueType, type] = {
    ValueType.BOOL: bool,
    ValueType.INT: int,
    ValueType.FLOAT: float,
    ValueType.TEXT: str,
}


@dataclass(frozen=True, slots=True)
class Tree:
    """Every simulated object, by kind and by path."""

    system: Node
    crates: tuple[Crate, ...]
    modules: tuple[Module, ...]
    channels: tuple[Channel, ...]
    nodes: Mapping[ItemPath, Node]


INTERFACES = {
    "eth0": "TCP/IP (Ethernet)",
    "wlan0": "TCP/IP (Wi-Fi)",
    "usbAux": "USB",
    "usbRemote": "USB",
}
"""Interfaces besides the CAN lines that the simulated iCS host reports, and protocols."""


def _values(shape: Shape, initial: Mapping[str, Value]) -> dict[str, Value]:
    """Every readable item of a shape at its initial value, typed as the catalog says."""
    values: dict[str, Value] = {}
    for name, spec in shape.specs.items():
        if spec.access.readable:
            values[name] = _TYPES[spec.type](initial.get(name, _ZERO[spec.type]))
    return values


class _Shapes:
    def __init__(self, items: Catalog) -> None:
        self._items = items
        self._cache: dict[tuple[Level, ModuleKind, frozenset[ModuleOption]], Shape] = {}

    def __call__(
        self, level: Level, kind: ModuleKind = ModuleKind.HV, options: Iterable[ModuleOption] = ()
    ) -> Shape:
        key = (level, kind, frozenset(options))
        if key not in self._cache:
            specs: list[ItemSpec] = self._items.level(level, kind, key[2])
            self._cache[key] = Shape.of(specs)
        return self._cache[key]


def _system(topology: Topology) -> dict[str, Value]:
    lines = [line.line for line in topology.lines]
    return {
        "Status.runningStateIcs": "ok",
        "Status.runningStateWeb": "ok",
        "Status.runningStateWifi": "off",
        "Status.runningStateEthernet": "ok",
        "Status.runningStateCAN": "00",
        "Status.runningStateSystem": "ok",
        "Status.canState": "0",
        "Status.canText": "ok",
        "Status.discover": ",".join([*(f"can{line}" for line in lines), *INTERFACES]),
        "Status.protocols": ",".join(["CAN"] * len(lines) + list(INTERFACES.values())),
        "Status.ethernetState": "up",
        "Status.wifiState": "off",
        "Status.usbAuxState": "0",
        "Status.usbAuxText": "not connected",
        "Status.usbRemoteState": "0",
        "Status.usbRemoteText": "not connected",
        "Setup.cycleTime": 1000,
    }


def _crate(line: LineConfig, temperatures: tuple[float, float]) -> dict[str, Value]:
    good = (
        "Status.mainsGood",
        "Status.supplyGood",
        "Status.batteryGood",
        "Status.temperatureGood",
        "Status.power",
        "Status.isAlive",
        "Control.power",
    )
    return {
        **dict.fromkeys(good, True),
        "Status.runningState": "off",
        "Status.temperature0": round(temperatures[0], 2),
        "Status.temperature1": round(temperatures[1], 2),
        "Status.firmwareName": line.crate.firmware_name,
        "Status.firmwareRelease": line.crate.firmware_release,
    }


def _module(config: ModuleConfig, temperature: float) -> dict[str, Value]:
    good = (
        "Control.adjustment",
        "Status.adjustment",
        "Status.isAlive",
        "Status.temperatureGood",
        "Status.supplyGood",
        "Status.safetyLoopClosed",
        "Control.userHardwareCheck",
    )
    return {
        **dict.fromkeys(good, True),
        "Control.voltageRampspeed": MODULE_RAMP_PERCENT,
        "Control.currentRampspeed": 10.0,
        "Control.moduleEventMask": sum(1 << bit for bit in (14, 13, 10, 6)),
        "Control.moduleChannelEventMask": (1 << min(config.channels, 16)) - 1,
        "Setup.adcSampleRate": 50,
        "Setup.digitalFilter": 64,
        "Status.runningState": "off",
        "Status.serialNumber": str(config.serial),
        "Status.firmwareName": config.firmware_name,
        "Status.firmwareRelease": config.firmware_release,
        "Status.temperature": round(temperature, 2),
    }


def _modes(nominal: float) -> str:
    return ",".join(format(nominal * share, "g") for share in (1.0, 2 / 3, 1 / 3))


def _channel(config: ModuleConfig, ch: Channel) -> dict[str, Value]:
    vnom, inom = ch.nominal_voltage, ch.nominal_current
    signed = config.voltage_nominal
    ramp_v, ramp_i = CHANNEL_RAMP_FRACTION * vnom, CHANNEL_RAMP_FRACTION * inom
    return {
        "Control.currentSet": ch.current_limit,
        "Control.voltageRampspeedUp": ramp_v,
        "Control.voltageRampspeedDown": ramp_v,
        "Control.currentRampspeedUp": ramp_i,
        "Control.currentRampspeedDown": ramp_i,
        "Control.channelEventMask": DEFAULT_EVENT_MASK,
        "Setup.delayedTripAction": Action.NONE.value,
        "Setup.delayedTripTime": DEFAULT_TRIP_TIME_MS,
        "Setup.externalInhibitAction": Action.OFF.value,
        "Setup.outputMode": 1,
        "Setup.outputPolarity": "n" if signed < 0 else "p",
        "Status.voltageNominal": signed,
        "Status.currentNominal": inom,
        "Status.voltageLimit": ch.sign * ch.voltage_limit,
        "Status.currentLimit": ch.current_limit,
        "Status.voltageRampspeedMin": 0.001,
        "Status.voltageRampspeedMax": 0.2 * vnom,
        "Status.currentRampspeedMin": 1e-4 * inom,
        "Status.currentRampspeedMax": inom,
        "Status.voltageMode": signed,
        "Status.voltageModeList": _modes(signed),
        "Status.currentMode": inom,
        "Status.currentModeList": _modes(inom),
        "Status.temperatureExternal": 22.0,
        "Status.runningState": "off",
        "Status.lowCurrentRange": True,
    }


def build(topology: Topology, items: Catalog, ledger: Ledger) -> Tree:
    """Create every object of a topology with its items at their power-up values."""
    shapes = _Shapes(items)
    uniform = ledger.rng.uniform
    system = Node(
        path=ItemPath(),
        shape=(s := shapes(Level.SYSTEM)),
        values=_values(s, _system(topology)),
        ledger=ledger,
    )
    crates, modules, channels = [], [], []
    for line in topology.lines:
        temperatures = (uniform(27.0, 33.0), uniform(27.0, 33.0))
        shape = shapes(Level.CRATE)
        crate = Crate(
            path=ItemPath(line.line, CRATE_ADDRESS),
            shape=shape,
            values=_values(shape, _crate(line, temperatures)),
            ledger=ledger,
            config=line.crate,
            temperatures=temperatures,
        )
        crates.append(crate)
        for config in line.modules:
            temperature = uniform(27.0, 33.0)
            shape = shapes(Level.MODULE, config.kind, config.options)
            module = Module(
                path=ItemPath(line.line, config.address),
                shape=shape,
                values=_values(shape, _module(config, temperature)),
                ledger=ledger,
                crate=crate,
                config=config,
                temperature=temperature,
            )
            crate.modules.append(module)
            modules.append(module)
            shape = shapes(Level.CHANNEL, config.kind, config.options)
            vnom, inom = abs(config.voltage_nominal), config.current_nominal
            for index in range(config.channels):
                ch = Channel(
                    path=ItemPath(line.line, config.address, index),
                    shape=shape,
                    values={},
                    ledger=ledger,
                    module=module,
                    nominal_voltage=vnom,
                    nominal_current=inom,
                    voltage_limit=vnom * config.voltage_limit_percent / 100.0,
                    current_limit=inom * config.current_limit_percent / 100.0,
                    load=config.load_of(index),
                    sign=-1.0 if config.voltage_nominal < 0 else 1.0,
                    lead_resistance=LV_LEAD_RESISTANCE if config.kind is ModuleKind.LV else 0.0,
                )
                ch.values = _values(shape, _channel(config, ch))
                module.channels.append(ch)
                channels.append(ch)
    nodes: dict[ItemPath, Node] = {system.path: system}
    nodes.update((node.path, node) for group in (crates, modules, channels) for node in group)
    return Tree(system, tuple(crates), tuple(modules), tuple(channels), nodes)
