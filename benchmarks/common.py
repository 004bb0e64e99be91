"""What the benchmark scripts share."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def zoo_executable() -> str:
    """The `zoo` script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("zoo")
    found = str(beside) if beside.exists() else shutil.which("zoo")
    if found is None:
        sys.exit("no `zoo` executable next to this python or on PATH: pip install -e . first")
    return found
