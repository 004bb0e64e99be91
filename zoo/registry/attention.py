"""The interface attention variants share, and the typed `attn` argument of model configs.

An attention variant is a `torch.nn.Module` class registered under a name and a *kind*. The
kind fixes the constructor arguments a model passes and the forward contract:

channel
    `__init__(self, channels: int, *, device=None, dtype=None, **options)`;
    `forward(x)` maps a `(B, C, H, W)` feature map to one of the same shape (a re-weighting).
    Plugs into any ResNet block.
token
    `__init__(self, dim: int, *, num_heads: int, qkv_bias: bool, attn_drop: float,
    proj_drop: float, device=None, dtype=None, **options)`;
    `forward(x, need_weights=False)` maps `(B, N, dim)` tokens to `(B, N, dim)`, and with
    `need_weights=True` returns `(out, weights)` where weights is `(B, num_heads, N, N)`.
    Plugs into any ViT block.
sequence
    `__init__(self, embed_dim: int, *, num_heads: int, kdim: int | None, vdim: int | None,
    out_dim: int | None, dropout: float, bias: bool, device=None, dtype=None, **options)`;
    `forward(query, key, value, mask=None, need_weights=False)` attends from a `(B, Lq,
    embed_dim)` query over `(B, Lk, kdim)` keys and `(B, Lk, vdim)` values (`None` dims mean
    `embed_dim`) and returns `(B, Lq, out_dim)`; with `need_weights=True`, `(out, weights)`
    where weights is `(B, num_heads, Lq, Lk)`. `mask` broadcasts to `(B, num_heads, Lq, Lk)`:
    boolean (True = may attend) or float (added to the scores). A query row whose keys are all
    masked gets zeros, never NaN. Self-attention passes one tensor three times. Plugs into any
    text transformer block.
pooling
    `__init__(self, dim: int, *, device=None, dtype=None, **options)`;
    `forward(x, mask=None)` pools `(B, N, dim)` to one vector per sequence and returns
    `(output, weights, log_prob)`: output `(B, dim)`, weights `(B, N)` with
    `output == (weights[..., None] * x).sum(1)`, and log_prob `(B,)`, the log-probability of
    a sampled choice (stochastic variants such as hard attention; None otherwise). `mask` is
    `(B, N)`, True at real elements; a sequence with none gets zeros. Plugs into any sequence
    classifier's pooling slot.
alignment
    `__init__(self, query_dim: int, key_dim: int, *, device=None, dtype=None, **options)`;
    `forward(query, memory, mask=None)` scores a decoder state `(B, query_dim)` against encoder
    outputs `(B, S, key_dim)` and returns `(context, weights)`: context `(B, key_dim)`, the
    weighted sum of `memory`, and weights `(B, S)`. `mask` is `(B, S)`, True at real source
    positions. Called once per decoding step; plugs into any attentional encoder-decoder.

Every other constructor parameter is an *option*: keyword-only, annotated and defaulted, so
that options given by name in the registry or to `zoo.create` are type-checked before any
module is built. The check runs when the class is first loaded.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from ..errors import AttentionInterfaceError

__all__ = ["ATTENTION_KINDS", "AttentionKind", "check_attention_class", "options_model"]


@dataclass(frozen=True)
class AttentionKind:
    """What a model passes to an attention class of this kind."""

    name: str
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    summary: str


ATTENTION_KINDS: dict[str, AttentionKind] = {
    kind.name: kind
    for kind in (
        AttentionKind(
            "channel",
            positional=("channels",),
            keywords=("device", "dtype"),
            summary="(B, C, H, W) -> (B, C, H, W) re-weighting inside a conv block",
        ),
        AttentionKind(
            "token",
            positional=("dim",),
            keywords=("num_heads", "qkv_bias", "attn_drop", "proj_drop", "device", "dtype"),
            summary="(B, N, dim) -> (B, N, dim) token mixing inside a transformer block",
        ),
        AttentionKind(
            "sequence",
            positional=("embed_dim",),
            keywords=("num_heads", "kdim", "vdim", "out_dim", "dropout", "bias", "device", "dtype"),
            summary="(B, Lq, E) over (B, Lk, kdim/vdim) -> (B, Lq, out_dim), masked self- or cross-attention",
        ),
        AttentionKind(
            "pooling",
            positional=("dim",),
            keywords=("device", "dtype"),
            summary="(B, N, dim) -> (B, dim) with weights (B, N): a sequence pooled to one vector",
        ),
        AttentionKind(
            "alignment",
            positional=("query_dim", "key_dim"),
            keywords=("device", "dtype"),
            summary="(B, Dq) against (B, S, Dk) -> context (B, Dk), weights (B, S): one decoder step",
        ),
    )
}


def check_attention_class(cls: Any, kind: AttentionKind, *, name: str) -> None:
    """Raise `AttentionInterfaceError` unless `cls` follows the interface of `kind`."""
    if not inspect.isclass(cls):
        raise AttentionInterfaceError(f"attention '{name}': {cls!r} is not a class")
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = [p.name for p in parameters]
    for required in (*kind.positional, *kind.keywords):
        if required not in names:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): a {kind.name} attention's "
                f"constructor takes '{required}' (interface: "
                f"{', '.join(kind.positional)}, *, {', '.join(kind.keywords)}, **options)"
            )
    for parameter in parameters:
        if parameter.name in kind.positional or parameter.name in kind.keywords:
            continue
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): option '{parameter.name}' must be keyword-only"
            )
        if parameter.default is inspect.Parameter.empty:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): option '{parameter.name}' needs a default"
            )
        if parameter.annotation is inspect.Parameter.empty:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): option '{parameter.name}' needs a type annotation"
            )
    if not callable(getattr(cls, "forward", None)):
        raise AttentionInterfaceError(f"attention '{name}' ({cls.__qualname__}) has no forward")


def options_model(cls: type, kind: AttentionKind) -> type[BaseModel]:
    """A pydantic model of the options of an attention class: its keyword-only extras."""
    hints = typing.get_type_hints(cls.__init__, include_extras=True)  # keep Annotated constraints
    fields: dict[str, Any] = {}
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if parameter.name in kind.positional or parameter.name in kind.keywords:
            continue
        fields[parameter.name] = (hints.get(parameter.name, Any), parameter.default)
    return create_model(
        f"{cls.__name__}Options",
        __config__=ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True),
        **fields,
    )
