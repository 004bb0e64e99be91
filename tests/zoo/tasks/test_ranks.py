"""Many images over torchrun's ranks: each batch runs on one rank, and the merged output is the
one a single process writes, byte for byte (`zoo.tasks.ranks`).

The single process runs here (click's `CliRunner`), the two ranks under `torchrun --standalone
--nproc_per_node 2 -m zoo` (gloo), all on the CPU with one thread, over a tiny ResNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import zoo
from tests import torchrun
from zoo.tasks.ranks import Ranks

TINY = ["-a", "layers=[1,1,1,1]", "-a", "channels=[8,16,32,64]", "--num-classes", "5"]


def test_batches_are_dealt_round_robin_and_gathered_in_order():
    ranks = Ranks(rank=1, world_size=3)
    assert list(ranks.share(8)) == [1, 4, 7]
    assert Ranks().in_order([(2, "c"), (0, "a"), (1, "b")]) == ["a", "b", "c"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny ResNet's checkpoint, and nine image files of several sizes, an unreadable one
    among them."""
    folder = tmp_path_factory.mktemp("ranks")
    torch.manual_seed(0)
    model = zoo.create("resnet18", num_classes=5, layers=[1, 1, 1, 1], channels=[8, 16, 32, 64])
    save_file(
        {key: t.contiguous() for key, t in model.state_dict().items()}, str(folder / "tiny.safetensors")
    )
    rng = np.random.default_rng(0)
    files = []
    for index in range(9):
        path = folder / f"image{index}.png"
        if index == 3:
            path.write_text("not a picture\n")
        else:
            Image.fromarray(rng.integers(0, 256, (40 + index, 50, 3), dtype=np.uint8)).save(path)
        files.append(path.name)
    return folder, files


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def one_process(folder: Path, monkeypatch, *args: str) -> Ran:
    """`zoo ARGS` in this process, on one thread as each rank runs."""
    from click.testing import CliRunner

    from zoo.cli import cli

    monkeypatch.chdir(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        torch.set_num_threads(threads)
    return Ran(result.exit_code, result.stdout, result.stderr)


def two_ranks(folder: Path, *args: str) -> Ran:
    """`torchrun --nproc_per_node 2 -m zoo ARGS`."""
    done = torchrun.two_ranks(folder, "-m", "zoo", *args)
    return Ran(done.returncode, done.stdout, done.stderr)


def written(path: Path) -> tuple[bytes, dict[str, str]]:
    """The bytes of a safetensors file's tensor and its metadata (whose order in the header
    safetensors does not fix from one process to the next)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as file:
        return file.get_tensor("embeddings").numpy().tobytes(), file.metadata()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("zoo: ")]


def test_predict_over_two_ranks_prints_and_writes_what_one_process_does(inputs, monkeypatch):
    folder, files = inputs
    common = ["predict", "resnet18", *files, "--checkpoint", "tiny.safetensors", *TINY, "--batch-size", "2"]
    one = one_process(folder, monkeypatch, *common, "--json", "--embeddings", "one.safetensors")
    two = two_ranks(folder, *common, "--json", "--embeddings", "two.safetensors")

    assert one.returncode == 1, one.stderr  # the unreadable file
    assert two.returncode != 0
    assert two.stdout == one.stdout.replace("one.safetensors", "two.safetensors")
    assert written(folder / "two.safetensors") == written(folder / "one.safetensors")
    # each file was read exactly once: the unreadable one is reported once
    assert (
        error_lines(two.stderr)
        == error_lines(one.stderr)
        == ["zoo: error: image3.png: not an image (or a format PIL cannot read)"]
    )


def test_embed_over_two_ranks_writes_what_one_process_does(inputs, monkeypatch):
    folder, files = inputs
    readable = [name for name in files if name != "image3.png"]
    common = ["embed", "resnet18", *readable, "--checkpoint", "tiny.safetensors", *TINY, "--batch-size", "3"]
    one = one_process(folder, monkeypatch, *common, "-o", "one.npy", "--json")
    two = two_ranks(folder, *common, "-o", "two.npy", "--json")

    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout.replace("one.npy", "two.npy")
    assert (folder / "two.npy").read_bytes() == (folder / "one.npy").read_bytes()
