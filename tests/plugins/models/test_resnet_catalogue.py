"""ResNet's descendants in timm's catalogue: each tiny case (a shrunken timm model with its
checkpoint, input and outputs) is reproduced by the zoo's `resnet` builder within 1e-5."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo_plugins.layers.antialias import BlurPool2d

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm

DESCRIPTION_ONLY = {"family", "shrinks", "note"}
CASES = [
    "resnext_tiered_blur_tiny_cls10",
    "resnetrs_avgaa_tiny_cls10",
    "resnet_gn_tiny_cls10",
    "senet_tiny_cls10",
    "skresnext_tiny_cls10",
    "resnest_avdfirst_tiny_cls10",
    "test_resnet_cls10",
]


def builder_keys(case: str) -> list[str]:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return [key for key in description if key not in DESCRIPTION_ONLY]


@pytest.mark.parametrize("case", CASES)
def test_tiny_case_reproduces_timm_outputs_and_features(case):
    assert_reproduces_timm("resnet50", case, builder_keys(case))


def test_blur_pool_filters_with_a_binomial_kernel_then_subsamples():
    pool = BlurPool2d(3, stride=2)
    constant = torch.ones(1, 3, 6, 6)
    torch.testing.assert_close(pool(constant), torch.ones(1, 3, 3, 3))
    assert pool.filt[0, 0].tolist() == [
        [1 / 16, 2 / 16, 1 / 16],
        [2 / 16, 4 / 16, 2 / 16],
        [1 / 16, 2 / 16, 1 / 16],
    ]
    assert "filt" not in pool.state_dict()


def test_resnext_widths_and_groups_follow_cardinality_and_base_width():
    model = zoo.create("resnet50", cardinality=32, base_width=4, layers=[1, 1, 1, 1], num_classes=0)
    conv = model.layer1[0].conv2
    assert (conv.in_channels, conv.out_channels, conv.groups) == (128, 128, 32)
    assert model.layer4[0].conv2.out_channels == 1024


def test_a_pruned_plan_sets_every_block_width_and_keeps_the_attention_of_the_unpruned_width():
    plan = [[5, 6, 7], [3, 4, 11], [8, 9, 13], [10, 12, 14]]
    model = zoo.create("ecaresnet50d", layers=[1, 1, 1, 1], pruned_widths=plan, num_classes=3)
    widths = [
        [b.conv1.out_channels, b.conv2.out_channels, b.conv3.out_channels] for b in model.blocks_in_order()
    ]
    assert widths == plan
    assert model.layer4[0].se.conv.kernel_size == (7,)  # ECA's kernel at 2048 channels, not 14
    assert model.fc.in_features == 14
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"block": "basic", "cardinality": 32}, "basic block"),
        ({"pruned_widths": [[1, 2, 3]]}, "pruned_widths"),
        ({"block": ["basic", "bottleneck"]}, "'block'"),
        ({"aa_layer": "blur", "conv_attn": "split_attention"}, "aa_layer"),
    ],
)
def test_inconsistent_arguments_are_refused_by_name(args, message):
    with pytest.raises(zoo.ZooError, match=message):
        zoo.create("resnet50", **args)
