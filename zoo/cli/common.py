"""Helpers shared by the CLI commands."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

__all__ = ["echo_json", "parse_assignments", "json_option"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


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
