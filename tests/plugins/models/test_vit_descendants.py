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
    ("dinov2_tiny_reg4", None): "vit_small_patch14_reg4_dinov2",
    ("dinov2_tiny_reg4", "resized42"): "vit_small_patch14_reg4_dinov2",
    ("dinov2_tiny_reg4_56", None): "vit_small_patch14_reg4_dinov2",
    ("dinov2_tiny_reg4_56", "resized28"): "vit_small_patch14_reg4_dinov2",
    ("clip_tiny_proj16", None): "vit_base_patch16_clip_224",
}
# timm's CLIP head is a classifier of `num_classes`; here it is the projection of an embedding.
HEADS = {"clip_tiny_proj16": {"num_classes": 0, "proj_dim": 16}}


def tiny_model(case: str, name: str, **overrides) -> torch.nn.Module:
    description = json.loads((TINY / f"{case}.json").read_text())
    args = {key: value for key, value in description.items() if key in ARCHITECTURE}
    args |= HEADS.get(case, {}) | overrides
    return zoo.create(name, checkpoint=TINY / f"{case}.safetensors", **args).eval()


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


@pytest.mark.parametrize(
    ("name", "img_size", "tokens"),
    [
        ("vit_small_patch14_dinov2", 224, 1 + 16 * 16),
        ("vit_large_patch14_dinov2", 308, 1 + 22 * 22),
        ("vit_base_patch14_reg4_dinov2", 224, 1 + 4 + 16 * 16),
    ],
)
def test_full_size_models_build_at_other_image_sizes_on_meta(name, img_size, tokens):
    model = zoo.create(name, img_size=img_size, device="meta").eval()
    registers = model.config.reg_tokens
    assert model.pos_embed.shape[1] == tokens - (1 + registers if model.config.no_embed_class else 0)
    with torch.no_grad():
        features = model.forward_features(torch.empty(2, 3, img_size, img_size, device="meta"))
        output = model(torch.empty(2, 3, img_size, img_size, device="meta"))
    assert features.shape == (2, tokens, model.config.embed_dim)
    assert output.shape == (2, model.config.embed_dim)


def test_dinov2_scales_each_residual_branch_and_keeps_registers_out_of_the_position_grid():
    model = zoo.create("vit_small_patch14_reg4_dinov2", embed_dim=48, depth=2, num_heads=3, img_size=28)
    block = model.blocks[0]
    assert torch.equal(block.ls1.gamma, torch.full((48,), 1e-5)) and block.ls2.gamma.shape == (48,)
    assert model.reg_token.shape == (1, 4, 48) and model.pos_embed.shape == (1, 2 * 2, 48)
    assert model.num_prefix_tokens == 5


def test_attention_maps_skip_the_register_tokens():
    model = zoo.create(
        "vit_small_patch14_reg4_dinov2", embed_dim=48, depth=2, num_heads=3, img_size=42
    ).eval()
    images = torch.randn(2, 3, 42, 42)
    with torch.no_grad():
        tokens, weights = model.forward_attention(images)
        maps = model.attention_maps(images)
    assert all(w.shape == (2, 3, 1 + 4 + 9, 1 + 4 + 9) for w in weights)
    torch.testing.assert_close(tokens, model.forward_features(images), atol=1e-5, rtol=1e-5)
    assert maps["rollout"].shape == maps["last"].shape == (2, 3, 3)


def test_clip_norms_before_the_blocks_with_quick_gelu_and_projects_the_class_token():
    model = tiny_model("clip_tiny_proj16", "vit_base_patch16_clip_224", **HEADS["clip_tiny_proj16"])
    assert model.patch_embed.proj.bias is None and model.norm_pre.eps == model.norm.eps == 1e-5
    x = torch.randn(3)
    torch.testing.assert_close(model.blocks[0].mlp.act(x), x * torch.sigmoid(1.702 * x))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model.head(model.forward_features(images)[:, 0]))
        assert model.forward_head(model.forward_features(images), pre_logits=True).shape == (2, 48)


def test_the_fine_tuned_clip_classifier_is_the_same_tower_with_exact_gelu():
    tower = zoo.create("vit_base_patch16_clip_224.openai", device="meta")
    classifier = zoo.create("vit_base_patch16_clip_gelu_224.openai_ft_in12k_in1k", device="meta")
    assert isinstance(classifier.blocks[0].mlp.act, torch.nn.GELU)
    assert (tower.head.out_features, classifier.head.out_features) == (512, 1000)
    shapes = {name: t.shape for name, t in tower.state_dict().items() if not name.startswith("head")}
    assert shapes == {
        name: t.shape for name, t in classifier.state_dict().items() if not name.startswith("head")
    }


def test_a_new_num_classes_replaces_the_clip_projection_with_a_classifier():
    model = zoo.create("vit_large_patch14_clip_224", num_classes=10, img_size=336, device="meta")
    assert model.head.out_features == 10 and model.pos_embed.shape == (1, 1 + 24 * 24, 1024)
