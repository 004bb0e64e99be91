"""A cached listing of the registry, so that `zoo list` reads neither YAML nor pydantic.

What `zoo list` and `zoo list --pretrained` print (per model: name, builder, attention,
default tag, description, paper, and per weight tag: hub id, number of classes, license,
parameters, GMACs, ImageNet-1k accuracy) is a `Listing`, which also filters and sorts them.
Building one from the plugins means reading and validating every registry file; `load_listing`
instead serves the listing of an earlier full load, cached in
`cache_dir()/listing-<environment>.json`, when nothing it was built from has changed.

Why plugin code still runs on the fast path: a plugin registers by running code, its
`register(context)`, and only that code knows which registry files it adds (and under which
conditions). Skipping it would trust a distribution's version to pin its behaviour, which an
editable install or a plugin reading its environment breaks. `register` is cheap by contract
(targets are `"module:attribute"` strings, nothing is imported), so every entry point is
loaded and called with a `RecordingContext`, which checks nothing and writes down each call.
The expensive part, reading the files, is what the cache saves. Its key is:

- the plugin entry points: name, value, distribution name and version;
- every call each plugin's `register` made, in order (names, targets, kinds, overrides);
- each registry file named: absolute path, size, mtime_ns, inode (as for `make` or
  Python's bytecode cache, a file whose stamp is the same is taken to be the same);
- the zoo's version, the versions of pydantic and PyYAML, and the size and mtime of the
  modules of `zoo.registry`, which turn registry files into entries.

A full load is a function of these (which plugin wins a name, what conflicts, what each file
holds), so a cache whose key equals the current one holds what a full load would give: it is
never stale. The key is taken before and after the full load it is stored with, and the
listing is written only if the two agree, so a change made during the load is never filed
under a key it does not belong to.

The fast path gives way to a plain full load, which writes no cache, whenever anything is
out of the ordinary: an entry point that fails to import, a `register` that raises with the
recording context, a file that is not on the file system, or a full load in which a plugin
failed. The failure is then reported as it always is; it may be fixed by an install the key
does not see (a plugin's missing dependency), so it is never cached. A registry already
loaded in this process (the default one after a first use, or one a test put in place) is
listed directly. A cache that cannot be read is rebuilt; one that cannot be written is
skipped.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Argument, ArgumentError, UnknownModelError
from ..files import atomic_path
from ..version import INTERFACE_VERSION, __version__
from .cache_dir import cache_dir, environment_digest
from .discovery import distribution_of, plugin_entry_points
from .names import matches, weights_match

if TYPE_CHECKING:
    from .registry import Registry
    from .schema import WeightTag

__all__ = [
    "SORT_KEYS",
    "ImageNetRow",
    "Listing",
    "ModelRow",
    "RecordingContext",
    "WeightRow",
    "cache_dir",
    "cache_key",
    "load_listing",
]

FORMAT = 3
"""The cache file's format; a file of another format is rebuilt."""

_VALIDATION_DEPENDENCIES = ("pydantic", "PyYAML")

SORT_KEYS = ("name", "top1", "top5", "params", "gmacs")
"""What published weights are listed by: `name` in the registry's order (models by name,
each model's tags as listed), any other key largest first, weights without it last."""


@dataclass(frozen=True)
class ImageNetRow:
    """A weight tag's published ImageNet-1k result (`zoo.registry.schema.ImageNetResult`)."""

    top1: float
    top5: float
    img_size: int
    crop_pct: float
    interpolation: str


