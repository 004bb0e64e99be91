"""`zoo plugins`: which plugins are installed, what each adds, and what is broken."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..version import INTERFACE_VERSION, __version__
from .output import echo_json, json_option

if TYPE_CHECKING:
    from ..registry.plugins import ComponentProblem, PluginRecord

__all__ = ["plugins_command"]

LABELS = {"attention": "attention", "builder": "builders", "adapter": "adapters", "model": "models"}
MAX_NAMES = 8


@click.command("plugins")
@json_option
def plugins_command(as_json: bool) -> None:
    """List installed plugins: distribution, version, what each provides, and what is broken.

    Plugins are packages declaring an entry point in the group 'zoo.plugins'. Every
    plugin's code is imported and every builder, attention variant and key adapter is
    checked against its interface; each broken one is shown in one line. The first line
    gives the plugin interface version this zoo provides; a plugin that declared the
    version it targets shows it. Exits 1 if a plugin failed to load or a component is broken.

    \b
    Examples:
      zoo plugins
      zoo plugins --json
    """
    from ..registry import default_plugin_manager

    manager = default_plugin_manager()
    records = list(manager.records.values())
    problems = [p for p in manager.check() if p.category is not None]  # failed plugins: record.error
    if as_json:
        echo_json([_summary(record, problems) for record in records])
    else:
        click.echo(f"zoo {__version__}, plugin interface {INTERFACE_VERSION}")
        for record in records:
            _echo_record(record, [p for p in problems if p.plugin == record.name])
    failed = sum(1 for record in records if record.error)
    if failed or problems:
        click.echo(f"zoo: {failed} plugin(s) not loaded, {len(problems)} broken component(s)", err=True)
        sys.exit(1)


def _summary(record: PluginRecord, problems: list[ComponentProblem]) -> dict:
    summary = record.summary()
    summary["problems"] = [p.summary() for p in problems if p.plugin == record.name]
    return summary


def _echo_record(record: PluginRecord, problems: list[ComponentProblem]) -> None:
    summary = record.summary()
    origin = " ".join(filter(None, [record.distribution, record.version])) or record.entry_point
    if record.error:
        click.echo(f"{record.name} ({origin}): FAILED: {record.error}")
        return
    click.echo(f"{record.name} ({origin})")
    if record.interface:
        click.echo(f"  {'interface:':<11}{record.interface}")
    for category, label in LABELS.items():
        names = summary["provides"].get(category, [])
        if names:
            shown = ", ".join(names[:MAX_NAMES])
            if len(names) > MAX_NAMES:
                shown += f", ... ({len(names)} in all)"
            click.echo(f"  {label + ':':<11}{shown}")
    for override in summary["overrides"]:
        replaced = f"{override['category']} '{override['name']}' of plugin '{override['replaced']}'"
        click.echo(f"  overrides: {replaced}")
    for problem in problems:
        click.echo(f"  BROKEN: {problem}")
