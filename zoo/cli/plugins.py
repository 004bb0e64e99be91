"""`zoo plugins`: which plugins are installed, what each adds, and what failed."""

from __future__ import annotations

import click

from .output import echo_json, json_option

__all__ = ["plugins_command"]

LABELS = {"attention": "attention", "builder": "builders", "adapter": "adapters", "model": "models"}
MAX_NAMES = 8


@click.command("plugins")
@json_option
def plugins_command(as_json: bool) -> None:
    """List installed plugins: distribution, version, what each provides, and failures.

    Plugins are packages declaring an entry point in the group 'zoo.plugins'.

    \b
    Examples:
      zoo plugins
      zoo plugins --json
    """
    from ..registry import default_plugin_manager

    records = list(default_plugin_manager().records.values())
    if as_json:
        echo_json([record.summary() for record in records])
        return
    for record in records:
        summary = record.summary()
        origin = " ".join(filter(None, [record.distribution, record.version])) or record.entry_point
        if record.error:
            click.echo(f"{record.name} ({origin}): FAILED: {record.error}")
            continue
        click.echo(f"{record.name} ({origin})")
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
