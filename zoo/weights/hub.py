"""Fetching published weights from the Hugging Face Hub.

This is the only module that imports `huggingface_hub` (and only inside functions). Files
land in the standard Hugging Face cache, shared with timm and transformers. `HF_ENDPOINT`,
`HF_HOME` (or `HF_HUB_CACHE`) and `HF_HUB_OFFLINE` are read from the environment at every
call and passed on explicitly, so changing them in a running process takes effect;
`HF_TOKEN` is read by `huggingface_hub` when it sends a request.

Unless offline, the Hub is asked for a file that is not usable from the cache once before
`huggingface_hub` is handed the download, so that a failure is classified here (see
`zoo.weights.network`: what is retried, for how long) rather than retried for 24 s there.

Every file is checked after it is fetched: against the sha256 the registry pins, else
against the sha256 recorded when the zoo first saw it (see `zoo.weights.cache`). A weight
tag whose `filename` is a sharded checkpoint's index (`model.safetensors.index.json`) is
fetched by `fetch_sharded`: the index (checked against the pinned sha256), then every shard
it names, from the same commit, each checked and recorded like a single file.

Names are resolved by `zoo.weights.resolve`; this module fetches the files of the weights they
stand for (`Resolved.selected`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import ArgumentError, HubError, IntegrityError, NotCachedError, ZooError
from ..version import __version__
from . import cache, network
from .header import INDEX_SUFFIX, read_checkpoint, read_index

if TYPE_CHECKING:
    from ..registry import SelectedWeight

__all__ = ["Download", "cached_file", "fetch", "fetch_sharded", "hf_download", "is_sharded", "repo_files"]

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


def fetch(selected: SelectedWeight, *, revision: str | None = None, force: bool = False) -> Download:
    """The checked local file of published weights, downloaded into the cache if needed."""
    weights, name = selected.weights, str(selected)
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


def is_sharded(selected: SelectedWeight) -> bool:
    """Whether the file of published weights is a sharded checkpoint's index."""
    weights = selected.weights
    return str(weights.path or weights.filename).endswith(INDEX_SUFFIX)


def fetch_sharded(selected: SelectedWeight, *, revision: str | None = None, force: bool = False) -> Download:
    """The checked index of a sharded checkpoint, with every shard it names fetched (from
    the index's commit) and checked, and the shards' headers checked against the index.

    The tag's sha256 pins the index; each shard's sha256 is recorded when first seen.
    """
    index = fetch(selected, revision=revision, force=force)
    weights = selected.weights
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
    """The path of a Hub file in the cache, downloaded if needed; every failure is one line.

    Unless offline, the settings are checked first (`zoo.weights.network`), and when the file
    is not usable from the cache (or `force`), the Hub is asked for it once, with transient
    failures retried within `ZOO_HUB_RETRY_SECONDS`, before `huggingface_hub` takes over.
    """
    cache_dir = cache.hub_cache_dir()  # checked before huggingface_hub reads the same settings
    offline = cache.is_offline()
    if force and offline:
        raise ArgumentError(f"{name}: cannot download again while HF_HUB_OFFLINE is set")
    settings = None if offline else network.Settings.read(cache.hub_endpoint())  # before the import,
    from huggingface_hub import hf_hub_download  # which fails on some malformed HF_ENDPOINT values

    fetching = _Fetching(name, repo_id, filename, revision, settings)
    try:
        if settings is not None:
            usable = _usable_from_cache(repo_id, filename, revision)
            if force or not usable:
                _check_reachable(fetching, cached=usable)
        with _retry_notices(fetching.where):
            return Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=revision,
                    cache_dir=cache_dir,
                    endpoint=fetching.endpoint,
                    local_files_only=offline,
                    force_download=force,
                    etag_timeout=settings.etag_timeout if settings else network.DEFAULT_TIMEOUT,
                    library_name="zoo",
                    library_version=__version__,
                    tqdm_class=_progress_class(),
                )
            )
    except Exception as error:
        zoo_error = _download_error(error, fetching)
        if zoo_error is None or zoo_error is error:
            raise
        raise zoo_error from None


