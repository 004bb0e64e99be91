"""Masks mean what their dtype says, in every attention: bool and integer keep, float adds.

Also: 3-D masks are (batch, query, key) over the heads, a causal mask alone takes the fused
causal kernels, and the mask code of The Annotated Transformer gives the same attention.
"""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from zoo.errors import ArgumentError
from zoo_plugins.attention import functional
from zoo_plugins.attention.additive import AdditiveAttention
from zoo_plugins.attention.functional import (
    causal_mask,
    masked_softmax,
    normalize_mask,
    padding_mask,
    scaled_dot_product_attention,
    sequence_lengths,
    sequence_mask,
)
from zoo_plugins.attention.mha import MultiHeadAttention, SelfAttention
from zoo_plugins.attention.soft import SoftAttentionPooling


def qkv(batch=2, heads=2, lq=5, lk=5, dk=8, dv=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, heads, lq, dk, generator=g).to(dtype),
        torch.randn(batch, heads, lk, dk, generator=g).to(dtype),
        torch.randn(batch, heads, lk, dv, generator=g).to(dtype),
    )


@pytest.fixture
def warn_again(monkeypatch):
    """The warning about float keep-masks, as if not yet given in this process."""
    monkeypatch.setattr(functional, "_warned_about_a_float_keep_mask", False)


# ---------------------------------------------------------------------- dtypes


def test_bool_masks_are_kept_as_they_are_and_integer_masks_keep_where_nonzero():
    keep = torch.tensor([[True, False, True]])
    assert normalize_mask(keep, 2) is keep
    for dtype in (torch.uint8, torch.int8, torch.int32, torch.int64):
        assert torch.equal(normalize_mask(torch.tensor([[1, 0, 3]], dtype=dtype), 2), keep)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64], ids=str)
def test_an_integer_causal_mask_leaves_no_weight_above_the_diagonal(dtype):
    q, k, v = qkv()
    mask = torch.ones(5, 5, dtype=dtype).tril()
    _, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    expected = scaled_dot_product_attention(q, k, v, mask.bool())
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask), expected)


def test_every_attention_reads_integer_masks_as_keep_masks(warn_again):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert SoftAttentionPooling(8)(x, keep).weights[0, 3:].tolist() == [0.0, 0.0]
    assert AdditiveAttention(4, 8)(torch.randn(2, 4), x, keep)[1][0, 3:].tolist() == [0.0, 0.0]
    assert masked_softmax(torch.randn(2, 5), keep)[0, 3:].tolist() == [0.0, 0.0]
    mha = MultiHeadAttention(8, num_heads=2).eval()
    causal = torch.ones(5, 5, dtype=torch.uint8).tril()
    assert torch.all(mha(x, x, x, causal, need_weights=True)[1].triu(1) == 0)
    head = SelfAttention(8, dk=4, dv=3)
    assert torch.all(head(x, mask=causal, need_weights=True)[1].triu(1) == 0)


def test_float_masks_are_added_to_the_scores():
    q, k, v = qkv()
    bias = torch.randn(5, 5, generator=torch.Generator().manual_seed(3))
    scores = q @ k.transpose(-2, -1) / math.sqrt(8) + bias
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, bias), scores.softmax(-1) @ v)


def test_a_float_mask_of_zeros_and_ones_is_added_and_warned_about_once(warn_again):
    q, k, v = qkv()
    ones_and_zeros = torch.ones(5, 5).tril()
    with pytest.warns(UserWarning, match="added to the scores, not used as a keep-mask"):
        out = scaled_dot_product_attention(q, k, v, ones_and_zeros)
    scores = q @ k.transpose(-2, -1) / math.sqrt(8) + ones_and_zeros
    torch.testing.assert_close(out, scores.softmax(-1) @ v)  # added, as its dtype says
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled_dot_product_attention(q, k, v, ones_and_zeros)  # not again in this process
        MultiHeadAttention(8, num_heads=2)(q[:, 0], q[:, 0], q[:, 0], ones_and_zeros)


def test_float_masks_without_both_zeros_and_ones_are_not_warned_about(warn_again):
    q, k, v = qkv()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled_dot_product_attention(q, k, v, torch.zeros(5, 5).masked_fill(~causal_mask(5), float("-inf")))
        scaled_dot_product_attention(q, k, v, torch.ones(5, 5))  # all ones: a uniform bias
        scaled_dot_product_attention(q, k, v, bias=torch.ones(5, 5).tril())  # a bias is never a mask
    assert not functional._warned_about_a_float_keep_mask


