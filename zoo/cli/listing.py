"""`zoo list`: the names in the zoo, or their published weights.

Reads the cached listing of `zoo.registry.snapshot` (rebuilt whenever a plugin or a registry
file changes), so that listing reads no YAML and imports neither pydantic nor torch.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .output import echo_json, json_option, print_table

if TYPE_CHECKING:
    from ..registry.snapshot import Listing

__all__ = ["list_command"]


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--pretrained", is_flag=True, help="List published weights as name.tag.")
@json_option
def list_command(pattern: str | None, pretrained: bool, as_json: bool) -> None:
    """List models (or, with --pretrained, their weights).

    PATTERN is a shell-style pattern ('vit_*'); without wildcards it matches any name
    containing it. zoo.list_models() and zoo.list_pretrained() follow the same rule.

    \b
    Examples:
      zoo list
      zoo list cbam
      zoo list --pretrained 'vit_base*' --json

    \b
    --json prints a list ([] when nothing matches), one object per model:
      {"name": str, "builder": str, "attention": str | null, "default_tag": str | null,
       "weights": [str, ...], "description": str | null}
    or, with --pretrained, per weight tag:
      {"name": "name.tag", "hf_hub_id": str | null, "task": str,
       "num_classes": int | null, "license": str}
    """
    from ..registry.names import shell_pattern
    from ..registry.snapshot import load_listing

    pattern = pattern or "*"
    listing = load_listing()
    rows = _weight_rows(listing, pattern) if pretrained else _model_rows(listing, pattern)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        what = "weights" if pretrained else "model"
        click.echo(f"zoo: no {what} match '{shell_pattern(pattern)}'", err=True)
        sys.exit(1)
    if pretrained:
        print_table(
            [
                (r["name"], r["hf_hub_id"] or "-", r["task"], str(r["num_classes"] or "-"), r["license"])
                for r in rows
            ],
            ("NAME", "HUB REPO", "TASK", "CLASSES", "LICENSE"),
        )
    else:
        print_table(
            [(r["name"], r["builder"], r["attention"] or "-", ", ".join(r["weights"]) or "-") for r in rows],
            ("NAME", "BUILDER", "ATTENTION", "WEIGHTS"),
        )


def _model_rows(listing: Listing, pattern: str) -> list[dict[str, Any]]:
    return [
        {
            "name": row.name,
            "builder": row.builder,
            "attention": row.attention,
            "default_tag": row.default_tag,
            "weights": [weights.tag for weights in row.weights],
            "description": row.description,
        }
        for row in listing.matching(pattern)
    ]


def _weight_rows(listing: Listing, pattern: str) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{row.name}.{weights.tag}",
            "hf_hub_id": weights.hf_hub_id,
            "task": weights.task,
            "num_classes": weights.num_classes,
            "license": weights.license,
        }
        for row, weights in listing.matching_weights(pattern)
    ]
