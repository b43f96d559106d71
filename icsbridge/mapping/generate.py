"""`icsbridge discover`: discover an iCS and write (or refresh) its mapping file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from icsbridge.ics.client import IcsClient
from icsbridge.ics.link import open_client
from icsbridge.ics.sim.topology import Topology
from icsbridge.mapping import build, document
from icsbridge.mapping.discover import Hardware, changes, discover
from icsbridge.mapping.document import Mapping
from icsbridge.mapping.naming import Naming, Preset


@dataclass(frozen=True, slots=True)
class Report:
    """What a discovery changed in a mapping file."""

    items: int
    appeared: list[str]
    vanished: list[str]

    def lines(self, most: int = 40) -> list[str]:
        """A short summary, then the appeared and vanished items (at most `most` of them)."""
        out = [f"{self.items} items; {len(self.appeared)} appeared, {len(self.vanished)} vanished"]
        changed = [f"  + {key}" for key in self.appeared] + [f"  - {key}" for key in self.vanished]
        out += changed[:most]
        if len(changed) > most:
            out.append(f"  ... and {len(changed) - most} more")
        return out


@dataclass(frozen=True, slots=True)
class NamingChoice:
    """Naming asked for on the command line; None keeps what the file says."""

    preset: Preset | None = None
    prefix: str | None = None
    serial: str | None = None


def _naming(current: dict[str, object], choice: NamingChoice, found: str | None) -> Naming:
    fields = dict(current)
    if choice.preset is not None:
        fields["preset"] = choice.preset
    if choice.prefix is not None:
        fields["prefix"] = choice.prefix
    if choice.serial is not None:
        fields["serial"] = choice.serial
    elif fields.get("serial") is None and found is not None:
        fields["serial"] = found
    return Naming.model_validate(fields)


def mapping_of(
    url: str, hardware: Hardware, choice: NamingChoice = NamingChoice(), base: Mapping | None = None
) -> Mapping:
    """The mapping of discovered hardware, keeping the settings of `base` if given."""
    current = base.naming.model_dump(exclude_none=True) if base else {}
    naming = _naming(current, choice, hardware.serial)
    start = base or Mapping(ics=url, naming=naming)
    return build.rebuild(
        start.model_copy(
            update={
                "ics": url,
                "naming": naming,
                "crates": hardware.crates,
                "modules": hardware.modules,
            }
        )
    )


def refresh(
    text: str | None, url: str, hardware: Hardware, choice: NamingChoice = NamingChoice()
) -> tuple[str, Report]:
    """The new text of a mapping file (or of a new one) for freshly discovered hardware.

    The settings part of an existing file is kept with its comments; only `ics` and the
    naming fields given in `choice` change.
    """
    old = document.parse(text) if text else None
    settings = document.load_settings(text) if text else None
    mapping = mapping_of(url, hardware, choice, old)
    if settings is None:
        settings = document.settings_of(mapping)
    else:
        settings["ics"] = url
        settings["naming"] = settings.get("naming") or {}
        for field in ("preset", "prefix", "serial"):
            value = getattr(mapping.naming, field)
            if value is not None and settings["naming"].get(field) != value:
                settings["naming"][field] = str(value)
    before = [str(item.key) for item in old.items] if old else []
    appeared, vanished = changes(before, [str(item.key) for item in mapping.items])
    return document.dump(settings, mapping), Report(len(mapping.items), appeared, vanished)


async def discover_file(
    client: IcsClient,
    path: Path,
    choice: NamingChoice = NamingChoice(),
    progress: Callable[[int, int], None] = lambda done, total: None,
    origin: str | None = None,
) -> Report:
    """Discover what `client` is connected to and write the mapping to `path`.

    `origin` is recorded as the mapping's `ics` (default: the client's URL).
    """
    hardware = await discover(client, progress)
    text = path.read_text("utf-8") if path.exists() else None
    new_text, report = refresh(text, origin or client.url, hardware, choice)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new_text, "utf-8")
    return report


async def discover_command(
    url: str | None,
    user: str,
    password: str,
    topology: Topology | None,
    path: Path,
    choice: NamingChoice,
) -> int:
    """Discover with a progress bar, write the mapping and print what changed."""
    async with open_client(url, user, password, topology) as client:
        origin = url or "simulator"
        with Progress(transient=True) as bar:
            task = bar.add_task(f"discovering {client.url}", total=None)
            report = await discover_file(
                client,
                path,
                choice,
                lambda done, total: bar.update(task, completed=done, total=total),
                origin,
            )
    print(f"{path}: " + "\n".join(report.lines()))
    return 0