def test_no_warning_is_given_while_torch_compile_traces(warn_again):
    q, k, v = qkv()
    mask = torch.ones(5, 5).tril()
    compiled = torch.compile(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask), backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compiled(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(8) + mask
    torch.testing.assert_close(out, scores.softmax(-1) @ v)
    assert not functional._warned_about_a_float_keep_mask


def test_complex_masks_are_refused():
    with pytest.raises(TypeError, match="bool, integer or float"):
        normalize_mask(torch.zeros(2, 2, dtype=torch.complex64), 2)


def test_a_mask_with_more_dimensions_than_the_scores_is_refused():
    with pytest.raises(ValueError, match="5-D mask"):
        normalize_mask(torch.ones(1, 1, 1, 2, 2, dtype=torch.bool), 4)


# ---------------------------------------------------------------------- fused and eager agree


MASKS = {
    "bool": lambda keep: keep,
    "uint8": lambda keep: keep.to(torch.uint8),
    "int64": lambda keep: keep.long() * 7,  # any nonzero value keeps
    "float": lambda keep: torch.zeros(keep.shape).masked_fill(~keep, float("-inf")),
}


@pytest.mark.parametrize("kind", list(MASKS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_fused_and_eager_paths_agree_for_every_mask_dtype(kind, dtype):
    q, k, v = qkv(dtype=dtype)
    keep = padding_mask(torch.tensor([5, 2]), 5)[:, None, None, :] & causal_mask(5)
    keep[1, :, 0] = False  # and a query with nothing to attend to
    mask = MASKS[kind](keep)
    fused = scaled_dot_product_attention(q, k, v, mask)
    eager, weights = scaled_dot_product_attention(q, k, v, mask, need_weights=True)
    tolerance = {torch.float32: 1e-5, torch.float64: 1e-10, torch.bfloat16: 3e-2}[dtype]
    torch.testing.assert_close(fused, eager, atol=tolerance, rtol=0)
    assert torch.all(weights.masked_select(~keep.expand_as(weights)) == 0)
    assert torch.all(fused[1, :, 0] == 0) and not fused.isnan().any()
    reference = scaled_dot_product_attention(q, k, v, keep)
    torch.testing.assert_close(fused, reference, atol=tolerance, rtol=0)


# ---------------------------------------------------------------------- 3-D masks


def test_a_three_dimensional_mask_is_batch_query_key_for_every_head():
    batch = heads = 2  # where a misreading would broadcast silently
    q, k, v = qkv(batch=batch, heads=heads)
    per_sample = torch.rand(batch, 5, 5, generator=torch.Generator().manual_seed(4)) > 0.3
    per_sample[..., 0] = True
    expected = scaled_dot_product_attention(q, k, v, per_sample[:, None])
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, per_sample), expected)
    _, weights = scaled_dot_product_attention(q, k, v, per_sample, need_weights=True)
    for head in range(heads):
        assert torch.all(weights[:, head].masked_select(~per_sample) == 0)


@pytest.mark.parametrize("shape", [(2, 1, 6), (2, 5, 6)], ids=["(B, 1, Lk)", "(B, Lq, Lk)"])
def test_multi_head_attention_takes_the_tutorials_three_dimensional_masks(shape):
    torch.manual_seed(5)
    attention = MultiHeadAttention(16, num_heads=2).eval()
    query, memory = torch.randn(2, 5, 16), torch.randn(2, 6, 16)
    keep = torch.rand(shape) > 0.3
    keep[..., 0] = True
    out, weights = attention(query, memory, memory, keep, need_weights=True)
    torch.testing.assert_close(out, attention(query, memory, memory, keep[:, None]), atol=1e-6, rtol=0)
    assert torch.all(weights.masked_select(~keep[:, None].expand_as(weights)) == 0)


# ---------------------------------------------------------------------- the causal kernels


@pytest.fixture
def fused_calls(monkeypatch):
    """The keyword arguments of every call to torch's fused attention, which still runs."""
    calls = []
    fused = F.scaled_dot_product_attention

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return fused(*args, **kwargs)

    monkeypatch.setattr(functional.F, "scaled_dot_product_attention", recording)
    return calls


@pytest.mark.parametrize(
    "mask",
    [causal_mask(5), causal_mask(5).to(torch.uint8), causal_mask(5)[None, None]],
    ids=["bool", "uint8", "(1, 1, L, L)"],
)
def test_a_causal_mask_with_no_padding_takes_the_fused_causal_path(mask, fused_calls):
    q, k, v = qkv()
    out = scaled_dot_product_attention(q, k, v, mask)
    assert fused_calls == [{"attn_mask": None, "dropout_p": 0.0, "is_causal": True, "scale": None}]
    eager, _ = scaled_dot_product_attention(q, k, v, causal_mask(5), need_weights=True)
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=0)


