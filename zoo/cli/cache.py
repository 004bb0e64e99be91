"""`zoo cache ls|rm|verify`: the weights in the local Hugging Face cache."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from . import SuggestingGroup
from .output import echo_json, format_size, json_option, print_table

if TYPE_CHECKING:
    from ..weights.cache import Mismatch, Verified

__all__ = ["cache_group"]


@click.group("cache", cls=SuggestingGroup)
def cache_group() -> None:
    """List, remove and verify cached weights.

    \b
    Examples:
      zoo cache ls
      zoo cache verify
      zoo cache rm vit_large_patch16_224

    Nothing is removed unless asked: `zoo cache rm`, or `zoo cache verify --remove` for the
    files that do not match their sha256.
    """


@cache_group.command("ls")
@json_option
def cache_ls(as_json: bool) -> None:
    """List cached weights: name, tag, size, path and how the sha256 was verified.

    VERIFIED is `pinned` (matches the registry's sha256), `recorded` (matches the sha256
    recorded when first fetched), `changed` (size or time changed since: run `zoo cache
    verify`) or `no` (fetched by another tool, never checked).

    \b
    --json prints one object per file:
      [{"name": str, "tag": str | null, "repo_id": str, "filename": str, "size": int,
        "path": str, "verified": "pinned" | "recorded" | "changed" | "no",
        "sha256": str | null}, ...]
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
    table = [(row.name, format_size(row.size), row.verified, str(row.path)) for row in rows]
    header = ("NAME", "SIZE", "VERIFIED", "PATH")
    print_table(table, header)


@cache_group.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME[.TAG]...")
@json_option
def cache_rm(names: tuple[str, ...], as_json: bool) -> None:
    """Remove cached weights (every cached tag of a NAME without one).

    \b
    Examples:
      zoo cache rm resnet50.a1_in1k
      zoo cache rm vit_large_patch16_224 hf-hub:my-org/resnet18-cbam-cifar10 --json

    \b
    --json prints the removed files, as `zoo cache ls --json` listed them:
      [{"name": str, "tag": str | null, "repo_id": str, "filename": str, "size": int,
        "path": str, "verified": str, "sha256": str | null}, ...]
    """
    from ..registry import default_registry
    from ..weights.cache import remove

    removed = remove(default_registry(), names)
    if as_json:
        echo_json([row.as_dict() for row in removed])
        return
    for row in removed:
        click.echo(f"removed {row.name}: {row.path} ({format_size(row.size)})")


@cache_group.command("verify")
@click.argument("names", nargs=-1, metavar="[NAME[.TAG]]...")
@click.option("--remove", is_flag=True, help="Remove each file that does not match (reported either way).")
@json_option
def cache_verify(names: tuple[str, ...], remove: bool, as_json: bool) -> None:
    """Re-read cached weights and check each sha256 against the pinned or recorded one.

    Checking changes nothing: a file that does not match is reported (its path, the sha256
    expected and the one found, and `zoo get NAME --force`, which fetches it again) and the
    command exits 1. Such a file is never loaded; `--remove` (or `zoo cache rm NAME`)
    deletes it. Files never checked before are recorded.

    \b
    Examples:
      zoo cache verify
      zoo cache verify resnet50 --json
      zoo cache verify --remove

    \b
    --json prints one object per file, the fields of `zoo cache ls --json` and the check's:
      [{"name": str, "tag": str | null, "repo_id": str, "filename": str, "size": int,
        "path": str, "ok": bool, "sha256": str, "expected": str | null,
        "verified": "pinned" | "recorded" | null, "removed": bool, "error": str | null}, ...]
    sha256 is the file's; expected, on a mismatch, the pinned or recorded one; removed
    whether --remove deleted the file.
    """
    from ..registry import default_registry
    from ..weights.cache import Mismatch, verify_cached

    results = verify_cached(default_registry(), names, remove=remove)
    if as_json:
        echo_json([{**row.as_dict(), **_checked(row.name, outcome)} for row, outcome in results])
    else:
        for row, outcome in results:
            if isinstance(outcome, Mismatch):
                click.echo(f"zoo: error: {outcome.message(f'zoo get {row.name}')}", err=True)
            else:
                click.echo(f"ok  {row.name}  {outcome.sha256}  ({outcome.how})")
    if any(isinstance(outcome, Mismatch) for _, outcome in results):
        sys.exit(1)
    if not results and not as_json:
        click.echo("zoo: no weights are cached", err=True)


def _checked(name: str, outcome: Verified | Mismatch) -> dict[str, object]:
    """The check's fields of `zoo cache verify --json`."""
    from ..weights.cache import Mismatch

    if isinstance(outcome, Mismatch):
        return {
            "ok": False,
            "sha256": outcome.found,
            "expected": outcome.expected,
            "verified": None,
            "removed": outcome.removed,
            "error": outcome.message(f"zoo get {name}"),
        }
    return {
        "ok": True,
        "sha256": outcome.sha256,
        "expected": None,
        "verified": outcome.how,
        "removed": False,
        "error": None,
    }
