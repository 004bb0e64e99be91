"""The functional core: scaled dot-product attention and its masks."""

import pytest
import torch
import torch.nn.functional as F

from zoo_plugins.attention.functional import (
    causal_mask,
    masked_log_softmax,
    masked_softmax,
    padding_mask,
    scaled_dot_product_attention,
)


def qkv(batch=2, heads=3, lq=5, lk=7, dk=8, dv=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, heads, lq, dk, generator=g, dtype=dtype),
        torch.randn(batch, heads, lk, dk, generator=g, dtype=dtype),
        torch.randn(batch, heads, lk, dv, generator=g, dtype=dtype),
    )


def reference(q, k, v, keep=None):
    """Attention written out plainly, with a boolean keep-mask."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def test_causal_mask_lets_each_position_see_itself_and_the_past_only():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool and mask.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            assert bool(mask[i, j]) == (j <= i)


def test_padding_mask_marks_the_first_length_positions():
    mask = padding_mask(torch.tensor([3, 1, 0]), 4)
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False], [False] * 4]
    assert padding_mask(torch.tensor([2, 5])).shape == (2, 5)  # as wide as the longest by default


def test_padding_mask_rejects_lengths_that_are_not_a_vector():
    with pytest.raises(ValueError, match="one-dimensional"):
        padding_mask(torch.tensor([[3, 1]]))


def test_without_a_mask_it_is_softmax_attention_on_both_paths():
    q, k, v = qkv()
    expected, expected_weights = reference(q, k, v)
    fused = scaled_dot_product_attention(q, k, v)
    eager, weights = scaled_dot_product_attention(q, k, v, need_weights=True)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=0)
    assert weights.shape == (2, 3, 5, 7)


@pytest.mark.parametrize(
    "mask_shape", [(5, 7), (2, 1, 1, 7), (2, 1, 5, 7), (2, 3, 5, 7), (1, 3, 1, 7)], ids=str
)
def test_boolean_masks_broadcast_over_batch_and_heads_and_paths_agree(mask_shape):
    q, k, v = qkv()
    keep = torch.rand(mask_shape, generator=torch.Generator().manual_seed(1)) > 0.4
    keep[..., 0] = True  # no fully masked row here
    expected, _ = reference(q, k, v, keep)
    fused = scaled_dot_product_attention(q, k, v, keep)
    eager, weights = scaled_dot_product_attention(q, k, v, keep, need_weights=True)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager, fused, atol=1e-5, rtol=0)
    assert torch.all(weights.masked_select(~keep.expand_as(weights)) == 0), "a masked key got weight"
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_a_float_mask_is_added_to_the_scores():
    q, k, v = qkv()
    bias = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
    bias[:, 3] = float("-inf")
    scores = q @ k.transpose(-2, -1) / 8**0.5 + bias
    expected = scores.softmax(-1) @ v
    fused = scaled_dot_product_attention(q, k, v, bias)
    eager, weights = scaled_dot_product_attention(q, k, v, bias, need_weights=True)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(eager, expected, atol=1e-5, rtol=0)
    assert torch.all(weights[..., 3] == 0)


def test_boolean_and_equivalent_float_masks_give_the_same_result():
    q, k, v = qkv()
    keep = causal_mask(7)[:5]
    additive = torch.zeros(5, 7).masked_fill(~keep, float("-inf"))
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, keep), scaled_dot_product_attention(q, k, v, additive)
    )


def test_causal_rows_see_no_future():
    q, k, v = qkv(lq=6, lk=6)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(6), need_weights=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    # changing the last key and value leaves every earlier position's output unchanged
    k2, v2 = k.clone(), v.clone()
    k2[..., -1, :] += 5.0
    v2[..., -1, :] -= 5.0
    out2 = scaled_dot_product_attention(q, k2, v2, causal_mask(6))
    torch.testing.assert_close(out2[..., :-1, :], out[..., :-1, :], atol=1e-5, rtol=0)
    assert not torch.allclose(out2[..., -1, :], out[..., -1, :])


@pytest.mark.parametrize("need_weights", [False, True], ids=["fused", "eager"])
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("bias", [None, torch.randn(5, 7)], ids=["no bias", "a bias besides"])
def test_a_fully_masked_row_yields_zeros_and_zero_gradients_never_nan(need_weights, kind, bias):
    q, k, v = (t.requires_grad_() for t in qkv())
    keep = torch.ones(2, 1, 5, 7, dtype=torch.bool)
    keep[0, 0, 2] = False  # sample 0, query 2 may attend nowhere
    keep[1] = False  # sample 1 may attend nowhere at all
    mask = keep if kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    result = scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights, bias=bias)
    out = result[0] if need_weights else result
    assert not out.isnan().any()
    assert torch.all(out[0, :, 2] == 0) and torch.all(out[1] == 0)
    assert out[0, :, 1].abs().sum() > 0
    if need_weights:
        assert torch.all(result[1][0, :, 2] == 0) and torch.all(result[1][1] == 0)
    out.square().sum().backward()
    for tensor in (q, k, v):
        assert torch.isfinite(tensor.grad).all()
    assert torch.all(q.grad[1] == 0) and torch.all(q.grad[0, :, 2] == 0)


def test_dropout_drops_weights_in_the_eager_path_and_reports_them_undropped():
    q, k, v = qkv()
    torch.manual_seed(0)
    out, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5, need_weights=True)
    expected, expected_weights = reference(q, k, v)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=0)
    assert not torch.allclose(out, expected)
    fused = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not torch.allclose(fused, expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_keep_their_dtype_and_agree(dtype):
    q, k, v = qkv(dtype=dtype)
    keep = padding_mask(torch.tensor([7, 4]), 7)[:, None, None, :]
    fused = scaled_dot_product_attention(q, k, v, keep)
    eager, weights = scaled_dot_product_attention(q, k, v, keep, need_weights=True)
    assert fused.dtype == eager.dtype == weights.dtype == dtype
    tolerance = 1e-10 if dtype == torch.float64 else 3e-2
    torch.testing.assert_close(fused, eager, atol=tolerance, rtol=0)


def test_masked_softmax_zeroes_masked_entries_and_empty_rows():
    scores = torch.randn(3, 4, requires_grad=True)
    keep = torch.tensor([[True, True, False, False], [False] * 4, [True] * 4])
    weights = masked_softmax(scores, keep)
    torch.testing.assert_close(weights[0, :2], scores[0, :2].softmax(-1))
    assert weights[0, 2:].tolist() == [0.0, 0.0] and weights[1].tolist() == [0.0] * 4
    torch.testing.assert_close(weights[2], F.softmax(scores[2], -1))
    weights.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_masked_log_softmax_is_minus_infinity_where_masked_and_zero_on_empty_rows():
    scores = torch.randn(2, 3)
    keep = torch.tensor([[True, False, True], [False, False, False]])
    log_weights = masked_log_softmax(scores, keep)
    torch.testing.assert_close(log_weights[0, [0, 2]], scores[0, [0, 2]].log_softmax(-1))
    assert log_weights[0, 1] == float("-inf")
    assert log_weights[1].tolist() == [0.0, 0.0, 0.0]
