"""Faces of icsbridge that other iCS software offers: iseg's icsClientPython3 API."""

from __future__ import annotations

import sys
from types import ModuleType


def install_alias(name: str = "icsClientPython3") -> ModuleType:
    """Make `import <name>` give `icsbridge.compat.icsClientPython3`; return that module.

    For scripts that import iseg's module by name, e.g. `icsClientPython_3` or through
    `importlib.import_module`: call this once before they import it.
    """
    from icsbridge.compat import icsClientPython3

    sys.modules[name] = icsClientPython3
    return icsClientPython3
