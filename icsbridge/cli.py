"""The `icsbridge` command: the bridge, the simulator and small iCS tools."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from icsbridge import logs
from icsbridge.ics import shell
from icsbridge.ics.client import MAX_FRAME
from icsbridge.mapping.naming import Preset

if TYPE_CHECKING:
    from icsbridge.ics.sim.topology import Topology as TopologyModel

MIB = 1 << 20

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
ics_app = typer.Typer(no_args_is_help=True, help="Read, write and watch iCS items from a shell.")
app.add_typer(ics_app, name="ics")

Ics = Annotated[str, typer.Option("--ics", help="iCS WebSocket address.", show_default=True)]
User = Annotated[str, typer.Option(envvar="ICS_USER", help="iCS user.")]
Password = Annotated[str, typer.Option(envvar="ICS_PASSWORD", help="iCS password.")]
Line = Annotated[str, typer.Argument(help="Line number, '*', or '-' for system items.")]
Address = Annotated[str, typer.Argument(help="Module address, 1000 for the crate, '*' or '-'.")]
Channel = Annotated[str, typer.Argument(help="Channel, '*', or '-' (or '') for crate/module.")]
Item = Annotated[str, typer.Argument(help="Item name, e.g. Status.voltageMeasure.")]
Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output.")]
Topology = Annotated[
    Path | None,
    typer.Option("--topology", exists=True, dir_okay=False, help="Topology YAML file."),
]
Modules = Annotated[int | None, typer.Option(help="Uniform topology: number of modules.")]
Channels = Annotated[int, typer.Option(help="Uniform topology: channels per module.")]
TimeScale = Annotated[float, typer.Option(help="Simulated seconds per wall-clock second.")]


def _topology(path: Path | None, modules: int | None, channels: int) -> TopologyModel:
    from icsbridge.ics.sim.topology import Topology

    if path is not None:
        return Topology.load(path)
    if modules is not None:
        return Topology.uniform(modules, channels)
    return Topology.default()


def _run(main: Coroutine[Any, Any, int | None]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(main)
        if code:
            raise typer.Exit(code)


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    topology: Topology = None,
    modules: Modules = None,
    channels: Channels = 16,
    time_scale: TimeScale = 1.0,
    user: Annotated[
        list[str] | None,
        typer.Option(help="A login NAME:PASSWORD (repeatable; default admin:password)."),
    ] = None,
    churn: Annotated[
        float, typer.Option(min=0, help="Extra channel readings per second (a load).")
    ] = 0.0,
    verbose: Verbose = 0,
) -> None:
    """Run the built-in iCS simulator."""
    from icsbridge.ics.sim import server

    users = dict(login.partition(":")[::2] for login in user or ["admin:password"])
    logs.configure(verbose)
    topo = _topology(topology, modules, channels)
    _run(server.run(topo, host, port, time_scale, users=users, churn=churn))


@app.command()
def serve(
    ics: Annotated[str | None, typer.Option("--ics", help="iCS WebSocket address.")] = None,
    user: User = "admin",
    password: Password = "password",
    simulate: Annotated[bool, typer.Option(help="Run the built-in simulator instead.")] = False,
    topology: Topology = None,
    modules: Modules = None,
    channels: Channels = 16,
    time_scale: TimeScale = 1.0,
    mapping: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Mapping file (default: discover now)."),
    ] = None,
    read_only: Annotated[bool, typer.Option(help="Refuse every write.")] = False,
    list_pvs: Annotated[bool, typer.Option(help="Print every PV name once serving.")] = False,
    live: Annotated[bool, typer.Option(help="Show the live view in the terminal.")] = False,
    write_timeout: Annotated[float, typer.Option(help="Seconds a write may take.")] = 10.0,
    heartbeat: Annotated[
        float, typer.Option(help="Seconds between heartbeats; 3 silent ones lose the link.")
    ] = 10.0,
    max_frame: Annotated[
        float, typer.Option(min=1, help="MiB a frame from the iCS may hold; more loses the link.")
    ] = MAX_FRAME / MIB,
    opcua_endpoint: Annotated[
        str, typer.Option(help="OPC UA endpoint to serve at.")
    ] = "opc.tcp://0.0.0.0:4840/icsbridge/",
    opcua: Annotated[bool, typer.Option(help="Serve OPC UA too.")] = True,
    users: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="OPC UA users file (icsbridge user add)."),
    ] = None,
    opcua_state: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="OPC UA certificates and trusted/ client certificates."),
    ] = None,
    opcua_cert: Annotated[Path | None, typer.Option(help="Site certificate (DER or PEM).")] = None,
    opcua_key: Annotated[Path | None, typer.Option(help="Private key of the site cert.")] = None,
    anonymous: Annotated[bool, typer.Option(help="Let anonymous OPC UA clients read.")] = True,
    verbose: Verbose = 0,
) -> None:
    """Serve every item of an iCS (or of the built-in simulator) as EPICS PVs and OPC UA."""
    from icsbridge import bridge

    if (ics is None) == (not simulate):
        raise typer.BadParameter("give either --ics URL or --simulate")
    logs.configure(verbose)
    options = bridge.Options(
        url=ics,
        user=user,
        password=password,
        topology=_topology(topology, modules, channels) if simulate else None,
        time_scale=time_scale,
        mapping=mapping,
        read_only=read_only,
        list_pvs=list_pvs,
        live=live,
        write_timeout=write_timeout,
        heartbeat=heartbeat,
        max_frame=round(max_frame * MIB),
        opcua_endpoint=opcua_endpoint if opcua else None,
        users=users,
        opcua_state=opcua_state,
        certificate=opcua_cert,
        private_key=opcua_key,
        anonymous=anonymous,
        verbose=verbose,
    )
    _run(bridge.serve(options))


user_app = typer.Typer(no_args_is_help=True, help="OPC UA users and their roles.")
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Users file (created if new).")],
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="reader, operator or admin.")] = "reader",
) -> None:
    """Add or update a user; the password is read from standard input, only a hash is kept."""
    from getpass import getpass

    from pydantic import ValidationError

    from icsbridge.opcua.users import Role, add_user

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter(f"role must be one of {[r.value for r in Role]}") from None
    if sys.stdin.isatty():
        password = getpass(f"password for {name}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        add_user(file, name, chosen, password)
    except (ValueError, ValidationError) as exc:
        print(f"{file}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{file}: {name} is {chosen.value}")


@app.command()
def discover(
    output: Annotated[Path, typer.Option("--output", "-o", help="Mapping file to write.")],
    ics: Annotated[str | None, typer.Option("--ics", help="iCS WebSocket address.")] = None,
    user: User = "admin",
    password: Password = "password",
    simulate: Annotated[bool, typer.Option(help="Discover the built-in simulator.")] = False,
    topology: Topology = None,
    modules: Modules = None,
    channels: Channels = 16,
    preset: Annotated[Preset | None, typer.Option(help="Naming preset.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Start of every PV name.")] = None,
    serial: Annotated[
        str | None, typer.Option(help="Crate controller serial number for iseg names.")
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Find every crate, module and channel of an iCS and write or refresh its mapping."""
    from icsbridge.mapping.generate import NamingChoice, discover_command

    if (ics is None) == (not simulate):
        raise typer.BadParameter("give either --ics URL or --simulate")
    logs.configure(verbose)
    choice = NamingChoice(preset, prefix, serial)
    hardware = _topology(topology, modules, channels) if simulate else None
    _run(discover_command(ics, user, password, hardware, output, choice))