def repo_files(repo_id: str, revision: str | None, *, name: str) -> list[str] | None:
    """The files of a Hub repository at `revision` (its default branch if None), or None where
    the Hub cannot tell: offline, out of reach or failing otherwise (then what the cache
    holds must do, see `cached_file`, and fetching a file from it reports the failure). A
    repository or revision that does not exist, or a token refused, is one line (`HubError`)."""
    cache.hub_cache_dir()
    if cache.is_offline():
        return None
    settings = network.Settings.read(cache.hub_endpoint())
    from huggingface_hub import HfApi
    from huggingface_hub.constants import DEFAULT_REVISION
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=settings.endpoint, library_name="zoo", library_version=__version__)
    try:  # one request, within the metadata timeout (listing the tree retries, without one)
        info = api.model_info(repo_id, revision=revision or DEFAULT_REVISION, timeout=settings.etag_timeout)
        return [sibling.rfilename for sibling in info.siblings or []]
    except Exception as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(error, HfHubHTTPError) and status in (401, 403, 404):
            raise _http_error(error, _Fetching(name, repo_id, "", revision, settings)) from None
        if isinstance(error, HfHubHTTPError) or network.is_transport_error(error):
            return None  # the download of the config says what it was, retrying what is transient
        raise


def cached_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """The path of a Hub file in the cache, for `revision` (the default branch if None), or
    None if the cache does not hold it."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache.hub_cache_dir(), revision=revision)
    return Path(found) if isinstance(found, str) else None


@dataclass(frozen=True)
class _Fetching:
    """One file being fetched, and the words messages about it use."""

    name: str
    repo_id: str
    filename: str
    revision: str | None
    settings: network.Settings | None

    @property
    def endpoint(self) -> str | None:
        return self.settings.endpoint if self.settings else cache.hub_endpoint()

    @property
    def where(self) -> str:
        return self.settings.where if self.settings else "the Hugging Face Hub"

    @property
    def what(self) -> str:
        return f"{self.repo_id}/{self.filename}" + (f"@{self.revision}" if self.revision else "")

    def url(self) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, self.filename, revision=self.revision, endpoint=self.endpoint)


def _usable_from_cache(repo_id: str, filename: str, revision: str | None) -> bool:
    """Whether `hf_hub_download` would serve the file from the cache if the Hub failed."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache.hub_cache_dir(), revision=revision)
    return isinstance(found, str)


def _check_reachable(fetching: _Fetching, *, cached: bool) -> None:
    """Ask the Hub for the file once (retrying transient failures); one line if it fails."""
    settings = fetching.settings
    assert settings is not None
    url = fetching.url()
    failure = network.retry(lambda: _probe(url, settings), settings.retry_seconds)
    if failure is None:
        return
    why = f"{failure.describe()}; {network.advice(failure, url)}"
    if cached:
        raise HubError(f"{fetching.name}: cannot download {fetching.what} again: {why}")
    raise NotCachedError(f"{fetching.name}: {fetching.what} is not in the cache and {why}")


def _probe(url: str, settings: network.Settings) -> network.Failure | None:
    """One metadata request for the file, as `huggingface_hub` sends it: None unless it
    failed in the network or with a transient status (the download reports any other)."""
    from huggingface_hub import get_session
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(library_name="zoo", library_version=__version__)
    try:
        response = get_session().head(
            url, headers=headers, timeout=settings.etag_timeout, follow_redirects=False
        )
    except Exception as error:
        if not network.is_transport_error(error):
            return None  # not the network's doing: huggingface_hub reports it
        return network.failure_of_error(error, settings.where, "HF_HUB_ETAG_TIMEOUT", settings.etag_timeout)
    return network.failure_of_status(
        response.status_code, response.reason_phrase, settings.where, response.headers.get("Retry-After")
    )


