"""How icsbridge logs: one format for every process of the bridge, quieter libraries."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

QUIET_LIBRARIES = ("asyncua",)
"""Libraries whose INFO lines (one per standard node at OPC UA start) only show with -vv."""


def configure(verbose: int) -> None:
    """Log to standard error: INFO by default, DEBUG with -v, libraries' INFO with -vv."""
    level = logging.WARNING - 10 * verbose if verbose else logging.INFO
    logging.basicConfig(level=level, format=FORMAT)
    if verbose < 2:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
