"""How the CLI commands print: JSON, tables, sizes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

__all__ = ["echo_error", "echo_json", "format_size", "json_option", "print_table"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def echo_error(error: Exception) -> None:
    """One line on stderr for an input that failed while the others go on (an unreadable image)."""
    click.echo(f"zoo: error: {error}", err=True)


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str], *, right: Sequence[int] = ()) -> None:
    """Columns padded to their widest cell, the header first; the columns numbered in
    `right` (numbers) aligned to the right."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo("  ".join(cells).rstrip())


def format_size(size: float) -> str:
    """Bytes in decimal units: `512 B`, `1.2 MB`."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
