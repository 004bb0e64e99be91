"""`create_sharded`: a model built on meta, sharded with FSDP2 and loaded rank by rank, is the
model `zoo.create` builds from the same checkpoint.

Two processes on the CPU (gloo), started once for the module by `torch.multiprocessing`;
each compares its sharded models with single-process ones and reports what it found.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo.registry.family import Family

WORLD_SIZE = 2
TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 10}
TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "num_classes": 10}


class ScaledConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_classes: int = 3
    width: int = 6


class Scaled(nn.Module):
    """Two linear blocks and a head over inputs scaled by a non-persistent buffer, computed
    when the model is built and never saved."""

    def __init__(self, config: ScaledConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        steps = torch.arange(1, config.width + 1, device=device, dtype=dtype)
        self.register_buffer("scale", steps / config.width, persistent=False)
        self.blocks = nn.Sequential(
            *(nn.Linear(config.width, config.width, device=device, dtype=dtype) for _ in range(2))
        )
        self.head = nn.Linear(config.width, config.num_classes, device=device, dtype=dtype)

    def blocks_in_order(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x * self.scale))


class ScaledFamily(Family):
    config = ScaledConfig
    tasks = ("image-classification",)

    def build(self, config, *, device=None, dtype=None):
        return Scaled(config, device=device, dtype=dtype)

    def example_input(self, config, *, batch=2, seq_len=None, device=None, dtype=None):
        return (torch.randn(batch, config.width, device=device, dtype=dtype),)


def saved(path: Path, model: nn.Module) -> Path:
    save_file({key: t.contiguous() for key, t in model.state_dict().items()}, str(path))
    return path


def registry_with_scaled(entries: Path):
    from tests.conftest import fresh_builtin_registry

    registry = fresh_builtin_registry()
    registry.add_builder("scaled", ScaledFamily(), owner="tests")
    registry.add_models(entries, owner="tests")
    return registry


# ---------------------------------------------------------------------- in each rank


def compare(sharded: nn.Module, single: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    """What a sharded model and its single-process twin have in common."""
    from torch.distributed.tensor import DTensor

    expected = single.state_dict()
    gathered = {
        key: t.full_tensor() if isinstance(t, DTensor) else t for key, t in sharded.state_dict().items()
    }
    local = sum(p.to_local().numel() for p in sharded.parameters())
    sharded.eval(), single.eval()
    with torch.no_grad():
        difference = (sharded(*inputs) - single(*inputs)).abs().max().item()
    buffers = dict(sharded.named_buffers())
    return {
        "names_equal": sorted(gathered) == sorted(expected),
        "tensors_equal": all(torch.equal(gathered[key], expected[key]) for key in expected),
        "output_difference": difference,
        "buffers_equal": all(torch.equal(buffers[key], b) for key, b in single.named_buffers()),
        "local_share": local / sum(p.numel() for p in single.parameters()),
        "blocks_sharded": all(type(b).__name__.startswith("FSDP") for b in sharded.blocks_in_order()),
        "same_report": sharded.load_report == single.load_report,
        "new_modules": sorted(single.load_report.new_modules),
    }


def rank_main(rank: int, folder: Path) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD_SIZE
    )
    registry = registry_with_scaled(folder / "scaled.yaml")
    generator = torch.Generator().manual_seed(1)
    images = (torch.randn(2, 3, 32, 32, generator=generator),)
    cases = {
        "vit": ("vit_tiny_patch16_224", folder / "vit.safetensors", TINY_VIT, images),
        "vit_new_head": (
            "vit_tiny_patch16_224",
            folder / "vit.safetensors",
            {**TINY_VIT, "num_classes": 3},
            images,
        ),
        "resnet": ("resnet18", folder / "resnet.safetensors", TINY_RESNET, images),
        "resnet_cbam_on_a_backbone": (
            "resnet18_cbam",
            folder / "resnet.safetensors",
            {**TINY_RESNET, "fresh_modules": True},
            images,
        ),
        "scaled": (
            "scaled_net",
            folder / "scaled.safetensors",
            {},
            (torch.randn(4, 6, generator=generator),),
        ),
    }
    report = {}
    for case, (name, checkpoint, args, inputs) in cases.items():
        torch.manual_seed(5)  # new modules (a head, attention) are drawn alike by both
        single = zoo.create(name, checkpoint=checkpoint, registry=registry, **args)
        torch.manual_seed(5)
        sharded = zoo.create_sharded(name, checkpoint=checkpoint, device="cpu", registry=registry, **args)
        report[case] = compare(sharded, single, inputs)
    (folder / f"rank{rank}.json").write_text(json.dumps(report))
    dist.barrier()  # no rank leaves while another's last messages are in flight
    dist.destroy_process_group()


# ---------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[dict[str, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("sharded")
    (folder / "scaled.yaml").write_text(
        textwrap.dedent("""\
        models:
          scaled_net:
            builder: scaled
            description: Two linear blocks over scaled inputs.
            paper: https://example.org
        """)
    )
    torch.manual_seed(0)
    saved(folder / "vit.safetensors", zoo.create("vit_tiny_patch16_224", **TINY_VIT))
    saved(folder / "resnet.safetensors", zoo.create("resnet18", **TINY_RESNET))
    registry = registry_with_scaled(folder / "scaled.yaml")
    saved(folder / "scaled.safetensors", zoo.create("scaled_net", registry=registry))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.multiprocessing.spawn(rank_main, args=(folder,), nprocs=WORLD_SIZE)
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in range(WORLD_SIZE)]


CASES = ("vit", "vit_new_head", "resnet", "resnet_cbam_on_a_backbone", "scaled")


@pytest.mark.parametrize("case", CASES)
def test_the_sharded_model_gathers_to_exactly_the_single_process_model(reports, case):
    for report in reports:
        assert report[case]["names_equal"]
        assert report[case]["tensors_equal"]


@pytest.mark.parametrize("case", CASES)
def test_the_sharded_model_computes_what_the_single_process_model_computes(reports, case):
    for report in reports:
        assert report[case]["output_difference"] < 1e-6


@pytest.mark.parametrize("case", CASES)
def test_the_load_report_says_what_zoo_create_s_says(reports, case):
    for report in reports:
        assert report[case]["same_report"]
    assert reports[0]["resnet_cbam_on_a_backbone"]["new_modules"] == [
        f"layer{stage}.0.se" for stage in range(1, 5)
    ]


def test_buffers_the_checkpoint_does_not_hold_keep_the_values_the_family_gives_them(reports):
    for report in reports:
        assert report["scaled"]["buffers_equal"]  # the non-persistent `scale`
        assert report["resnet"]["buffers_equal"]  # BatchNorm statistics, from the file


@pytest.mark.parametrize("case", CASES)
def test_each_rank_holds_its_share_of_the_parameters_and_each_block_is_sharded(reports, case):
    shares = [report[case]["local_share"] for report in reports]
    assert sum(shares) == pytest.approx(1.0)
    assert max(shares) < 0.6
    assert all(report[case]["blocks_sharded"] for report in reports)


def test_without_a_process_group_it_says_how_to_start_one():
    with pytest.raises(
        zoo.ArgumentError, match=r"launch with torchrun and call torch\.distributed\.init_process_group\(\)"
    ):
        zoo.create_sharded("vit_tiny_patch16_224", checkpoint="model.safetensors")
