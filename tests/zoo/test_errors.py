"""Errors: one root, one table of exit codes, and arguments named as each caller spells them."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

import zoo.errors
from zoo.cli import in_flags_of
from zoo.errors import EXIT_CODES, Argument, ArgumentError, CheckpointError, ZooError, exit_code_of

README = Path(__file__).parents[2] / "README.md"


def every_error_class() -> list[type[ZooError]]:
    return [
        value
        for value in vars(zoo.errors).values()
        if isinstance(value, type) and issubclass(value, ZooError)
    ]


def test_the_readme_table_is_the_exit_code_table():
    rows = re.findall(r"^\| (\d+) \| `(\w+)`", README.read_text(), flags=re.MULTILINE)
    assert {name: int(code) for code, name in rows} == {
        cls.__name__: code for cls, code in EXIT_CODES.items()
    }


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.__name__)
def test_every_error_takes_the_code_of_its_nearest_class_in_the_table(cls):
    nearest = next(base for base in cls.__mro__ if base in EXIT_CODES)
    assert exit_code_of(cls.__new__(cls)) == EXIT_CODES[nearest]


def test_an_argument_is_named_as_python_spells_it_by_default():
    error = CheckpointError(
        "the checkpoint has a 3-class head: pass {num_classes} to load it",
        arguments=[Argument("num_classes", "3")],
    )
    assert str(error) == "the checkpoint has a 3-class head: pass num_classes=3 to load it"
    assert (
        error.render(lambda argument: f"<{argument.name}>")
        == "the checkpoint has a 3-class head: pass <num_classes> to load it"
    )


@click.command()
@click.option("--num-classes", type=int)
@click.option("--fresh-modules", is_flag=True)
@click.option("-a", "--arg", "assignments", multiple=True)
def command(num_classes, fresh_modules, assignments):
    pass


@pytest.mark.parametrize(
    ("argument", "worded"),
    [
        (Argument("num_classes", "3"), "--num-classes 3"),
        (Argument("fresh_modules", "True"), "--fresh-modules"),
        (Argument("depth", "12"), "-a depth=12"),
        (Argument("seq_len"), None),
    ],
)
def test_the_command_line_words_an_argument_as_its_own_flag(argument, worded):
    assert in_flags_of(command)(argument) == worded


def test_a_command_says_the_flag_where_python_says_the_argument(tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    result = CliRunner().invoke(cli, ["flops", "resnet50", "--seq-len", "8"])
    assert (result.exit_code, result.stderr) == (
        2,
        "zoo: error: 'resnet50' takes images: --seq-len does not apply\n",
    )
    with pytest.raises(ArgumentError, match="'resnet50' takes images: seq_len does not apply"):
        zoo.flops("resnet50", seq_len=8)
