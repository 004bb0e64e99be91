"""How model names are written, and how a pattern picks them.

A name is one of three forms, told apart by how it is written (`name_form`), before anything
is looked up (`zoo.weights.resolve` looks them up):

- `name` or `name.tag`: a registry entry, with the weight tag the name carries (if any);
- `hf-hub:ORG/REPO[@REV]`: a Hub repository written by `zoo export` (or in timm's format);
- a path (`./my-model`, `/data/my-model`): a folder written by `zoo export`.

A pattern picks names by one rule for `zoo list`, `zoo.list_models` and `zoo.list_pretrained`:

- A pattern holding a shell wildcard (`*`, `?` or `[...]`) must match the whole name,
  as `fnmatch.fnmatchcase` does: `resnet50*`, `*_cbam`, `vit_[bs]*`.
- A pattern without one matches every name that contains it: `cbam` means `*cbam*`.
- Published weights are named `name.tag`; a pattern picks one when it matches `name.tag`
  or `name` (so `resnet50*` lists every tag of every `resnet50...` model).

Matching is case-sensitive, as names are (lowercase).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "HUB_PREFIX",
    "WILDCARDS",
    "NameForm",
    "is_folder_name",
    "is_hub_name",
    "matches",
    "name_form",
    "shell_pattern",
    "weights_match",
]

WILDCARDS = "*?["
HUB_PREFIX = "hf-hub:"


@dataclass(frozen=True)
class NameForm:
    """What a model name says by the way it is written."""

    kind: Literal["registry", "hub", "folder"]
    base: str
    """The registry name, `hf-hub:ORG/REPO`, or the folder."""
    tag: str | None = None
    """The weight tag of `name.tag`."""
    revision: str | None = None
    """The revision of `hf-hub:ORG/REPO@REV`."""

    def names(self, other: NameForm) -> bool:
        """Whether this name stands for `other`: the same name, or the same model with any
        tag or revision when this one gives none."""
        if (self.kind, self.base) != (other.kind, other.base):
            return False
        return (self.tag, self.revision) in ((None, None), (other.tag, other.revision))


def is_hub_name(name: str) -> bool:
    return name.startswith(HUB_PREFIX)


def is_folder_name(name: str) -> bool:
    """A path rather than a registry name: registry names never hold a `/` or start with `.`."""
    return "/" in name or os.sep in name or name.startswith((".", "~"))


def name_form(name: str) -> NameForm:
    """Split a name into its parts by its form; nothing is checked or looked up."""
    if is_hub_name(name):
        base, _, revision = name.partition("@")
        return NameForm("hub", base, revision=revision or None)
    if is_folder_name(name):
        return NameForm("folder", name)
    base, _, tag = name.partition(".")
    return NameForm("registry", base, tag or None)


def shell_pattern(pattern: str) -> str:
    """The shell-style pattern `pattern` stands for: itself if it has a wildcard, else `*pattern*`."""
    if any(char in pattern for char in WILDCARDS):
        return pattern
    return f"*{pattern}*"


def matches(name: str, pattern: str) -> bool:
    """Whether the model name `name` matches `pattern` (see the module's rule)."""
    return fnmatch.fnmatchcase(name, shell_pattern(pattern))


def weights_match(name: str, tag: str, pattern: str) -> bool:
    """Whether the published weights `name.tag` match `pattern`: as `name.tag` or as `name`."""
    return matches(f"{name}.{tag}", pattern) or matches(name, pattern)
