"""The one place a model name is turned into what it stands for.

Every public function and command that takes a model name resolves it here, once, and
passes the `Resolved` inward, carrying the weights the name stands for (`selected`). The
forms, told apart by `zoo.registry.names.name_form`:

- `name` and `name.tag`: a registry entry, with the weight tag the name carries (if any);
- `hf-hub:ORG/REPO[@REV]`: a Hub repository written by `zoo export`, through the zoo config
  it carries (`zoo_config.json`: builder, arguments, weights' metadata), or one in timm's
  format, through its `config.json` (an architecture the registry carries, its arguments,
  preprocessing and class names: `zoo.weights.timm_config`); where a repository has both,
  the zoo config is read and the two must agree;
- a path (`./my-model`, `/data/my-model`): a local folder written by `zoo export` (or in
  timm's format), read the same way, its weights the folder's own file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import Argument, ArgumentError, HubError, NoWeightsError
from ..registry import ModelSource, Registry, Resolved, SelectedWeight, default_registry
from ..registry.names import HUB_PREFIX, is_folder_name, is_hub_name, name_form
from ..registry.schema import HUB_ID_PATTERN, ModelEntry
from .hub_config import CONFIG_FILENAME, WEIGHTS_FILENAME, read_hub_config
from .timm_config import TIMM_CONFIG_FILENAME, disagreement, read_timm_config

__all__ = [
    "HUB_PREFIX",
    "HUB_TAG",
    "ConfigResolved",
    "is_folder_name",
    "is_hub_name",
    "parse_hub_name",
    "published_weights",
    "resolve",
]

HUB_TAG = "hub"
"""The weight tag under which an `hf-hub:` repository's single checkpoint is known."""

_REPO_ID = re.compile(HUB_ID_PATTERN)


@dataclass(frozen=True)
class ConfigResolved(Resolved):
    """A name resolved through the zoo config it points at: an `hf-hub:` repository's or a
    local folder's, both written by `zoo export`."""

    architecture: str | None = None
    """The registry name the config was exported from, if it records one."""
    config_file: str = CONFIG_FILENAME
    """The config it was read through: `zoo_config.json`, or timm's `config.json`."""

    def __str__(self) -> str:
        return self.name


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """`hf-hub:ORG/REPO[@REV]` -> `(ORG/REPO, REV or None)`."""
    repo_id, _, revision = name.removeprefix(HUB_PREFIX).partition("@")
    if not _REPO_ID.match(repo_id) or (revision == "" and "@" in name) or any(c.isspace() for c in revision):
        raise ArgumentError(f"'{name}' is not of the form hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION")
    return repo_id, revision or None


def resolve(
    name: str | Resolved, registry: Registry | None = None, *, revision: str | None = None
) -> Resolved:
    """What a model name stands for, with the weights it stands for chosen once
    (`Resolved.selected`); a `Resolved` is returned as it is.

    Args:
        name: `name`, `name.tag`, `hf-hub:ORG/REPO[@REV]`, or the path of a folder written by
            `zoo export` (holding a `/` or starting with `.`: `./my-model`).
        registry: The registry to use instead of the installed plugins' one.
        revision: For `hf-hub:` names, a branch, tag or commit instead of the name's.

    Raises:
        UnknownModelError: no such name or tag (with close matches); `ArgumentError` for a
        malformed name, `HubError` for a repository or folder without a valid zoo config.
    """
    if isinstance(name, Resolved):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ArgumentError(f"a model name is a non-empty string, not {name!r}")
    registry = registry if registry is not None else default_registry()
    kind = name_form(name).kind
    if kind == "hub":
        return resolve_hub_name(name, registry, revision=revision)
    if kind == "folder":
        return resolve_folder(name, registry)
    return registry.resolve(name)


def resolve_hub_name(name: str, registry: Registry, *, revision: str | None = None) -> ConfigResolved:
    """Fetch an `hf-hub:` repository's config (the zoo's, else timm's) and turn it into a
    model entry."""
    from . import hub  # the network's modules, only for names that need them

    repo_id, name_revision = parse_hub_name(name)
    revision = revision or name_revision
    files = hub.repo_files(repo_id, revision, name=name)
    if files is None:  # offline, or the Hub out of reach: what the cache holds
        known = [f for f in _CONFIGS if hub.cached_file(repo_id, f, revision) is not None]
        files = known or [CONFIG_FILENAME]
        files += [f for f in _WEIGHTS if hub.cached_file(repo_id, f, revision) is not None]
    configs = {
        f: hub.hf_download(repo_id, f, revision, name=name, force=False) for f in _configs_in(files, name)
    }
    where = {"repo_id": repo_id, "revision": revision}
    return _through_configs(name, configs, files, where, registry)


