"""Script management on the iCS host through `script` frames: list, start, stop, talk to.

Methods are named after the frame commands of iseg's manual. A script is named by its
file name (`n`) or by the session id (`i`) the iCS gave it when it started; the iCS may
want either, so both are sent when given. Single-script commands return the reply event
as the iCS sends it, `{"e": event, "d": data, "n": name, "i": id}`.
"""

from __future__ import annotations

from typing import Any

from icsbridge.compat.session import Session
from icsbridge.ics.client import IcsError
from icsbridge.ics.protocol import ScriptEvent


class ScriptCommands:
    """The script commands of a connection."""

    _session: Session

    def _event(self, command: str, **args: object) -> ScriptEvent:
        sent = {key: value for key, value in args.items() if value != ""}
        reply = self._session.call(self._session.client.script(command, **sent))
        if not reply.events:
            raise IcsError(f"{command}: the iCS answered with no event")
        event = reply.events[0]
        if event.event == "error":
            raise IcsError(f"{command}: {event.data}")
        return event

    def _script(self, command: str, name: str, script_id: str, **args: object) -> dict[str, Any]:
        event = self._event(command, n=name, i=script_id, **args)
        return {"e": event.event, "d": event.data, "n": event.name, "i": event.script_id}

    def availableScripts(self) -> list[dict[str, Any]]:
        """Every script on the iCS host: `name`, `status`, `autostart` ("true"/"false")."""
        return list(self._event("availableScripts").data or [])

    def runningScripts(self) -> list[dict[str, Any]]:
        """The scripts running now, in the shape of `availableScripts`."""
        return list(self._event("runningScripts").data or [])

    def startScript(self, name: str) -> dict[str, Any]:
        """Start a script; the reply's `d` is its status and `i` its session id."""
        return self._script("startScript", name, "", t="")

    def stopScript(self, name: str = "", script_id: str = "") -> dict[str, Any]:
        """Stop a script; the reply's `d` is its status."""
        return self._script("stopScript", name, script_id)

    def killScript(self, name: str = "", script_id: str = "") -> dict[str, Any]:
        """Kill a script that does not stop; the reply's `d` is its status."""
        return self._script("killScript", name, script_id)

    def scriptStatus(self, name: str = "", script_id: str = "") -> dict[str, Any]:
        """A script's status: the reply's `d` is `running` or `stopped`."""
        return self._script("scriptStatus", name, script_id)

    def scriptCommand(self, data: object, name: str = "", script_id: str = "") -> dict[str, Any]:
        """Send `data` (any JSON value) to a running script; its answer is the reply."""
        return self._script("scriptCommand", name, script_id, d=data)

    def autoScript(self, name: str, enable: bool) -> list[str]:
        """Start a script with the iCS, or not; returns the names that now autostart."""
        event = self._event("autoScript", n=name, v="enable" if enable else "disable")
        return list(event.data or [])
