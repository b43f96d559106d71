"""`icsbridge ics get|set|watch`: poke an iCS from a shell, like caget, caput and camonitor."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from icsbridge.catalog import ItemSpec
from icsbridge.ics import values
from icsbridge.ics.cache import Update
from icsbridge.ics.client import IcsClient, IcsError
from icsbridge.ics.protocol import WILDCARD, ProtocolError, Selector, parse_selector
from icsbridge.model import ItemKey


def selector(line: str, address: str, channel: str) -> Selector:
    """A selector from command-line parts, where `-` and `""` mean "no such level"."""
    parts = ["" if part == "-" else part for part in (line, address, channel)]
    try:
        return parse_selector(dict(zip("lac", parts, strict=True)))
    except ProtocolError as exc:
        raise SystemExit(f"bad path {'.'.join(parts)}: {exc}") from None


def format_update(update: Update) -> str:
    """One line for an update: path and item, value with unit, iCS time."""
    stamp = ""
    if update.time is not None:
        stamp = datetime.fromtimestamp(update.time, UTC).isoformat(timespec="milliseconds")
    value = f"{update.value} {update.unit}".rstrip()
    return f"{update.key!s:40} {value:24} {stamp}"


def parse_value(spec: ItemSpec, text: str, unit: str) -> values.Value:
    """A value typed on the command line, in `unit` or by one of the item's state labels."""
    labels = {label.lower(): code for code, label in spec.states.items()}
    text = labels.get(text.lower(), text)
    return values.decode(spec, text, unit)[0]


async def get(url: str, user: str, password: str, where: Selector, item: str) -> int:
    """Print the current value of every object the selector matches."""
    async with IcsClient(url, user, password) as client:
        updates = await client.subscribe([(where, item)])
    for update in sorted(updates, key=lambda u: str(u.key)):
        print(format_update(update))
    if not updates:
        print(f"no object at {where} has {item}", file=sys.stderr)
        return 1
    return 0


async def set_(
    url: str, user: str, password: str, where: Selector, item: str, text: str, unit: str
) -> int:
    """Write one item and print the value the iCS confirmed."""
    if WILDCARD in where:
        print("ics set takes one object, not a wildcard", file=sys.stderr)
        return 2
    key = ItemKey(where.line, where.address, where.channel, item)  # type: ignore[arg-type]
    async with IcsClient(url, user, password) as client:
        spec = client.cache.spec(key)
        if spec is None:
            print(f"{key}: no such item at {key.path.level} level", file=sys.stderr)
            return 2
        try:
            confirmed = await client.set_item(key, parse_value(spec, text, unit))
        except (IcsError, ProtocolError, TypeError, PermissionError) as exc:
            print(f"{key}: write failed: {exc}", file=sys.stderr)
            return 1
    print(format_update(client.cache.get(key) or Update(key, confirmed, spec.unit, None)))
    return 0


async def watch(url: str, user: str, password: str, where: Selector, item: str) -> int:
    """Print every change of the item on the selected objects until interrupted."""
    async with IcsClient(url, user, password) as client:

        def show(updates: Sequence[Update]) -> None:
            for update in updates:
                if update.key.item == item and where.matches(update.key.path):
                    print(format_update(update), flush=True)

        client.cache.subscribe(show)
        await client.subscribe([(where, item)])
        await asyncio.Event().wait()
    return 0
