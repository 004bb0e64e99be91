"""Multi-head attention (`mha`, a sequence attention) and single-head self-attention."""

import pytest
import torch
from torch import nn

from zoo_plugins.attention.functional import causal_mask, padding_mask
from zoo_plugins.attention.mha import MultiHeadAttention, SelfAttention


def inputs(batch=3, lq=5, lk=6, dims=(16, 16, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    q_dim, k_dim, v_dim = dims
    return (
        torch.randn(batch, lq, q_dim, generator=g),
        torch.randn(batch, lk, k_dim, generator=g),
        torch.randn(batch, lk, v_dim, generator=g),
    )


@pytest.mark.parametrize("kdim,vdim", [(16, 16), (12, 20)], ids=["same-dims", "cross-dims"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_multihead_attention_with_its_weights_copied(kdim, vdim, bias):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 4, kdim=kdim, vdim=vdim, bias=bias, batch_first=True).eval()
    if bias:
        nn.init.normal_(reference.in_proj_bias)  # torch starts them at zero
    ours = MultiHeadAttention.from_torch(reference)
    assert not ours.training
    query, key, value = inputs(dims=(16, kdim, vdim))
    lengths = torch.tensor([6, 3, 1])
    keep = padding_mask(lengths, 6)[:, None, None, :] & torch.ones(5, 6, dtype=torch.bool).tril(1)

    expected, expected_weights = reference(
        query,
        key,
        value,
        key_padding_mask=~padding_mask(lengths, 6),
        attn_mask=~torch.ones(5, 6, dtype=torch.bool).tril(1),
        need_weights=True,
        average_attn_weights=False,
    )
    fused = ours(query, key, value, keep)
    eager, weights = ours(query, key, value, keep, need_weights=True)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=0)
    assert weights.shape == (3, 4, 5, 6)


def test_self_attention_matches_torch_without_a_mask():
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(24, 3, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(reference)
    x = torch.randn(2, 9, 24)
    torch.testing.assert_close(ours(x, x, x), reference(x, x, x, need_weights=False)[0], atol=1e-5, rtol=0)


def test_from_torch_refuses_what_has_no_counterpart():
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="add_zero_attn"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True))


def test_query_key_value_and_output_each_have_their_own_width():
    attention = MultiHeadAttention(16, num_heads=2, kdim=10, vdim=12, out_dim=7, dk=5, dv=3)
    query, key, value = inputs(dims=(16, 10, 12))
    out, weights = attention(query, key, value, need_weights=True)
    assert out.shape == (3, 5, 7) and weights.shape == (3, 2, 5, 6)
    assert attention.q_proj.weight.shape == (10, 16) and attention.k_proj.weight.shape == (10, 10)
    assert attention.v_proj.weight.shape == (6, 12) and attention.out_proj.weight.shape == (7, 6)


def test_head_sizes_are_needed_when_heads_do_not_divide_the_width():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, num_heads=3)
    assert MultiHeadAttention(10, num_heads=3, dk=4, dv=4)(*inputs(dims=(10, 10, 10))).shape == (3, 5, 10)


def test_masked_keys_get_zero_weight_and_do_not_change_the_output():
    attention = MultiHeadAttention(16, num_heads=4).eval()
    query, key, value = inputs()
    keep = padding_mask(torch.tensor([6, 4, 2]), 6)[:, None, None, :]
    out, weights = attention(query, key, value, keep, need_weights=True)
    for b, length in enumerate([6, 4, 2]):
        assert torch.all(weights[b, :, :, length:] == 0)
    noisy_key, noisy_value = key.clone(), value.clone()
    noisy_key[1, 4:] = 100.0
    noisy_value[1, 4:] = -100.0
    torch.testing.assert_close(attention(query, noisy_key, noisy_value, keep), out, atol=1e-5, rtol=0)


def test_a_three_dimensional_mask_is_batch_query_key_for_every_head():
    attention = MultiHeadAttention(12, num_heads=3).eval()  # batch == heads: no silent misreading
    query, key, value = inputs(dims=(12, 12, 12))
    keep = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(7)) > 0.3
    keep[..., 0] = True
    out, weights = attention(query, key, value, keep, need_weights=True)
    torch.testing.assert_close(out, attention(query, key, value, keep[:, None]), atol=1e-6, rtol=0)
    assert torch.all(weights.masked_select(~keep[:, None].expand_as(weights)) == 0)