def test_an_additive_causal_mask_takes_the_causal_path_too(fused_calls):
    q, k, v = qkv()
    scaled_dot_product_attention(q, k, v, torch.zeros(5, 5).masked_fill(~causal_mask(5), float("-inf")))
    assert fused_calls[0]["is_causal"] and fused_calls[0]["attn_mask"] is None


def test_causal_with_padding_passes_one_combined_mask(fused_calls):
    q, k, v = qkv()
    padding = padding_mask(torch.tensor([5, 3]), 5)[:, None, None, :]
    out = scaled_dot_product_attention(q, k, v, padding, is_causal=True)
    assert not fused_calls[0]["is_causal"] and fused_calls[0]["attn_mask"].shape == (2, 1, 5, 5)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v, padding & causal_mask(5)))
    out, weights = scaled_dot_product_attention(q, k, v, padding, is_causal=True, need_weights=True)
    assert torch.all(weights.triu(1) == 0) and torch.all(weights[1, ..., 3:] == 0)


def test_a_mask_that_is_not_causal_is_passed_as_it_is(fused_calls):
    q, k, v = qkv()
    almost = causal_mask(5)
    almost[4, 0] = False
    scaled_dot_product_attention(q, k, v, almost)
    assert not fused_calls[0]["is_causal"] and fused_calls[0]["attn_mask"] is not None


def test_the_scale_reaches_both_paths(fused_calls):
    q, k, v = qkv()
    fused = scaled_dot_product_attention(q, k, v, scale=0.3)
    eager, weights = scaled_dot_product_attention(q, k, v, scale=0.3, need_weights=True)
    assert fused_calls[0]["scale"] == 0.3
    torch.testing.assert_close(weights, (q @ k.transpose(-2, -1) * 0.3).softmax(-1))
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------- The Annotated Transformer

# The mask code of Rush et al., "The Annotated Transformer" (2018; updated 2022), written out
# as it reads there: masks are 1/True where attention is allowed, and scores are filled with
# -1e9 where `mask == 0`. In 2018's torch the comparison gave a uint8 mask.

PAD = 0


def subsequent_mask(size, dtype=torch.bool):
    """Mask out subsequent positions: (1, size, size)."""
    attn_shape = (1, size, size)
    return (torch.triu(torch.ones(attn_shape), diagonal=1) == 0).to(dtype)


def tutorial_attention(query, key, value, mask=None):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    p_attn = scores.softmax(dim=-1)
    return torch.matmul(p_attn, value), p_attn


def tutorial_multi_headed(attention: MultiHeadAttention, query, key, value, mask=None):
    """The tutorial's MultiHeadedAttention.forward with the zoo module's projections."""
    if mask is not None:
        mask = mask.unsqueeze(1)  # the same mask applied to all h heads
    nbatches, h = query.size(0), attention.num_heads
    d_k = attention.dk
    query, key, value = [
        lin(x).view(nbatches, -1, h, d_k).transpose(1, 2)
        for lin, x in zip(
            (attention.q_proj, attention.k_proj, attention.v_proj), (query, key, value), strict=True
        )
    ]
    x, p_attn = tutorial_attention(query, key, value, mask=mask)
    x = x.transpose(1, 2).contiguous().view(nbatches, -1, h * d_k)
    return attention.out_proj(x), p_attn


def batch_of_tokens():
    src = torch.tensor([[5, 7, 3, 9, 4, 2], [6, 8, 2, PAD, PAD, PAD]])
    tgt = torch.tensor([[1, 4, 4, 8, 3], [1, 9, 5, PAD, PAD]])
    src_mask = (src != PAD).unsqueeze(-2)  # (B, 1, S)
    tgt_mask = (tgt != PAD).unsqueeze(-2) & subsequent_mask(tgt.size(-1))  # (B, T, T)
    return src, tgt, src_mask, tgt_mask


def test_subsequent_mask_is_the_zoo_causal_mask():
    assert torch.equal(subsequent_mask(6)[0], causal_mask(6))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8], ids=["bool", "uint8 (2018)"])
