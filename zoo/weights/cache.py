"""The local weight cache: where files are, what their sha256 is, and how to drop them.

Files live in the standard Hugging Face cache (`models--ORG--REPO/{blobs,snapshots,refs}`),
shared with timm and transformers. Every setting is read from the environment when it is
used, never at import, so `HF_HOME`, `HF_HUB_CACHE` and `HF_HUB_OFFLINE` may change while a
process runs.

The sha256 of every file the zoo has fetched or checked is recorded in
`$HF_HOME/zoo/sha256.json`, with the file's size and modification time. A file unchanged
since it was recorded is trusted without reading it again; `zoo cache verify` re-reads
every byte.

A file that does not match its pinned or recorded sha256 is never loaded, and never removed
behind the user's back: loading and `zoo get` refuse it in one line naming the file, both
sha256 and `zoo get NAME --force`, which fetches it again; `zoo cache verify` reports it;
only `zoo cache verify --remove` and `zoo cache rm` delete files.

The record is rewritten atomically (temporary file, then `os.replace`) under a
file lock, so concurrent processes never see half of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import IntegrityError, NotCachedError, ZooError
from ..files import atomic_path, nearest_existing, sha256_of
from ..registry.names import NameForm, name_form

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = [
    "CachedFile",
    "Mismatch",
    "Verified",
    "cached_versions",
    "check_file",
    "forget",
    "hf_home",
    "hub_cache_dir",
    "hub_endpoint",
    "is_offline",
    "list_cached",
    "read_record",
    "record_path",
    "remove",
    "remove_cached",
    "repo_folder",
    "select_cached",
    "sha256_of",
    "verify_cached",
    "verify_file",
]

logger = logging.getLogger("zoo")

_TRUE = {"1", "on", "yes", "true"}

How = Literal["pinned", "recorded"]


# ---------------------------------------------------------------------- settings, read when used


def hf_home() -> Path:
    """`HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`."""
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "huggingface")
    return _folder_setting("HF_HOME", home)


def hub_cache_dir() -> Path:
    """`HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`."""
    home = hf_home()  # read by the Hub client too (its token), whichever cache is used
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return _folder_setting(variable, os.environ[variable])
    return _folder_setting("HF_HOME", str(home / "hub"))


def _folder_setting(variable: str, value: str) -> Path:
    """The folder a setting names, or one line saying that a file is in its way."""
    folder = Path(os.path.abspath(os.path.expandvars(os.path.expanduser(value))))
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise ZooError(
            f"{variable}={value}: '{existing}' is a file, not a folder; set {variable} to a folder"
        )
    return folder


def is_offline() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) set to 1/on/yes/true."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def hub_endpoint() -> str | None:
    """`HF_ENDPOINT` without a trailing slash, or None for the Hub itself."""
    endpoint = os.environ.get("HF_ENDPOINT")
    return endpoint.rstrip("/") if endpoint else None


# ---------------------------------------------------------------------- the cache layout


def repo_folder(repo_id: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def cached_versions(repo_id: str, filename: str, cache_dir: Path | None = None) -> list[Path]:
    """Every cached snapshot of a file, whatever its commit."""
    snapshots = repo_folder(repo_id, cache_dir) / "snapshots"
    if not snapshots.is_dir():
        return []
    return sorted(p for p in (d / filename for d in snapshots.iterdir()) if p.is_file())


# ---------------------------------------------------------------------- the sha256 record


def record_path() -> Path:
    return hf_home() / "zoo" / "sha256.json"


def read_record() -> dict[str, dict[str, Any]]:
    """Every recorded file: absolute snapshot path -> {sha256, size, mtime_ns, name, pinned, ...}."""
    try:
        data = json.loads(record_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("ignoring the unreadable sha256 record %s: %s", record_path(), error)
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Hold a file lock; yields False (unlocked) where the lock cannot be created, e.g. in a
    read-only cache, so that reading still works."""
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        lock.acquire()
    except OSError as error:
        logger.warning("cannot lock %s (%s); the sha256 record is not updated", path, error.strerror or error)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _update_record(changes: dict[str, dict[str, Any] | None]) -> None:
    """Apply changes (None removes an entry) to the record: locked, atomic."""
    path = record_path()
    with _locked(path.with_name(path.name + ".lock")) as locked:
        if not locked:
            return
        files = read_record()
        for key, entry in changes.items():
            if entry is None:
                files.pop(key, None)
            else:
                files[key] = entry
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
            json.dump({"version": 1, "files": files}, file, indent=1, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())


def forget(paths: list[Path]) -> None:
    """Drop record entries."""
    _update_record({str(path): None for path in paths})


