"""Options shared by the CLI commands, and reading their values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from ..devices import DTYPE_NAMES
from ..errors import ArgumentError
from ..files import unwritable

__all__ = [
    "FiniteFloat",
    "args_option",
    "check_input_files",
    "checkpoint_option",
    "device_option",
    "dtype_option",
    "input_file",
    "checkpoint",
    "num_classes_option",
    "parse_assignments",
    "refuse_meta",
    "split_assignments",
    "writable_path",
]


class FiniteFloat(click.FloatRange):
    """A float option's type: a finite number (NaN and infinities are refused), within the
    bounds given, as `click.FloatRange` takes them. Every float option of the zoo has it."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


input_file = click.Path(exists=True, dir_okay=False, path_type=Path)
"""A file the command reads: one that does not exist, is a folder or cannot be read is a
usage error (exit 2), refused as the command line is parsed, before anything is loaded."""

device_option = click.option("--device", help="cpu, cuda, cuda:1, mps, meta, ...  [default: cpu]")
dtype_option = click.option("--dtype", help="float32, bfloat16, float16, ...  [default: float32]")
checkpoint = click.Path(exists=True, path_type=Path)
"""A checkpoint the command reads: a file, or a folder of shards; refused as `input_file` is."""
checkpoint_option = click.option(
    "--checkpoint",
    type=checkpoint,
    help="Load this local safetensors file instead of the published weights.",
)
num_classes_option = click.option("--num-classes", type=int, help="Size of the classifier head (0: none).")


def args_option(help: str = "Override a builder argument (repeatable; values are YAML).") -> Callable:
    """`-a/--arg KEY=VALUE`, repeatable; read with `parse_assignments`."""
    return click.option("-a", "--arg", "assignments", multiple=True, metavar="KEY=VALUE", help=help)


def parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    """`("attn=cbam", "layers=[2, 2, 2, 2]")` -> `{"attn": "cbam", "layers": [2, 2, 2, 2]}`.

    Values are read as YAML, so numbers, lists and mappings keep their types.
    """
    import yaml

    values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{assignment}' is not KEY=VALUE", param_hint="'-a/--arg'")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise click.BadParameter(
                f"cannot read the value of '{assignment}'", param_hint="'-a/--arg'"
            ) from None
    return values


def check_input_files(paths: Iterable[str | Path], parameter: str) -> None:
    """Refuse, as `input_file` does, files of a parameter that takes files among other values
    (`zoo attn`'s INPUT: an image, a feature file or token ids)."""
    context = click.get_current_context()
    param = next(param for param in context.command.params if param.name == parameter)
    for path in paths:
        input_file.convert(path, param, context)


def writable_path(path: Path, option: str) -> None:
    """Refuse an output path whose folder does not exist or cannot be written, or that is a
    folder."""
    problem = unwritable(path.parent)
    if problem is not None:
        raise ArgumentError(f"{option} {path}: {problem}")
    if path.is_dir():
        raise ArgumentError(f"{option} {path}: is a directory")


# `-a KEY=VALUE` keys that are flags of their own (the builder never sees them)...
FLAG_KEYS = {"num_classes": "--num-classes", "device": "--device", "dtype": "--dtype"}
# ...and keys that no builder takes, with what to give instead.
REFUSED_KEYS = {
    "pretrained": "use --pretrained",
    "checkpoint": "use --checkpoint FILE",
    "name": "give the model as the NAME argument",
    "registry": "models come from the installed plugins (see zoo plugins)",
}


def split_assignments(
    assignments: tuple[str, ...], flags: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse `-a KEY=VALUE` and split it into the command's flags and builder arguments.

    `-a num_classes=10`, `-a device=cpu` and `-a dtype=bfloat16` act as the flags of the same
    name when the command has them (`flags` holds the command's values of those it has, by
    keyword); a flag given both ways with different values is an error. Keys no builder
    takes (`pretrained`, `checkpoint`, `name`, `registry`) are refused, naming what to use.

    Args:
        assignments: The raw `-a` values.
        flags: The values of the flags `-a` may also set, by keyword (`{"num_classes": None,
            "device": "cuda"}`); keys missing here are builder arguments, or refused.

    Returns:
        The flags with the `-a` values merged in, and the builder arguments.

    Raises:
        ArgumentError: A refused key, or a flag and an `-a` that disagree.
    """
    merged = dict(flags)
    builder_args: dict[str, Any] = {}
    command = click.get_current_context(silent=True)
    where = f"zoo {command.info_name}" if command is not None else "this command"
    for key, value in parse_assignments(assignments).items():
        if key in flags:
            merged[key] = _merge_flag(key, flags[key], value)
        elif key in REFUSED_KEYS or key in ("device", "dtype"):
            raise ArgumentError(_refusal(key, value, where))
        else:
            builder_args[key] = value
    return merged, builder_args


def _merge_flag(key: str, flag: Any, value: Any) -> Any:
    option = FLAG_KEYS[key]
    if key == "num_classes":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f"-a num_classes={value}: {value!r} is not an integer")
    else:
        value = str(value)
    if flag is not None and _canonical(key, flag) != _canonical(key, value):
        raise ArgumentError(f"-a {key}={value} and {option} {flag} disagree: give one of them")
    return value


def _canonical(key: str, value: Any) -> Any:
    """`bf16` and `bfloat16` are the same dtype; other values compare as given."""
    return DTYPE_NAMES.get(str(value).lower(), value) if key == "dtype" else value


def _refusal(key: str, value: Any, where: str) -> str:
    head = f"-a {key}={value}: not a builder argument"
    if key in FLAG_KEYS:  # --device or --dtype, on a command that has neither
        return f"{head}, and {where} has no {FLAG_KEYS[key]}"
    if key in ("pretrained", "checkpoint") and _option(key) is None:
        checkpoint = _option("checkpoint")
        if checkpoint is None:
            return f"{head}; {where} builds random weights"
        if checkpoint.required:
            return f"{head}; {where} takes the weights from --checkpoint FILE"
        return f"{head}; {where} loads the published weights unless --checkpoint FILE is given"
    return f"{head}; {REFUSED_KEYS[key]}"


def _option(name: str) -> click.Parameter | None:
    """The running command's parameter called `name`, if it has one."""
    command = click.get_current_context(silent=True)
    params = command.command.params if command is not None else []
    return next((param for param in params if param.name == name), None)


def refuse_meta(device: str | None, task: str) -> None:
    """Refuse `--device meta` for a command that needs real tensors, before anything is built."""
    if device is not None and str(device).partition(":")[0].strip().lower() == "meta":
        raise ArgumentError(
            f"--device meta builds no weights: {task} needs real tensors; "
            "use zoo create --device meta to inspect shapes"
        )
