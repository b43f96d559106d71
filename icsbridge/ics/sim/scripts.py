"""Fake iCS scripts: a fixed table that `script` frames can list, start, stop and talk to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from icsbridge.ics.protocol import ScriptEvent

SCRIPT_NAMES = ("logger.py", "ramp.py")


@dataclass(slots=True)
class Script:
    """One script on the simulated iCS host."""

    name: str
    running: bool = False
    autostart: bool = False
    script_id: str = ""

    def row(self) -> dict[str, Any]:
        """The script as an entry of `availableScripts`/`runningScripts`."""
        return {
            "name": self.name,
            "status": self._status(),
            "autostart": "true" if self.autostart else "false",
            "hostIds": [],
        }

    def _status(self) -> str:
        return "running" if self.running else "stopped"

    def status(self) -> ScriptEvent:
        """A `scriptStatus` event for this script."""
        return ScriptEvent("scriptStatus", self._status(), self.name, self.script_id)


class ScriptHost:
    """The scripts of the simulated iCS and the answers to script commands."""

    def __init__(self, names: tuple[str, ...] = SCRIPT_NAMES) -> None:
        self._scripts = {name: Script(name) for name in names}
        self._started = 0

    def _find(self, args: Mapping[str, Any]) -> Script | None:
        name, script_id = args.get("n"), args.get("i")
        for script in self._scripts.values():
            if script.name == name or (script_id and script.script_id == script_id):
                return script
        return None

    def handle(
        self, session: str, command: str, args: Mapping[str, Any]
    ) -> tuple[ScriptEvent, ...]:
        """The events answering one script command."""
        scripts = self._scripts.values()
        if command == "availableScripts":
            return (ScriptEvent("availableScripts", [s.row() for s in scripts]),)
        if command == "runningScripts":
            return (ScriptEvent("runningScripts", [s.row() for s in scripts if s.running]),)
        script = self._find(args)
        if script is None:
            return (ScriptEvent("error", f"no script {args.get('n') or args.get('i')!r}"),)
        match command:
            case "startScript":
                if not script.running:
                    self._started += 1
                    script.running, script.script_id = True, f"{session}-s{self._started}"
            case "stopScript" | "killScript":
                script.running = False
            case "autoScript":
                script.autostart = args.get("v") == "enable"
                return (ScriptEvent("autoScripts", [s.name for s in scripts if s.autostart]),)
            case "scriptCommand":
                return (ScriptEvent("scriptData", args.get("d"), script.name, script.script_id),)
            case "scriptStatus":
                pass
            case _:
                return (ScriptEvent("error", f"unknown script command {command!r}"),)
        return (script.status(),)
