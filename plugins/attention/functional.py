"""Scaled dot-product attention as a function, and the masks sequence models build.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

Mask conventions, the same everywhere in the zoo:

- A boolean mask says True = keep: this query may attend to this key (this element counts).
  A float mask is added to the scores: 0 keeps, -inf drops, anything between biases.
- Attention masks broadcast against the scores `(..., Lq, Lk)`: `causal_mask(L)` is
  `(L, L)`; a padding mask `(B, Lk)` from `padding_mask(lengths)` becomes `(B, 1, 1, Lk)`
  for a `(B, heads, Lq, Lk)` batch (`mask[:, None, None, :]`); the two combine with `&`.
- A row whose keys are all masked yields zeros (output and weights) and zero gradients,
  never NaN, on the fused and the eager path alike.

The fused path is `torch.nn.functional.scaled_dot_product_attention` (flash, memory-efficient
or C++ kernels, whichever fits); the eager path computes the same step by step and is taken
when the weights are asked for. They agree within float rounding. The eager path marks its
steps with `zoo.attention.flop_term`, so that `zoo flops` shows them as the fused call's
terms (QK^T, softmax, AV).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term

__all__ = [
    "Pooled",
    "causal_mask",
    "masked_log_softmax",
    "masked_softmax",
    "padding_mask",
    "scaled_dot_product_attention",
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
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """`(B, max_len)`, True at the first `lengths[b]` positions of row b (the real elements).

    Args:
        lengths: `(B,)` integer lengths, on the device the mask should be on.
        max_len: Width of the mask; by default the longest length.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be one-dimensional (B,), not of shape {tuple(lengths.shape)}")
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    return torch.arange(max_len, device=lengths.device) < lengths[:, None]


def _open_dead_rows(
    mask: torch.Tensor | None, dtype: torch.dtype, dim: int = -1
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The mask with every fully masked row opened up, and which rows are live.

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


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax over `dim` where masked entries get weight 0 and fully masked rows are all 0.

    Computed in float32 at least, returned in the dtype of `scores`.
    """
    scores, live = _masked_scores(scores, mask, dim)
    weights = scores.softmax(dim=dim, dtype=torch.promote_types(scores.dtype, torch.float32)).to(scores.dtype)
    return weights if live is None else weights.masked_fill(~live, 0.0)


def masked_log_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Log-softmax over `dim`: masked entries are -inf, fully masked rows are all 0 (no choice)."""
    scores, live = _masked_scores(scores, mask, dim)
    log_weights = scores.log_softmax(dim=dim)
    return log_weights if live is None else log_weights.masked_fill(~live, 0.0)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d_k) + mask) v, over any leading (batch, head) dimensions.

    Args:
        q: `(..., Lq, d_k)` queries.
        k: `(..., Lk, d_k)` keys.
        v: `(..., Lk, d_v)` values.
        mask: Boolean (True = keep) or additive float, broadcastable to `(..., Lq, Lk)`.
        dropout_p: Dropout on the attention weights; pass 0 in evaluation.
        need_weights: Also return the weights (before dropout). Takes the eager path.

    Returns:
        `(..., Lq, d_v)`, or `(output, weights)` with weights `(..., Lq, Lk)`. Rows with
        every key masked are zeros.
    """
    if need_weights:
        with flop_term(ATTENTION_QK):
            scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        with flop_term(ATTENTION_SOFTMAX):
            weights = masked_softmax(scores, mask)
        attended = F.dropout(weights, dropout_p) if dropout_p > 0.0 else weights
        with flop_term(ATTENTION_AV):
            return attended @ v, weights
    mask, live = _open_dead_rows(mask, q.dtype)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return output if live is None else output.masked_fill(~live, 0.0)
