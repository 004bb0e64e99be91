"""How attention variants name the terms of their cost, for the FLOP counter.

The counter (`zoo.tasks.flops`, `zoo flops`) works on the operators torch runs: every
convolution and matrix product, softmax, normalisation and activation is counted and put in
a row by what it is (`conv`, `linear`, `matmul`, `softmax`, ...). Attention is more than its
operators, and its terms grow with the number of queries times the number of keys (N^2 for
self-attention), so they are shown apart: `attention QK^T` (the scores), `attention
softmax` and `attention AV` (the weighted sum of the values).

Fused attention needs nothing from a variant: a call of
`torch.nn.functional.scaled_dot_product_attention` is recognised by the counter and split
into those three terms by the shapes of its query, key and value. A variant that computes
attention step by step marks each step instead, so that the counter knows which matrix
product is which:

    from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term

    with flop_term(ATTENTION_QK):
        scores = (q * scale) @ k.transpose(-2, -1)  # (B, heads, Lq, Lk)
    with flop_term(ATTENTION_SOFTMAX):
        weights = scores.softmax(dim=-1)
    with flop_term(ATTENTION_AV):
        out = weights @ v  # (B, heads, Lq, dv)

Everything counted inside `flop_term(label)` is reported in the row `label`, which may be
any name (`flop_term("attention head mixing")` for talking heads' mixing of the heads);
matrix products there still count as multiply-adds. The innermost term wins. Outside a
count, `flop_term` returns `contextlib.nullcontext()`: it costs a function call, can stay in
the forward pass, and compiles with `torch.compile(fullgraph=True)`. The open terms are the
process's, so count in one thread at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager

__all__ = [
    "ATTENTION_AV",
    "ATTENTION_QK",
    "ATTENTION_SOFTMAX",
    "FUSED_ATTENTION",
    "counting_terms",
    "current_term",
    "flop_term",
]

ATTENTION_QK = "attention QK^T"
"""The scores: (B, heads, Lq, d) @ (B, heads, d, Lk), Lq * Lk * d multiply-adds per head."""
ATTENTION_SOFTMAX = "attention softmax"
"""The softmax over the (B, heads, Lq, Lk) scores."""
ATTENTION_AV = "attention AV"
"""The weighted sum of the values: (B, heads, Lq, Lk) @ (B, heads, Lk, dv)."""
FUSED_ATTENTION = "scaled_dot_product_attention"
"""Set by the counter around a fused call, which it splits into the three terms itself."""

_terms: list[str] = []
_counting = 0


def flop_term(label: str) -> AbstractContextManager[None]:
    """Report what is counted inside the block under the row `label` (see the module)."""
    if not _counting:
        return contextlib.nullcontext()
    return _term(label)


@contextlib.contextmanager
def _term(label: str) -> Iterator[None]:
    _terms.append(label)
    try:
        yield
    finally:
        _terms.pop()


def current_term() -> str | None:
    """The label of the innermost `flop_term` open now, or None."""
    return _terms[-1] if _terms else None


@contextlib.contextmanager
def counting_terms() -> Iterator[None]:
    """While a counter runs: `flop_term` records its labels."""
    global _counting
    _counting += 1
    try:
        yield
    finally:
        _counting -= 1
