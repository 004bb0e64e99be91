"""`zoo get`, `zoo export` and `zoo cache`: weights in the Hugging Face cache."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import args_option, echo_json, json_option, num_classes_option, parse_assignments

__all__ = ["COMMANDS"]


@click.command("get")
@click.argument("names", nargs=-1, required=True, metavar="NAME[.TAG]...")
@click.option("--revision", help="A branch, tag or commit of the Hub repository instead of the registry's.")
@click.option("--force", is_flag=True, help="Download again even if cached, and re-check the sha256.")
@json_option
def get_command(names: tuple[str, ...], revision: str | None, force: bool, as_json: bool) -> None:
    """Download weights into the Hugging Face cache, check them, print sha256 and path.

    Without a tag, the name's default tag. The output reads like sha256sum's, so
    `sha256sum -c` checks it again. Files are shared with timm and transformers; HF_ENDPOINT,
    HF_HOME, HF_HUB_OFFLINE and HF_TOKEN are honoured.

    \b
    Examples:
      zoo get vit_large_patch16_224
      zoo get resnet50.a1_in1k vit_base_patch16_224_in21k.orig_in21k --json
      zoo get hf-hub:my-org/resnet18-cbam-cifar10@v1
      HF_HUB_OFFLINE=1 zoo get resnet50     (cache only)
    """
    from ..weights.factory import download

    downloads = []
    for name in names:
        result = download(name, revision=revision, force=force)
        downloads.append(result)
        if not as_json:
            click.echo(f"{result.sha256}  {result.path}")
    if as_json:
        echo_json([d.as_dict() for d in downloads])


@click.command("export")
@click.argument("name")
@click.option(
    "--checkpoint", required=True, type=click.Path(path_type=Path), help="The trained safetensors file."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder to write (new or empty).",
)
@num_classes_option
@args_option("A builder argument the checkpoint was trained with (repeatable; values are YAML).")
@click.option(
    "-p",
    "--preprocessing",
    "preprocessing",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preprocessing field: input_size, mean, std, crop_pct, interpolation.",
)
@click.option("--license", "license_", help="License of the weights [default: the tag's].")
@click.option("--repo-id", help="ORG/REPO it will be published as, for the model card's examples.")
@click.option("--description", help="One line about the weights (data, recipe).")
def export_command(
    name: str,
    checkpoint: Path,
    output: Path,
    num_classes: int | None,
    assignments: tuple[str, ...],
    preprocessing: tuple[str, ...],
    license_: str | None,
    repo_id: str | None,
    description: str | None,
) -> None:
    """Write a folder to publish on the Hub: model.safetensors, zoo_config.json, README.md.

    The checkpoint must fit NAME (with the given arguments) exactly. Once the folder is in
    a Hub repository, `zoo.create("hf-hub:ORG/REPO", pretrained=True)` loads it back.

    \b
    Examples:
      zoo export resnet18_cbam --checkpoint run/best.safetensors --num-classes 10 \\
          --license mit -o resnet18-cbam-cifar10
      zoo export vit_tiny_patch16_224.augreg_in21k_ft_in1k --checkpoint ft.safetensors \\
          -a img_size=384 -p crop_pct=1.0 -o vit-tiny-384 --repo-id me/vit-tiny-384
    """
    from ..weights.export import export

    overrides = parse_assignments(assignments)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    changes = parse_assignments(preprocessing)
    config = export(
        name,
        checkpoint,
        output,
        license=license_,
        preprocessing=changes,
        repo_id=repo_id,
        description=description,
        **overrides,
    )
    click.echo(f"{output}: model.safetensors (sha256 {config.weights.sha256}), zoo_config.json, README.md")


@click.group("cache")
def cache_group() -> None:
    """List, remove and verify cached weights.

    \b
    Examples:
      zoo cache ls
      zoo cache verify
      zoo cache rm vit_large_patch16_224
    """


@cache_group.command("ls")
@json_option
def cache_ls(as_json: bool) -> None:
    """List cached weights: name, tag, size, path and how the sha256 was verified.

    VERIFIED is `pinned` (matches the registry's sha256), `recorded` (matches the sha256
    recorded when first fetched), `changed` (size or time changed since: run `zoo cache
    verify`) or `no` (fetched by another tool, never checked).
    """
    from ..registry import default_registry
    from ..weights.cache import list_cached

    rows = list_cached(default_registry())
    if as_json:
        echo_json([row.as_dict() for row in rows])
        return
    if not rows:
        click.echo("zoo: no weights are cached", err=True)
        return
    table = [(row.name, _size(row.size), row.verified, str(row.path)) for row in rows]
    header = ("NAME", "SIZE", "VERIFIED", "PATH")
    widths = [max(len(r[i]) for r in (header, *table)) for i in range(len(header))]
    for row in (header, *table):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@cache_group.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME[.TAG]...")
def cache_rm(names: tuple[str, ...]) -> None:
    """Remove cached weights (every cached tag of a NAME without one).

    \b
    Examples:
      zoo cache rm resnet50.a1_in1k
      zoo cache rm vit_large_patch16_224 hf-hub:my-org/resnet18-cbam-cifar10
    """
    from ..registry import default_registry
    from ..weights.cache import remove

    for row in remove(default_registry(), names):
        click.echo(f"removed {row.name}: {row.path} ({_size(row.size)})")


@cache_group.command("verify")
@click.argument("names", nargs=-1, metavar="[NAME[.TAG]]...")
@json_option
def cache_verify(names: tuple[str, ...], as_json: bool) -> None:
    """Re-read cached weights and check each sha256 against the pinned or recorded one.

    A file that does not match is removed, and the command exits 1. Files never checked
    before are recorded.

    \b
    Examples:
      zoo cache verify
      zoo cache verify resnet50 --json
    """
    from ..errors import IntegrityError
    from ..registry import default_registry
    from ..weights.cache import verify_cached

    results = verify_cached(default_registry(), names)
    failed = [error for _, error in results if isinstance(error, IntegrityError)]
    if as_json:
        echo_json(
            [
                {
                    **row.as_dict(),
                    "ok": not isinstance(outcome, IntegrityError),
                    "sha256": None if isinstance(outcome, IntegrityError) else outcome.sha256,
                    "verified": None if isinstance(outcome, IntegrityError) else outcome.how,
                    "error": str(outcome) if isinstance(outcome, IntegrityError) else None,
                }
                for row, outcome in results
            ]
        )
    else:
        for row, outcome in results:
            if isinstance(outcome, IntegrityError):
                click.echo(f"zoo: error: {outcome}", err=True)
            else:
                click.echo(f"ok  {row.name}  {outcome.sha256}  ({outcome.how})")
    if failed:
        sys.exit(1)
    if not results and not as_json:
        click.echo("zoo: no weights are cached", err=True)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"


COMMANDS = [get_command, export_command, cache_group]
