"""Where the zoo keeps its own small caches (the listing, the probed attention variants)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

__all__ = ["cache_dir", "environment_digest"]


def cache_dir() -> Path:
    """`ZOO_CACHE_DIR`, else `$XDG_CACHE_HOME/zoo`, else `~/.cache/zoo`."""
    folder = os.environ.get("ZOO_CACHE_DIR")
    if folder:
        return Path(folder)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "zoo"


def environment_digest() -> str:
    """Names this environment in cache files, so that environments do not evict each other."""
    environment = f"{sys.prefix}\0{Path(__file__).resolve().parent}".encode()
    return hashlib.sha256(environment).hexdigest()[:16]