def _download_error(error: Exception, fetching: _Fetching) -> ZooError | None:
    """The one-line zoo error for what `hf_hub_download` raised; None for a bug."""
    from huggingface_hub.errors import FileMetadataError, HfHubHTTPError, LocalEntryNotFoundError

    name, where, what = fetching.name, fetching.where, fetching.what
    if isinstance(error, ZooError):
        return error
    if isinstance(error, (LocalEntryNotFoundError, ValueError)) and isinstance(
        error.__cause__, (HfHubHTTPError, FileMetadataError)
    ):
        error = error.__cause__  # the Hub's answer, under huggingface_hub's "cannot find it"
    if isinstance(error, LocalEntryNotFoundError):
        return _not_cached(fetching)
    if isinstance(error, HfHubHTTPError):
        return _http_error(error, fetching)
    if isinstance(error, FileMetadataError):
        return HubError(
            f"{name}: {where} does not answer as a Hugging Face Hub does (no commit or ETag for {what}); "
            f"{network.advice(None, fetching.url())}"
        )
    if network.is_transport_error(error):
        timeout = fetching.settings.download_timeout if fetching.settings else network.DEFAULT_TIMEOUT
        failure = network.failure_of_error(error, where, "HF_HUB_DOWNLOAD_TIMEOUT", timeout)
        return HubError(f"{name}: downloading {what} failed: {failure.reason}")
    if isinstance(error, OSError):  # disk full, permissions, ...
        return HubError(f"{name}: downloading {what} failed: {_first_line(error)}")
    if isinstance(error, ValueError):  # a repository id huggingface_hub refuses, ...
        cause = error.__cause__ or error
        return HubError(f"{name}: downloading {what} from {where} failed: {_first_line(cause)}")
    return None


def _not_cached(fetching: _Fetching) -> NotCachedError:
    name, what = fetching.name, fetching.what
    if fetching.settings is None:
        why = f"HF_HUB_OFFLINE is set; fetch it with `zoo get {name}` while online"
    else:
        why = f"{fetching.where} cannot be reached; {network.advice(None, fetching.url())}"
    return NotCachedError(f"{name}: {what} is not in the cache and {why}")


def _http_error(error: Exception, fetching: _Fetching) -> HubError:
    """The Hub's refusal in one line; a refused token is said so, by its name only."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name, repo_id, where = fetching.name, fetching.repo_id, fetching.where
    if isinstance(error, GatedRepoError):
        return HubError(f"{name}: {repo_id} on {where} is gated; accept its terms and set HF_TOKEN")
    if isinstance(error, RepositoryNotFoundError):
        return HubError(f"{name}: repository {repo_id} not found on {where} (or it is private: set HF_TOKEN)")
    if isinstance(error, RevisionNotFoundError):
        return HubError(f"{name}: revision '{fetching.revision}' not found in {repo_id} on {where}")
    if isinstance(error, EntryNotFoundError):
        return HubError(f"{name}: {repo_id} on {where} has no file '{fetching.filename}'")
    status = getattr(getattr(error, "response", None), "status_code", None)
    refusal = _refusal(status, repo_id, where)
    if refusal is not None:
        return HubError(f"{name}: {refusal}")
    return HubError(f"{name}: downloading {fetching.what} from {where} failed: {_answer(error)}")


def _answer(error: Exception) -> str:
    """`HTTP 400 (Bad Request): what the server said`, or the error's first line."""
    response = getattr(error, "response", None)
    if response is None:
        return _first_line(error)
    said = (getattr(error, "server_message", None) or "").strip()
    answer = f"HTTP {response.status_code} ({response.reason_phrase})"
    return _redacted(answer + (f": {said.splitlines()[0]}" if said else ""))


def _refusal(status: int | None, repo_id: str, where: str) -> str | None:
    """HTTP 401 or 403 in words, depending on whether a token was sent."""
    from huggingface_hub import get_token

    token = get_token() is not None
    if status == 401 and token:
        return f"{where} refused the token in HF_TOKEN for {repo_id} (HTTP 401): not valid, or expired"
    if status == 401:
        return f"{where} asks for a token for {repo_id} (HTTP 401): set HF_TOKEN"
    if status == 403 and token:
        return (
            f"the token in HF_TOKEN does not give access to {repo_id} on {where} (HTTP 403): "
            "it lacks the permission, or the repository's terms are not accepted"
        )
    if status == 403:
        return f"{where} denies access to {repo_id} (HTTP 403): set HF_TOKEN to a token with access"
    return None


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
            logger.info("%s stopped answering; huggingface_hub retries the download", self.where)
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
    return _redacted(text.splitlines()[0])


def _redacted(text: str) -> str:
    """`text` without the token: no message or log line of the zoo shows it."""
    from huggingface_hub import get_token

    for token in {get_token(), os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")}:
        if token and token.strip():
            text = text.replace(token.strip(), "***")
    return text
