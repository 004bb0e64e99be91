"""EfficientNet: timm's numerics, the compound scaling of B0 to B3, SE from the input width."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo_plugins.attention.cbam import CBAM
from zoo_plugins.attention.eca import EfficientChannelAttention
from zoo_plugins.attention.se import SqueezeExcite
from zoo_plugins.layers.mobile import InvertedResidual

from .tiny import assert_reproduces_timm

NAME = "efficientnet_b0"
CASE = "efficientnet_tiny_cls10"
SIZES = ("channel_multiplier", "depth_multiplier", "num_classes", "img_size")
SMALL = {"channel_multiplier": 0.25, "depth_multiplier": 0.34, "num_classes": 5}


def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features():
    assert_reproduces_timm(NAME, CASE, SIZES)


@pytest.mark.parametrize(
    ("name", "depths", "head", "size"),
    [
        ("efficientnet_b0", [1, 2, 2, 3, 3, 4, 1], 1280, 224),
        ("efficientnet_b1", [2, 3, 3, 4, 4, 5, 2], 1280, 240),
        ("efficientnet_b2", [2, 3, 3, 4, 4, 5, 2], 1408, 256),
        ("efficientnet_b3", [2, 3, 3, 5, 5, 6, 2], 1536, 288),
    ],
)
def test_b0_to_b3_scale_depth_width_and_their_default_weights_resolution_together(name, depths, head, size):
    """The sizes are those of timm's default weights (b2 and b3 trained below the paper's 260
    and 300 pixels, evaluated above them)."""
    model = zoo.create(name, device="meta")
    assert [len(stage) for stage in model.blocks] == depths
    assert model.num_features == head
    assert zoo.data_config(name).input_size == (3, size, size)


def block_input_width(block) -> int:
    return (block.conv_pw if isinstance(block, InvertedResidual) else block.conv_dw).in_channels


def test_se_reduces_to_a_quarter_of_the_block_input_width_with_silu():
    model = zoo.create("efficientnet_b2", device="meta")
    for block in model.blocks_in_order():
        assert isinstance(block.se, SqueezeExcite) and isinstance(block.se.act, torch.nn.SiLU)
        assert block.se.conv_reduce.out_channels == round(block_input_width(block) / 4)
        assert block.se.conv_reduce.in_channels == block.conv_dw.out_channels  # on the expanded width


@pytest.mark.parametrize(("attn", "module"), [("cbam", CBAM), ("eca", EfficientChannelAttention)])
def test_any_channel_attention_takes_the_se_slot_at_its_reduced_width(attn, module):
    model = zoo.create(NAME, attn=attn, **SMALL).eval()
    assert all(isinstance(block.se, module) for block in model.blocks_in_order())
    if attn == "cbam":
        widths = [block.se.channel.fc1.out_channels for block in model.blocks_in_order()]
        assert widths == [round(block_input_width(b) / 4) for b in model.blocks_in_order()]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_without_attention_the_slot_is_empty():
    model = zoo.create(NAME, attn=None, **SMALL)
    assert all(isinstance(block.se, torch.nn.Identity) for block in model.blocks_in_order())
    assert not any("se." in name for name in model.state_dict())


def test_stochastic_depth_rises_by_block_index_over_the_block_count():
    model = zoo.create(NAME, drop_path_rate=0.2, device="meta")
    rates = [block.drop_path.drop_prob for block in model.blocks_in_order()]
    assert rates == [0.2 * index / 16 for index in range(16)]


def test_drop_connect_drops_whole_residual_branches_while_training():
    model = zoo.create(NAME, drop_path_rate=0.5, **SMALL)
    block = model.blocks[3][1]  # stride 1, same width: residual
    x = torch.randn(64, block.conv_pw.in_channels, 4, 4)
    torch.manual_seed(0)
    difference = (block.train()(x) - x).flatten(1)
    assert 0 < (difference.abs().sum(1) == 0).sum() < 64  # some samples keep only the shortcut


def test_img_size_may_be_height_and_width_which_preprocessing_takes():
    preprocessing = zoo.data_config("efficientnet_b0", model_args={"img_size": (64, 48)})
    assert preprocessing.input_size == (3, 64, 48)
