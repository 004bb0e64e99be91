"""`zoo list`: the names in the zoo, or their published weights.

Reads the cached listing of `zoo.registry.snapshot` (rebuilt whenever a plugin or a registry
file changes), so that listing reads no YAML and imports neither pydantic nor torch.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from ..registry.snapshot import SORT_KEYS
from .options import FiniteFloat
from .output import echo_json, json_option, print_table

if TYPE_CHECKING:
    from ..registry.snapshot import Listing

__all__ = ["list_command"]


@click.command("list")
@click.argument("pattern", required=False)
@click.option("--pretrained", is_flag=True, help="List published weights as name.tag.")
@click.option("--family", metavar="BUILDER", help="Only models of this builder (resnet, vit, ...).")
@click.option(
    "--sort",
    type=click.Choice(SORT_KEYS),
    default="name",
    show_default=True,
    help="With --pretrained: order weights by ImageNet-1k top-1 or top-5 accuracy, parameters "
    "or GMACs, largest first, those without the value last.",
)
@click.option(
    "--min-top1",
    type=FiniteFloat(0, 100),
    metavar="PERCENT",
    help="With --pretrained: only weights whose ImageNet-1k top-1 accuracy is at least this.",
)
@json_option
def list_command(
    pattern: str | None,
    pretrained: bool,
    family: str | None,
    sort: str,
    min_top1: float | None,
    as_json: bool,
) -> None:
    """List models (or, with --pretrained, their weights).

    PATTERN is a shell-style pattern ('vit_*'); without wildcards it matches any name
    containing it. zoo.list_models() and zoo.list_pretrained() follow the same rule;
    zoo.list_pretrained() takes family=, sort= and min_top1= too.

    \b
    Examples:
      zoo list
      zoo list cbam
      zoo list --pretrained 'vit_base*' --json
      zoo list --pretrained --sort top1 --min-top1 80
      zoo list --pretrained --family resnet --sort gmacs

    \b
    --json prints a list ([] when nothing matches), one object per model:
      {"name": str, "builder": str, "attention": str | null, "default_tag": str | null,
       "weights": [str, ...], "description": str | null, "paper": str | null}
    or, with --pretrained, per weight tag:
      {"name": "name.tag", "builder": str, "hf_hub_id": str | null, "task": str,
       "num_classes": int | null, "license": str, "paper": str | null,
       "num_params": int | null, "gmacs": float | null,
       "imagenet": {"top1": float, "top5": float, "img_size": int, "crop_pct": float,
                    "interpolation": str} | null}
    num_params and gmacs are the model's parameters and multiply-adds of one image at the
    weights' input size (as zoo flops counts them); imagenet is the published ImageNet-1k
    validation result, at the image size and crop it was evaluated at.
    """
    from ..registry.names import shell_pattern
    from ..registry.snapshot import load_listing

    if not pretrained and (sort != "name" or min_top1 is not None):
        raise click.UsageError("--sort and --min-top1 order and filter weights: add --pretrained")
    pattern = pattern or "*"
    listing = load_listing()
    if pretrained:
        rows = _weight_rows(listing, pattern, family=family, min_top1=min_top1, sort=sort)
    else:
        rows = _model_rows(listing, pattern, family=family)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        what = "weights" if pretrained else "model"
        click.echo(f"zoo: no {what} match '{shell_pattern(pattern)}'{_filters(family, min_top1)}", err=True)
        sys.exit(1)
    if pretrained:
        print_table(
            [_weight_cells(row) for row in rows],
            ("NAME", "TOP-1", "TOP-5", "PARAMS (M)", "GMACS", "TASK", "CLASSES", "LICENSE"),
            right=(1, 2, 3, 4, 6),
        )
    else:
        print_table(
            [(r["name"], r["builder"], r["attention"] or "-", ", ".join(r["weights"]) or "-") for r in rows],
            ("NAME", "BUILDER", "ATTENTION", "WEIGHTS"),
        )


def _filters(family: str | None, min_top1: float | None) -> str:
    """` of family 'vit' with top-1 at least 80`: the filters a listing was asked for."""
    family_part = f" of family '{family}'" if family else ""
    top1_part = f" with top-1 at least {min_top1:g}" if min_top1 is not None else ""
    return family_part + top1_part


def _model_rows(listing: Listing, pattern: str, *, family: str | None) -> list[dict[str, Any]]:
    return [
        {
            "name": row.name,
            "builder": row.builder,
            "attention": row.attention,
            "default_tag": row.default_tag,
            "weights": [weights.tag for weights in row.weights],
            "description": row.description,
            "paper": row.paper,
        }
        for row in listing.matching(pattern, family=family)
    ]


def _weight_rows(listing: Listing, pattern: str, **query: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{row.name}.{weights.tag}",
            "builder": row.builder,
            "hf_hub_id": weights.hf_hub_id,
            "task": weights.task,
            "num_classes": weights.num_classes,
            "license": weights.license,
            "paper": row.paper,
            "num_params": weights.num_params,
            "gmacs": weights.gmacs,
            "imagenet": asdict(weights.imagenet) if weights.imagenet is not None else None,
        }
        for row, weights in listing.matching_weights(pattern, **query)
    ]


def _weight_cells(row: dict[str, Any]) -> tuple[str, ...]:
    imagenet = row["imagenet"] or {}
    return (
        row["name"],
        _number(imagenet.get("top1"), ".2f"),
        _number(imagenet.get("top5"), ".2f"),
        _number(row["num_params"] and row["num_params"] / 1e6, ".1f"),
        _number(row["gmacs"], ".2f"),
        row["task"],
        str(row["num_classes"] or "-"),
        row["license"],
    )


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
