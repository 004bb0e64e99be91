"""The one place a model name is turned into what it stands for.

Every public function and command that takes a model name resolves it here, once, and
passes the `Resolved` inward, carrying the weights the name stands for (`selected`). The
forms, told apart by `zoo.registry.names.name_form`:

- `name` and `name.tag`: a registry entry, with the weight tag the name carries (if any);
- `hf-hub:ORG/REPO[@REV]`: a Hub repository written by `zoo export`, through the zoo config
  it carries (`zoo_config.json`: builder, arguments, weights' metadata);
- a path (`./my-model`, `/data/my-model`): a local folder written by `zoo export`, read the
  same way, its weights the folder's own file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import Argument, ArgumentError, NoWeightsError
from ..registry import ModelSource, Registry, Resolved, SelectedWeight, default_registry
from ..registry.names import HUB_PREFIX, is_folder_name, is_hub_name, name_form
from ..registry.schema import HUB_ID_PATTERN, ModelEntry
from .hub_config import CONFIG_FILENAME, read_hub_config

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
    """Fetch an `hf-hub:` repository's zoo config and turn it into a model entry."""
    from .hub import hf_download  # the network's modules, only for names that need them

    repo_id, name_revision = parse_hub_name(name)
    revision = revision or name_revision
    config_path = hf_download(repo_id, CONFIG_FILENAME, revision, name=name, force=False)
    config = read_hub_config(config_path, name=name)
    entry = config.to_entry(repo_id=repo_id, revision=revision, tag=HUB_TAG)
    return _through_config(name, entry, config.architecture, registry)


def resolve_folder(name: str, registry: Registry) -> ConfigResolved:
    """Read the zoo config of a local folder written by `zoo export`."""
    folder = Path(name).expanduser()
    config_path = folder / CONFIG_FILENAME
    if not config_path.is_file():
        what = "no such folder" if not folder.exists() else f"it holds no {CONFIG_FILENAME}"
        raise ArgumentError(f"'{name}' is not a folder written by zoo export: {what}")
    config = read_hub_config(config_path, name=name)
    return _through_config(name, config.to_entry(folder=folder, tag=HUB_TAG), config.architecture, registry)


def _through_config(
    name: str, entry: ModelEntry, architecture: str | None, registry: Registry
) -> ConfigResolved:
    registry.builder(entry.builder)  # an unknown builder fails here, naming close matches
    source = ModelSource(name, "zoo-config", entry=entry)
    resolved = registry.with_selection(ConfigResolved(name, source, HUB_TAG, architecture=architecture))
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
