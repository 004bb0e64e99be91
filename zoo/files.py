"""Files: written whole or not at all, and hashed in one pass."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "sha256_of"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed onto it only if the block succeeds.

    Readers see the old file or the complete new one, never a partial write; on any error
    the temporary file is removed and `path` is left as it was.

        with atomic_path("map.png") as tmp:
            image.save(tmp, format="PNG")
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # what a plain open() would have given
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: str | Path, *, copy_to: str | Path | None = None, chunk_bytes: int = 4 << 20) -> str:
    """The sha256 of a file, read once in chunks; with `copy_to`, the bytes are also written
    there as they are read (and synced), so a copy and its digest cost one read."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    with contextlib.ExitStack() as files:
        reader = files.enter_context(open(path, "rb", buffering=0))
        writer = files.enter_context(open(copy_to, "wb")) if copy_to is not None else None
        while count := reader.readinto(buffer):
            digest.update(view[:count])
            if writer is not None:
                writer.write(view[:count])
        if writer is not None:
            writer.flush()
            os.fsync(writer.fileno())
    return digest.hexdigest()
