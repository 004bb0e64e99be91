"""The blocks of timm's later ViTs (SigLIP, AIMv2, BEiT-3, DINOv2-giant, the register and
parallel ViTs): tiny timm checkpoints load as they are and reproduce timm's outputs; the
translator of the catalogue speaks the builder's words."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from tools.catalogue.facts import by_architecture, facts_dir
from tools.catalogue.vision_transformer import translate

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm, case_args

CASES = [
    "vit_siglip_map_tiny",
    "vit_aimv2_tiny",
    "vit_beit3_tiny_cls10",
    "vit_glu_tiny",
    "vit_rpn_tiny_cls10",
    "vit_pwee_tiny_cls10",
    "vit_dpwee_tiny_cls10",
    "vit_dwee_tiny_cls10",
]


def case_keys(case: str) -> list[str]:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return [key for key in description if key not in ("family", "note")]


@pytest.mark.parametrize("case", CASES)
def test_a_tiny_timm_checkpoint_reproduces_timm(case):
    assert_reproduces_timm("vit_tiny_patch16_224", case, case_keys(case))


def test_an_attention_pool_named_alone_makes_the_pool_map():
    model = zoo.create("vit_tiny_patch16_224", device="meta", attn_pool="map", num_classes=0)
    assert model.config.global_pool == "map"
    assert type(model.attn_pool).__name__ == "MultiheadAttentionPooling"


def test_the_attention_pool_gives_its_weights_over_the_patches():
    model = zoo.create("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, class_token=False,
                       global_pool="map", num_classes=0).eval()  # fmt: skip
    tokens = model.forward_features(torch.randn(2, 3, 32, 32))
    pooled, weights = model.attn_pool(tokens, need_weights=True)
    assert pooled.shape == (2, 192) and weights.shape == (2, 3, 16)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_differential_attention_takes_its_block_index():
    model = zoo.create("vit_tiny_patch16_224", device="meta", depth=3, attn="diff")
    lambdas = [block.attn.lambda_init for block in model.blocks]
    assert lambdas[0] == pytest.approx(0.2) and lambdas[0] < lambdas[1] < lambdas[2] < 0.8


def test_token_pooling_needs_the_class_token():
    with pytest.raises(zoo.ArgumentError, match="class_token=False has none"):
        zoo.create("vit_tiny_patch16_224", device="meta", class_token=False)


def test_a_parallel_block_holds_its_own_attention():
    with pytest.raises(zoo.ArgumentError, match="holds its own attention"):
        zoo.create("vit_tiny_patch16_224", device="meta", block_fn="parallel_scaling", attn="diff")


def test_an_image_size_off_the_patch_grid_is_taken_when_the_remainder_is_dropped():
    model = zoo.create("vit_tiny_patch16_224", device="meta", img_size=36, patch_size=8, drop_remainder=True)
    assert model.patch_embed.grid_size == (4, 4)
    assert model(torch.empty(1, 3, 36, 36, device="meta")).shape == (1, 1000)


@pytest.mark.skipif(not (facts_dir() / "tags.jsonl").exists(), reason="the catalogue facts are not at hand")
def test_openai_clip_towers_under_the_gelu_name_take_quick_gelu():
    weights = by_architecture(("vision_transformer",))["vit_base_patch16_clip_224"]
    architecture = translate("vit_base_patch16_clip_224", weights)
    by_tag = {weight.tag: architecture.tag_args(weight) for weight in weights}
    assert architecture.args["layer_norm_eps"] == 1e-5 and "act_layer" not in architecture.args
    assert by_tag["openai"] == {"proj_dim": 512, "act_layer": "quick_gelu"}
    assert by_tag["openai_ft_in1k"] == {}
    assert by_tag["laion2b"] == {"proj_dim": 512}


@pytest.mark.parametrize("case", ["vit_siglip_map_tiny", "vit_dwee_tiny_cls10"])
def test_position_embeddings_without_a_class_token_are_resampled_on_load(case):
    args = {key: value for key, value in case_args(case, case_keys(case)).items() if key != "img_size"}
    checkpoint = REFERENCE / "tiny" / f"{case}.safetensors"
    model = zoo.create("vit_tiny_patch16_224", checkpoint=checkpoint, img_size=48, **args).eval()
    assert model.pos_embed.shape[1] == 36  # a 6x6 grid, no prefix token embedded
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 48, 48))).all()
