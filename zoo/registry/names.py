"""How a pattern picks model names: one rule for `zoo list`, `zoo.list_models` and `zoo.list_pretrained`.

- A pattern holding a shell wildcard (`*`, `?` or `[...]`) must match the whole name,
  as `fnmatch.fnmatchcase` does: `resnet50*`, `*_cbam`, `vit_[bs]*`.
- A pattern without one matches every name that contains it: `cbam` means `*cbam*`.
- Published weights are named `name.tag`; a pattern picks one when it matches `name.tag`
  or `name` (so `resnet50*` lists every tag of every `resnet50...` model).

Matching is case-sensitive, as names are (lowercase).
"""

from __future__ import annotations

import fnmatch

__all__ = ["WILDCARDS", "matches", "shell_pattern", "weights_match"]

WILDCARDS = "*?["


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
