"""Every error the zoo raises on purpose: one root, builtin bases where they fit.

The CLI turns any `ZooError` into one line on stderr and the exit code `EXIT_CODES` gives
its class; anything else is a bug and keeps its traceback.

An error about an argument names it as the caller wrote it: a message is a template in
which `{name}` stands for an `Argument`, worded `num_classes=10` by `str(error)` (Python)
and `--num-classes 10` by the command line, which knows its own flags (`render`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXIT_CODES",
    "Argument",
    "ZooError",
    "UnknownModelError",
    "NoWeightsError",
    "ArgumentError",
    "InputError",
    "MissingFileError",
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
    "exit_code_of",
]


@dataclass(frozen=True)
class Argument:
    """An argument of a function (and of the command that calls it) that a message names."""

    name: str
    """The Python parameter: `num_classes`."""
    value: str | None = None
    """What the message shows as its value (`10`, `FILE`); None for the name alone."""

    def python(self) -> str:
        """`num_classes=10`, or `seq_len` without a value."""
        return self.name if self.value is None else f"{self.name}={self.value}"

    def flag(self, option: str, *, is_flag: bool = False) -> str:
        """`--num-classes 10` for the command-line `option`; a boolean flag stands alone."""
        if self.value is None or is_flag:
            return option
        return f"{option} {self.value}"


class ZooError(Exception):
    """Root of the zoo's errors.

    `message` may name arguments as `{name}` placeholders, filled from `arguments` by `str()`
    in Python's words and by `render` in a caller's (the command line's flags).
    """

    def __init__(self, message: str = "", *args: Any, arguments: Iterable[Argument] = ()) -> None:
        self.template = message
        self.arguments = tuple(arguments)
        super().__init__(self.render() if self.arguments else message, *args)

    def render(self, spell: Callable[[Argument], str | None] | None = None) -> str:
        """The message with each argument worded by `spell` (Python's words where it gives None)."""
        if not self.arguments:
            return str(self)
        text = self.template
        for argument in self.arguments:
            worded = spell(argument) if spell is not None else None
            text = text.replace("{" + argument.name + "}", worded or argument.python())
        return text

    @property
    def exit_code(self) -> int:
        """What the command line exits with (`EXIT_CODES`)."""
        return exit_code_of(self)


class UnknownModelError(ZooError, KeyError):
    """A model name, weight tag or registered component that does not exist."""

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


class ArgumentError(ZooError, TypeError):
    """Builder or attention arguments that do not fit their schema."""


class InputError(ArgumentError, ValueError):
    """A tensor or value a function cannot take (a mask's shape or dtype, an image's size): an
    `ArgumentError`, and a `ValueError` as Python's own checks of a value raise."""


class MissingFileError(ArgumentError):
    """An input path (a checkpoint, image, registry or label file) that does not exist,
    is not a file, or cannot be read: a usage error, as a mistyped name is."""


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


class NotCachedError(HubError, FileNotFoundError):
    """A file that is not in the cache while the Hub is offline or cannot be reached."""


class IntegrityError(CheckpointError):
    """A downloaded or cached file whose sha256 is not the one pinned or recorded for it."""


EXIT_CODES: dict[type[ZooError], int] = {
    UnknownModelError: 2,
    NoWeightsError: 2,
    ArgumentError: 2,
    MissingFileError: 2,
    DeviceError: 2,
    AttentionMapError: 2,
    ZooError: 1,
}
"""The exit code of each kind of error; an error takes the code of its nearest class here."""


def exit_code_of(error: ZooError) -> int:
    """The exit code of `error`: that of the first of its classes in `EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1