# ---------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verified:
    """A cached file and its sha256: `pinned` (matches the registry) or `recorded` (first seen)."""

    path: Path
    sha256: str
    size: int
    how: How


@dataclass(frozen=True)
class Mismatch:
    """A cached file whose sha256 is not the one pinned or recorded for it.

    Finding one changes nothing: the file stays where it is (and is never loaded) until it is
    fetched again or removed on purpose.
    """

    name: str
    path: Path
    expected: str
    found: str
    how: How
    """What `expected` is: the registry's `pinned` sha256, or the one `recorded` first."""
    recorded: str | None = None
    """When the expected sha256 was recorded (for `recorded`)."""
    removed: bool = False
    removal_error: str | None = None

    def message(self, fetch_hint: str | None = None) -> str:
        """One line: the file, the expected and the found sha256, and what to do.

        `fetch_hint` is the command that fetches the file (`zoo get NAME`): while the file is
        in place it must be fetched with `--force`; once removed, the command alone does.
        """
        if self.how == "pinned":
            source = "its pinned sha256 is"
        else:
            source = f"its sha256 was recorded {self.recorded or 'earlier'} as"
        found = f"{source} {self.expected}, the file has {self.found}"
        return f"{self.name}: sha256 mismatch for {self.path}: {found}{self._advice(fetch_hint)}"

    def _advice(self, fetch_hint: str | None) -> str:
        if self.removed:
            return "; the file was removed" + (f"; fetch it again with `{fetch_hint}`" if fetch_hint else "")
        advice = f"; the file could not be removed ({self.removal_error})" if self.removal_error else ""
        if fetch_hint:
            forced = fetch_hint if fetch_hint.endswith(" --force") else f"{fetch_hint} --force"
            advice += f"; fetch it again with `{forced}` (or remove it with `zoo cache rm {self.name}`)"
        return advice

    def remove(self) -> Mismatch:
        """Remove the file (see `remove_cached`); the outcome says whether that worked."""
        try:
            remove_cached(self.path)
        except OSError as error:
            return replace(self, removal_error=error.strerror or str(error))
        return replace(self, removed=True, removal_error=None)


def verify_file(
    path: Path,
    *,
    name: str,
    pinned: str | None = None,
    rehash: bool = False,
    fetch_hint: str | None = None,
    repo_id: str | None = None,
) -> Verified:
    """Check a cached file against its pinned or recorded sha256, recording it if new.

    A file unchanged since it was recorded (same size and modification time) is trusted
    without being read, unless `rehash`. A mismatch raises `IntegrityError`, one line saying
    what was expected, what was found and how to fetch the file again (`fetch_hint`, with
    `--force`); the file is left as it is, so nothing reads it unless it is fetched again.
    """
    outcome = check_file(path, name=name, pinned=pinned, rehash=rehash, repo_id=repo_id)
    if isinstance(outcome, Mismatch):
        raise IntegrityError(outcome.message(fetch_hint))
    return outcome


