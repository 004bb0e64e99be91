"""DeiT, DINOv2 and CLIP image towers: timm's checkpoints load as they are and reproduce
timm's outputs; the published layouts build at other image sizes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import zoo

from ...conftest import REFERENCE

TINY = REFERENCE / "tiny"
ARCHITECTURE = {"img_size", "patch_size", "embed_dim", "depth", "num_heads", "num_classes",
                "init_values", "reg_tokens", "pre_norm", "act_layer", "layer_norm_eps"}  # fmt: skip

# Each tiny case (and the input it was run on): the registry name whose architecture it shrinks.
CASES = {
    ("deit_tiny_cls10", None): "deit_tiny_patch16_224",
}


def tiny_model(case: str, name: str, **overrides) -> torch.nn.Module:
    description = json.loads((TINY / f"{case}.json").read_text())
    args = {key: value for key, value in description.items() if key in ARCHITECTURE}
    return zoo.create(name, checkpoint=TINY / f"{case}.safetensors", **{**args, **overrides}).eval()


@pytest.mark.parametrize(("case", "resized"), sorted(CASES, key=str), ids=lambda v: str(v))
def test_tiny_checkpoints_reproduce_timm(case, resized):
    io = load_file(TINY / f"{case}.{resized}.io.safetensors" if resized else TINY / f"{case}.io.safetensors")
    overrides = {"img_size": io["input"].shape[-1]} if resized else {}
    model = tiny_model(case, CASES[case, resized], **overrides)
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model(io["input"])
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)