def test_fused_and_eager_agree_and_fused_false_always_runs_eager():
    torch.manual_seed(2)
    fused = MultiHeadAttention(16, num_heads=4).eval()
    eager = MultiHeadAttention(16, num_heads=4, fused=False).eval()
    eager.load_state_dict(fused.state_dict())
    query, key, value = inputs()
    mask = causal_mask(6)[:5]
    torch.testing.assert_close(
        fused(query, key, value, mask), eager(query, key, value, mask), atol=1e-5, rtol=0
    )


def test_gradients_reach_every_parameter_and_every_input():
    attention = MultiHeadAttention(16, num_heads=2, kdim=12, vdim=8, out_dim=4, dropout=0.1)
    query, key, value = (t.requires_grad_() for t in inputs(dims=(16, 12, 8)))
    attention(query, key, value, padding_mask(torch.tensor([6, 5, 1]), 6)[:, None, None, :]).sum().backward()
    for name, parameter in attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for tensor in (query, key, value):
        assert tensor.grad.abs().sum() > 0


def test_builds_on_meta_and_in_the_requested_dtype():
    assert all(p.is_meta for p in MultiHeadAttention(32, num_heads=4, device="meta").parameters())
    double = MultiHeadAttention(32, num_heads=4, dtype=torch.float64)
    assert double(*(t.double() for t in inputs(dims=(32, 32, 32)))).dtype == torch.float64


def test_single_head_self_attention_has_separate_key_and_value_widths():
    torch.manual_seed(3)
    attention = SelfAttention(10, dk=4, dv=6)
    assert attention.out_proj is None and attention.q_proj.bias is None  # as the tutorials write it
    x = torch.randn(2, 7, 10)
    out, weights = attention(x, mask=causal_mask(7), need_weights=True)
    assert out.shape == (2, 7, 6) and weights.shape == (2, 1, 7, 7)
    q, k, v = attention.q_proj(x), attention.k_proj(x), attention.v_proj(x)
    scores = (q @ k.transpose(1, 2) / 2.0).masked_fill(~causal_mask(7), float("-inf"))
    torch.testing.assert_close(out, scores.softmax(-1) @ v, atol=1e-5, rtol=0)
    torch.testing.assert_close(attention(x, mask=causal_mask(7)), out, atol=1e-5, rtol=0)
    assert torch.all(weights.triu(1) == 0)


def test_self_attention_in_a_slot_is_heads_side_by_side_then_the_output_projection():
    torch.manual_seed(4)
    heads = SelfAttention(12, num_heads=3, kdim=8, vdim=5, out_dim=7, dk=2, dv=4, bias=True).eval()
    query, key, value = inputs(batch=2, lq=4, lk=6, dims=(12, 8, 5))
    keep = padding_mask(torch.tensor([6, 3]), 6)[:, None, :]
    out, weights = heads(query, key, value, keep, need_weights=True)
    assert out.shape == (2, 4, 7) and weights.shape == (2, 3, 4, 6)
    one_by_one = []
    for h in range(3):
        q = query @ heads.q_proj.weight[2 * h : 2 * h + 2].T + heads.q_proj.bias[2 * h : 2 * h + 2]
        k = key @ heads.k_proj.weight[2 * h : 2 * h + 2].T + heads.k_proj.bias[2 * h : 2 * h + 2]
        v = value @ heads.v_proj.weight[4 * h : 4 * h + 4].T + heads.v_proj.bias[4 * h : 4 * h + 4]
        scores = (q @ k.transpose(1, 2) / 2**0.5).masked_fill(~keep, float("-inf"))
        one_by_one.append(scores.softmax(-1) @ v)
    torch.testing.assert_close(out, heads.out_proj(torch.cat(one_by_one, dim=-1)), atol=1e-5, rtol=0)
    assert torch.all(weights[1, :, :, 3:] == 0)


def test_self_attention_without_out_dim_concatenates_its_heads():
    heads = SelfAttention(16, num_heads=4)
    assert heads.dk == heads.dv == 4 and heads.out_proj is None
    assert heads(torch.randn(2, 5, 16)).shape == (2, 5, 16)
    with pytest.raises(ValueError, match="not divisible"):
        SelfAttention(10, num_heads=3)
