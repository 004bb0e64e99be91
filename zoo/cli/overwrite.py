"""The rule for files a command writes: never over one of its inputs, never over an existing
file unless `--force`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ArgumentError
from .options import writable_path

__all__ = ["check_output"]


def check_output(path: Path, option: str, *, inputs: Iterable[Path | None], force: bool) -> None:
    """Refuse to write `path` (given as `option`) before any work is done.

    Refused: a folder that does not exist or a folder as `path`; the same file as one of
    `inputs` (also through a symlink, a hard link or another relative path), even with
    `force`; an existing file unless `force`.
    """
    writable_path(path, option)
    for source in inputs:
        if source is not None and same_file(path, source):
            raise ArgumentError(f"{option} {path}: is the input {source}; write to another file")
    if (path.exists() or path.is_symlink()) and not force:
        raise ArgumentError(f"{option} {path}: exists; pass --force to overwrite it")


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: the same path once links are followed, or the same
    inode."""
    if first.resolve() == second.resolve():
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist
        return False
