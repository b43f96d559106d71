"""What the small benches share: their result, written as JSON when asked for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save(result: dict[str, Any], path: str | None) -> None:
    """Write `result` to `path` as JSON, if a path was given."""
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n", "utf-8")
