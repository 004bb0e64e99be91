"""The mobile blocks EfficientNet and MobileNetV3 share: widths, depths, residuals."""

from __future__ import annotations

import pytest
import torch

from zoo_plugins.layers import make_divisible
from zoo_plugins.layers.mobile import (
    BlockDef,
    DepthwiseSeparable,
    InvertedResidual,
    round_channels,
    scale_depth,
)


@pytest.mark.parametrize(
    ("channels", "multiplier", "width"),
    [(32, 1.0, 32), (1280, 1.1, 1408), (40, 1.1, 48), (112, 1.1, 120), (16, 0.25, 8), (960, 0.25, 240)],
)
def test_a_multiplied_width_is_rounded_to_multiples_of_8(channels, multiplier, width):
    assert round_channels(channels, multiplier) == width


def test_rounding_never_loses_more_than_a_tenth():
    assert make_divisible(18, 8) == 16  # SE's rounding: nearest multiple
    assert make_divisible(18, 8, round_limit=0.9) == 24  # 16 would be 11% below 18
    assert make_divisible(20, 8, round_limit=0.9) == 24
    assert make_divisible(4, 8, round_limit=0.9) == 8  # at least one divisor


def repeats(stage, multiplier):
    blocks = scale_depth(stage, multiplier)
    return [sum(b is d for b in blocks) for d in stage]


def test_the_depth_multiplier_rounds_each_stage_up_and_grows_the_last_definitions_first():
    one = (BlockDef("ir", 3, 3, 2, 80),)
    assert repeats(one, 1.0) == [3] and repeats(one, 1.4) == [5] and repeats(one, 0.34) == [2]
    mixed = (BlockDef("ir", 1, 3, 2, 80), BlockDef("ir", 1, 3, 1, 80), BlockDef("ir", 2, 3, 1, 80))
    assert repeats(mixed, 1.0) == [1, 1, 2]
    assert repeats(mixed, 1.5) == [1, 2, 3]  # 6 blocks: the later definitions take the growth
    assert repeats(mixed, 0.25) == [1, 1, 1]  # every definition keeps one block


def test_only_a_block_keeping_stride_and_width_adds_its_input():
    factory = {"act": "relu", "se": None, "drop_path": 0.0}
    assert InvertedResidual(16, 96, 16, kernel_size=3, stride=1, **factory).has_skip
    assert not InvertedResidual(16, 96, 16, kernel_size=3, stride=2, **factory).has_skip
    assert not DepthwiseSeparable(16, 24, kernel_size=3, stride=1, **factory).has_skip
    block = DepthwiseSeparable(16, 16, kernel_size=3, stride=1, **factory).eval()
    x = torch.randn(2, 16, 8, 8)
    branch = block.bn2(block.conv_pw(block.bn1(block.conv_dw(x))))
    torch.testing.assert_close(block(x), branch + x)


def test_the_inverted_residual_expands_filters_depthwise_and_projects_linearly():
    block = InvertedResidual(16, 96, 24, kernel_size=5, stride=2, act="silu", se=None, drop_path=0.0)
    assert (block.conv_pw.out_channels, block.conv_dw.groups, block.conv_pwl.out_channels) == (96, 96, 24)
    assert block.conv_dw.kernel_size == (5, 5) and block.conv_dw.padding == (2, 2)
    assert isinstance(block.bn2.act, torch.nn.SiLU) and isinstance(block.bn3.act, torch.nn.Identity)
    assert block(torch.randn(1, 16, 16, 16)).shape == (1, 24, 8, 8)
