"""A live terminal view of an iCS: link state, update rate and every channel's values."""

from __future__ import annotations

import asyncio
import logging
import sys

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from icsbridge.core.rate import UpdateRate
from icsbridge.ics.client import IcsClient
from icsbridge.model import ItemKey, ItemPath, Level

log = logging.getLogger(__name__)

COLUMNS = (
    ("state", "Status.runningState"),
    ("on", "Status.on"),
    ("V set", "Control.voltageSet"),
    ("V meas", "Status.voltageMeasure"),
    ("I set", "Control.currentSet"),
    ("I meas", "Status.currentMeasure"),
)
STATE_STYLE = {"ok": "green", "info": "yellow", "error": "bold red", "disabled": "dim"}


PREFIXES = ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def engineering(value: float, unit: str) -> str:
    """A value with an SI prefix that keeps 1 to 3 digits before the point: 12.9 nA."""
    if unit not in ("V", "A") or value == 0:
        return f"{value:.4g} {unit}".rstrip()
    scale, prefix = next((p for p in PREFIXES if abs(value) >= p[0]), PREFIXES[-1])
    return f"{value / scale:.4g} {prefix}{unit}"


def _cell(client: IcsClient, path: ItemPath, item: str) -> Text:
    update = client.cache.get(ItemKey(*path, item))
    if update is None:
        return Text("")
    value = update.value
    if isinstance(value, float):
        text = engineering(value, update.unit)
    elif isinstance(value, bool):
        text = "on" if value else "off"
    else:
        text = str(value)
    return Text(text, style=STATE_STYLE.get(text, ""))


def render(client: IcsClient, rate: UpdateRate) -> Group:
    """The whole view: a header line and one table row per channel."""
    channels = sorted(
        {u.key.path for u in client.cache.values() if u.key.path.level is Level.CHANNEL}
    )
    table = Table(expand=False, box=None, header_style="bold")
    table.add_column("channel")
    for title, _ in COLUMNS:
        table.add_column(title, justify="right")
    for path in channels:
        table.add_row(str(path), *(_cell(client, path, item) for _, item in COLUMNS))
    header = Text(
        f"{client.url}  link {client.state}  {len(client.cache)} items  "
        f"{rate.per_second:,.0f} updates/s   (Ctrl-C to stop)"
    )
    return Group(header, table)


async def run(client: IcsClient, period: float = 0.5) -> None:
    """Show the view until cancelled; on a non-terminal, log a summary line instead."""
    rate = UpdateRate()
    client.cache.subscribe(rate.count)
    loop = asyncio.get_running_loop()
    if not sys.stdout.isatty():
        while True:
            await asyncio.sleep(10 * period)
            rate.sample(loop.time())
            log.info(
                "link %s, %d items, %.0f updates/s",
                client.state,
                len(client.cache),
                rate.per_second,
            )
    with Live(render(client, rate), auto_refresh=False, vertical_overflow="crop") as live:
        while True:
            await asyncio.sleep(period)
            rate.sample(loop.time())
            live.update(render(client, rate), refresh=True)
