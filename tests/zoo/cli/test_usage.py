"""The same kind of bad input ends the same way in every command: one line, one exit code.

A path the command reads that does not exist is a usage error (exit 2), as click's own are;
`zoo` alone prints its help; a mistyped command or option names the nearest ones.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from zoo.cli import COMMANDS, cli
from zoo.cli.options import checkpoint, input_file


def commands() -> dict[str, click.Command]:
    context = click.Context(cli)
    return {name: cli.get_command(context, name) for name in COMMANDS}


def input_parameters() -> list[tuple[str, click.Parameter]]:
    """Every parameter of every command that names a file the command reads."""
    return [
        (name, param)
        for name, command in commands().items()
        for param in command.params
        if param.type in (input_file, checkpoint)
    ]


def arguments_with(command: click.Command, missing: click.Parameter, path: str, existing: str) -> list[str]:
    """A command line of `command` whose `missing` parameter is `path`, given first."""
    args = [max(missing.opts, key=len), path] if isinstance(missing, click.Option) else []
    for param in command.params:
        if not isinstance(param, click.Argument):
            continue
        if param is missing:
            args.append(path)
        elif isinstance(param.type, click.Choice):
            args.append(str(param.type.choices[0]))
        elif param.required:
            args.append(existing if param.type in (input_file, checkpoint) else "resnet18")
    return args


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), prog_name="zoo", catch_exceptions=False)


@pytest.mark.parametrize(
    ("name", "param"), input_parameters(), ids=lambda value: getattr(value, "name", value)
)
def test_a_file_to_read_that_does_not_exist_is_a_usage_error(name, param, tmp_path):
    existing = tmp_path / "existing.txt"
    existing.write_text("exists")
    missing = tmp_path / "missing.file"
    result = run(name, *arguments_with(commands()[name], param, str(missing), str(existing)))
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: Invalid value for ") and f"'{missing}' does not exist" in line


def test_every_command_that_reads_files_checks_them():
    readers = {name for name, _ in input_parameters()}
    assert readers == {"attn", "convert", "create", "embed", "export", "predict", "validate"}


@pytest.mark.parametrize(
    ("model", "args", "option"),
    [
        ("resnet18", [], "INPUT..."),
        ("text_transformer_small", [], "INPUT..."),
        ("text_transformer_small", ["--vocab", "source={missing}"], "--vocab"),
    ],
    ids=["image", "feature file", "vocabulary"],
)
def test_attn_refuses_a_missing_input_file_as_a_usage_error(tmp_path, model, args, option):
    missing = tmp_path / "missing.npy"
    inputs = str(missing) if option == "INPUT..." else "1 2 3"
    args = [arg.format(missing=missing) for arg in args]
    result = run("attn", model, inputs, *args, "-o", str(tmp_path / "map.png"))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"zoo: error: Invalid value for '{option}': File '{missing}' does not exist. (see 'zoo attn --help')\n"
    )


@pytest.mark.parametrize("args", [[], ["cache"]], ids=["zoo", "zoo cache"])
def test_a_group_alone_prints_its_help_and_exits_0(args):
    result = run(*args)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: {' '.join(['zoo', *args])} [OPTIONS] COMMAND [ARGS]...")
    assert "error" not in result.output.lower()


def mistyped(name: str) -> str:
    """`name` without its second letter."""
    return name[0] + name[2:]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_mistyped_command_names_the_nearest(name):
    result = run(mistyped(name))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: error: No such command '{mistyped(name)}'. Did you mean '{name}'")


@pytest.mark.parametrize("name", sorted(commands()["cache"].commands))
def test_a_mistyped_subcommand_names_the_nearest(name):
    result = run("cache", name + name[-1])
    assert result.exit_code == 2
    assert f"Did you mean '{name}'?" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "option"),
    [
        (name, max(param.opts, key=len))
        for name, command in commands().items()
        for param in command.params
        if isinstance(param, click.Option) and max(param.opts, key=len).startswith("--")
    ],
)
def test_a_mistyped_option_names_the_nearest(name, option):
    typo = option + option[-1]
    result = run(name, typo)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: error: No such option '{typo}'. Did you mean '{option}'")
