"""What the bench measures, as plain dataclasses that turn into JSON as they are."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Flow:
    """Changes one client received in a window: rate and latency from the source's stamp."""

    events: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, report: dict[str, float]) -> Flow:
        """From a client's `report` answer."""
        return cls(
            int(report["events"]), report["rate"], report["p50"], report["p99"], report["max"]
        )


@dataclass(slots=True)
class Resources:
    """CPU and memory over a window: the server's process tree, its clients, the machine."""

    cpu_percent: float
    """Of one core, the server process and all its children."""
    rss_mib: float
    """Server tree at the end of the window."""
    clients_cpu_percent: dict[str, float]
    source_cpu_percent: float | None
    """Of one core, the simulated iCS (in a real site, another machine); None where the
    server makes its own changes."""
    system_cpu_percent: float
    """Of all cores together, every process of the machine."""
    load_average: float
    """1-minute load average at the end of the window."""


@dataclass(slots=True)
class Step:
    """One load step: the rate asked for, the rate sent, what each client received."""

    target: float
    offered: float | None = None
    flows: dict[str, Flow] = field(default_factory=dict)
    resources: Resources | None = None
    error: str | None = None


@dataclass(slots=True)
class Convergence:
    """After the load stops: how long changes still arrive, and whether the last one is right."""

    seconds: float | None
    """From the stop to the last change a client received."""
    newest: bool | None
    """Every watched item's last monitored value equals the source's current value."""


@dataclass(slots=True)
class SystemRun:
    """One server (the bridge or a softIoc) serving `items` items, through every phase."""

    system: str
    items: int
    start_seconds: dict[str, float] = field(default_factory=dict)
    """Spawn to serving, per protocol ("ca", "ua")."""
    rss_mib: float | None = None
    """Server tree once serving, with every client subscribed."""
    connect_seconds: float | None = None
    """libca client: create every channel to all connected."""
    ca_subscribe_seconds: float | None = None
    """libca client: subscribe to all to every initial value received."""
    ua_subscribe_seconds: float | None = None
    """node-opcua client: create every monitored item to every initial value received."""
    steps: list[Step] = field(default_factory=list)
    overload_ratio: dict[str, float] = field(default_factory=dict)
    """Per client: delivered rate at the highest load over the best delivered rate."""
    convergence: dict[str, Convergence] = field(default_factory=dict)
    rate_cap: float | None = None
    """Highest rate the server can be asked for (softIoc: its records at the fastest scan)."""
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Size:
    """Everything measured at one topology size."""

    requested: int
    modules: int
    channels: int
    items: int = 0
    churned: int = 0
    """Items churn moves (and softIoc calc records)."""
    discover_seconds: float | None = None
    runs: list[SystemRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
