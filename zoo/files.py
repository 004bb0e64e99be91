"""Files: written whole or not at all, and hashed in one pass.

A SIGTERM must not leave a half-written file behind any more than Ctrl-C does. While a
whole-or-nothing write is open in the main thread, SIGTERM raises `Terminated` (a
`SystemExit` with the conventional status 143) instead of ending the process on the spot,
so the cleanup that runs for any error runs for it too; the previous handler is restored
when the last such write ends. This holds only where SIGTERM has its default action: a
handler the program installed itself, or SIGTERM ignored, is left as it is. Python lets
only the main thread install signal handlers, so a write in another thread works as
usual but is not cleaned up on SIGTERM (the signal ends the process as it would anyway).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

__all__ = ["Terminated", "atomic_path", "raise_on_sigterm", "nearest_existing", "sha256_of", "unwritable"]


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread while a whole-or-nothing write is open.

    A `SystemExit` with status 143 (128 + SIGTERM): `except Exception` does not catch it,
    `except BaseException` cleanup runs, and a program that does not catch it exits 143.
    """

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


_handling = False
"""Whether SIGTERM's handler is this module's (only ever changed in the main thread)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise Terminated


@contextlib.contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` in the main thread (see the module).

    Nested blocks share the outermost one's handler; SIGTERM's default action is restored
    when the outermost block ends. Elsewhere than in the main thread, or where SIGTERM does
    not have its default action, this does nothing.
    """
    global _handling
    outermost = False
    try:
        if not _handling and _may_install():
            _handling = outermost = True
            signal.signal(signal.SIGTERM, _raise_terminated)
        yield
    finally:
        if outermost:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _handling = False


def _may_install() -> bool:
    if threading.current_thread() is not threading.main_thread():
        return False  # only the main thread may install handlers
    try:
        return signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # else the program's own choice
    except ValueError:  # not the main interpreter
        return False


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed onto it only if the block succeeds.

    Readers see the old file or the complete new one, never a partial write; on any error,
    Ctrl-C or SIGTERM (in the main thread, see the module) the temporary file is removed and
    `path` is left as it was.

        with atomic_path("map.png") as tmp:
            image.save(tmp, format="PNG")
    """
    path = Path(path)
    with raise_on_sigterm():
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            os.close(descriptor)
            yield Path(temporary)
            os.chmod(temporary, 0o666 & ~_umask())  # what a plain open() would have given
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


def nearest_existing(path: str | Path) -> Path:
    """`path`, or its nearest parent that exists (where a file may stand in a folder's way)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def unwritable(folder: str | Path, *, created: bool = False) -> str | None:
    """Why no file can be written in `folder`, in a few words, or None if one can.

    Tried, not guessed from permission bits (which root and read-only mounts ignore): a file
    is created there and removed. With `created`, a missing folder is fine where its nearest
    existing parent can hold it.
    """
    folder = Path(folder)
    existing = nearest_existing(folder)
    if not existing.is_dir():
        return f"'{existing}' is a file, not a folder"
    if existing != folder and not created:
        return f"folder '{folder}' does not exist"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"folder '{existing}' is not writable ({error.strerror or error})"
    return None


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
