"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

__all__ = [
    "args_option",
    "checkpoint_option",
    "device_option",
    "dtype_option",
    "echo_json",
    "json_option",
    "num_classes_option",
    "parse_assignments",
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
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


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    """`("attn=cbam", "layers=[2, 2, 2, 2]")` -> `{"attn": "cbam", "layers": [2, 2, 2, 2]}`.

    Values are read as YAML, so numbers, lists and mappings keep their types.
    """
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
