"""ResNets whose spatial conv is an attention: SKNet, ResNeSt, and bottleneck self-attention
in any ResNet block, with timm's layouts and numerics."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import AttentionMapError
from zoo_plugins.attention.bot import BottleneckSelfAttention
from zoo_plugins.attention.selective_kernel import SelectiveKernel
from zoo_plugins.attention.split_attention import SplitAttention

from .tiny import assert_reproduces_timm

SMALL = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "num_classes": 5}


def test_skresnet_tiny_reference_reproduces_timm_outputs_and_features():
    assert_reproduces_timm("skresnet18", "skresnet_tiny_cls10", ("layers", "channels", "num_classes"))


def test_resnest_tiny_reference_reproduces_timm_outputs_and_features():
    assert_reproduces_timm(
        "resnest50d", "resnest_tiny_cls10", ("layers", "channels", "num_classes", "stem_width")
    )


def test_selective_kernel_is_the_basic_block_s_first_conv_and_the_second_takes_timm_s_names():
    block = zoo.create("skresnet18", device="meta").layer2[0]
    assert isinstance(block.conv1, SelectiveKernel)
    assert [path.conv.dilation for path in block.conv1.paths] == [(1, 1), (2, 2)]  # 3x3 and "5x5"
    assert [path.conv.stride for path in block.conv1.paths] == [(2, 2), (2, 2)]
    assert block.conv1.paths[0].conv.in_channels == 64 // 2  # each path reads half the input
    assert block.last_norm is block.conv2.bn
    assert not hasattr(block, "bn1")


def test_split_attention_is_the_bottleneck_s_3x3_conv_and_average_pools_down():
    block = zoo.create("resnest50d", device="meta").layer2[0]
    assert isinstance(block.conv2, SplitAttention)
    assert block.bn2 is None
    assert block.conv2.conv.stride == (1, 1) and block.conv2.avd.stride == 2  # ResNeSt's "avd"
    assert block.conv2.conv.groups == 2  # radix 2


def test_selective_kernel_mixes_its_paths_with_per_channel_weights_that_sum_to_one():
    torch.manual_seed(0)
    module = SelectiveKernel(8, 6, stride=1).eval()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        paths = torch.stack([path(part) for path, part in zip(module.paths, x.chunk(2, 1), strict=True)], 1)
        weights = module.attn(paths)
        torch.testing.assert_close(weights.sum(1), torch.ones(2, 6, 1, 1))
        torch.testing.assert_close(module(x), (weights * paths).sum(1))


@pytest.mark.parametrize("radix", [1, 2, 4])
def test_split_attention_weights_each_split_per_channel(radix):
    module = SplitAttention(8, 8, stride=1, radix=radix).eval()
    splits = torch.randn(2, radix, 8, 4, 4)
    with torch.no_grad():
        weights = module.split_weights(splits)
    assert weights.shape == (2, radix, 8, 1, 1)
    if radix > 1:  # a softmax across the splits; a sigmoid gate for one split
        torch.testing.assert_close(weights.sum(1), torch.ones(2, 8, 1, 1))
    else:
        assert ((weights > 0) & (weights < 1)).all()


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_bottleneck_self_attention_plugs_into_basic_and_bottleneck_blocks_at_their_map_size(name):
    model = zoo.create(name, conv_attn="bot", img_size=64, **SMALL).eval()
    attentions = [m for m in model.modules() if isinstance(m, BottleneckSelfAttention)]
    # one per block, each built for the map its block sees: 16 after the stem, halved per stage
    assert [a.self_attn.feat_size for a in attentions] == [(16, 16), (16, 16), (8, 8), (4, 4)]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_a_model_with_bottleneck_self_attention_refuses_another_image_size_in_one_line():
    model = zoo.create("resnet50", conv_attn="bot", img_size=64, **SMALL).eval()
    with pytest.raises(ValueError, match=r"^input is \(32, 32\) pixels; this model takes 64x64$"):
        model(torch.randn(1, 3, 32, 32))


def test_without_img_size_bottleneck_self_attention_is_built_for_224_pixels():
    model = zoo.create("resnet50", conv_attn="bot", device="meta")
    assert model.layer1[0].conv2.self_attn.feat_size == (56, 56)
    assert model.layer4[0].conv2.self_attn.feat_size == (14, 14)


def test_bottleneck_self_attention_is_drawn_as_the_attention_each_position_receives():
    model = zoo.create("resnet50", conv_attn="bot", img_size=64, **SMALL).eval()
    with torch.no_grad():
        maps = model.attention_maps(torch.randn(2, 3, 64, 64))
    assert list(maps) == ["stage4", "stage3", "stage2", "stage1"]
    assert [tuple(m.shape) for m in maps.values()] == [(2, 4, 4), (2, 8, 8), (2, 16, 16), (2, 16, 16)]
    for received in maps.values():  # a mean of softmax rows: a distribution over the map
        torch.testing.assert_close(received.sum((1, 2)), torch.ones(2))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"conv_attn": "selective_kernel"}, "selective_kernel"),
        ({"conv_attn": "split_attention"}, "split_attention"),
    ],
)
def test_channel_mixing_conv_attentions_have_no_map_and_say_so(args, named):
    model = zoo.create("resnet50", **args, **SMALL).eval()
    with pytest.raises(AttentionMapError, match=rf"\({named}\) has no spatial map"):
        model.attention_maps(torch.randn(1, 3, 32, 32))


def test_cbam_s_gate_is_drawn_beside_a_conv_attention_without_a_map():
    model = zoo.create("resnet50", attn="cbam", conv_attn="split_attention", **SMALL).eval()
    with torch.no_grad():
        maps = model.attention_maps(torch.randn(1, 3, 64, 64))
    assert tuple(maps["stage1"].shape) == (1, 16, 16)
