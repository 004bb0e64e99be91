"""The `zoo` command line: a thin layer that parses flags, calls the library and prints.

torch is never imported at module level here, so `zoo --help` and `zoo list` stay fast.
Any `ZooError` becomes one line on stderr and its exit code (`zoo.errors.EXIT_CODES`), the
arguments it names worded as the command's own flags; set `ZOO_DEBUG=1` to see the traceback
instead. Ctrl-C is `zoo: aborted` (exit 130); a SIGTERM that arrives while an
output file is being written removes the partial file and is `zoo: terminated` (exit 143).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
from collections.abc import Callable

import click

from ..errors import Argument, ZooError
from ..files import Terminated

__all__ = ["SuggestingGroup", "cli", "in_flags_of", "main"]


class CommandError(click.ClickException):
    """A `ZooError` as the CLI shows it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"zoo: error: {self.format_message()}", err=True)


# Each command lives in the module named after it and is imported only when it runs (or
# when `zoo --help` lists it), so that no command pays for another's imports.
COMMANDS: dict[str, str] = {
    "list": "listing:list_command",
    "info": "info:info_command",
    "validate": "validate:validate_command",
    "plugins": "plugins:plugins_command",
    "create": "create:create_command",
    "get": "get:get_command",
    "export": "export:export_command",
    "convert": "convert:convert_command",
    "cache": "cache:cache_group",
    "predict": "predict:predict_command",
    "embed": "embed:embed_command",
    "attn": "attn:attn_command",
    "mask": "mask:mask_command",
    "attention": "attention:attention_command",
    "bench": "bench:bench_command",
    "flops": "flops:flops_command",
}


class SuggestingGroup(click.Group):
    """A group whose unknown command names the nearest ones, imported or not:
    `No such command 'predcit'. Did you mean 'predict'?`."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        typed = args[0] if args else ""
        if self.get_command(ctx, typed) is None and not typed.startswith("-"):
            nearest = difflib.get_close_matches(typed, self.list_commands(ctx))
            raise click.UsageError(f"No such command '{typed}'.{_did_you_mean(nearest)}", ctx)
        return super().resolve_command(ctx, args)


def _did_you_mean(nearest: list[str]) -> str:
    """` Did you mean 'a' or 'b'?`, the nearest first; nothing when there is none."""
    return f" Did you mean {' or '.join(repr(name) for name in nearest)}?" if nearest else ""


def _usage_message(error: click.UsageError) -> str:
    """click's message, but an unknown option words its nearest ones as a command's are."""
    if isinstance(error, click.NoSuchOption) and error.possibilities:
        return f"No such option '{error.option_name}'.{_did_you_mean(error.possibilities)}"
    return error.format_message()


class ZooGroup(SuggestingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attribute = COMMANDS[name].partition(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        self.add_command(command, name)
        return command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but every error is one line: `zoo: error: ...`."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as asked:  # `zoo` alone: its help, not an error
            click.echo(asked.ctx.get_help())
            sys.exit(0)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            click.echo(f"zoo: error: {_usage_message(error)}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("zoo: aborted", err=True)
            sys.exit(130)
        except Terminated as terminated:  # SIGTERM during a write: cleaned up, see zoo.files
            click.echo("zoo: terminated", err=True)
            sys.exit(terminated.code)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as error:
            if os.environ.get("ZOO_DEBUG"):
                raise
            command = self.commands.get(ctx.invoked_subcommand or "")
            message = error.render(in_flags_of(command)) if command is not None else str(error)
            raise CommandError(message, error.exit_code) from None
        except BrokenPipeError:  # the reader went away (`zoo list | head`): click stops quietly
            raise
        except OSError as error:  # the system refused a read or write midway: a full disk, say
            if os.environ.get("ZOO_DEBUG") or error.strerror is None:
                raise
            where = f"{error.filename}: " if error.filename else ""
            raise CommandError(f"{where}{error.strerror}", 1) from None


def in_flags_of(command: click.Command) -> Callable[[Argument], str | None]:
    """Words an argument as `command` takes it: `--num-classes 10` for a flag of its own,
    `-a depth=12` for a builder argument it takes as an assignment, else Python's words."""
    options = {param.name: param for param in _params(command) if isinstance(param, click.Option)}

    def spell(argument: Argument) -> str | None:
        option = options.get(argument.name)
        if option is not None:
            longest = max(option.opts, key=len)
            return argument.flag(longest, is_flag=option.is_flag)
        if "assignments" in options and argument.value is not None:
            return f"-a {argument.python()}"
        return None

    return spell


def _params(command: click.Command) -> list[click.Parameter]:
    """A command's parameters, and its subcommands' for a group (`zoo cache ls`)."""
    params = list(command.params)
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            params.extend(_params(subcommand))
    return params


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
