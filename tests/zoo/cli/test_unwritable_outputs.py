"""Every command that writes refuses, in one line and before any work, an output whose folder
does not exist, is a file or cannot be written, and leaves nothing behind; so does every
command that touches the Hugging Face cache when `HF_HOME` is a file."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli

SEQUENCE = ["text_transformer_small", "-a", "vocab_size=20", "-a", "depth=1", "3,4,5"]


def writing_commands(out: Path, image: Path) -> dict[str, list[str]]:
    """Each command that writes a file or folder, with `out` as what it writes."""
    return {
        "attn image": ["attn", "resnet18_cbam", str(image), "-o", str(out / "map.png")],
        "attn sequence": ["attn", *SEQUENCE, "-o", str(out / "map.png")],
        "embed": ["embed", "resnet18", str(image), "-o", str(out / "e.npy"), "--checkpoint", str(image)],
        "predict --embeddings": ["predict", "resnet18", str(image), "--embeddings", str(out / "e.npy")],
        "mask": ["mask", "causal", "--lengths", "4", "-o", str(out / "mask.png")],
        "flops --plot": ["flops", "resnet18", "--plot", str(out / "plot.png")],
        "export": ["export", "resnet18", "--checkpoint", str(image), "-o", str(out / "sub" / "model")],
        "convert": ["convert", str(image), "-o", str(out / "model.safetensors")],
    }


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "cat.png"
    Image.new("RGB", (40, 40), (120, 80, 40)).save(path)
    return path


def unwritable_folders(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("not a folder")
    folders = {"missing": tmp_path / "missing" / "deeper", "a file": tmp_path / "a-file"}
    if Path("/sys").is_dir():  # read-only even for root
        folders["not writable"] = Path("/sys")
    return folders


@pytest.mark.parametrize("kind", ["missing", "a file", "not writable"])
@pytest.mark.parametrize(
    "command",
    [
        "attn image",
        "attn sequence",
        "embed",
        "predict --embeddings",
        "mask",
        "flops --plot",
        "export",
        "convert",
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, image, command, kind):
    folders = unwritable_folders(tmp_path)
    if kind not in folders:
        pytest.skip("no read-only folder on this system")
    if (command, kind) == ("export", "missing"):
        pytest.skip("export creates the folders its output lies in")
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, writing_commands(folders[kind], image)[command])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ") and ("folder" in line or "is a file" in line), line
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "command", [["get", "resnet18"], ["cache", "ls"], ["cache", "rm", "resnet18"], ["cache", "verify"],
                ["create", "resnet18", "--pretrained"]],
    ids=" ".join,
)  # fmt: skip
def test_hf_home_that_is_a_file_is_one_line_and_exit_1(hub_env, tmp_path, monkeypatch, command):
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    monkeypatch.setenv("HF_HOME", str(home))
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line == f"zoo: error: HF_HOME={home}: '{home}' is a file, not a folder; set HF_HOME to a folder"


def test_a_write_the_system_refuses_midway_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(self, fp, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    output = tmp_path / "mask.png"
    result = CliRunner().invoke(cli, ["mask", "causal", "--lengths", "4", "-o", str(output)])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ") and line.endswith(": No space left on device")
    assert list(tmp_path.iterdir()) == []
