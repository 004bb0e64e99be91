"""`zoo validate`: every problem in registry files, located."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["validate_command"]


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
    from ..registry import default_registry, validate_files

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
