"""Options shared by the CLI commands, and reading their values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import ArgumentError

__all__ = [
    "args_option",
    "checkpoint_option",
    "device_option",
    "dtype_option",
    "num_classes_option",
    "parse_assignments",
    "writable_path",
]

device_option = click.option("--device", help="cpu, cuda, cuda:1, mps, meta, ...  [default: cpu]")
dtype_option = click.option("--dtype", help="float32, bfloat16, float16, ...  [default: float32]")
checkpoint_option = click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
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


def writable_path(path: Path, option: str) -> None:
    """Refuse an output path whose folder does not exist, or that is a folder."""
    if not path.parent.is_dir():
        raise ArgumentError(f"{option} {path}: directory '{path.parent}' does not exist")
    if path.is_dir():
        raise ArgumentError(f"{option} {path}: is a directory")
