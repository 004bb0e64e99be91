"""Squeeze-and-Excitation: pool, bottleneck MLP, sigmoid gate, scale."""

from __future__ import annotations

import pytest
import torch

from zoo_plugins.attention.se import SqueezeExcite


def test_it_rescales_each_channel_by_a_gate_in_0_1():
    se = SqueezeExcite(64)
    x = torch.randn(2, 64, 7, 5)
    gate = se.gate(x)
    assert gate.shape == (2, 64, 1, 1)
    assert ((gate >= 0) & (gate <= 1)).all()
    torch.testing.assert_close(se(x), x * gate)


def test_the_gate_depends_only_on_the_pooled_descriptor():
    se = SqueezeExcite(32)
    x = torch.randn(1, 32, 4, 4)
    shuffled = x.flatten(2)[..., torch.randperm(16)].view_as(x)  # same per-channel mean
    torch.testing.assert_close(se.gate(x), se.gate(shuffled))


@pytest.mark.parametrize(("channels", "options", "hidden"), [
    (256, {}, 16),                      # the paper: C / 16
    (64, {}, 4),
    (64, {"rd_divisor": 8}, 8),         # timm's seresnet: multiples of 8, at least 8
    (128, {"rd_divisor": 8}, 8),
    (2048, {"rd_divisor": 8}, 128),
    (64, {"rd_ratio": 0.25}, 16),
])  # fmt: skip
def test_the_bottleneck_width(channels, options, hidden):
    se = SqueezeExcite(channels, **options)
    assert tuple(se.fc1.weight.shape) == (hidden, channels, 1, 1)
    assert tuple(se.fc2.weight.shape) == (channels, hidden, 1, 1)


def test_a_slot_s_reduced_width_overrides_the_ratio():
    se = SqueezeExcite(96, rd_channels=4, rd_ratio=0.5)
    assert tuple(se.fc1.weight.shape) == (4, 96, 1, 1)


def test_the_convs_take_the_names_of_the_layout_being_loaded():
    resnet = SqueezeExcite(32)
    efficientnet = SqueezeExcite(32, rd_channels=8, tensor_names="conv_reduce/conv_expand")
    assert {k.split(".")[0] for k in resnet.state_dict()} == {"fc1", "fc2"}
    assert {k.split(".")[0] for k in efficientnet.state_dict()} == {"conv_reduce", "conv_expand"}
    assert efficientnet.reduce is efficientnet.conv_reduce and efficientnet.expand is efficientnet.conv_expand


@pytest.mark.parametrize(
    ("act", "gate"), [("relu", "sigmoid"), ("silu", "sigmoid"), ("relu", "hard_sigmoid")]
)
def test_activation_and_gate_are_the_named_functions(act, gate):
    se = SqueezeExcite(16, rd_channels=4, act=act, gate=gate)
    x = torch.randn(2, 16, 3, 3)
    hidden = {"relu": torch.relu, "silu": torch.nn.functional.silu}[act](se.fc1(x.mean((2, 3), keepdim=True)))
    squash = {"sigmoid": torch.sigmoid, "hard_sigmoid": lambda v: torch.clamp(v + 3, 0, 6) / 6}[gate]
    torch.testing.assert_close(se(x), x * squash(se.fc2(hidden)))