def check_file(
    path: Path, *, name: str, pinned: str | None = None, rehash: bool = False, repo_id: str | None = None
) -> Verified | Mismatch:
    """`verify_file`, with a mismatch returned instead of raised; nothing is removed."""
    key = str(path)
    lock = record_path().parent / "locks" / (hashlib.sha1(key.encode()).hexdigest() + ".lock")
    how: How = "pinned" if pinned else "recorded"
    with _locked(lock):
        stat = path.stat()
        entry = read_record().get(key)
        unchanged = (
            entry is not None
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        )
        if unchanged and not rehash and (pinned is None or entry.get("sha256") == pinned):
            return Verified(path, entry["sha256"], stat.st_size, how)

        digest = sha256_of(path)
        expected = pinned or (entry.get("sha256") if entry is not None else None)
        if expected is not None and digest != expected:
            recorded = None if pinned or entry is None else entry.get("recorded")
            return Mismatch(name, path, expected, digest, how, recorded)
        recorded_entry = {
            "name": name,
            "repo_id": repo_id,
            "sha256": digest,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "pinned": pinned is not None,
            "recorded": entry.get("recorded") if entry else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _update_record({key: recorded_entry})
    return Verified(path, digest, stat.st_size, how)


def remove_cached(path: Path) -> None:
    """Remove a cached snapshot file, its blob (unless another snapshot links to it), its
    record entry and any snapshot folder left empty."""
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    snapshots = next((p for p in path.parents if p.name == "snapshots"), None)
    if blob is not None and not _linked_elsewhere(blob, snapshots):
        blob.unlink(missing_ok=True)
    forget([path])
    folder = path.parent
    while snapshots is not None and folder != snapshots.parent:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent


def _linked_elsewhere(blob: Path, snapshots: Path | None) -> bool:
    if snapshots is None or not snapshots.is_dir():
        return False
    return any(link.is_symlink() and link.resolve() == blob for link in snapshots.rglob("*"))


# ---------------------------------------------------------------------- what the zoo has cached


@dataclass(frozen=True)
class CachedFile:
    """A weight file in the cache, as `zoo cache ls` shows it."""

    name: str
    """`name.tag` for registry weights, `hf-hub:ORG/REPO` for exported repositories."""
    repo_id: str
    filename: str
    path: Path
    size: int
    verified: Literal["pinned", "recorded", "changed", "no"]
    """`changed`: the file's size or time differs from the record (`zoo cache verify` tells)."""
    sha256: str | None
    pinned: str | None = None

    @property
    def form(self) -> NameForm:
        """The parts of `name` (see `zoo.registry.names`)."""
        return name_form(self.name)

    @property
    def tag(self) -> str | None:
        return self.form.tag

    def as_dict(self) -> dict[str, Any]:
        form = self.form
        return {
            "name": form.base if form.tag else self.name,
            "tag": form.tag,
            "repo_id": self.repo_id,
            "filename": self.filename,
            "size": self.size,
            "path": str(self.path),
            "verified": self.verified,
            "sha256": self.sha256,
        }


def list_cached(registry: Registry) -> list[CachedFile]:
    """Every cached file of the registry's weight tags, and every other file the zoo recorded."""
    record = read_record()
    rows: dict[str, CachedFile] = {}
    for full in registry.pretrained_names():
        selected = registry.resolve(full).selected
        weights = selected.weights
        if weights.hf_hub_id is None:
            continue  # a local file, not in the cache
        for path in cached_versions(weights.hf_hub_id, weights.filename):
            entry = record.get(str(path))
            rows[str(path)] = _row(
                str(selected), weights.hf_hub_id, weights.filename, path, entry, weights.sha256
            )
    for key, entry in record.items():
        path = Path(key)
        if key in rows or not path.is_file():
            continue
        repo_id = str(entry.get("repo_id") or "?")
        rows[key] = _row(str(entry.get("name", "?")), repo_id, path.name, path, entry, None)
    return sorted(rows.values(), key=lambda row: (row.name, str(row.path)))


def _row(
    name: str, repo_id: str, filename: str, path: Path, entry: dict[str, Any] | None, pinned: str | None
) -> CachedFile:
    stat = path.stat()
    if entry is None:
        verified, digest = "no", None
    else:
        digest = entry.get("sha256")
        unchanged = entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns
        verified = ("pinned" if entry.get("pinned") else "recorded") if unchanged else "changed"
    return CachedFile(name, repo_id, filename, path, stat.st_size, verified, digest, pinned)


def select_cached(registry: Registry, names: list[str] | tuple[str, ...]) -> list[CachedFile]:
    """The cached files of some names (`name` for all its tags, `name.tag`, `hf-hub:ORG/REPO`
    for all its revisions, `hf-hub:ORG/REPO@REV`)."""
    rows = list_cached(registry)
    if not names:
        return rows
    forms = [name_form(name) for name in names]
    chosen = [row for row in rows if any(form.names(row.form) for form in forms)]
    for name, form in zip(names, forms, strict=True):
        if not any(form.names(row.form) for row in chosen):
            if form.kind != "hub":
                registry.resolve(name)  # an unknown name says so, with close matches
            raise NotCachedError(f"nothing is cached for '{name}'")
    return chosen


def remove(registry: Registry, names: list[str] | tuple[str, ...]) -> list[CachedFile]:
    """Remove the cached files of some names; returns what was removed."""
    rows = select_cached(registry, names)
    for row in rows:
        remove_cached(row.path)
    return rows


def verify_cached(
    registry: Registry, names: list[str] | tuple[str, ...] = (), *, remove: bool = False
) -> list[tuple[CachedFile, Verified | Mismatch]]:
    """Re-read every selected cached file and check it against its pinned or recorded sha256.

    Files never recorded are recorded now. A mismatch is reported and the file left as it
    is, unless `remove`: then it is removed (`Mismatch.removed` says whether that worked).
    """
    results: list[tuple[CachedFile, Verified | Mismatch]] = []
    for row in select_cached(registry, names):
        outcome = check_file(row.path, name=row.name, pinned=row.pinned, rehash=True, repo_id=row.repo_id)
        if remove and isinstance(outcome, Mismatch):
            outcome = outcome.remove()
        results.append((row, outcome))
    return results
