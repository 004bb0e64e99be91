"""Fetching published weights from the Hugging Face Hub.

This is the only module that imports `huggingface_hub` (and only inside functions). Files
land in the standard Hugging Face cache, shared with timm and transformers. `HF_ENDPOINT`,
`HF_HOME` (or `HF_HUB_CACHE`) and `HF_HUB_OFFLINE` are read from the environment at every
call and passed on explicitly, so changing them in a running process takes effect;
`HF_TOKEN` is read by `huggingface_hub` when it sends a request.

Every file is checked after it is fetched: against the sha256 the registry pins, else
against the sha256 recorded when the zoo first saw it (see `zoo.weights.cache`). A weight
tag whose `filename` is a sharded checkpoint's index (`model.safetensors.index.json`) is
fetched by `fetch_sharded`: the index (checked against the pinned sha256), then every shard
it names, from the same commit, each checked and recorded like a single file.

Names are resolved by `zoo.weights.resolve`; this module fetches files of resolved names.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import ArgumentError, HubError, IntegrityError, NotCachedError
from . import cache
from .header import INDEX_SUFFIX, read_checkpoint, read_index

if TYPE_CHECKING:
    from ..registry import Resolved

__all__ = ["Download", "fetch", "fetch_sharded", "hf_download", "is_sharded"]

logger = logging.getLogger("zoo")


@dataclass(frozen=True)
class Download:
    """A weight file in the local cache, checked."""

    name: str
    repo_id: str | None
    """None for a local file (a folder written by `zoo export`, a registry `path`)."""
    filename: str
    path: Path
    sha256: str
    size: int
    verified: str
    """`pinned` (matches the registry's sha256), `recorded` (matches the first-seen sha256) or,
    for a local file with no sha256 pinned, `unpinned`."""
    shards: tuple[Download, ...] = ()
    """For a sharded checkpoint's index, its shards, each checked."""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "repo_id": self.repo_id,
            "filename": self.filename,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "verified": self.verified,
        }


def fetch(resolved: Resolved, *, revision: str | None = None, force: bool = False) -> Download:
    """The checked local file of a resolved weight tag, downloaded into the cache if needed."""
    weights = resolved.weights
    if weights is None:
        raise HubError(f"'{resolved}' names no weight tag")
    name = str(resolved)
    if weights.path is not None:
        return _local_file(name, Path(weights.path), weights.sha256)
    revision = revision or weights.revision
    path = hf_download(weights.hf_hub_id, weights.filename, revision, name=name, force=force)
    verified = cache.verify_file(
        path,
        name=name,
        pinned=weights.sha256,
        rehash=force,
        fetch_hint=f"zoo get {name}",
        repo_id=weights.hf_hub_id,
    )
    return Download(
        name, weights.hf_hub_id, weights.filename, path, verified.sha256, verified.size, verified.how
    )


def is_sharded(resolved: Resolved) -> bool:
    """Whether a resolved weight tag's file is a sharded checkpoint's index."""
    weights = resolved.weights
    if weights is None:
        return False
    return str(weights.path or weights.filename).endswith(INDEX_SUFFIX)


def fetch_sharded(resolved: Resolved, *, revision: str | None = None, force: bool = False) -> Download:
    """The checked index of a sharded checkpoint, with every shard it names fetched (from
    the index's commit) and checked, and the shards' headers checked against the index.

    The tag's sha256 pins the index; each shard's sha256 is recorded when first seen.
    """
    index = fetch(resolved, revision=revision, force=force)
    weights = resolved.weights
    shards = []
    if index.repo_id is not None:
        commit = _snapshot_commit(index.path) or revision or weights.revision
        folder = PurePosixPath(weights.filename).parent
        for shard in sorted(set(read_index(index.path).values())):
            shards.append(_fetch_shard(index, str(folder / shard), commit, force))
    read_checkpoint(index.path)
    return replace(index, shards=tuple(shards))


