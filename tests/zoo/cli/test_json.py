"""`--json` on the commands that report: export, attn, cache rm and verify, in the shapes their help gives."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli import cli

from .test_use import VIT, VIT_ARGS, VIT_SHAPE, save_model


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_export_json_names_the_files_the_sha256_and_the_config(tmp_path):
    model = zoo.create("resnet18", num_classes=3, layers=[1, 1, 1, 1])
    checkpoint = tmp_path / "ck.safetensors"
    save_file(model.state_dict(), checkpoint)
    output = tmp_path / "out"
    result = run("export", "resnet18", "--checkpoint", str(checkpoint), "-o", str(output),
                 "--num-classes", "3", "-a", "layers=[1, 1, 1, 1]", "--license", "mit", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"output", "files", "sha256", "config"}
    assert report["output"] == str(output)
    assert report["files"] == [str(output / n) for n in ("model.safetensors", "zoo_config.json", "README.md")]
    assert all((output / n).is_file() for n in ("model.safetensors", "zoo_config.json", "README.md"))
    assert report["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert report["config"] == json.loads((output / "zoo_config.json").read_text())
    assert report["config"]["weights"]["license"] == "mit"


def test_attn_json_gives_the_output_the_map_the_size_and_the_grid(tmp_path, images):
    checkpoint = tmp_path / "ck.safetensors"
    save_model(checkpoint, VIT, **VIT_SHAPE, num_classes=10)
    out = tmp_path / "map.png"
    result = run("attn", VIT, str(images["dog"]), "-o", str(out), "--checkpoint", str(checkpoint),
                 "--num-classes", "10", *VIT_ARGS, "--method", "last", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "output": str(out),
        "model": VIT,
        "map": "last",
        "size": list(Image.open(out).size),  # the picture: the image, its title and colour bar
        "grid": [4, 4],  # 32 pixels in patches of 8
        "box": json.loads(result.stdout)["box"],
    }
    left, top, right, bottom = json.loads(result.stdout)["box"]
    assert (right - left, bottom - top) == (50, 80)  # the image, where it lies in the picture
    assert out.is_file()


@pytest.fixture
def cached_resnet50(hub_env):
    """A file laid out in the Hugging Face cache as a download of resnet50.a1_in1k leaves it."""
    snapshot = hub_env / "hub" / "models--timm--resnet50.a1_in1k" / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    path = snapshot / "model.safetensors"
    path.write_bytes(b"weights")
    return path


def test_cache_rm_json_lists_the_removed_files_as_cache_ls_did(cached_resnet50):
    listed = json.loads(run("cache", "ls", "--json").stdout)
    result = run("cache", "rm", "resnet50", "--json")
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)
    assert removed == listed
    assert removed[0]["name"] == "resnet50" and removed[0]["tag"] == "a1_in1k"
    assert removed[0]["path"] == str(cached_resnet50) and removed[0]["size"] == len(b"weights")
    assert not cached_resnet50.exists()
    assert json.loads(run("cache", "ls", "--json").stdout) == []


@pytest.mark.parametrize(
    "command", [["export"], ["attn"], ["cache", "rm"], ["cache", "ls"], ["cache", "verify"], ["get"],
                ["predict"], ["bench"], ["create"], ["attention"], ["mask"]],
)  # fmt: skip
def test_each_json_shape_is_in_the_help(command):  # the shape is a promise: it is documented
    text = run(*command, "--help").stdout
    assert re.search(r"^  --json +Print JSON instead of text\.$", text, re.MULTILINE)
    shape = text[text.index("--json prints") :]
    assert '{"' in shape


def test_cache_verify_json_reports_a_mismatch_and_removes_the_file_only_with_remove(cached_resnet50):
    [first] = json.loads(run("cache", "verify", "--json").stdout)  # never checked: recorded now
    recorded = hashlib.sha256(b"weights").hexdigest()
    assert first["ok"] is True and first["verified"] == "recorded"
    assert (first["sha256"], first["expected"], first["removed"], first["error"]) == (
        recorded,
        None,
        False,
        None,
    )
    cached_resnet50.write_bytes(b"changed")
    found = hashlib.sha256(b"changed").hexdigest()

    result = run("cache", "verify", "--json")
    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["path"] == str(cached_resnet50) and report["name"] == "resnet50"
    assert report["ok"] is False and report["verified"] is None and report["removed"] is False
    assert (report["sha256"], report["expected"]) == (found, recorded)
    assert f"as {recorded}, the file has {found}" in report["error"]
    assert "`zoo get resnet50.a1_in1k --force`" in report["error"]
    assert cached_resnet50.read_bytes() == b"changed"

    result = run("cache", "verify", "--remove", "--json")
    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["removed"] is True and (report["sha256"], report["expected"]) == (found, recorded)
    assert "the file was removed; fetch it again with `zoo get resnet50.a1_in1k`" in report["error"]
    assert not cached_resnet50.exists()
    assert json.loads(run("cache", "ls", "--json").stdout) == []
