"""The one place a model name is turned into what it stands for.

Every public function and command that takes a model name resolves it here, once, and
passes the `Resolved` inward. The forms:

- `name` and `name.tag`: a registry entry, with the weight tag the name carries (if any);
- `hf-hub:ORG/REPO[@REV]`: a Hub repository written by `zoo export`, through the zoo config
  it carries (`zoo_config.json`: builder, arguments, weights' metadata).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ArgumentError, NoWeightsError
from ..registry import ModelSource, Registry, Resolved, default_registry
from ..registry.schema import HUB_ID_PATTERN
from .hub import hf_download
from .hub_config import CONFIG_FILENAME, read_hub_config

__all__ = [
    "HUB_PREFIX",
    "HUB_TAG",
    "HubResolved",
    "is_hub_name",
    "parse_hub_name",
    "resolve",
    "with_default_tag",
]

HUB_PREFIX = "hf-hub:"
HUB_TAG = "hub"
"""The weight tag under which an `hf-hub:` repository's single checkpoint is known."""

_REPO_ID = re.compile(HUB_ID_PATTERN)


@dataclass(frozen=True)
class HubResolved(Resolved):
    """An `hf-hub:` name resolved through the zoo config its repository carries."""

    def __str__(self) -> str:
        return self.name


def is_hub_name(name: str) -> bool:
    return name.startswith(HUB_PREFIX)


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """`hf-hub:ORG/REPO[@REV]` -> `(ORG/REPO, REV or None)`."""
    repo_id, _, revision = name.removeprefix(HUB_PREFIX).partition("@")
    if not _REPO_ID.match(repo_id) or (revision == "" and "@" in name) or any(c.isspace() for c in revision):
        raise ArgumentError(f"'{name}' is not of the form hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION")
    return repo_id, revision or None


def resolve(name: str, registry: Registry | None = None, *, revision: str | None = None) -> Resolved:
    """A registry `name[.tag]` or an `hf-hub:` name, resolved."""
    registry = registry if registry is not None else default_registry()
    if is_hub_name(name):
        return resolve_hub_name(name, registry, revision=revision)
    return registry.resolve(name)


def resolve_hub_name(name: str, registry: Registry, *, revision: str | None = None) -> HubResolved:
    """Fetch an `hf-hub:` repository's zoo config and turn it into a model entry."""
    repo_id, name_revision = parse_hub_name(name)
    revision = revision or name_revision
    config_path = hf_download(repo_id, CONFIG_FILENAME, revision, name=name, force=False)
    config = read_hub_config(config_path, name=name)
    registry.builder(config.builder)  # an unknown builder fails here, naming close matches
    entry = config.to_entry(repo_id, revision, tag=HUB_TAG)
    resolved = HubResolved(name, ModelSource(name, "hf-hub", entry=entry), HUB_TAG)
    registry.build_config(resolved)  # arguments checked against the builder's schema
    return resolved


def with_default_tag(resolved: Resolved) -> Resolved:
    """`resolved` itself if it names a tag, else the same name with its entry's default tag."""
    if resolved.tag is not None:
        return resolved
    tag = resolved.entry.default_weight_tag
    if tag is None:
        raise NoWeightsError(f"'{resolved.name}' has no published weights; build it with pretrained=False")
    return type(resolved)(resolved.name, resolved.source, tag)
