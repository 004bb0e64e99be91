"""ViT's `mhsa` runs on the zoo's functional attention and still reproduces the references."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo

TINY = Path(__file__).parents[2] / "data" / "reference" / "tiny"


@pytest.mark.parametrize("name", ["vit_tiny_cls10", "vit_tiny_nohead", "deit_tiny_distilled_cls10"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_tiny_vit_outputs_and_attention_features_match_the_reference(name, fused):
    config = json.loads((TINY / f"{name}.json").read_text())
    io = load_file(TINY / f"{name}.io.safetensors")
    args = {
        key: config[key]
        for key in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "num_classes")
    }
    model = zoo.create(
        "vit_tiny_patch16_224",
        checkpoint=TINY / f"{name}.safetensors",
        distilled=config.get("distilled", False),
        attn={"name": "mhsa", "fused": fused},
        **args,
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(io["input"]), io["output"], atol=1e-5, rtol=0)
        features, weights = model.forward_attention(io["input"])
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    assert len(weights) == config["depth"]
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(weights[0].shape[:-1]))
