"""ViT's multi-head self-attention: fused and eager paths agree; weights on request."""

from __future__ import annotations

import torch

from zoo_plugins.attention.mhsa import MultiHeadSelfAttention


def test_fused_and_eager_paths_agree_and_weights_are_row_stochastic():
    torch.manual_seed(0)
    attention = MultiHeadSelfAttention(48, num_heads=3).eval()
    x = torch.randn(2, 17, 48)
    fused = attention(x)
    eager, weights = attention(x, need_weights=True)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)
    assert weights.shape == (2, 3, 17, 17)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 17))


def test_the_eager_path_is_softmax_of_scaled_dot_products():
    attention = MultiHeadSelfAttention(8, num_heads=2, qkv_bias=False)
    x = torch.randn(1, 4, 8)
    _, weights = attention(x, need_weights=True)
    q, k, _ = attention.qkv(x).view(1, 4, 3, 2, 4).permute(2, 0, 3, 1, 4)
    expected = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)  # sqrt(head_dim=4) = 2
    torch.testing.assert_close(weights, expected)
    assert attention.qkv.bias is None


def test_qk_scale_overrides_the_scale_on_both_paths():
    torch.manual_seed(1)
    attention = MultiHeadSelfAttention(8, num_heads=2, qk_scale=0.1).eval()
    assert MultiHeadSelfAttention(8, num_heads=2).scale == 4**-0.5
    x = torch.randn(2, 5, 8)
    eager, weights = attention(x, need_weights=True)
    q, k, v = attention.qkv(x).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    expected_weights = torch.softmax(q @ k.transpose(-1, -2) * 0.1, dim=-1)
    torch.testing.assert_close(weights, expected_weights)
    expected = attention.proj((expected_weights @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attention(x), expected, atol=1e-5, rtol=0)  # fused: SDPA's scale=
    torch.testing.assert_close(eager, expected, atol=1e-5, rtol=0)
