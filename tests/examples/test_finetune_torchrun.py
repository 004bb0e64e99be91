"""examples/finetune.py under torchrun: two ranks on the CPU (gloo), one thread each.

A tiny ViT is fine-tuned with FSDP2 for two steps, saving a `torch.distributed.checkpoint`
after each. A second launch resumes from the first step's checkpoint, with DDP this time
(the checkpoint is resharded on loading), and its second step has the loss of the
uninterrupted run's, to the bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo
from tests.torchrun import two_ranks

from .conftest import EXAMPLES

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def finetune_on_two_ranks(folder: Path, *args: str) -> None:
    done = two_ranks(folder, str(EXAMPLES / "finetune.py"), *args)
    assert done.returncode == 0, done.stderr[-3000:]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(squares, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("torchrun")
    torch.manual_seed(0)
    model = zoo.create("vit_tiny_patch16_224", num_classes=10, **TINY_VIT)
    save_file({k: t.contiguous() for k, t in model.state_dict().items()}, folder / "vit.safetensors")
    common = [
        "vit_tiny_patch16_224", "--checkpoint", "vit.safetensors",
        *(f"-a{key}={value}" for key, value in TINY_VIT.items()),
        "--train", str(squares / "train"), "--val", str(squares / "val"), "--input-size", "32",
        "--batch-size", "4", "--lr", "1e-3", "--steps", "2", "--layer-decay", "0.75", "--ema", "0.99",
        "--workers", "0",
    ]  # fmt: skip
    finetune_on_two_ranks(folder, *common, "--fsdp", "--checkpoint-dir", "saved", "--save-every", "1",
             "--metrics", "uninterrupted.jsonl", "-o", "fsdp.safetensors")  # fmt: skip
    finetune_on_two_ranks(folder, *common, "--resume", "saved/step-00000001",
             "--metrics", "resumed.jsonl", "-o", "ddp.safetensors")  # fmt: skip
    return folder


def test_a_run_resumed_from_a_checkpoint_takes_the_uninterrupted_run_s_next_step(runs):
    uninterrupted = [line for line in lines(runs / "uninterrupted.jsonl") if "loss" in line]
    resumed = [line for line in lines(runs / "resumed.jsonl") if "loss" in line]
    assert [line["step"] for line in uninterrupted] == [1, 2]
    assert resumed == uninterrupted[1:]  # step 2: the same loss and learning rate, exactly


def test_each_step_is_saved_as_a_distributed_checkpoint(runs):
    assert sorted(path.name for path in (runs / "saved").iterdir()) == ["step-00000001", "step-00000002"]
    assert all((runs / "saved" / step / ".metadata").is_file() for step in ("step-00000001", "step-00000002"))


@pytest.mark.parametrize("output", ["fsdp.safetensors", "ddp.safetensors"])
def test_the_gathered_weights_load_as_a_zoo_model(runs, output):
    model = zoo.create("vit_tiny_patch16_224", checkpoint=runs / output, num_classes=2, **TINY_VIT)
    assert model.head.out_features == 2