@app.command()
def schema() -> None:
    """Print the JSON schema of mapping files, for editors that validate YAML."""
    from icsbridge.mapping.document import Mapping

    print(json.dumps(Mapping.model_json_schema(), indent=2))


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="Mapping file.", dir_okay=False)],
) -> None:
    """Report every problem of a mapping file: items, names, overrides, aliases."""
    from icsbridge.mapping.check import check_file

    found = check_file(path)
    for problem in found:
        print(problem)
    if found:
        raise typer.Exit(1)
    print(f"{path}: no problems")


@app.command()
def db(
    templates: Annotated[
        Path | None, typer.Option(file_okay=False, help="Write the templates into DIR.")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="With --templates: only say if DIR is stale.")
    ] = False,
    mapping: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Mapping file.")
    ] = None,
    substitutions: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the mapping's substitutions.")
    ] = None,
) -> None:
    """EPICS database files: the templates of every item, substitutions of a mapping."""
    from icsbridge.epics import database
    from icsbridge.epics.substitutions import substitutions as make_substitutions
    from icsbridge.mapping.document import load

    if templates is None and substitutions is None:
        raise typer.BadParameter("give --templates DIR and/or --mapping FILE --substitutions FILE")
    if templates is not None and check:
        stale = database.outdated_templates(templates)
        for name in stale:
            print(f"{templates / name}: out of date; run `{database.COMMAND}`")
        raise typer.Exit(1 if stale else 0)
    if templates is not None:
        for path in database.write_templates(templates):
            print(path)
    if substitutions is not None:
        if mapping is None:
            raise typer.BadParameter("--substitutions needs --mapping FILE")
        try:
            text = make_substitutions(load(mapping))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        substitutions.write_text(text, "utf-8")
        print(substitutions)


@ics_app.command()
def get(
    line: Line,
    address: Address,
    channel: Channel,
    item: Item,
    ics: Ics = "ws://127.0.0.1:8080",
    user: User = "admin",
    password: Password = "password",
) -> None:
    """Print the current value of an item (wildcards allowed), like caget."""
    _run(shell.get(ics, user, password, shell.selector(line, address, channel), item))


@ics_app.command("set")
def set_(
    line: Line,
    address: Address,
    channel: Channel,
    item: Item,
    value: Annotated[str, typer.Argument(help="New value.")],
    unit: Annotated[str, typer.Argument(help="Unit of VALUE, e.g. kV or uA.")] = "",
    ics: Ics = "ws://127.0.0.1:8080",
    user: User = "admin",
    password: Password = "password",
) -> None:
    """Write an item and print the value the iCS confirmed, like caput."""
    path = shell.selector(line, address, channel)
    _run(shell.set_(ics, user, password, path, item, value, unit))


@ics_app.command()
def watch(
    line: Line,
    address: Address,
    channel: Channel,
    item: Item,
    ics: Ics = "ws://127.0.0.1:8080",
    user: User = "admin",
    password: Password = "password",
) -> None:
    """Print every change of an item (wildcards allowed), like camonitor."""
    _run(shell.watch(ics, user, password, shell.selector(line, address, channel), item))
