"""The `zoo` command line: a thin layer that parses flags, calls the library and prints.

torch is never imported at module level here, so `zoo --help` and `zoo list` stay fast.
Any `ZooError` becomes one line on stderr and its exit code; set `ZOO_DEBUG=1` to see the
traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ..errors import ZooError

__all__ = ["cli", "main"]


class CommandError(click.ClickException):
    """A `ZooError` as the CLI shows it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"zoo: error: {self.format_message()}", err=True)


class ZooGroup(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but every error is one line: `zoo: error: ...`."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            click.echo(f"zoo: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("zoo: aborted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as error:
            if os.environ.get("ZOO_DEBUG"):
                raise
            raise CommandError(str(error), error.exit_code) from None


class _ClickStderr(logging.Handler):
    """Writes to the stderr of the command being run (not the one of the first command)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


class _OneLineWarnings(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"zoo: {record.levelname.lower()}: {record.getMessage()}"


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="zoo", prog_name="zoo")
def cli() -> None:
    """A model zoo of attention architectures, with weights from the Hugging Face Hub.

    \b
    Examples:
      zoo list vit                      models whose name contains 'vit'
      zoo list --pretrained 'resnet*'   published weights, as name.tag
      zoo info resnet50_cbam            architecture, parameters, weights
      zoo create resnet50 -a attn=eca   build a model and summarise it
    """
    logger = logging.getLogger("zoo")
    if not logger.handlers:
        handler = _ClickStderr()
        handler.setFormatter(_OneLineWarnings())
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # adaptation messages, one line each


def main() -> None:
    """Entry point of the `zoo` executable."""
    cli(prog_name="zoo")


from . import catalog, create, hub, plugins, use  # noqa: E402

for module in (catalog, create, hub, plugins, use):
    for command in module.COMMANDS:
        cli.add_command(command)
