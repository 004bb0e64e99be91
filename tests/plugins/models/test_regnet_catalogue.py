"""RegNet's later recipes as timm builds them: pre-activation blocks (RegNetV), average-pool
shortcuts, RegNetZ's inverted linear-output blocks and final conv, torchvision's widths."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import zoo
from zoo_plugins.models.regnet import PreBottleneck

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm, case_args

NAME = "regnety_032"
DESCRIPTIVE = {"family", "shrinks", "note", "img_size"}
CASES = (
    "regnetv_tiny_cls10",
    "regnetv_avgdown_tiny_cls10",
    "regnety_avgdown_tiny_cls10",
    "regnetz_h_tiny_cls10",
)


def builder_keys(case: str) -> list[str]:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return [key for key in description if key not in DESCRIPTIVE]


@pytest.mark.parametrize("case", CASES)
def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features(case):
    assert_reproduces_timm(NAME, case, builder_keys(case))


def tiny(case: str, **overrides) -> nn.Module:
    return zoo.create(NAME, **{**case_args(case, builder_keys(case)), **overrides}, device="meta")


def test_a_pre_activation_block_takes_its_shortcut_after_the_first_norm():
    model = zoo.create(NAME, **case_args(CASES[0], builder_keys(CASES[0]))).eval()
    block, x = model.s3.b2, torch.randn(2, 64, 4, 4)
    assert isinstance(block, PreBottleneck)
    normed = block.norm1(x)
    expected = block.conv3(block.norm3(block.se(block.conv2(block.norm2(block.conv1(normed)))))) + normed
    torch.testing.assert_close(block(x), expected)


def test_pre_activation_projections_and_stem_are_bare_convs_and_an_activation_ends_the_trunk():
    model = tiny(CASES[0])
    assert isinstance(model.stem, nn.Conv2d) and model.first_conv == "stem"
    assert isinstance(model.s1.b1.downsample, nn.Conv2d)
    assert isinstance(model.final_conv, nn.SiLU)


def test_an_average_pool_shortcut_pools_before_an_unstrided_conv():
    pool, project = tiny(CASES[2]).s2.b1.downsample
    assert isinstance(pool, nn.AvgPool2d) and (pool.ceil_mode, pool.count_include_pad) == (True, False)
    assert project.conv.stride == (1, 1)


def test_without_a_downsample_a_block_that_changes_shape_has_no_residual():
    model = tiny(CASES[3])
    assert model.s1.b1.downsample is None
    assert isinstance(model.s3.b2.downsample, nn.Identity)
    assert isinstance(model.s3.b2.act3, nn.Identity)  # linear_out
    assert model.num_features == model.final_conv.conv.out_channels == 96


def test_torchvision_rounding_gives_the_wider_stages_of_its_regnets():
    def widths(**args) -> list[int]:
        model = zoo.create("regnety_008", attn=None, **args, device="meta")
        return [stage.b1.conv3.conv.out_channels for stage in model.stages()]

    args = {"depth": 22, "w0": 24, "wa": 24.48, "wm": 2.54, "group_size": 16}  # RegNetX-400MF
    assert widths(**args) == [32, 64, 160, 384]
    assert widths(**args, width_rounding="torchvision") == [32, 64, 160, 400]
