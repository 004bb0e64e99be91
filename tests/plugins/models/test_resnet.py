"""ResNet: stems, blocks, the projection shortcuts of ResNet-D, attention in every block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo_plugins.attention.cbam import CBAM
from zoo_plugins.attention.eca import EfficientChannelAttention
from zoo_plugins.attention.se import SqueezeExcite
from zoo_plugins.models.resnet import BasicBlock, Bottleneck

SMALL = {"layers": [1, 1, 1, 1], "num_classes": 5}


def blocks(model):
    return [block for stage in model.stages() for block in stage]


@pytest.mark.parametrize(
    ("name", "block", "features"), [("resnet18", BasicBlock, 512), ("resnet50", Bottleneck, 2048)]
)
def test_output_stride_32_and_feature_width(name, block, features):
    model = zoo.create(name, **SMALL).eval()
    feature_map = model.forward_features(torch.randn(2, 3, 64, 96))
    assert feature_map.shape == (2, features, 2, 3)
    assert all(isinstance(b, block) for b in blocks(model))
    assert model(torch.randn(2, 3, 64, 96)).shape == (2, 5)


@pytest.mark.parametrize(
    ("attn", "module"), [("se", SqueezeExcite), ("cbam", CBAM), ("eca", EfficientChannelAttention)]
)
@pytest.mark.parametrize("depth", ["resnet18", "resnet50"])
def test_every_block_carries_the_chosen_attention(depth, attn, module):
    model = zoo.create(f"{depth}_{attn}", **SMALL)
    widths = [b.conv1.out_channels * type(b).expansion for b in blocks(model)]
    assert all(isinstance(block.se, module) for block in blocks(model))
    if attn == "se":
        assert [b.se.fc1.in_channels for b in blocks(model)] == widths


def test_the_attention_re_weights_the_residual_branch_before_the_shortcut():
    model = zoo.create("resnet18_se", **SMALL).eval()
    block = model.layer2[0]
    x = torch.randn(1, 64, 16, 16)
    branch = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))
    expected = torch.relu(block.se(branch) + block.downsample(x))
    torch.testing.assert_close(block(x), expected)


def test_resnet_d_has_a_deep_stem_and_average_pool_shortcuts():
    model = zoo.create("ecaresnet50d", **SMALL)
    assert [m.kernel_size for m in model.conv1 if isinstance(m, nn.Conv2d)] == [(3, 3)] * 3
    assert [m.out_channels for m in model.conv1 if isinstance(m, nn.Conv2d)] == [32, 32, 64]
    assert isinstance(model.layer1[0].downsample[0], nn.Identity)  # stride 1: no pooling
    pool = model.layer2[0].downsample[0]
    assert isinstance(pool, nn.AvgPool2d) and pool.stride == 2
    assert model.layer2[0].downsample[1].stride == (1, 1)
    assert model.layer2[0].conv2.stride == (2, 2)


def test_the_last_norm_of_each_block_starts_at_zero():
    model = zoo.create("resnet50", **SMALL)
    assert all(b.bn3.weight.abs().sum() == 0 for b in blocks(model))
    model = zoo.create("resnet18", **SMALL, zero_init_last=False)
    assert all(b.bn2.weight.abs().sum() > 0 for b in blocks(model))


def test_stochastic_depth_rises_over_all_blocks():
    model = zoo.create("resnet34", drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob for b in blocks(model)]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)


def test_gradients_reach_every_parameter():
    model = zoo.create("resnet18_cbam", **SMALL, zero_init_last=False)
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()] == []


def test_layers_and_channels_must_have_one_value_per_stage():
    with pytest.raises(zoo.ArgumentError, match="2 stages in 'layers' but 4 in 'channels'"):
        zoo.create("resnet18", layers=[1, 1])
    model = zoo.create("resnet18", layers=[1, 1], channels=[8, 16], num_classes=3)
    assert model.stage_names == ["layer1", "layer2"]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ("avg", lambda f: f.mean((2, 3))),
        ("max", lambda f: f.amax((2, 3))),
        ("avgmax", lambda f: (f.mean((2, 3)) + f.amax((2, 3))) / 2),
        ("catavgmax", lambda f: torch.cat([f.mean((2, 3)), f.amax((2, 3))], dim=1)),
        ("", lambda f: f),
    ],
)
def test_global_pool_has_timm_s_meanings(pool, expected):
    model = zoo.create("resnet18", layers=[1, 1, 1, 1], num_classes=0, global_pool=pool).eval()
    features = torch.randn(2, 512, 3, 4)
    torch.testing.assert_close(model.forward_head(features), expected(features))


def test_an_unpooled_map_takes_no_classifier():
    with pytest.raises(zoo.ArgumentError, match="global_pool '' leaves the feature map unpooled"):
        zoo.create("resnet18", global_pool="", num_classes=10, device="meta")
    model = zoo.create("resnet18", layers=[1, 1, 1, 1], num_classes=10)
    with pytest.raises(ValueError, match="takes num_classes=0"):
        model.reset_classifier(10, global_pool="")


def test_features_follow_timm_s_feature_info():
    model = zoo.create("resnet50", device="meta")
    assert [(f["module"], f["num_chs"], f["reduction"]) for f in model.feature_info] == [
        ("act1", 64, 2), ("layer1", 256, 4), ("layer2", 512, 8), ("layer3", 1024, 16), ("layer4", 2048, 32),
    ]  # fmt: skip
    deep = zoo.create("ecaresnet50d", device="meta")
    assert deep.feature_info[0] == {"module": "act1", "num_chs": 64, "reduction": 2}
