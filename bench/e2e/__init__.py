"""The end-to-end bench: bridge and softIoc under load (run bench/bridge_vs_softioc.py).

Importing it puts this checkout first on sys.path, so the `icsbridge` measured is the one
beside the bench, whatever version is installed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
