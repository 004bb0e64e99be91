"""`zoo validate`: every problem in registry files and plugin components, located."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import input_file
from .output import echo_json, json_option

__all__ = ["validate_command"]


@click.command("validate")
@click.argument("files", nargs=-1, type=input_file)
@json_option
def validate_command(files: tuple[Path, ...], as_json: bool) -> None:
    """Check registry files (by default, every installed one and every plugin) and report every problem.

    Entries are checked against the schema and against the builders, attention variants
    and key adapters of the installed plugins. Without FILES, every installed plugin's
    code is imported and each of its components checked against its interface too, and
    a plugin's registry file that kept it from loading is reported problem by problem.
    Exits 1 if anything is wrong.

    With --json, prints {"ok", "files", "problems"}; each problem has "file", "line",
    "entry", "field", "plugin", "component" and "message" (null where not applicable).

    \b
    Examples:
      zoo validate
      zoo validate my_registry.yaml
      zoo validate --json
    """
    from ..registry import default_plugin_manager, validate_files
    from ..registry.plugins import ValidationReport

    manager = default_plugin_manager()
    if files:
        report = ValidationReport([str(f) for f in files], validate_files(files, manager.registry))
    else:
        report = manager.validate()
    if as_json:
        echo_json(report.summary())
    else:
        for problem in report.problems:
            click.echo(str(problem), err=True)
    if report.problems:
        if not as_json:
            click.echo(f"zoo: {len(report.problems)} problem(s) in {len(report.files)} file(s)", err=True)
        sys.exit(1)
    if not as_json:
        click.echo(f"ok: {len(report.files)} file(s) valid")
