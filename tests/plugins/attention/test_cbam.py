"""CBAM: channel attention from avg- and max-pooled descriptors, then spatial attention."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.errors import ArgumentError
from zoo_plugins.attention.cbam import CBAM


def test_channel_then_spatial_gates_in_0_1():
    cbam = CBAM(32).eval()
    x = torch.randn(2, 32, 9, 9)
    channel_gate = cbam.channel.gate(x)
    assert channel_gate.shape == (2, 32, 1, 1)
    refined = x * channel_gate
    spatial_gate = cbam.spatial.gate(refined)
    assert spatial_gate.shape == (2, 1, 9, 9)
    for gate in (channel_gate, spatial_gate):
        assert ((gate >= 0) & (gate <= 1)).all()
    torch.testing.assert_close(cbam(x), refined * spatial_gate)


def test_the_channel_mlp_is_shared_by_both_descriptors():
    cbam = CBAM(32)
    x = torch.randn(1, 32, 5, 5)
    mlp = cbam.channel.mlp
    expected = torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    torch.testing.assert_close(cbam.channel.gate(x), expected)


def test_the_spatial_map_reads_channel_mean_and_max():
    cbam = CBAM(16, kernel_size=3)
    assert tuple(cbam.spatial.conv.weight.shape) == (1, 2, 3, 3)
    assert tuple(CBAM(16).spatial.conv.weight.shape) == (1, 2, 7, 7)


def test_the_spatial_kernel_is_3_or_7_only():
    with pytest.raises(ValueError, match="3 or 7"):
        CBAM(16, kernel_size=5)
    with pytest.raises(ArgumentError, match="option 'kernel_size': Input should be 3 or 7"):
        zoo.create("resnet18", attn={"name": "cbam", "kernel_size": 5})


def test_the_channel_mlp_takes_a_slot_s_reduced_width():
    assert tuple(CBAM(64).channel.fc1.weight.shape) == (4, 64, 1, 1)  # 64 / 16
    assert tuple(CBAM(64, rd_channels=16).channel.fc1.weight.shape) == (16, 64, 1, 1)
