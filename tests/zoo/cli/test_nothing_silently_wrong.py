"""Nothing is silently wrong: an input the zoo cannot treat correctly is refused in one line,
with the exit code of its kind, and no file is written.

- broken weights (outputs that hold NaN or infinities) are refused by every command that
  runs a model on inputs, before anything is printed or written;
- published weights that lack modules the model has are refused alike whether the modules
  come from the name (`resnet18_cbam`) or from an argument (`-a attn=cbam`);
- no float option of any command takes NaN or an infinity.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from zoo.cli import COMMANDS, cli

VIT = "vit_tiny_patch16_224"
VIT_SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
TEXT = {"vocab_size": 20, "embed_dim": 16, "depth": 2, "num_heads": 2}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def as_args(arguments: dict) -> list[str]:
    return [word for key, value in arguments.items() for word in ("-a", f"{key}={value}")]


def one_error_line(result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ")
    return line


def broken_checkpoint(name: str, path, poisoned: str, **args) -> str:
    """A checkpoint of `name` whose tensor `poisoned` holds NaN: every output is NaN."""
    state = zoo.create(name, **args).state_dict()
    state[poisoned] = torch.full_like(state[poisoned], float("nan"))
    save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    return str(path)


def image_commands(checkpoint: str, image: str, out) -> dict[str, list[str]]:
    common = ["--checkpoint", checkpoint, "--num-classes", "10", *as_args(VIT_SHAPE)]
    return {
        "predict": ["predict", VIT, image, *common],
        "predict --json": ["predict", VIT, image, "--json", *common],
        "predict --embeddings": ["predict", VIT, image, "--embeddings", str(out / "e.npy"), *common],
        "embed": ["embed", VIT, image, "-o", str(out / "e.safetensors"), *common],
        "attn (image)": ["attn", VIT, image, "-o", str(out / "map.png"), *common],
    }


@pytest.mark.parametrize("command", list(image_commands("", "", Path())))
def test_an_image_model_whose_outputs_are_not_finite_is_refused_naming_its_weights(command, tmp_path, images):
    checkpoint = broken_checkpoint(
        VIT, tmp_path / "broken.safetensors", "patch_embed.proj.weight", **VIT_SHAPE, num_classes=10
    )
    args = image_commands(checkpoint, str(images["cat"]), tmp_path)[command]
    before = sorted(tmp_path.iterdir())

    line = one_error_line(run(*args), exit_code=1)

    assert line == (
        f"zoo: error: {VIT} (weights {checkpoint}): model output holds NaN or infinite values: "
        "the weights are probably broken"
    )
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_a_sequence_model_whose_attention_is_not_finite_is_refused_naming_its_weights(tmp_path):
    checkpoint = broken_checkpoint(
        "text_transformer_small", tmp_path / "broken.safetensors", "token_embed.weight", **TEXT
    )
    out = tmp_path / "map.png"
    result = run(
        "attn", "text_transformer_small", "3 4 5", "--checkpoint", checkpoint, *as_args(TEXT), "-o", str(out)
    )
    assert one_error_line(result, exit_code=1) == (
        f"zoo: error: text_transformer_small (weights {checkpoint}): model output holds NaN or "
        "infinite values: the weights are probably broken"
    )
    assert not out.exists()


@pytest.mark.parametrize("command", ["predict", "embed", "attn"])
@pytest.mark.parametrize(("name", "args"), [("resnet18_cbam", []), ("resnet18", ["-a", "attn=cbam"])])
def test_published_weights_lacking_modules_of_the_model_are_refused_however_they_were_added(
    command, name, args, tmp_path, images
):
    out = {"predict": [], "embed": ["-o", str(tmp_path / "e.npy")], "attn": ["-o", str(tmp_path / "m.png")]}
    line = one_error_line(run(command, name, str(images["cat"]), *args, *out[command]), exit_code=2)

    assert "has untrained modules: resnet18.a1_in1k holds no weights for layer1.0.se" in line
    assert line.endswith("load a checkpoint that has them (--checkpoint FILE)")
    assert [p.name for p in tmp_path.iterdir()] == sorted(p.name for p in images.values() if p.exists())


def float_options() -> list[tuple[str, click.Option]]:
    """Every float option of every command (and subcommand), as `zoo COMMAND ...` takes it."""
    found = []
    for name, target in COMMANDS.items():
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(f"zoo.cli.{module}"), attribute)
        commands = command.commands.items() if isinstance(command, click.Group) else [(None, command)]
        for sub, each in commands:
            path = " ".join(filter(None, [name, sub]))
            found += [
                (path, param)
                for param in each.params
                if isinstance(param, click.Option) and isinstance(param.type, click.types.FloatParamType)
            ]
    return found


def test_there_are_float_options_to_check():
    assert {path for path, _ in float_options()} >= {"attn", "bench"}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("command", "option"), float_options(), ids=lambda x: getattr(x, "name", x))
def test_no_float_option_takes_nan_or_an_infinity(command, option, value):
    flag = max(option.opts, key=len)
    line = one_error_line(run(*command.split(), f"{flag}={value}"), exit_code=2)
    assert f"'{flag}'" in line and "not a finite number" in line