def test_the_tutorial_masks_give_the_tutorial_attention(dtype):
    torch.manual_seed(6)
    src, tgt, src_mask, tgt_mask = batch_of_tokens()
    attention = MultiHeadAttention(16, num_heads=4).eval()
    memory, decoded = torch.randn(2, src.shape[1], 16), torch.randn(2, tgt.shape[1], 16)
    for query, keys, mask in (
        (memory, memory, src_mask),
        (decoded, decoded, tgt_mask),
        (decoded, memory, src_mask),
    ):
        mask = mask.to(dtype)
        expected, expected_weights = tutorial_multi_headed(attention, query, keys, keys, mask)
        fused = attention(query, keys, keys, mask)
        eager, weights = attention(query, keys, keys, mask, need_weights=True)
        torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(eager, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=0)


def test_the_tutorial_attention_function_matches_the_functional_core():
    _, tgt, _, tgt_mask = batch_of_tokens()
    q, k, v = qkv(lq=tgt.shape[1], lk=tgt.shape[1])
    expected, expected_weights = tutorial_attention(q, k, v, tgt_mask.unsqueeze(1))
    out, weights = scaled_dot_product_attention(q, k, v, tgt_mask, need_weights=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=0)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, tgt_mask), expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------- lengths and attention_mask


def test_sequence_masks_come_from_lengths_or_a_hugging_face_attention_mask():
    assert sequence_mask(4) is None
    from_lengths = sequence_mask(4, lengths=torch.tensor([4, 2]))
    assert from_lengths.tolist() == [[True] * 4, [True, True, False, False]]
    left_padded = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    assert sequence_mask(4, attention_mask=left_padded).tolist() == [[True] * 4, [False, False, True, True]]
    with pytest.raises(ValueError, match="not both"):
        sequence_mask(4, lengths=torch.tensor([4, 2]), attention_mask=left_padded)
    with pytest.raises(ValueError, match=r"must be \(B, 4\)"):
        sequence_mask(4, attention_mask=torch.ones(2, 5))
    as_floats = sequence_mask(4, attention_mask=left_padded.float())  # 1.0 = real, as in Hugging Face
    assert torch.equal(as_floats, sequence_mask(4, attention_mask=left_padded))
    with pytest.raises(ValueError, match="1 and padding with 0"):
        sequence_mask(4, attention_mask=torch.zeros(2, 4).masked_fill(left_padded == 0, float("-inf")))


def test_lengths_of_a_right_padded_attention_mask_and_of_no_other():
    assert sequence_lengths() is None
    assert sequence_lengths(lengths=torch.tensor([3, 1])).tolist() == [3, 1]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert sequence_lengths(attention_mask=mask).tolist() == [2, 1, 0]
    assert sequence_lengths(attention_mask=mask.float()).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="right-padded"):
        sequence_lengths(attention_mask=torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="not both"):
        sequence_lengths(lengths=torch.tensor([2, 1, 0]), attention_mask=mask)


@pytest.mark.parametrize("kind", list(MASKS))
def test_hard_attention_picks_only_real_elements_whatever_the_mask_dtype(kind):
    from zoo_plugins.attention.hard import HardAttentionPooling

    torch.manual_seed(8)
    hard = HardAttentionPooling(8).eval()
    x = torch.randn(3, 5, 8)
    keep = padding_mask(torch.tensor([5, 2, 0]), 5)
    pooled = hard(x, MASKS[kind](keep))
    assert torch.all(pooled.weights.masked_select(~keep) == 0)
    assert pooled.weights.sum(-1).tolist() == [1.0, 1.0, 0.0]
    assert torch.all(pooled.output[2] == 0) and pooled.log_prob[2] == 0


@pytest.mark.parametrize(
    ("lengths", "max_len", "problem"),
    [([5, 1], 4, "between 0 and 4"), ([-1, 2], 4, "between 0 and 4"), ([-1, 2], None, "cannot be negative")],
)
def test_lengths_outside_the_sequence_are_refused_not_clamped(lengths, max_len, problem):
    with pytest.raises(ArgumentError, match=problem):
        padding_mask(torch.tensor(lengths), max_len)


def test_lengths_that_are_not_integers_are_refused():
    with pytest.raises(ArgumentError, match="must be integers"):
        padding_mask(torch.tensor([1.5, 2.0]), 3)
