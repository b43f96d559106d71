"""Drive the node-opcua client harness (`node/client.mjs`): an OPC UA stack independent of asyncua.

Tests import it as `from nodeopcua import node_opcua, node_opcua_async, available`. The harness
needs `node` and `npm ci --prefix tests/opcua/node` (node-opcua is pinned in node/package.json).

Every command is a dict with `"command"` and `"endpoint"`, plus optionally
`"securityMode"` ("None", "Sign", "SignAndEncrypt"), `"securityPolicy"` ("None", "Basic256Sha256",
...; default Basic256Sha256 when signing), `"certificate"` and `"privateKey"` (PEM or DER paths of
the client's; without them node-opcua makes a throw-away self-signed one), `"user"` and
`"password"` (else anonymous). NodeIds are strings: `"i=85"`, `"ns=2;s=x"`, a standard name such
as `"ObjectsFolder"`, or `"nsu=urn:icsbridge;s=x"`, resolved through the server's namespace array.

- `browse`: `nodeId` (default ObjectsFolder), `depth` (default 1) -> `tree` (nested `children`)
  and `nodes` (flat, each with `parent` and `path`), a node being `{nodeId, browseName ("2:Name"),
  displayName, nodeClass ("Variable"), typeDefinition ("i=2368"), typeDefinitionName
  ("AnalogItemType", namespace 0 only), referenceType}`.
- `read`: `items: [{nodeId, attribute="Value", path=["EURange"]}]` (`path`: browse names from
  nodeId, resolved by TranslateBrowsePathsToNodeIds) -> `results: [{nodeId, resolvedNodeId,
  attribute, statusCode ("Good", "BadNodeIdUnknown", ...), value, dataType ("Double",
  "ExtensionObject", ...), arrayType, sourceTimestamp, serverTimestamp (ISO or None), typeName
  (structures: "Range" -> {low, high}, "EUInformation" -> {namespaceUri, unitId, displayName,
  description}), dataTypeName (attribute DataType)}]`. LocalizedText is `{text, locale}`;
  NodeClass is its name; non-finite floats are "NaN"/"Infinity"; ByteString is base64.
- `write`: `nodeId`, `value`, `dataType` ("Double", "Boolean", "Int32", "UInt32", "String", ...;
  a list value writes an array), `attribute="Value"` -> `{nodeId, resolvedNodeId, statusCode}`;
  or `items: [{nodeId, value, dataType, attribute}]` (one WriteRequest) -> `results: [...]`.
- `subscribe`: `nodeIds`, `publishingInterval=100`, `samplingInterval`, `queueSize=10`, and
  `count` and/or `duration` (ms) -> `items` (per-item create status), `notifications` (`{nodeId,
  value, statusCode, sourceTimestamp, ...}` in arrival order, the first per item being its initial
  value), `reason` ("count", "duration"). With `events: True` each notification is also streamed to
  `on_event` of `node_opcua_async` as it arrives, after a `{"event": "subscribed"}`.
- `namespaces` -> `namespaces` (every successful result carries this array too).

A result has `ok`; when the OPC UA side failed (connect, session, service) it is
`{"ok": False, "error": ..., "statusCode": "Bad..." or None}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

HARNESS_DIR = Path(__file__).resolve().parent / "node"
CLIENT = HARNESS_DIR / "client.mjs"
INSTALL_COMMAND = "npm ci --prefix tests/opcua/node"


class NodeOpcuaError(RuntimeError):
    """The harness crashed, timed out, printed no result, or (with check) reported ok: false."""

    def __init__(
        self, message: str, result: dict[str, Any] | None = None, stderr: str = ""
    ) -> None:
        super().__init__(f"{message}\n--- node stderr ---\n{stderr[-4000:]}" if stderr else message)
        self.result = result
        self.stderr = stderr


def _node() -> str | None:
    return shutil.which("node")


def available() -> bool:
    """True when `node` is on PATH and the harness's node_modules are installed."""
    return _node() is not None and (HARNESS_DIR / "node_modules" / "node-opcua").is_dir()


def unavailable_reason() -> str:
    if _node() is None:
        return "node (Node.js) is not on PATH"
    return f"node-opcua is not installed: run `{INSTALL_COMMAND}`"


def _argv() -> list[str]:
    node = _node()
    if node is None:
        raise NodeOpcuaError(unavailable_reason())
    return [node, str(CLIENT), "-"]


def _result(
    returncode: int,
    stdout: str,
    stderr: str,
    check: bool,
) -> dict[str, Any]:
    result: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise NodeOpcuaError(
                f"harness printed a non-JSON line: {line!r}", stderr=stderr
            ) from err
        if "event" not in obj:
            result = obj
    if returncode != 0 or result is None:
        raise NodeOpcuaError(f"node harness exited {returncode}: {result}", result, stderr)
    if check and not result.get("ok"):
        raise NodeOpcuaError(
            f"node-opcua {result.get('command')} failed at {result.get('stage')}: "
            f"{result.get('statusCode')}: "
            f"{result.get('error')}",
            result,
            stderr,
        )
    return result


def node_opcua(
    command: dict[str, Any], timeout: float = 60, *, check: bool = True
) -> dict[str, Any]:
    """Runs one harness command, blocking; returns its result (raises if `check` and not ok).

    Blocks the calling thread: not for a server served by this thread's event loop
    (use `node_opcua_async` there).
    """
    try:
        proc = subprocess.run(
            _argv(),
            input=json.dumps(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HARNESS_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else err.stderr or ""
        raise NodeOpcuaError(f"node harness timed out after {timeout} s", stderr=stderr) from err
    return _result(proc.returncode, proc.stdout, proc.stderr, check)


async def node_opcua_async(
    command: dict[str, Any],
    timeout: float = 60,
    *,
    check: bool = True,
    on_event: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Like `node_opcua`, without blocking the event loop, so an asyncua server in it keeps serving.

    `on_event` is called, in the loop, with each progress line (`"events": True` in the command)
    as node prints it, e.g. to make a change once a subscription has delivered its initial value.
    """
    proc = await asyncio.create_subprocess_exec(
        *_argv(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=HARNESS_DIR,
        limit=1 << 26,  # one result line: a deep browse is large
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin, stdout = proc.stdin, proc.stdout
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    lines: list[str] = []
    timed_out = False
    try:
        async with asyncio.timeout(timeout):
            stdin.write(json.dumps(command).encode())
            await stdin.drain()
            stdin.close()
            while line := (await stdout.readline()).decode():
                lines.append(line)
                if on_event is not None and line.startswith('{"event"'):
                    on_event(json.loads(line))
            await proc.wait()
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        stderr = (await stderr_task).decode(errors="replace")
    if timed_out:
        raise NodeOpcuaError(f"node harness timed out after {timeout} s", stderr=stderr)
    assert proc.returncode is not None
    return _result(proc.returncode, "".join(lines), stderr, check)
