"""ECA: a 1-D conv across channels whose odd kernel grows with log2(C)."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ArgumentError
from zoo_plugins.attention.eca import EfficientChannelAttention, adaptive_kernel_size


@pytest.mark.parametrize(
    ("channels", "kernel"), [(64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7), (16, 3)]
)
def test_the_adaptive_kernel(channels, kernel):
    assert adaptive_kernel_size(channels) == kernel
    assert EfficientChannelAttention(channels).conv.kernel_size == (kernel,)


def test_it_gates_each_channel_from_its_neighbours_only():
    eca = EfficientChannelAttention(64)  # kernel 3: channel c sees c-1, c, c+1
    x = torch.randn(1, 64, 4, 4)
    gate = eca.gate(x)
    assert gate.shape == (1, 64, 1, 1) and ((gate >= 0) & (gate <= 1)).all()
    far = x.clone()
    far[:, 40] += 10.0
    changed = (eca.gate(far) - gate).abs().flatten() > 0
    assert changed.nonzero().flatten().tolist() == [39, 40, 41]
    torch.testing.assert_close(eca(x), x * gate)


def test_the_conv_has_no_bias_and_a_fixed_kernel_can_be_chosen():
    eca = EfficientChannelAttention(64, kernel_size=7)
    assert eca.conv.bias is None and eca.conv.kernel_size == (7,)
    with pytest.raises(ArgumentError, match="must be odd"):
        zoo.create("resnet18", attn={"name": "eca", "kernel_size": 4})


def test_having_no_bottleneck_it_ignores_a_slot_s_reduced_width():
    plain, given = EfficientChannelAttention(64), EfficientChannelAttention(64, rd_channels=16)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in given.state_dict().items()
    }
