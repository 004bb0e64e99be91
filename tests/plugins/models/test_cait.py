"""CaiT: parity with timm's checkpoint, LayerScale, class attention, and its attention variants."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo_plugins.attention.class_attention import MultiHeadClassAttention
from zoo_plugins.attention.talking_heads import TalkingHeadsAttention

from ...conftest import REFERENCE

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "depth_token_only": 2}
CASE = "cait_tiny_cls10"
SIZE_FIELDS = {"img_size", "patch_size", "num_classes", "embed_dim", "depth", "num_heads", "depth_token_only",
               "init_values"}  # fmt: skip


def tiny_cait(**overrides):
    return zoo.create("cait_xxs24_224", **{**TINY, "num_classes": 10, **overrides})


def test_the_tiny_timm_checkpoint_reproduces_its_features_and_outputs():
    description = json.loads((REFERENCE / "tiny" / f"{CASE}.json").read_text())
    sizes = {key: value for key, value in description.items() if key in SIZE_FIELDS}
    model = zoo.create(
        "cait_xxs24_224", checkpoint=REFERENCE / "tiny" / f"{CASE}.safetensors", **sizes
    ).eval()
    io = load_file(REFERENCE / "tiny" / f"{CASE}.io.safetensors")
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model.forward_head(features)
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model(io["input"]), io["output"], atol=1e-5, rtol=0)


def test_patch_blocks_use_talking_heads_and_the_last_blocks_class_attention():
    model = tiny_cait()
    assert all(isinstance(block.attn, TalkingHeadsAttention) for block in model.blocks)
    assert all(isinstance(block.attn, MultiHeadClassAttention) for block in model.blocks_token_only)
    assert model.blocks_in_order() == [*model.blocks, *model.blocks_token_only]


def test_layer_scale_starts_at_init_values():
    model = tiny_cait(init_values=1e-3)
    for block in model.blocks_in_order():
        assert torch.equal(block.gamma_1, torch.full((48,), 1e-3))
        assert torch.equal(block.gamma_2, torch.full((48,), 1e-3))


def test_position_embeddings_cover_the_patches_and_the_class_token_comes_first():
    model = tiny_cait().eval()
    assert model.pos_embed.shape == (1, 16, 48)
    images = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(images)
    assert tokens.shape == (2, 1 + 16, 48)
    torch.testing.assert_close(model(images), model.head(tokens[:, 0]))
    torch.testing.assert_close(model.forward_head(tokens, pre_logits=True), tokens[:, 0])


def test_class_attention_blocks_leave_the_patch_tokens_unchanged():
    model = tiny_cait().eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        patches = model.norm(model._patch_tokens(images))
        torch.testing.assert_close(model.forward_features(images)[:, 1:], patches)


def test_class_attention_queries_from_the_class_token_only():
    attention = MultiHeadClassAttention(16, num_heads=2).eval()
    x = torch.randn(2, 5, 16)
    out, weights = attention(x, need_weights=True)
    assert out.shape == (2, 1, 16) and weights.shape == (2, 2, 1, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 1))
    torch.testing.assert_close(attention(x), out)  # fused and eager paths agree
    changed = x.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(attention(changed), out)


def test_talking_heads_mix_heads_before_and_after_the_softmax():
    attention = TalkingHeadsAttention(16, num_heads=4).eval()
    x = torch.randn(2, 5, 16)
    out, weights = attention(x, need_weights=True)
    assert out.shape == (2, 5, 16) and weights.shape == (2, 4, 5, 5)
    with torch.no_grad():
        attention.proj_l.weight.copy_(torch.eye(4)), attention.proj_l.bias.zero_()
        attention.proj_w.weight.copy_(torch.eye(4)), attention.proj_w.bias.zero_()
        _, plain = attention(x, need_weights=True)
    torch.testing.assert_close(plain.sum(-1), torch.ones(2, 4, 5))  # identity mixing: softmax rows


def test_talking_heads_plug_into_a_plain_vit_forward_and_backward():
    assert isinstance(
        zoo.create("vit_tiny_patch16_224", attn="talking_heads", device="meta").blocks[0].attn,
        TalkingHeadsAttention,
    )
    vit = zoo.create(
        "vit_tiny_patch16_224",
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10,
        attn="talking_heads",
    )  # fmt: skip
    vit(torch.randn(2, 3, 32, 32)).logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in vit.parameters())


def test_gradients_reach_every_parameter():
    model = tiny_cait(drop_path_rate=0.1)
    model(torch.randn(2, 3, 32, 32)).logsumexp(-1).mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_the_attention_map_is_the_last_class_attention_over_the_patches():
    model = tiny_cait()
    maps = zoo.attention_maps(model, torch.randn(2, 3, 32, 32))
    assert set(maps) == {"last"} and maps["last"].shape == (2, 4, 4)
    assert (maps["last"] >= 0).all() and (maps["last"].sum((1, 2)) <= 1 + 1e-6).all()


def test_position_embeddings_are_resampled_for_another_size():
    source = tiny_cait().state_dict()
    model = tiny_cait(img_size=48)
    resampled, note = model.adapt_pretrained("pos_embed", source["pos_embed"])
    assert resampled.shape == (1, 36, 48) and "4x4 to 6x6" in note
    assert model.adapt_pretrained("cls_token", source["cls_token"]) is None


def test_sizes_must_fit_together():
    with pytest.raises(zoo.ArgumentError, match="multiple of patch_size"):
        tiny_cait(img_size=30)


def test_img_size_takes_height_and_width_and_a_side_that_is_no_multiple_of_the_patch_is_refused():
    model = tiny_cait(img_size=(32, 24)).eval()
    assert model.pos_embed.shape == (1, 4 * 3, 48)
    assert model(torch.randn(1, 3, 32, 24)).shape == (1, 10)
    with pytest.raises(zoo.ArgumentError, match=r"img_size \(32, 20\) is not a multiple of patch_size 8"):
        tiny_cait(img_size=(32, 20))