def _fetch_shard(index: Download, filename: str, commit: str | None, force: bool) -> Download:
    path = hf_download(index.repo_id, filename, commit, name=index.name, force=force)
    verified = cache.verify_file(
        path, name=index.name, rehash=force, fetch_hint=f"zoo get {index.name}", repo_id=index.repo_id
    )
    return Download(index.name, index.repo_id, filename, path, verified.sha256, verified.size, verified.how)


def _snapshot_commit(path: Path) -> str | None:
    """The commit of a file in the Hugging Face cache (`.../snapshots/COMMIT/...`)."""
    parts = path.parts
    if "snapshots" not in parts[:-1]:
        return None
    return parts[len(parts) - 1 - parts[::-1].index("snapshots") + 1]


def _local_file(name: str, path: Path, pinned: str | None) -> Download:
    """A weight tag's local file, checked against its pinned sha256 (never removed)."""
    if not path.is_file():
        raise NotCachedError(f"{name}: its weights file {path} does not exist")
    size = path.stat().st_size
    if pinned is None:
        return Download(name, None, path.name, path, cache.sha256_of(path), size, "unpinned")
    digest = cache.sha256_of(path)
    if digest != pinned:
        raise IntegrityError(
            f"{name}: sha256 mismatch for {path}: its pinned sha256 is {pinned}, the file has {digest}"
        )
    return Download(name, None, path.name, path, digest, size, "pinned")


def _progress_class() -> type | None:
    if sys.stderr is not None and sys.stderr.isatty():
        return None  # huggingface_hub's own bar
    from huggingface_hub.utils import tqdm

    class Silent(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent


def hf_download(repo_id: str, filename: str, revision: str | None, *, name: str, force: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from .. import __version__

    offline = cache.is_offline()
    endpoint = cache.hub_endpoint()
    where = endpoint or "the Hugging Face Hub"
    what = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    if force and offline:
        raise ArgumentError(f"{name}: cannot download again while HF_HUB_OFFLINE is set")
    try:
        with _retry_notices(where):
            return Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    cache_dir=cache.hub_cache_dir(),
                    endpoint=endpoint,
                    local_files_only=offline,
                    force_download=force,
                    library_name="zoo",
                    library_version=__version__,
                    tqdm_class=_progress_class(),
                )
            )
    except LocalEntryNotFoundError:
        if offline:
            why = f"HF_HUB_OFFLINE is set; fetch it with `zoo get {name}` while online"
        else:
            why = f"{where} cannot be reached (check the network or HF_ENDPOINT); `zoo get {name}` fetches it"
        raise NotCachedError(f"{name}: {what} is not in the cache and {why}") from None
    except GatedRepoError:
        raise HubError(f"{name}: {repo_id} on {where} is gated; accept its terms and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise HubError(
            f"{name}: repository {repo_id} not found on {where} (or it is private: set HF_TOKEN)"
        ) from None
    except RevisionNotFoundError:
        raise HubError(f"{name}: revision '{revision}' not found in {repo_id} on {where}") from None
    except EntryNotFoundError:
        raise HubError(f"{name}: {repo_id} on {where} has no file '{filename}'") from None
    except HfHubHTTPError as error:
        raise HubError(f"{name}: downloading {what} from {where} failed: {_first_line(error)}") from None
    except OSError as error:  # disk full, permissions, connection dropped mid-file, ...
        raise HubError(f"{name}: downloading {what} failed: {_first_line(error)}") from None
    except ValueError as error:  # `force` without a reachable Hub
        cause = error.__cause__ or error
        raise HubError(f"{name}: downloading {what} from {where} failed: {_first_line(cause)}") from None


class _RetryFilter(logging.Filter):
    """Replaces huggingface_hub's notice per retry with one line on the `zoo` logger."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where
        self.told = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Retrying in" not in message and "thrown while requesting" not in message:
            return True
        if not self.told:
            self.told = True
            logger.info("%s does not answer; retrying for a few seconds before giving up", self.where)
        return False


@contextmanager
def _retry_notices(where: str) -> Iterator[None]:
    http_logger = logging.getLogger("huggingface_hub.utils._http")
    retry_filter = _RetryFilter(where)
    http_logger.addFilter(retry_filter)
    try:
        yield
    finally:
        http_logger.removeFilter(retry_filter)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
