"""Scaled dot-product attention as a function, and the masks sequence models build.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

A mask means what its dtype says, the same everywhere in the zoo (`normalize_mask` is the
one reading of it, used by every attention):

- **bool**: True = keep: this query may attend to this key (this element counts).
- **integer** (uint8, int64, ...): a keep-mask too, nonzero = keep, as the tutorials' uint8
  masks and Hugging Face's `attention_mask` (1 = real token) are meant.
- **float**: added to the scores: 0 keeps, -inf drops, anything between biases. A float mask
  holding both 0 and 1 is most likely a keep-mask in the wrong dtype; it is still added, and
  a warning says so (once per process, never while `torch.compile` traces).

Masks broadcast against the scores `(..., Lq, Lk)`: `causal_mask(L)` is `(L, L)`; a padding
mask `(B, Lk)` from `padding_mask(lengths)` becomes `(B, 1, 1, Lk)` for a `(B, heads, Lq, Lk)`
batch (`mask[:, None, None, :]`); the two combine with `&`. A 3-D mask against 4-D scores is
read as `(batch, query, key)` and broadcast over the heads, as the tutorials pass them:
`(B, 1, Lk)` padding, `(B, Lq, Lk)` padding and causal. A row whose keys are all masked
yields zeros (output and weights) and zero gradients, never NaN, on both paths.

The fused path is `torch.nn.functional.scaled_dot_product_attention` (flash, memory-efficient
or C++ kernels, whichever fits); a causal mask with nothing else masked (given as
`is_causal=True`, or found to be exactly `causal_mask(L)`) takes its `is_causal` kernels. The
eager path computes the same step by step and is taken when the weights are asked for. They
agree within float rounding, for every mask dtype. The eager path marks its
steps with `zoo.attention.flop_term`, so that `zoo flops` shows them as the fused call's
terms (QK^T, softmax, AV).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F

from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term
from zoo.errors import Argument, ArgumentError, InputError

__all__ = [
    "Pooled",
    "causal_mask",
    "check_token_batch",
    "masked_log_softmax",
    "masked_softmax",
    "normalize_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "sequence_lengths",
    "sequence_mask",
]


class Pooled(NamedTuple):
    """What a pooling attention returns (see the "pooling" kind in `zoo.attention`)."""

    output: torch.Tensor
    """(B, D): `(weights[..., None] * x).sum(1)`."""
    weights: torch.Tensor
    """(B, N): soft weights, or the one-hot of the element a hard attention picked."""
    log_prob: torch.Tensor | None = None
    """(B,): log-probability of a sampled pick (stochastic variants), for REINFORCE."""


def causal_mask(size: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """The "subsequent" mask: `(size, size)`, True where key j <= query i (no peeking ahead)."""
    if isinstance(size, bool) or not isinstance(size, (int, torch.SymInt)) or size < 0:
        raise ArgumentError(
            "{size} must be a whole number, at least 0", arguments=[Argument("size", repr(size))]
        )
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def check_token_batch(tokens: torch.Tensor, name: str) -> None:
    """Refuse what is not a non-empty `(B, L)` batch of token ids, by shape alone (nothing
    read from the device)."""
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[0] == 0:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ArgumentError(
            f"{{{name}}} must be a (B, L) batch of token ids with B >= 1, got {shape}",
            arguments=[Argument(name)],
        )


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """`(B, max_len)`, True at the first `lengths[b]` positions of row b (the real elements).

    Args:
        lengths: `(B,)` integer lengths, on the device the mask should be on.
        max_len: Width of the mask; by default the longest length.

    Raises:
        ArgumentError: Lengths that are not integers, or lie outside 0 to `max_len`: a
            mask from them would quietly keep other elements than the real ones.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise InputError(f"lengths must be one-dimensional (B,), not of shape {tuple(lengths.shape)}")
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ArgumentError(f"lengths must be integers, not {str(lengths.dtype).removeprefix('torch.')}")
    if lengths.numel() and lengths.device.type != "meta":  # one comparison, on the mask's builder
        low, high = torch.aminmax(lengths)
        if int(low) < 0 or (max_len is not None and int(high) > max_len):
            raise ArgumentError(
                f"lengths {lengths.tolist()} do not fit a sequence of {max_len} positions: "
                f"each must lie between 0 and {max_len}"
                if max_len is not None
                else f"lengths {lengths.tolist()}: a length cannot be negative"
            )
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def sequence_mask(
    length: int,
    *,
    lengths: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """`(B, length)`, True at the real elements of a padded batch, or None when nothing is padded.

    Args:
        length: The padded length L of the batch.
        lengths: `(B,)` numbers of real elements, each row's first ones.
        attention_mask: `(B, L)`, as Hugging Face models take it: 1 (or True) at real
            elements, 0 at padding, anywhere in the row (left padding too); a float one
            holds 0s and 1s only.
        device: Where the mask goes.
    """
    if lengths is not None and attention_mask is not None:
        raise InputError("give lengths or attention_mask, not both")
    if lengths is not None:
        return padding_mask(torch.as_tensor(lengths, device=device), length)
    if attention_mask is None:
        return None
    attention_mask = torch.as_tensor(attention_mask, device=device)
    if attention_mask.ndim != 2 or attention_mask.shape[1] != length:
        raise InputError(
            f"attention_mask must be (B, {length}), one entry per position; got {tuple(attention_mask.shape)}"
        )
    return _real_elements(attention_mask)


def _real_elements(attention_mask: torch.Tensor) -> torch.Tensor:
    """A Hugging Face `attention_mask` as a keep-mask: it marks real elements with 1 in any
    dtype, so a float one is read as 0s and 1s too (and refused if it holds anything else)."""
    if attention_mask.is_floating_point():
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise InputError("attention_mask marks real elements with 1 and padding with 0, nothing else")
        return attention_mask != 0
    return normalize_mask(attention_mask, 2)


def sequence_lengths(
    *, lengths: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The `(B,)` lengths of a right-padded batch, from `lengths` or an `attention_mask`
    `(B, L)` (1 at real elements); None from neither.

    For models that need lengths (packed LSTMs): a mask with padding before a real element
    is refused rather than misread.
    """
    if attention_mask is None:
        return lengths
    if lengths is not None:
        raise InputError("give lengths or attention_mask, not both")
    attention_mask = torch.as_tensor(attention_mask)
    if attention_mask.ndim != 2:
        raise InputError(f"attention_mask must be (B, L); got {tuple(attention_mask.shape)}")
    mask = _real_elements(attention_mask)
    lengths = mask.sum(dim=1)
    if not torch.equal(mask, padding_mask(lengths, mask.shape[1])):
        raise InputError("this model takes right-padded batches: each attention_mask row must be 1s, then 0s")
    return lengths


_warned_about_a_float_keep_mask = False


def _warn_if_a_keep_mask(mask: torch.Tensor) -> None:
    """Warn, once per process, about a float mask of 0s and 1s: it is added, not kept by."""
    global _warned_about_a_float_keep_mask
    if _warned_about_a_float_keep_mask or mask.is_meta or torch.compiler.is_compiling():
        return
    if bool((mask == 0).any() & (mask == 1).any()):
        _warned_about_a_float_keep_mask = True
        warnings.warn(
            "a float attention mask holding 0s and 1s is added to the scores, not used as a "
            "keep-mask: pass a bool or integer mask (nonzero = may attend) to mask by it",
            UserWarning,
            stacklevel=4,
        )


def normalize_mask(mask: torch.Tensor | None, ndim: int) -> torch.Tensor | None:
    """The one reading of an attention mask, for scores of `ndim` dimensions.

    Returns a boolean keep-mask (from a bool mask as it is, from an integer one as
    `mask != 0`) or a float mask to add (a float mask as it is; see the module docstring for
    the warning about 0s and 1s), broadcastable to the scores: a 3-D mask against scores of 4
    or more dimensions is `(batch, query, key)` and gets singleton dimensions for the heads.
    """
    if mask is None:
        return None
    if mask.ndim > ndim:
        raise InputError(f"a {mask.ndim}-D mask {tuple(mask.shape)} for {ndim}-D attention scores")
    if mask.ndim == 3 and ndim >= 4:
        mask = mask.view(mask.shape[0], *(1,) * (ndim - 3), *mask.shape[1:])  # (B, 1, Lq, Lk)
    if mask.dtype == torch.bool:
        return mask
    if mask.is_floating_point():
        _warn_if_a_keep_mask(mask)
        return mask
    if mask.is_complex():
        raise InputError(f"an attention mask is bool, integer or float, not {mask.dtype}")
    return mask != 0


def _open_dead_rows(
    mask: torch.Tensor | None, dtype: torch.dtype, dim: int = -1
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The (normalised) mask with every fully masked row opened up, and which rows are live.

    A softmax over nothing is 0/0. Opening such rows keeps NaN out of both passes; the
    caller then zeroes them with `live` (broadcastable like the mask, size 1 along `dim`).
    """
    if mask is None:
        return None, None
    if mask.dtype == torch.bool:
        live = mask.any(dim=dim, keepdim=True)
        return mask | ~live, live
    live = ~torch.isneginf(mask).all(dim=dim, keepdim=True)
    return mask.masked_fill(~live, 0.0).to(dtype), live


def _masked_scores(scores: torch.Tensor, mask: torch.Tensor | None, dim: int):
    mask, live = _open_dead_rows(mask, scores.dtype, dim)
    if mask is None:
        return scores, None
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, float("-inf")), live
    return scores + mask, live


def _softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    scores, live = _masked_scores(scores, mask, dim)
    weights = scores.softmax(dim=dim, dtype=torch.promote_types(scores.dtype, torch.float32)).to(scores.dtype)
    return weights if live is None else weights.masked_fill(~live, 0.0)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax over `dim` where masked entries get weight 0 and fully masked rows are all 0.

    `mask` is read by `normalize_mask`. Computed in float32 at least, returned in the dtype
    of `scores`.
    """
    return _softmax(scores, normalize_mask(mask, scores.ndim), dim)


def masked_log_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Log-softmax over `dim`: masked entries are -inf, fully masked rows are all 0 (no choice)."""
    scores, live = _masked_scores(scores, normalize_mask(mask, scores.ndim), dim)
    log_weights = scores.log_softmax(dim=dim)
    return log_weights if live is None else log_weights.masked_fill(~live, 0.0)


def _causal(lq: int, lk: int, device: torch.device) -> torch.Tensor:
    """`(Lq, Lk)` keep-mask of `is_causal`: key j <= query i (aligned at the top left, as torch's)."""
    return torch.ones(lq, lk, dtype=torch.bool, device=device).tril()


def _is_just_causal(mask: torch.Tensor | None, lq: int, lk: int) -> bool:
    """Whether `mask` is exactly the causal mask, nothing else masked: then the fused causal
    kernels may run instead. A data check, so skipped while `torch.compile` traces."""
    if mask is None or mask.is_meta or lq != lk or lq == 0 or torch.compiler.is_compiling():
        return False
    if mask.shape[-2:] != (lq, lk) or any(size != 1 for size in mask.shape[:-2]):
        return False
    keep = _causal(lq, lk, mask.device)
    square = mask.reshape(lq, lk)
    if mask.dtype == torch.bool:
        return torch.equal(square, keep)
    return bool(((square == 0) == keep).all() & torch.isneginf(square[~keep]).all())


def _combine(mask: torch.Tensor | None, extra: torch.Tensor | None) -> torch.Tensor | None:
    """Two normalised masks as one: keep-masks with `&`, an additive one adds (-inf where dropped)."""
    if mask is None or extra is None:
        return extra if mask is None else mask
    if mask.dtype == torch.bool and extra.dtype == torch.bool:
        return mask & extra
    if mask.dtype == torch.bool:
        mask, extra = extra, mask
    if extra.dtype == torch.bool:
        return torch.where(extra, mask, float("-inf"))  # broadcasts, unlike masked_fill
    return mask + extra


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    *,
    is_causal: bool = False,
    scale: float | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scale + mask) v, over any leading (batch, head) dimensions.

    Args:
        q: `(..., Lq, d_k)` queries.
        k: `(..., Lk, d_k)` keys.
        v: `(..., Lk, d_v)` values.
        mask: bool or integer (nonzero = keep) or additive float (see `normalize_mask`),
            broadcastable to `(..., Lq, Lk)`; a 3-D one is `(batch, Lq, Lk)` over any heads.
        dropout_p: Dropout on the attention weights; pass 0 in evaluation.
        need_weights: Also return the weights (before dropout). Takes the eager path.
        is_causal: Query i sees keys j <= i only, besides what `mask` drops. Without a mask
            the fused path runs the causal kernels, as it does for a mask that is exactly
            `causal_mask(L)`.
        scale: Multiplies the scores; `d_k ** -0.5` by default.
        bias: A float added to the scores besides the mask (a relative position bias, say),
            never read as a mask.

    Returns:
        `(..., Lq, d_v)`, or `(output, weights)` with weights `(..., Lq, Lk)`. Rows with
        every key masked are zeros.
    """
    lq, lk = q.shape[-2], k.shape[-2]
    mask = normalize_mask(mask, max(q.ndim, k.ndim))
    if not is_causal and _is_just_causal(mask, lq, lk):
        mask, is_causal = None, True
    if is_causal and (need_weights or mask is not None or bias is not None):
        mask, is_causal = _combine(mask, _causal(lq, lk, q.device)), False
    if need_weights:
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        with flop_term(ATTENTION_QK):
            scores = (q * scale) @ k.transpose(-2, -1)
        with flop_term(ATTENTION_SOFTMAX):
            weights = _softmax(scores, _combine(bias, mask))
        attended = F.dropout(weights, dropout_p) if dropout_p > 0.0 else weights
        with flop_term(ATTENTION_AV):
            return attended @ v, weights
    # rows die of the mask only (a bias is finite): open them before the bias is added, so
    # that a bias alone (Swin's) costs no pass over the scores
    mask, live = _open_dead_rows(mask, q.dtype)
    mask = _combine(bias, mask)
    output = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )
    return output if live is None else output.masked_fill(~live, 0.0)
