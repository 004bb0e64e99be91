"""RegNetY: timm's numerics, the width rule, SE on the group conv from the block input width."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ArgumentError
from zoo_plugins.attention.se import SqueezeExcite
from zoo_plugins.models.regnet import regnet_widths

from .tiny import assert_reproduces_timm, case_args

NAME = "regnety_032"
CASE = "regnety_tiny_cls10"
SIZES = ("depth", "w0", "wa", "wm", "group_size", "se_ratio", "num_classes")


def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features():
    assert_reproduces_timm(NAME, CASE, SIZES)


def stages(model) -> list[tuple[int, int, int]]:
    """(width, blocks, group width) per stage."""
    shapes = []
    for stage in model.stages():
        first = stage.b1.conv2.conv
        shapes.append((first.out_channels, len(list(stage.children())), first.out_channels // first.groups))
    return shapes


def test_the_linear_rule_quantised_to_powers_of_wm_gives_the_stages():
    assert regnet_widths(6, 16, 16.0, 2.0) == [16, 32, 64, 64, 64, 128]
    assert stages(zoo.create(NAME, **case_args(CASE, SIZES), device="meta")) == [
        (16, 1, 8),
        (32, 1, 8),
        (64, 3, 8),
        (128, 1, 8),
    ]
    assert stages(zoo.create(NAME, device="meta")) == [
        (72, 2, 24),
        (216, 5, 24),
        (576, 13, 24),
        (1512, 1, 24),
    ]
    # a stage narrower than the group width is one group (RegNetY-200MF's first: 24 < 8 * 3)
    assert stages(zoo.create("regnety_002", device="meta"))[0] == (24, 1, 8)


def test_a_rule_that_does_not_give_four_stages_is_refused():
    with pytest.raises(ArgumentError, match="give 3 stages of equal width; a RegNet has 4"):
        zoo.create(NAME, depth=3, w0=16, wa=16.0, wm=2.0, group_size=8)


def test_se_follows_the_group_conv_reduced_from_the_block_input_width():
    model = zoo.create(NAME, device="meta")
    for stage in model.stages():
        for block in stage.children():
            in_chs = block.conv1.conv.in_channels
            assert isinstance(block.se, SqueezeExcite)
            assert (block.se.fc1.in_channels, block.se.fc1.out_channels) == (
                block.conv2.conv.out_channels,
                round(in_chs / 4),
            )
    assert model.s2.b1.se.fc1.out_channels == 18  # 72 / 4: from the input, not from the 216 it gates


def test_the_block_applies_se_between_the_group_conv_and_the_last_conv():
    model = zoo.create(NAME, **case_args(CASE, SIZES), zero_init_last=False).eval()
    block, x = model.s3.b2, torch.randn(2, 64, 4, 4)
    expected = torch.relu(block.conv3(block.se(block.conv2(block.conv1(x)))) + x)
    torch.testing.assert_close(block(x), expected)


def test_without_attention_its_blocks_are_regnetx_blocks():
    model = zoo.create(NAME, **case_args(CASE, SIZES), attn=None)
    assert not any(".se." in name for name in model.state_dict())


def test_the_published_weights_are_evaluated_at_288_pixels():
    assert zoo.data_config(f"{NAME}.ra_in1k").input_size == (3, 224, 224)
    assert zoo.data_config(f"{NAME}.ra_in1k", use_test_size=True).input_size == (3, 288, 288)


def test_the_last_norm_of_each_block_starts_at_zero():
    model = zoo.create(NAME, **case_args(CASE, SIZES))
    assert all(block.conv3.bn.weight.abs().sum() == 0 for block in model.blocks_in_order())


def test_a_bottle_ratio_that_breaks_the_group_width_is_an_argument_error():
    import zoo
    from zoo.errors import ArgumentError

    with pytest.raises(
        ArgumentError, match=r"bottle_ratio 2\.5 makes a stage's bottleneck .* not a multiple of its group"
    ):
        zoo.create("regnety_002", bottle_ratio=2.5, device="meta")
