"""`zoo list`: the names in the zoo, or their published weights."""

from __future__ import annotations

import sys

import click

from ..registry import default_registry
from .output import echo_json, json_option, print_table

__all__ = ["list_command"]


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--pretrained", is_flag=True, help="List published weights as name.tag.")
@json_option
def list_command(pattern: str | None, pretrained: bool, as_json: bool) -> None:
    """List models (or, with --pretrained, their weights).

    PATTERN is a shell-style pattern ('vit_*'); without wildcards it matches any name
    containing it.

    \b
    Examples:
      zoo list
      zoo list cbam
      zoo list --pretrained 'vit_base*' --json
    """
    if pattern is None:
        pattern = "*"
    elif not any(char in pattern for char in "*?["):
        pattern = f"*{pattern}*"
    registry = default_registry()
    names = registry.pretrained_names(pattern) if pretrained else registry.model_names(pattern)
    if not names:
        click.echo(f"zoo: no {'weights' if pretrained else 'model'} match '{pattern}'", err=True)
        sys.exit(1)
    if pretrained:
        rows = []
        for full in names:
            weights = registry.resolve(full).weights
            rows.append(
                {
                    "name": full,
                    "hf_hub_id": weights.hf_hub_id,
                    "task": weights.task,
                    "num_classes": getattr(weights, "num_classes", None),
                    "license": weights.license,
                }
            )
        if as_json:
            echo_json(rows)
        else:
            print_table(
                [
                    (r["name"], r["hf_hub_id"] or "-", r["task"], str(r["num_classes"] or "-"), r["license"])
                    for r in rows
                ],
                ("NAME", "HUB REPO", "TASK", "CLASSES", "LICENSE"),
            )
        return
    rows = []
    for name in names:
        entry = registry.source(name).entry
        rows.append(
            {
                "name": name,
                "builder": entry.builder,
                "attention": entry.attention,
                "default_tag": entry.default_weight_tag,
                "weights": list(entry.weights),
                "description": entry.description,
            }
        )
    if as_json:
        echo_json(rows)
    else:
        print_table(
            [(r["name"], r["builder"], r["attention"] or "-", ", ".join(r["weights"]) or "-") for r in rows],
            ("NAME", "BUILDER", "ATTENTION", "WEIGHTS"),
        )
