"""`zoo export`: the model card states the numbers `zoo create` and `zoo info` state."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from zoo.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_model_card_counts_parameters_as_zoo_create_does_and_buffers_apart(tmp_path):
    model = zoo.create("resnet18", num_classes=10)
    checkpoint = tmp_path / "ck.safetensors"
    save_file(model.state_dict(), checkpoint)
    result = run("export", "resnet18", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out"),
                 "--num-classes", "10", "--license", "mit")  # fmt: skip
    assert result.exit_code == 0, result.output
    card = (tmp_path / "out" / "README.md").read_text()

    created = json.loads(
        run("create", "resnet18", "--num-classes", "10", "--device", "meta", "--json").stdout
    )
    assert created["parameters"] == 11_181_642
    # BatchNorm's running mean and variance (9,600 values) and its 20 step counters
    assert "11,181,642 parameters and 9,620 values in buffers, 10 classes." in card
    assert "11,191,242" not in card


def test_a_model_without_buffers_states_its_parameters_only(tmp_path):
    args = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 1, "num_heads": 3, "num_classes": 4}
    model = zoo.create("vit_tiny_patch16_224", **args)
    checkpoint = tmp_path / "ck.safetensors"
    save_file(model.state_dict(), checkpoint)
    flags = [item for key, value in args.items() if key != "num_classes" for item in ("-a", f"{key}={value}")]
    result = run("export", "vit_tiny_patch16_224", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "out"),
                 "--num-classes", "4", *flags, "--license", "mit")  # fmt: skip
    assert result.exit_code == 0, result.output
    card = (tmp_path / "out" / "README.md").read_text()
    parameters = sum(p.numel() for p in model.parameters())
    assert f"{parameters:,} parameters, 4 classes." in card
    assert "buffers" not in card


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{file}"], "output '{file}' is a file; name a new or empty folder to write"),
        (
            ["-o", "{folder}", "--repo-id", "me/a b"],
            "--repo-id me/a b is not a Hub repository id: give ORG/REPO",
        ),
        (["-o", "{folder}", "--repo-id", "vit-tiny"], "--repo-id vit-tiny is not a Hub repository id"),
        (["-o", "{folder}", "--repo-id", "me/-x/y"], "--repo-id me/-x/y is not a Hub repository id"),
    ],
    ids=["output is a file", "space", "no org", "two slashes"],
)
def test_a_destination_it_cannot_write_is_one_line_before_the_checkpoint_is_read(tmp_path, args, message):
    existing = tmp_path / "existing.txt"
    existing.write_text("kept")
    paths = {"file": existing, "folder": tmp_path / "out"}
    args = [arg.format(**paths) for arg in args]
    not_a_checkpoint = existing
    result = run("export", "resnet18", "--checkpoint", str(not_a_checkpoint), "--license", "mit", *args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: error: {message.format(**paths)}")
    assert existing.read_text() == "kept" and not (tmp_path / "out").exists()
