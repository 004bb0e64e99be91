"""MobileNetV3-Large: timm's numerics, hard-swish and hard-sigmoid SE, the efficient head."""

from __future__ import annotations

import torch

import zoo
from zoo_plugins.layers.mobile import InvertedResidual

from .tiny import assert_reproduces_timm

NAME = "mobilenetv3_large_100"
CASE = "mobilenetv3_tiny_cls10"
SIZES = ("channel_multiplier", "num_classes")


def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features():
    assert_reproduces_timm(NAME, CASE, SIZES)


def test_relu_in_the_early_stages_hard_swish_later():
    model = zoo.create(NAME, device="meta")
    kinds = [type(stage[0].bn1.act).__name__ for stage in model.blocks]
    assert kinds == ["ReLU", "ReLU", "ReLU", "Hardswish", "Hardswish", "Hardswish", "Hardswish"]
    assert isinstance(model.bn1.act, torch.nn.Hardswish) and isinstance(model.act2, torch.nn.Hardswish)


def test_se_reduces_the_expanded_width_to_a_quarter_rounded_up_to_multiples_of_8():
    model = zoo.create(NAME, device="meta")
    with_se = [
        b for b in model.blocks_in_order() if isinstance(b, InvertedResidual) and hasattr(b.se, "gate")
    ]
    assert [b.conv_dw.out_channels for b in with_se] == [72, 120, 120, 480, 672, 672, 960, 960]
    assert [b.se.conv_reduce.out_channels for b in with_se] == [24, 32, 32, 120, 168, 168, 240, 240]
    assert all(isinstance(b.se.act, torch.nn.ReLU) for b in with_se)
    assert all(isinstance(b.se.gate_fn, torch.nn.Hardsigmoid) for b in with_se)
    assert len(model.blocks_in_order()) - len(with_se) == 8  # stages 0, 1, 3 and the last conv have none


def test_a_narrow_network_keeps_its_stem_and_its_head_width():
    narrow, full = zoo.create(NAME, channel_multiplier=0.5, device="meta"), zoo.create(NAME, device="meta")
    assert narrow.conv_stem.out_channels == full.conv_stem.out_channels == 16
    assert narrow.conv_head.out_channels == full.conv_head.out_channels == 1280
    assert (narrow.num_features, full.num_features) == (480, 960)


def test_the_efficient_head_pools_before_its_conv():
    model = zoo.create(NAME, channel_multiplier=0.25, num_classes=3).eval()
    features = torch.randn(2, model.num_features, 4, 5)
    pooled = features.mean((2, 3), keepdim=True)
    expected = model.classifier(model.act2(model.conv_head(pooled)).flatten(1))
    torch.testing.assert_close(model.forward_head(features), expected)
    assert model.forward_head(features, pre_logits=True).shape == (2, 1280)


def test_a_pooling_of_another_width_gets_a_fresh_head_conv_of_that_width():
    model = zoo.create(NAME, channel_multiplier=0.25, num_classes=3)
    head_conv = model.conv_head
    model.reset_classifier(7, global_pool="max")
    assert model.classifier.out_features == 7 and model.global_pool.pool_type == "max"
    assert model.conv_head is head_conv  # the same width: the head conv is kept
    model.reset_classifier(7, global_pool="catavgmax")
    assert model.conv_head.in_channels == 2 * model.num_features
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    wide = zoo.create(NAME, channel_multiplier=0.25, num_classes=3, global_pool="catavgmax")
    assert wide.conv_head.in_channels == 2 * wide.num_features
