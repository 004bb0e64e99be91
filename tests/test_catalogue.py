"""The registry against the catalogue: timm's published weights of the families the zoo carries
(`tests/data/catalogue/weights.jsonl`, distilled from timm 1.0.31's facts by `distil.py` beside it).

Every registry weight kept in a `timm/` repository is one the catalogue describes, and the model
the zoo builds for it takes that checkpoint's layout name for name and shape for shape, with the
parameter count and ImageNet-1k result the catalogue gives.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest

import zoo

CATALOGUE = Path(__file__).parent / "data" / "catalogue" / "weights.jsonl"
OUTSIDE_THE_CATALOGUE = {"timm/botnet26t_256.c1_in1k": "timm module byoanet, which the catalogue leaves out"}
REGISTRY = zoo.default_registry()


@cache
def weights_of_the_catalogue() -> list[dict]:
    return [json.loads(line) for line in CATALOGUE.read_text().splitlines() if line.strip()]


@cache
def catalogue() -> dict[str, dict]:
    """The catalogue by repository (two timm names may share one: the OpenAI CLIP towers)."""
    return {row["hf_hub_id"]: row for row in weights_of_the_catalogue()}


def timm_weights() -> list[str]:
    """`name.tag` of every registry weight kept in a repository of the `timm/` organisation."""
    return [
        full
        for full in REGISTRY.pretrained_names()
        if (REGISTRY.resolve(full).selected.weights.hf_hub_id or "").startswith("timm/")
    ]


def hub_id(full: str) -> str:
    return REGISTRY.resolve(full).selected.weights.hf_hub_id


def layout_digest(state: dict) -> str:
    """As `distil.py` digests a checkpoint: the sha256 of its sorted `name shape` lines."""
    lines = sorted(f"{name} {list(tensor.shape)}" for name, tensor in state.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_the_catalogue_holds_every_timm_weight_of_the_carried_families():
    modules = {row["module"] for row in weights_of_the_catalogue()}
    assert len(weights_of_the_catalogue()) == 805 and {"vision_transformer", "resnet"} <= modules


@pytest.mark.parametrize("full", timm_weights())
def test_every_timm_weight_of_the_registry_is_one_the_catalogue_describes(full):
    assert hub_id(full) in catalogue() or hub_id(full) in OUTSIDE_THE_CATALOGUE


@pytest.mark.parametrize(
    "full", [full for full in timm_weights() if hub_id(full) not in OUTSIDE_THE_CATALOGUE]
)
def test_a_timm_weight_builds_with_exactly_its_layout_counts_and_accuracy(full):
    facts = catalogue()[hub_id(full)]
    weights = REGISTRY.resolve(full).selected.weights
    state = zoo.create(full, device="meta").state_dict()
    assert (len(state), layout_digest(state)) == (facts["tensors"], facts["layout"])
    assert weights.num_params == facts["num_params"]
    published = weights.imagenet.model_dump() if getattr(weights, "imagenet", None) else None
    expected = facts["imagenet"]
    if expected is None:
        assert published is None
    else:
        assert {key: published[key] for key in ("top1", "top5", "img_size")} == {
            key: expected[key] for key in ("top1", "top5", "img_size")
        }
