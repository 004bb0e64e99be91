"""Attention variants that passed their probe, remembered between processes.

Probing a variant (`zoo.registry.attention.probe_attention_class`) builds it and runs a
forward pass: cheap once, but paid by every process that builds a model with it. A variant
that passed is written down in `cache_dir()/probes-<environment>.json` under a stamp of the
code it ran:

- the zoo's version, the plugin interface version and the probing code itself (the size and
  mtime of `zoo/registry/attention.py`);
- every Python file of the package that defines the class (path, size, mtime_ns), so that an
  edit anywhere in a plugin, an editable install included, probes its variants again.

A class whose code has no such stamp (defined inside a function, in `__main__` or in code
that is not a file) is probed in every process, as before. A file that cannot be read is
taken as empty, and one that cannot be written is skipped: the cache saves time, never
decides an outcome.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_path
from ..version import INTERFACE_VERSION, __version__
from .cache_dir import cache_dir, environment_digest

if TYPE_CHECKING:
    from .attention import AttentionKind

__all__ = ["cache_file", "code_stamp", "passed", "record"]

FORMAT = 1


def cache_file() -> Path:
    return cache_dir() / f"probes-{environment_digest()}.json"


def passed(cls: type, kind: AttentionKind) -> bool:
    """Whether `cls` passed `kind`'s probe in an earlier process, with the code it has now."""
    stamp = code_stamp(cls)
    return stamp is not None and _read().get(_key(cls, kind)) == stamp


def record(cls: type, kind: AttentionKind) -> None:
    """Write down that `cls` passed `kind`'s probe (nothing, for a class without a stamp)."""
    stamp = code_stamp(cls)
    if stamp is None:
        return
    table = _read()
    if table.get(_key(cls, kind)) == stamp:
        return
    table[_key(cls, kind)] = stamp
    _write(table)


def code_stamp(cls: type) -> str | None:
    """A digest of the code `cls` runs, or None if it cannot be told from files."""
    qualname = getattr(cls, "__qualname__", "")
    module = sys.modules.get(getattr(cls, "__module__", ""))
    if "<locals>" in qualname or module is None or module.__name__ == "__main__":
        return None
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = _package_root(module.__name__, Path(file))
    return _stamp_of(str(root), _zoo_stamp())


def _key(cls: type, kind: AttentionKind) -> str:
    return f"{kind.name}:{cls.__module__}:{cls.__qualname__}"


def _package_root(module_name: str, file: Path) -> Path:
    """The folder of the top-level package of a module (the file itself for a lone module)."""
    depth = module_name.count(".") + (file.name == "__init__.py")
    if depth == 0:
        return file
    return file.parents[depth - 1]


@cache
def _stamp_of(root: str, zoo_stamp: str) -> str:
    """Digest of every Python file under `root` (size and mtime), with the zoo's stamp.

    Cached for the process: code does not change under a running model build (an edit is seen
    by the next process)."""
    digest = hashlib.sha256(zoo_stamp.encode())
    paths = [Path(root)] if root.endswith(".py") else sorted(Path(root).rglob("*.py"))
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@cache
def _zoo_stamp() -> str:
    probe_code = Path(__file__).with_name("attention.py").stat()
    return f"{FORMAT}:{__version__}:{INTERFACE_VERSION}:{probe_code.st_size}:{probe_code.st_mtime_ns}"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(table: dict[str, Any]) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(table, sort_keys=True), encoding="utf-8")
    except (OSError, ValueError):  # ValueError: a path the system cannot take
        pass
