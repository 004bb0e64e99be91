"""EfficientNet's module beyond B0's stages: block strings, TensorFlow padding, fused MBConv,
mixed kernels, CondConv, MobileNetV1's blocks, global context attention and EvoNorm, each
against a tiny timm checkpoint."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo_plugins.layers.condconv import CondConv2d
from zoo_plugins.layers.mixconv import MixedConv2d, split_channels
from zoo_plugins.layers.mobile import BlockDef, CondConvResidual, EdgeResidual
from zoo_plugins.layers.padding import Conv2dSame, conv2d, same_padding

from .tiny import assert_reproduces_timm

NAME = "efficientnet_b0"
CASE_KEYS = {
    "efficientnetv2_tf_tiny_cls10": ("blocks", "act", "padding", "norm_eps"),
    "mixnet_tiny_cls10": ("blocks", "act"),
    "efficientnet_cc_tiny_cls10": ("blocks", "act", "padding", "norm_eps"),
    "mobilenetv1_tiny_cls10": ("blocks", "act"),
    "efficientnet_gc_evonorm_tiny_cls10": ("blocks", "act", "attn", "norm_layer"),
}
SIZES = ("stem_size", "num_features", "num_classes")


@pytest.mark.parametrize("case", sorted(CASE_KEYS))
def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features(case):
    assert_reproduces_timm(NAME, case, SIZES + CASE_KEYS[case])


def test_a_block_string_reads_as_the_tensorflow_reference_writes_it():
    block = BlockDef.parse("ir_r3_k3.5.7_s2_e6_c40_se0.5_a1.1_p1.1_nsw")
    assert (block.kind, block.repeats, block.kernel_size, block.stride, block.out_chs) == (
        "ir",
        3,
        (3, 5, 7),
        2,
        40,
    )
    assert (block.exp_ratio, block.se_ratio, block.act) == (6.0, 0.5, "silu")
    assert (block.exp_kernel_size, block.pw_kernel_size, block.has_residual) == ((1, 1), (1, 1), True)
    assert not BlockDef.parse("er_r1_k3_s1_e4_c24_fc24_noskip").has_residual
    assert BlockDef.parse("cn_r1_k3_s1_c24_skip").has_residual
    assert not BlockDef.parse("dsa_r1_k3_s1_c64").has_residual


@pytest.mark.parametrize(
    "text", ["xx_r1_k3_s1_c8", "ir_r1_k3_s1_e6", "ir_r1_k3_s1_c8_zz9", "ir_r1_k3_s1_c8_?"]
)
def test_a_malformed_block_string_is_an_argument_error_naming_it(text):
    with pytest.raises(zoo.ZooError, match="blocks"):
        zoo.create(NAME, blocks=[[text]], device="meta")


def test_tensorflow_same_padding_pads_the_odd_pixel_after_the_input():
    assert same_padding(32, 3, 2) == 1 and same_padding(33, 3, 2) == 2 and same_padding(8, 3, 1) == 2
    strided = conv2d(1, 1, 3, stride=2, padding="tf_same")
    assert isinstance(strided, Conv2dSame)
    assert type(conv2d(1, 1, 3, padding="tf_same")) is torch.nn.Conv2d  # stride 1: static and symmetric
    torch.nn.init.ones_(strided.weight)
    out = strided(torch.ones(1, 1, 4, 4))  # padding 0 before, 1 after: the last window sees zeros
    assert out.squeeze().tolist() == [[9.0, 6.0], [6.0, 4.0]]


def test_fused_mbconv_expands_with_a_full_strided_conv():
    model = zoo.create(
        NAME, blocks=[["cn_r1_k3_s1_c8_skip"], ["er_r2_k3_s2_e4_c16"]], stem_size=8, device="meta"
    )
    first, second = model.blocks[1]
    assert isinstance(first, EdgeResidual) and first.conv_exp.weight.shape == (32, 8, 3, 3)
    assert first.conv_exp.stride == (2, 2) and not first.has_skip and second.has_skip
    assert model.blocks[0][0].has_skip  # a residual 3x3 conv stage


def test_mixed_kernels_split_the_channels_first_group_taking_the_rest():
    assert split_channels(40, 3) == [14, 13, 13]
    conv = MixedConv2d(40, 40, (3, 5, 7), depthwise=True)
    assert [c.weight.shape for c in conv.values()] == [(14, 1, 3, 3), (13, 1, 5, 5), (13, 1, 7, 7)]
    assert conv(torch.randn(1, 40, 9, 9)).shape == (1, 40, 9, 9)


def test_condconv_mixes_expert_kernels_per_sample():
    model = zoo.create(
        NAME, blocks=[["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e6_c16_cc4"]], stem_size=8, num_features=32
    )
    block = model.blocks[1][0]
    assert isinstance(block, CondConvResidual) and isinstance(block.conv_dw, CondConv2d)
    assert block.conv_dw.weight.shape == (4, 48 * 9) and block.routing_fn.out_features == 4
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        both = block.eval()(x)
        alone = block(x[1:])
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=0)  # each sample its own kernels
