"""`icsbridge check`: every problem of a mapping file, not just the first."""

from __future__ import annotations

from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml.error import YAMLError

from icsbridge.catalog import Catalog, catalog
from icsbridge.mapping import document
from icsbridge.mapping.document import Mapping
from icsbridge.mapping.naming import pv_problems

MAX_DESCRIPTION = 40


def problems(mapping: Mapping, specs: Catalog | None = None) -> list[str]:
    """Everything wrong with a valid-looking mapping: items, names, overrides, aliases."""
    specs = specs or catalog()
    found: list[str] = []
    keys = [str(item.key) for item in mapping.items]
    for item in mapping.items:
        spec = specs.get(item.key.path.level, item.item)
        if spec is None:
            found.append(f"{item.key}: unknown item at {item.key.path.level} level")
        for name in (item.pv, *item.aliases):
            found += [f"{item.key}: {problem}" for problem in pv_problems(name)]
        if len(item.description) > MAX_DESCRIPTION:
            found.append(f"{item.key}: description longer than {MAX_DESCRIPTION} characters")
    names = Counter(name for item in mapping.items for name in (item.pv, *item.aliases))
    found += [f"{name}: PV name used {count} times" for name, count in names.items() if count > 1]
    nodes = Counter(item.nodeid for item in mapping.items)
    found += [f"{node}: NodeId used {count} times" for node, count in nodes.items() if count > 1]
    known = set(keys)
    found += [f"override of {key}: no such item" for key in mapping.overrides if key not in known]
    paths = {str(item.key.path) for item in mapping.items}
    found += [f"alias of {path}: no such object" for path in mapping.aliases if path not in paths]
    for pattern in mapping.disabled:
        if not any(fnmatchcase(key, pattern) for key in keys):
            found.append(f"disabled {pattern!r}: matches no item")
    return found


def check_file(path: Path) -> list[str]:
    """Every problem of a mapping file, including YAML and schema errors."""
    try:
        mapping = document.load(path)
    except OSError as exc:
        return [f"{path}: {exc.strerror}"]
    except YAMLError as exc:
        return [f"{path}: not YAML: {exc}"]
    except ValidationError as exc:
        return [
            f"{path}: {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
    return problems(mapping)