@dataclass(frozen=True)
class WeightRow:
    """One published weight tag of a model, as `zoo list --pretrained` shows it."""

    tag: str
    hf_hub_id: str | None
    """None for weights in a local file."""
    task: str
    num_classes: int | None
    """None for tasks without classes (embeddings, sequence-to-sequence)."""
    license: str
    num_params: int | None = None
    gmacs: float | None = None
    imagenet: ImageNetRow | None = None
    """None where no ImageNet-1k result is published."""

    @classmethod
    def of(cls, tag: str, weights: WeightTag) -> WeightRow:
        """The row of a registry entry's weight tag."""
        imagenet = getattr(weights, "imagenet", None)
        return cls(
            tag,
            weights.hf_hub_id,
            weights.task,
            getattr(weights, "num_classes", None),
            weights.license,
            weights.num_params,
            weights.gmacs,
            ImageNetRow(**imagenet.model_dump()) if imagenet is not None else None,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WeightRow:
        imagenet = data.pop("imagenet")
        return cls(**data, imagenet=ImageNetRow(**imagenet) if imagenet is not None else None)

    def metric(self, key: str) -> float | None:
        """The value of a `SORT_KEYS` key other than `name`; None where it is not known."""
        if key == "params":
            return self.num_params
        if key == "gmacs":
            return self.gmacs
        return getattr(self.imagenet, key) if self.imagenet is not None else None


@dataclass(frozen=True)
class ModelRow:
    """One model, as `zoo list` shows it."""

    name: str
    builder: str
    attention: str | None
    default_tag: str | None
    description: str | None
    paper: str | None
    weights: tuple[WeightRow, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRow:
        weights = tuple(WeightRow.from_json(row) for row in data.pop("weights"))
        return cls(**data, weights=weights)


@dataclass(frozen=True)
class Listing:
    """The models of a registry, sorted by name, with what `zoo list` prints of each."""

    models: tuple[ModelRow, ...]

    @classmethod
    def of(cls, registry: Registry) -> Listing:
        """The listing of a loaded registry."""
        rows = []
        for name in registry.model_names():
            entry = registry.source(name).entry
            weights = tuple(WeightRow.of(tag, w) for tag, w in entry.weights.items())
            rows.append(
                ModelRow(
                    name,
                    entry.builder,
                    entry.attention,
                    entry.default_weight_tag,
                    entry.description,
                    entry.paper,
                    weights,
                )
            )
        return cls(tuple(rows))

    def matching(self, pattern: str = "*", *, family: str | None = None) -> list[ModelRow]:
        """The models whose name matches `pattern` (the rule of `zoo.registry.names`), of the
        builder `family` if given.

        Raises:
            UnknownModelError: a `family` no model is built by.
        """
        self._check_family(family)
        return [row for row in self.models if matches(row.name, pattern) and family in (None, row.builder)]

    def matching_weights(
        self,
        pattern: str = "*",
        *,
        family: str | None = None,
        min_top1: float | None = None,
        sort: str = "name",
    ) -> list[tuple[ModelRow, WeightRow]]:
        """Each published weight tag whose `name.tag` matches `pattern`, with its model: of
        the builder `family` if given, with an ImageNet-1k top-1 of at least `min_top1` if
        given (weights without one are left out), in the order of `sort` (`SORT_KEYS`).

        Raises:
            UnknownModelError: a `family` no model is built by.
            ArgumentError: a `sort` that is not one of `SORT_KEYS`, a `min_top1` that is not
                a finite number.
        """
        _check_query(min_top1, sort)
        rows = [
            (row, weights)
            for row in self.matching(family=family)
            for weights in row.weights
            if weights_match(row.name, weights.tag, pattern) and _reaches(weights, min_top1)
        ]
        if sort == "name":
            return rows
        return sorted(rows, key=lambda pair: _largest_first(pair[1].metric(sort)))

    def _check_family(self, family: str | None) -> None:
        families = sorted({row.builder for row in self.models})
        if family is not None and family not in families:
            raise UnknownModelError("family", family, difflib.get_close_matches(family, families, n=3))


def _check_query(min_top1: float | None, sort: str) -> None:
    if sort not in SORT_KEYS:
        raise ArgumentError(
            f"{{sort}} is not a sort key (keys: {', '.join(SORT_KEYS)})",
            arguments=[Argument("sort", repr(sort))],
        )
    if min_top1 is not None and (isinstance(min_top1, bool) or not math.isfinite(min_top1)):
        raise ArgumentError(
            "{min_top1} is not a finite number", arguments=[Argument("min_top1", repr(min_top1))]
        )


def _reaches(weights: WeightRow, min_top1: float | None) -> bool:
    if min_top1 is None:
        return True
    top1 = weights.metric("top1")
    return top1 is not None and top1 >= min_top1


def _largest_first(value: float | None) -> tuple[bool, float]:
    """A sort key: values largest first, then None (the sort is stable: ties keep their order)."""
    return value is None, -(value or 0.0)


# ---------------------------------------------------------------------------- the key


class _Uncacheable(Exception):
    """Something the key cannot vouch for: load the plugins the ordinary way."""


class RecordingContext:
    """Stands in for `PluginContext`: records each call of a plugin's `register`, checks nothing."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.staged: list[list[Any]] = []

    def add_builder(self, name: str, target: Any, *, override: bool = False) -> None:
        self.staged.append(["builder", name, _target(target), override])

    def add_attention(self, name: str, target: Any, *, kind: str, override: bool = False) -> None:
        self.staged.append(["attention", name, _target(target), kind, override])

    def add_adapter(self, name: str, target: Any, *, override: bool = False) -> None:
        self.staged.append(["adapter", name, _target(target), override])

    def add_models(self, path: Any, *, override: bool = False) -> None:
        self.staged.append(["models", *_file_stamp(path), override])

    interface_version = INTERFACE_VERSION

    def require_interface(self, version: str) -> None:
        self.staged.append(["interface", version])


def _target(target: Any) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


def _file_stamp(path: Any) -> list[Any]:
    """`[path, size, mtime_ns, inode]` of a registry file on the file system."""
    if not isinstance(path, (str, os.PathLike)):
        raise _Uncacheable(f"{path!r} is not a file system path")  # e.g. a file inside a zip
    path = os.path.abspath(path)
    try:
        stat = os.stat(path)
    except OSError as error:
        raise _Uncacheable(str(error)) from None
    return [path, stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _recorded_calls(entry_point: metadata.EntryPoint) -> list[list[Any]]:
    try:
        register = entry_point.load()
        context = RecordingContext(entry_point.name)
        register(context)
    except Exception as error:  # the ordinary load reports it
        raise _Uncacheable(f"plugin '{entry_point.name}': {error}") from None
    return context.staged


def _zoo_stamp() -> list[Any]:
    versions = []
    for name in _VALIDATION_DEPENDENCIES:
        try:
            versions.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            versions.append([name, None])
    modules = []
    for entry in os.scandir(Path(__file__).parent):
        if entry.name.endswith(".py"):
            stat = entry.stat()
            modules.append([entry.name, stat.st_size, stat.st_mtime_ns])
    return [FORMAT, __version__, versions, sorted(modules)]


def cache_key(entry_points: list[metadata.EntryPoint] | None = None) -> list[Any] | None:
    """What a full load of the installed plugins depends on, or `None` if it cannot be known.

    Runs each plugin's `register` with a `RecordingContext`; reads no registry file. The key
    is returned as JSON reads it back, the form it is compared in.
    """
    if entry_points is None:
        entry_points = plugin_entry_points()
    try:
        plugins = [
            [
                entry_point.name,
                entry_point.value,
                distribution_of(entry_point),
                entry_point.dist.version if entry_point.dist else None,
                _recorded_calls(entry_point),
            ]
            for entry_point in entry_points
        ]
        return json.loads(json.dumps([_zoo_stamp(), plugins]))
    except (_Uncacheable, TypeError, ValueError):  # TypeError, ValueError: not JSON (odd arguments)
        return None


# ---------------------------------------------------------------------------- the cache


def cache_file() -> Path:
    """The listing's cache file: one per environment."""
    return cache_dir() / f"listing-{environment_digest()}.json"


def _read(path: Path, key: list[Any]) -> Listing | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        return Listing(tuple(ModelRow.from_json(row) for row in data["models"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, corrupt, or of another shape: rebuilt


def _write(path: Path, key: list[Any], listing: Listing) -> None:
    text = json.dumps({"key": key, "models": [asdict(row) for row in listing.models]})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_text(text, encoding="utf-8")
    except (OSError, ValueError):  # ValueError: a path the system cannot take (a NUL in it)
        pass  # no cache this time


def load_listing() -> Listing:
    """The listing of the installed plugins: from the cache when its key holds, else loaded."""
    loaded = _loaded_plugin_manager()
    if loaded is not None:
        return Listing.of(loaded.registry)
    key = cache_key()
    path = cache_file()
    if key is not None:
        cached = _read(path, key)
        if cached is not None:
            return cached
    from .plugins import default_plugin_manager

    manager = default_plugin_manager()
    listing = Listing.of(manager.registry)
    failed = any(record.error for record in manager.records.values())
    # Written only if nothing changed during the load: the listing is then the key's.
    if key is not None and not failed and cache_key() == key:
        _write(path, key, listing)
    return listing


def _loaded_plugin_manager() -> Any:
    """The default plugin manager if this process has one already (without importing it)."""
    plugins = sys.modules.get(f"{__package__}.plugins")
    return plugins.loaded_default_plugin_manager() if plugins is not None else None
