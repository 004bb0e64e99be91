"""Every error the zoo raises on purpose: one root, builtin bases where they fit.

The CLI turns any `ZooError` into one line on stderr and the exit code its class carries;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ZooError",
    "UnknownModelError",
    "NoWeightsError",
    "ArgumentError",
    "RegistryError",
    "RegistryProblem",
    "PluginError",
    "NameConflictError",
    "AttentionInterfaceError",
    "CheckpointError",
    "DeviceError",
    "HubError",
    "ImageError",
    "AttentionMapError",
    "NotCachedError",
    "IntegrityError",
]


class ZooError(Exception):
    """Root of the zoo's errors. `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class UnknownModelError(ZooError, KeyError):
    """A model name, weight tag or registered component that does not exist."""

    exit_code = 2

    def __init__(self, what: str, name: str, suggestions: Sequence[str] = (), *, context: str = "") -> None:
        self.what = what
        self.name = name
        self.suggestions = list(suggestions)
        message = f"unknown {what} '{name}'" + (f" {context}" if context else "")
        if self.suggestions:
            message += "; did you mean " + ", ".join(f"'{s}'" for s in self.suggestions) + "?"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NoWeightsError(ZooError, LookupError):
    """`pretrained=True` for a model that has no published weights."""

    exit_code = 2


class ArgumentError(ZooError, TypeError):
    """Builder or attention arguments that do not fit their schema."""

    exit_code = 2


@dataclass(frozen=True)
class RegistryProblem:
    """One problem in a registry file: where it is and what is wrong."""

    file: str
    entry: str | None
    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.entry is not None:
            parts.append(f"entry '{self.entry}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        return ": ".join(parts) + f": {self.message}"


class RegistryError(ZooError, ValueError):
    """One or more bad registry entries."""

    def __init__(self, problems: Sequence[RegistryProblem]) -> None:
        self.problems = list(problems)
        first = str(self.problems[0])
        more = len(self.problems) - 1
        super().__init__(first if not more else f"{first} (and {more} more problem(s))")


class PluginError(ZooError):
    """A plugin that could not be loaded or registered."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plugin '{plugin}': {reason}")


class NameConflictError(PluginError):
    """Two owners claim the same name without an explicit override."""

    def __init__(self, kind: str, name: str, owner: str, existing_owner: str) -> None:
        self.kind = kind
        self.name = name
        self.existing_owner = existing_owner
        super().__init__(
            owner,
            f"{kind} '{name}' is already provided by '{existing_owner}'; "
            "pass override=True to replace it on purpose",
        )


class AttentionInterfaceError(ZooError, TypeError):
    """A registered attention class that does not follow the attention interface."""


class CheckpointError(ZooError, ValueError):
    """A checkpoint that cannot be read, or does not fit the model."""


class DeviceError(ZooError, ValueError):
    """A device or dtype that does not exist or is not available here."""

    exit_code = 2


class HubError(ZooError, OSError):
    """Downloading from the Hub failed."""


class ImageError(ZooError, ValueError):
    """A file that cannot be read as an image."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # pickled whole, as the ranks of a launch gather them
        return type(self), (self.path, self.reason)


class AttentionMapError(ZooError, TypeError):
    """A model that offers no attention maps, or not the one asked for."""

    exit_code = 2


class NotCachedError(HubError, FileNotFoundError):
    """A file that is not in the cache while the Hub is offline or cannot be reached."""


class IntegrityError(CheckpointError):
    """A downloaded or cached file whose sha256 is not the one pinned or recorded for it."""