def resolve_folder(name: str, registry: Registry) -> ConfigResolved:
    """Read the config of a local folder written by `zoo export` (or in timm's format)."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ArgumentError(f"'{name}' is not a folder written by zoo export: no such folder")
    files = sorted(path.name for path in folder.iterdir())
    if not set(_CONFIGS) & set(files):
        raise ArgumentError(f"'{name}' is not a folder written by zoo export: it holds no {CONFIG_FILENAME}")
    configs = {f: folder / f for f in _configs_in(files, name)}
    return _through_configs(name, configs, files, {"folder": folder}, registry)


_CONFIGS = (CONFIG_FILENAME, TIMM_CONFIG_FILENAME)
"""The configs a repository or folder is read through, the zoo's first."""
_WEIGHTS = (WEIGHTS_FILENAME, WEIGHTS_FILENAME + ".index.json")
"""The weights a timm-format repository may hold, by preference."""
_PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl")


def _configs_in(files: list[str], name: str) -> list[str]:
    present = [f for f in _CONFIGS if f in files]
    if not present:
        raise HubError(
            f"{name}: neither {CONFIG_FILENAME} (written by zoo export) nor a timm {TIMM_CONFIG_FILENAME} "
            "is there: it is not a model the zoo can read"
        )
    return present


def _through_configs(
    name: str, configs: dict[str, Path], files: list[str], where: dict, registry: Registry
) -> ConfigResolved:
    """The model the configs describe: the zoo's config where there is one (timm's, if also
    there, must agree with it), else timm's."""
    timm = None
    if TIMM_CONFIG_FILENAME in configs:
        timm_config = read_timm_config(configs[TIMM_CONFIG_FILENAME], name=name)
        filename = _timm_weights_file(files, name) if CONFIG_FILENAME not in configs else WEIGHTS_FILENAME
        entry, architecture = timm_config.to_entry(
            registry, name=name, tag=HUB_TAG, filename=filename, **where
        )
        timm = _through_config(name, entry, architecture, registry, TIMM_CONFIG_FILENAME)
    if CONFIG_FILENAME not in configs:
        return timm
    config = read_hub_config(configs[CONFIG_FILENAME], name=name)
    resolved = _through_config(name, config.to_entry(tag=HUB_TAG, **where), config.architecture, registry)
    if timm is not None:
        _check_agreement(name, resolved, timm)
    return resolved


def _timm_weights_file(files: list[str], name: str) -> str:
    """The safetensors file a timm-format repository holds; one line if it holds only pickles."""
    found = next((f for f in _WEIGHTS if f in files), None)
    if found is not None:
        return found
    pickles = [f for f in files if f.endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise HubError(
            f"{name}: its weights are only pickled ({', '.join(pickles[:3])}): the zoo loads only "
            f"safetensors ({WEIGHTS_FILENAME}); convert them once with `zoo convert` and publish the result"
        )
    return WEIGHTS_FILENAME


def _check_agreement(name: str, zoo: ConfigResolved, timm: ConfigResolved) -> None:
    if zoo.entry.builder != timm.entry.builder or zoo.config != timm.config:
        what = "the model they build"
    else:
        what = disagreement(timm.selected.weights, zoo.selected.weights)
    if what is not None:
        raise HubError(f"{name}: {CONFIG_FILENAME} and {TIMM_CONFIG_FILENAME} disagree on {what}")


def _through_config(
    name: str,
    entry: ModelEntry,
    architecture: str | None,
    registry: Registry,
    config_file: str = CONFIG_FILENAME,
) -> ConfigResolved:
    registry.builder(entry.builder)  # an unknown builder fails here, naming close matches
    source = ModelSource(name, "zoo-config", entry=entry)
    resolved = registry.with_selection(
        ConfigResolved(name, source, HUB_TAG, architecture=architecture, config_file=config_file)
    )
    config = registry.build_config(resolved)  # arguments checked against the builder's schema, once
    return replace(resolved, config=config)


OWN_CHECKPOINT = Argument("checkpoint", "FILE")


def published_weights(
    resolved: Resolved, *, borrowed: bool = False, or_checkpoint: bool = False
) -> SelectedWeight:
    """The published weights `resolved` stands for (`Resolved.selected`): its own, or with
    `borrowed` also those its entry borrows (`backbone`).

    Raises:
        NoWeightsError: There are none; the message says to build it without them, or with
            `or_checkpoint` to load a checkpoint of one's own.
    """
    weights = resolved.selected if borrowed else resolved.published
    if weights is None:
        reason = f"'{resolved.name}' has no published weights"
        if or_checkpoint:
            raise NoWeightsError(
                f"{reason}; load a checkpoint of your own ({{checkpoint}})", arguments=[OWN_CHECKPOINT]
            )
        raise NoWeightsError(f"{reason}; build it with pretrained=False")
    return weights
