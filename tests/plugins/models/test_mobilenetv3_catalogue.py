"""The `mobilenetv3` family's blocks beyond MobileNetV3-Large, against timm's numerics: tiny
timm checkpoints of MobileNetV4 (universal and fused inverted residuals, mobile multi-query
attention, layer scale, anti-aliasing), LCNet and FBNetV3 load and reproduce timm's features
and outputs."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo_plugins.attention.multi_query import MultiQueryAttention2d
from zoo_plugins.layers.universal import LayerScale2d, MobileAttention, UniversalInvertedResidual

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm, case_args

NAME = "mobilenetv3_large_100"
MOBILENETV4 = "mobilenetv4_hybrid_tiny_cls10"
CASES = (MOBILENETV4, "lcnet_tiny_cls10", "fbnetv3_tiny_cls10")


def builder_keys(case: str) -> list[str]:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return [key for key in description if key not in ("family", "note")]


@pytest.mark.parametrize("case", CASES)
def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features(case):
    assert_reproduces_timm(NAME, case, builder_keys(case))


def test_mobilenetv4_blocks_are_built_from_the_stages():
    model = zoo.create(NAME, device="meta", **case_args(MOBILENETV4, builder_keys(MOBILENETV4)))
    blocks = model.blocks_in_order()
    universal = [b for b in blocks if isinstance(b, UniversalInvertedResidual)]
    attention = [b for b in blocks if isinstance(b, MobileAttention)]
    assert len(universal) == 5 and len(attention) == 2
    assert [type(b.dw_start).__name__ for b in universal[1:4]] == ["Identity", "ConvBnAct", "Identity"]
    assert all(isinstance(b.layer_scale, LayerScale2d) for b in universal + attention)
    assert all(isinstance(b.attn, MultiQueryAttention2d) for b in attention)
    assert hasattr(attention[0].attn.key, "down_conv") and not hasattr(attention[1].attn.key, "down_conv")


def test_multi_query_attention_shares_one_key_and_value_head_across_query_heads():
    attn = MultiQueryAttention2d(16, out_dim=12, num_heads=4, key_dim=8, value_dim=6, kv_stride=2).eval()
    x = torch.randn(2, 16, 6, 10)
    assert attn(x).shape == (2, 12, 6, 10)
    assert attn.key.proj.out_channels == 8 and attn.value.proj.out_channels == 6
    assert attn.query.proj.out_channels == 4 * 8
    q = attn.query(x).reshape(2, 4, 8, 60).transpose(-1, -2)
    k = attn.key(x).flatten(2).transpose(-1, -2)[:, None]
    v = attn.value(x).flatten(2).transpose(-1, -2)[:, None]
    weights = (q @ k.transpose(-1, -2) / 8**0.5).softmax(-1)  # (B, heads, 60, 15): keys at stride 2
    expected = (weights @ v).transpose(1, 2).reshape(2, 6, 10, 24).permute(0, 3, 1, 2)
    torch.testing.assert_close(attn(x), attn.output(expected), atol=1e-5, rtol=0)
