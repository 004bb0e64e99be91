"""`zoo list`, `zoo info`, `zoo validate`: what the zoo holds."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from ..registry import default_registry, validate_files
from ..registry.attention_spec import registry_form
from ..tasks.catalog import model_info
from .common import echo_json, json_option

__all__ = ["COMMANDS"]


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
                    "num_classes": weights.num_classes,
                    "license": weights.license,
                }
            )
        if as_json:
            echo_json(rows)
        else:
            _table(
                [(r["name"], r["hf_hub_id"], str(r["num_classes"]), r["license"]) for r in rows],
                ("NAME", "HUB REPO", "CLASSES", "LICENSE"),
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
        _table(
            [(r["name"], r["builder"], r["attention"] or "-", ", ".join(r["weights"]) or "-") for r in rows],
            ("NAME", "BUILDER", "ATTENTION", "WEIGHTS"),
        )


def _provider(info) -> str:
    distribution = " ".join(filter(None, [info.distribution, info.version]))
    origin = f" from {distribution}" if distribution else ""
    return f"plugin '{info.plugin}'{origin} ({info.source})"


def _as_yaml(value: object) -> str:
    """One-line YAML, the form `zoo create -a KEY=VALUE` reads back."""
    return (
        yaml.safe_dump(registry_form(value), default_flow_style=True, width=1000)
        .strip()
        .removesuffix("...")
        .strip()
    )


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@click.command("info")
@click.argument("name")
@json_option
def info_command(name: str, as_json: bool) -> None:
    """Describe a model: architecture, parameter count, weights and preprocessing.

    \b
    Examples:
      zoo info resnet50_cbam
      zoo info vit_base_patch16_224_in21k.orig_in21k --json
    """
    info = model_info(name)
    if as_json:
        echo_json(info.model_dump(mode="json"))
        return
    title = f"{info.name}.{info.tag}" if info.tag else info.name
    click.echo(title)
    if info.description:
        click.echo(f"  {info.description}")
    fields = [
        ("builder", info.builder),
        ("attention", info.attention or "-"),
        ("parameters", f"{info.num_params:,}"),
        ("paper", info.paper or "-"),
        ("provided by", _provider(info)),
    ]
    for label, value in fields:
        click.echo(f"  {label + ':':<13}{value}")
    click.echo("  arguments:")
    for key, value in info.config.items():
        click.echo(f"    {key} = {_as_yaml(value)}")
    if not info.weights:
        click.echo("  weights:     none published (build it with pretrained=False)")
        return
    click.echo("  weights:")
    for weights in info.weights:
        marks = " (default)" if weights.default else ""
        head = f"{weights.num_classes} classes" if weights.num_classes else "no head"
        if weights.labels:
            head += f" ({weights.labels})"
        click.echo(f"    {weights.tag}{marks}: {weights.hf_hub_id}, {head}, {weights.license}")
        p = weights.preprocessing
        size = "x".join(map(str, p.input_size))
        click.echo(
            f"      input {size}, crop {p.crop_pct} {p.interpolation}, mean {list(p.mean)}, std {list(p.std)}"
        )


@click.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check registry files (by default, every loaded one) and report every problem.

    Entries are checked against the schema and against the builders, attention variants
    and key adapters of the installed plugins. Exits 1 if anything is wrong.

    \b
    Examples:
      zoo validate
      zoo validate my_registry.yaml
    """
    registry = default_registry()
    if files:
        problems, checked = validate_files(files, registry), len(files)
    else:
        problems = registry.validate()
        checked = len({s.file for s in registry.components("model")})
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"zoo: {len(problems)} problem(s) in {checked} file(s)", err=True)
        sys.exit(1)
    click.echo(f"ok: {checked} file(s) valid")


COMMANDS = [list_command, info_command, validate_command]
