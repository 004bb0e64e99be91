"""The interface attention variants share, and the typed `attn` argument of model configs.

An attention variant is a `torch.nn.Module` class registered under a name and a *kind*. The
kind fixes the constructor arguments a model passes and the forward contract:

channel
    `__init__(self, channels: int, *, device=None, dtype=None, **options)`; `forward(x)` maps
    a `(B, C, H, W)` feature map to one of the same shape (a re-weighting). Optional keyword
    `rd_channels: int | None = None` (interface 1.2): the reduced (bottleneck) width a slot
    asks for, as its architecture fixes it (EfficientNet and RegNet reduce from the block's
    input width, MobileNetV3 from the expanded width rounded to multiples of 8); None means
    the variant's own rule (SE's `rd_ratio`). A variant without a reduced width (ECA, a
    parameter-free attention) leaves it out of its constructor and is never passed it. Plugs
    into any ResNet, EfficientNet, MobileNetV3 and RegNet block.
token
    `__init__(self, dim: int, *, num_heads: int, qkv_bias: bool, attn_drop: float,
    proj_drop: float, device=None, dtype=None, **options)`;
    `forward(x, need_weights=False)` maps `(B, N, dim)` tokens to `(B, N, dim)`, and with
    `need_weights=True` returns `(out, weights)` where weights is `(B, num_heads, N, N)`.
    Optional keyword `block_index: int | None = None` (interface 1.4): the index of the block
    the slot is in, counted from 0, for a variant whose initialisation or constants depend
    on its depth (differential attention's lambda_init); None means the variant's default.
    Plugs into any ViT block.
sequence
    `__init__(self, embed_dim: int, *, num_heads: int, kdim: int | None, vdim: int | None,
    out_dim: int | None, dropout: float, bias: bool, device=None, dtype=None, **options)`;
    `forward(query, key, value, mask=None, need_weights=False)` attends from a `(B, Lq,
    embed_dim)` query over `(B, Lk, kdim)` keys and `(B, Lk, vdim)` values (`None` dims mean
    `embed_dim`) and returns `(B, Lq, out_dim)`; with `need_weights=True`, `(out, weights)`
    where weights is `(B, num_heads, Lq, Lk)`. `mask` means what its dtype says: bool (True =
    may attend) or integer (nonzero = may attend) is a keep-mask, float is added to the scores
    (a float mask of 0s and 1s is added too, with a warning). It broadcasts to `(B, num_heads,
    Lq, Lk)`, and a 3-D mask is `(B, Lq, Lk)`, the same for every head: `(B, 1, Lk)` padding,
    `(B, Lq, Lk)` padding and causal. A query row whose keys are all masked gets zeros, never
    NaN. Self-attention passes one tensor three times. Plugs into any text transformer block,
    and into an encoder-decoder's self- and cross-attention.

    Optionally, a variant decodes incrementally with a key-value cache (`IncrementalAttention`)
    when it also has `project_kv(key, value) -> (keys, values)`, the keys and values as it
    attends over them, and `attend(query, keys, values, mask=None, need_weights=False)`, its
    forward over those: `forward(q, key, value, mask)` equals `attend(q, *project_kv(key,
    value), mask)`. Both tensors are batch first with the key positions along dim -2 (`mha`:
    `(B, heads, Lk, d)`), so that a decoder appends each step's along dim -2 and keeps beams
    with `index_select(0, ...)`. A decoder caches these for a variant that has them, and the
    inputs `key` and `value` themselves for one that has not (projecting them again at every
    step): either way a step's output is the one its full recomputation gives.
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
class
    `__init__(self, dim: int, *, num_heads: int, qkv_bias: bool, attn_drop: float,
    proj_drop: float, device=None, dtype=None, **options)`;
    `forward(x, need_weights=False)` takes `(B, N, dim)` tokens whose first token is the
    class token and returns `(B, 1, dim)`: queries come from the class token only, keys and
    values from all N tokens. With `need_weights=True` it returns `(out, weights)` where
    weights is `(B, num_heads, 1, N)`. Plugs into any class-attention block (CaiT).

window
    `__init__(self, dim: int, *, num_heads: int, window_size: tuple[int, int], qkv_bias: bool,
    attn_drop: float, proj_drop: float, device=None, dtype=None, **options)`;
    `forward(x, mask=None, need_weights=False)` attends within each window of a token grid
    cut into `(Wh, Ww) = window_size` windows: `x` is `(B * nW, N, dim)` with `N = Wh * Ww`
    tokens per window in row-major order, the `nW` windows of each image contiguous, and
    returns `(B * nW, N, dim)`; with `need_weights=True`, `(out, weights)` where weights is
    `(B * nW, num_heads, N, N)`. `mask` is `(nW, N, N)`, float, added to the scores of every
    image's windows alike (Swin's shifted windows: 0 within a region, a large negative
    across). Position information is the variant's own (a relative position bias, say), as
    the window layout is fixed by `window_size`. Plugs into any Swin block.
conv
    `__init__(self, in_channels: int, out_channels: int, *, stride: int, device=None,
    dtype=None, **options)`, with the optional keyword `feat_size: tuple[int, int] | None =
    None`; `forward(x)` maps a
    `(B, in_channels, H, W)` feature map to `(B, out_channels, H / stride, W / stride)` (H and
    W divisible by `stride`): a residual block's spatial convolution *with its norm and
    activation*, which the variant owns and names (Selective Kernel's `paths.N.{conv,bn}`,
    split attention's `conv`, `bn0`, ...). `feat_size` is the `(H, W)` the slot will see,
    where the architecture fixes it; a variant whose parameters depend on it (bottleneck
    self-attention's relative position tables) needs it, refuses None when built and any
    other input size when run, in one line each. Plugs into the ResNet basic block, in place
    of `conv1`, `bn1`, `act1` (the block's second conv then takes timm's `conv2.conv`,
    `conv2.bn` names), and the ResNet bottleneck, in place of `conv2`, `bn2`, `act2`.
map_pooling
    `__init__(self, in_features: int, *, out_features: int, feat_size: tuple[int, int],
    device=None, dtype=None, **options)`; `forward(x, pre_logits=False)` pools a `(B,
    in_features, H, W)` feature map to `(B, out_features)` (`out_features` 0: no output
    projection, `(B, in_features)`), and with `pre_logits=True` returns the pooled vector
    before the output projection, `(B, in_features)`. `feat_size` is the `(H, W)` the
    architecture's images give; a map of another size is pooled too (position embeddings
    resampled, say). A network's head: CLIP's ResNets pool their last map so.

map
    `__init__(self, dim: int, *, out_dim: int | None, num_heads: int, key_dim: int, value_dim:
    int, device=None, dtype=None, **options)`, with the optional keywords `kv_stride: int = 1`
    and `kv_kernel_size: int = 3` (interface 1.4); `forward(x)` maps a `(B, dim, H, W)` feature
    map to `(B, out_dim, H, W)` (`None`: `dim`): every position attends over the positions of
    the map with `num_heads` query heads of `key_dim`, values of `value_dim`; keys and values
    may come from the map downsampled by `kv_stride` (a strided conv of `kv_kernel_size`).
    Plugs into MobileNetV4's mobile attention block (`mqa`).
latent_pool
    `__init__(self, dim: int, *, num_heads: int, mlp_ratio: float, act_layer: str,
    norm_layer: Callable[..., nn.Module], device=None, dtype=None, **options)` (interface
    1.4); `forward(x, need_weights=False)` pools `(B, N, dim)` tokens into one `(B, dim)`
    vector by learned queries attending over them (a pooling head, SigLIP's MAP), and with
    `need_weights=True` returns `(out, weights)` where weights is `(B, num_heads, N)`.
    `act_layer` names the model's activation (`zoo_plugins.layers.Activation`), and
    `norm_layer(width, device=None, dtype=None)` makes the model's token norm, for a head
    that has an MLP and a norm of its own. Plugs into any ViT head (`global_pool="map"`).

Every other constructor parameter is an *option*: keyword-only, annotated and defaulted, so
that options given by name in the registry or to `zoo.create` are type-checked before any
module is built.

A kind's *required* keywords are its contract: a slot always passes them, and they change
only with a new major version of the plugin interface (`zoo.version`). Its *optional*
keywords (`rd_channels`, `feat_size`) are how the interface grows within a major version: a
slot passes one only to a variant whose constructor names it (the rule pluggy follows for
hook arguments), so a variant written before the keyword existed keeps working. A variant
that names an optional keyword gives it a default, for the slots that do not pass it.

Two checks hold a class to its kind: `check_attention_class` reads the constructor's
signature, and `probe_attention_class` builds the class with its default options and runs
`forward` on tiny inputs on the CPU (on `meta` for a variant too large for that), checking
the shapes above. Both run when a variant is first used and when `zoo plugins` or
`zoo validate` check every installed component; a variant that passed is remembered between
processes (`zoo.registry.probes`), as long as its code is unchanged.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, create_model

from ..errors import AttentionInterfaceError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTENTION_KINDS",
    "AttentionKind",
    "IncrementalAttention",
    "accepted_keywords",
    "check_attention_class",
    "options_model",
    "probe_attention_class",
    "slot_keywords",
]


class _Probe:
    """Builds one attention class for its kind's probe inputs and checks what `forward` returns.

    Each module is built on `meta` first, which costs nothing whatever its size, then built
    again on the CPU and run there on tiny tensors if it is small, as every ordinary variant
    is. Only a variant too large for that runs on `meta`, where a linear layer's forward runs
    Python decompositions that import the compiler (`torch._dynamo`): a cost no process should
    pay to build a model.
    """

    def __init__(self, cls: type, kind: AttentionKind, name: str) -> None:
        self.cls = cls
        self.kind = kind
        self.where = f"attention '{name}' ({getattr(cls, '__qualname__', repr(cls))})"
        self.device = "cpu"
        """Where the module built last lives, and so its inputs."""

    def fail(self, reason: str) -> AttentionInterfaceError:
        return AttentionInterfaceError(f"{self.where}: {reason}")

    def build(self, *args: Any, **kwargs: Any) -> torch.nn.Module:
        kwargs = slot_keywords(self.cls, self.kind, kwargs)
        module = self._construct("meta", args, kwargs)
        self.device = "meta"
        if _size_in_bytes(module) <= PROBE_BYTES:
            on_cpu = self._construct("cpu", args, kwargs)
            # A context of the caller's (a hook that puts parameters on meta as they are
            # registered, as loading a checkpoint does) may have kept it off the CPU.
            if all(tensor.device.type == "cpu" for tensor in _tensors(on_cpu)):
                module, self.device = on_cpu, "cpu"
        return module.eval()  # stochastic variants decide deterministically in evaluation mode

    def _construct(self, device: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.nn.Module:
        import torch

        try:
            with torch.device(device):  # even tensors made without a device go there
                module = self.cls(*args, **kwargs, device=device, dtype=None)
        except Exception as error:
            raise self.fail(f"building it for a probe failed: {type(error).__name__}: {error}") from error
        if not isinstance(module, torch.nn.Module):
            raise self.fail(f"built a {type(module).__name__}, not a torch.nn.Module")
        return module

    def tensor(self, *shape: int) -> torch.Tensor:
        import torch

        return torch.zeros(shape, device=self.device)

    def mask(self, *shape: int) -> torch.Tensor:
        import torch

        return torch.ones(shape, dtype=torch.bool, device=self.device)

    def forward(self, module: torch.nn.Module, *inputs: Any, **kwargs: Any) -> Any:
        import torch

        try:
            with torch.device(self.device):
                return module(*inputs, **kwargs)
        except Exception as error:
            shapes = ", ".join(str(tuple(x.shape)) if x is not None else "None" for x in inputs)
            raise self.fail(
                f"forward failed on a probe input ({shapes}): {type(error).__name__}: {error}"
            ) from error

    def parts(self, result: Any, count: int, what: str) -> Sequence[Any]:
        if not isinstance(result, tuple) or len(result) != count:
            raise self.fail(f"a {self.kind.name} attention returns {what}; it returned {_describe(result)}")
        return result

    def expect(self, what: str, value: Any, form: str, shape: tuple[int, ...]) -> None:
        """Refuse `value` unless it is a tensor of `shape` (`form` names its dimensions)."""
        import torch

        if not isinstance(value, torch.Tensor):
            raise self.fail(f"its {what} must be a {form} tensor; it returned {_describe(value)}")
        if tuple(value.shape) != shape:
            raise self.fail(
                f"a {self.kind.name} attention's {what} must be {form} = {shape} on the probe input; "
                f"it returned {tuple(value.shape)}"
            )


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a tensor of shape {tuple(shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"


PROBE_BYTES = 1 << 24
"""A variant whose probe-sized module holds more than this (16 MiB) is run on `meta` only."""
# Probe sizes: small, and all different, so that a swapped dimension cannot pass unseen.
B, C, H, W, RD = 2, 16, 5, 7, 3
N, DIM, HEADS = 5, 16, 2
LQ, LK, KDIM, VDIM, OUT = 3, 4, 12, 10, 8
S, QUERY_DIM = 6, 12
WINDOW, WINDOWS = (2, 3), 4  # (Wh, Ww): N = 6 tokens per window; nW windows per image
CONV_OUT, CONV_H, CONV_W = 12, 6, 10  # even sizes, so that a stride of 2 divides them


def _probe_channel(probe: _Probe) -> None:
    """channel: `(B, C, H, W) -> (B, C, H, W)`, at the variant's own reduced width and, if it
    takes one, at one a slot asks for (`rd_channels`)."""
    for reduced in ({}, {"rd_channels": RD}):
        module = probe.build(C, **reduced)
        output = probe.forward(module, probe.tensor(B, C, H, W))
        probe.expect("output", output, "(B, C, H, W)", (B, C, H, W))


def _probe_token(probe: _Probe) -> None:
    """token: `(B, N, dim) -> (B, N, dim)`; with `need_weights=True`, weights `(B, heads, N, N)`;
    as a first block and, if it takes one, as a later one (`block_index`)."""
    for index in ({}, {"block_index": 2}):
        module = probe.build(DIM, num_heads=HEADS, qkv_bias=True, attn_drop=0.0, proj_drop=0.0, **index)
        x = probe.tensor(B, N, DIM)
        probe.expect("output", probe.forward(module, x), "(B, N, dim)", (B, N, DIM))
        out, weights = probe.parts(
            probe.forward(module, x, need_weights=True), 2, "(out, weights) with need_weights=True"
        )
        probe.expect("output", out, "(B, N, dim)", (B, N, DIM))
        probe.expect("weights", weights, "(B, num_heads, N, N)", (B, HEADS, N, N))


def _probe_sequence(probe: _Probe) -> None:
    """sequence: masked self-attention `(B, L, E) -> (B, L, E)` with weights `(B, heads, L, L)`,
    and cross-attention over `(B, Lk, kdim)` keys and `(B, Lk, vdim)` values to `(B, Lq, out_dim)`."""
    fixed = {"num_heads": HEADS, "dropout": 0.0, "bias": True}
    self_attention = probe.build(DIM, kdim=None, vdim=None, out_dim=None, **fixed)
    x, mask = probe.tensor(B, N, DIM), probe.mask(B, 1, 1, N)
    result = probe.forward(self_attention, x, x, x, mask, need_weights=True)
    out, weights = probe.parts(result, 2, "(out, weights) with need_weights=True")
    probe.expect("output", out, "(B, Lq, embed_dim)", (B, N, DIM))
    probe.expect("weights", weights, "(B, num_heads, Lq, Lk)", (B, HEADS, N, N))

    cross = probe.build(DIM, kdim=KDIM, vdim=VDIM, out_dim=OUT, **fixed)
    query, key, value = probe.tensor(B, LQ, DIM), probe.tensor(B, LK, KDIM), probe.tensor(B, LK, VDIM)
    probe.expect("output", probe.forward(cross, query, key, value), "(B, Lq, out_dim)", (B, LQ, OUT))
    if isinstance(cross, IncrementalAttention):
        _probe_incremental(probe, cross, query, key, value)


def _probe_incremental(probe: _Probe, module: IncrementalAttention, query, key, value) -> None:
    """A key-value cache: `project_kv` gives batch-first tensors with the keys along dim -2,
    and `attend` over them returns what `forward` does."""
    import torch

    try:
        projected = module.project_kv(key, value)
    except Exception as error:
        raise probe.fail(f"project_kv failed on a probe input: {type(error).__name__}: {error}") from error
    pair = probe.parts(projected, 2, "(keys, values) from project_kv")
    for what, tensor in zip(("keys", "values"), pair, strict=True):
        batch_and_keys = (tensor.shape[0], tensor.shape[-2]) if getattr(tensor, "ndim", 0) >= 2 else None
        if not isinstance(tensor, torch.Tensor) or batch_and_keys != (B, LK):
            raise probe.fail(
                f"project_kv's {what} must be batch first with the {LK} key positions along dim -2; "
                f"it returned {_describe(tensor)}"
            )
    try:
        result = module.attend(query, *projected, probe.mask(B, 1, 1, LK), need_weights=True)
    except Exception as error:
        raise probe.fail(f"attend failed on a probe input: {type(error).__name__}: {error}") from error
    out, weights = probe.parts(result, 2, "(out, weights) from attend with need_weights=True")
    probe.expect("output of attend", out, "(B, Lq, out_dim)", (B, LQ, OUT))
    probe.expect("weights of attend", weights, "(B, num_heads, Lq, Lk)", (B, HEADS, LQ, LK))


def _probe_pooling(probe: _Probe) -> None:
    """pooling: `(B, N, dim)`, mask `(B, N)` -> output `(B, dim)`, weights `(B, N)`, log_prob."""
    module = probe.build(DIM)
    result = probe.forward(module, probe.tensor(B, N, DIM), probe.mask(B, N))
    output, weights, _ = probe.parts(result, 3, "(output, weights, log_prob)")
    probe.expect("output", output, "(B, dim)", (B, DIM))
    probe.expect("weights", weights, "(B, N)", (B, N))


def _probe_alignment(probe: _Probe) -> None:
    """alignment: `(B, query_dim)` against `(B, S, key_dim)`, mask `(B, S)` -> context
    `(B, key_dim)`, weights `(B, S)`."""
    module = probe.build(QUERY_DIM, DIM)
    result = probe.forward(module, probe.tensor(B, QUERY_DIM), probe.tensor(B, S, DIM), probe.mask(B, S))
    context, weights = probe.parts(result, 2, "(context, weights)")
    probe.expect("context", context, "(B, key_dim)", (B, DIM))
    probe.expect("weights", weights, "(B, S)", (B, S))


def _probe_window(probe: _Probe) -> None:
    """window: `(B * nW, N, dim)` windows, with and without an `(nW, N, N)` mask, to
    `(B * nW, N, dim)`; with `need_weights=True`, weights `(B * nW, heads, N, N)`."""
    module = probe.build(
        DIM, num_heads=HEADS, window_size=WINDOW, qkv_bias=True, attn_drop=0.0, proj_drop=0.0
    )
    tokens = WINDOW[0] * WINDOW[1]
    x, mask = probe.tensor(B * WINDOWS, tokens, DIM), probe.tensor(WINDOWS, tokens, tokens)
    probe.expect("output", probe.forward(module, x), "(B * nW, N, dim)", (B * WINDOWS, tokens, DIM))
    result = probe.forward(module, x, mask, need_weights=True)
    out, weights = probe.parts(result, 2, "(out, weights) with need_weights=True")
    probe.expect("output", out, "(B * nW, N, dim)", (B * WINDOWS, tokens, DIM))
    probe.expect("weights", weights, "(B * nW, num_heads, N, N)", (B * WINDOWS, HEADS, tokens, tokens))


def _probe_class(probe: _Probe) -> None:
    """class: `(B, N, dim) -> (B, 1, dim)`; with `need_weights=True`, weights `(B, heads, 1, N)`."""
    module = probe.build(DIM, num_heads=HEADS, qkv_bias=True, attn_drop=0.0, proj_drop=0.0)
    x = probe.tensor(B, N, DIM)
    probe.expect("output", probe.forward(module, x), "(B, 1, dim)", (B, 1, DIM))
    out, weights = probe.parts(
        probe.forward(module, x, need_weights=True), 2, "(out, weights) with need_weights=True"
    )
    probe.expect("output", out, "(B, 1, dim)", (B, 1, DIM))
    probe.expect("weights", weights, "(B, num_heads, 1, N)", (B, HEADS, 1, N))


def _probe_conv(probe: _Probe) -> None:
    """conv: `(B, in, H, W) -> (B, out, H / stride, W / stride)` at strides 1 and 2, told the
    input size."""
    for stride in (1, 2):
        module = probe.build(C, CONV_OUT, stride=stride, feat_size=(CONV_H, CONV_W))
        output = probe.forward(module, probe.tensor(B, C, CONV_H, CONV_W))
        shape = (B, CONV_OUT, CONV_H // stride, CONV_W // stride)
        probe.expect(f"output at stride {stride}", output, "(B, out_channels, H / stride, W / stride)", shape)


def _probe_map(probe: _Probe) -> None:
    """map: `(B, C, H, W) -> (B, out_dim, H, W)`, keys and values from the full map and, if
    the variant takes `kv_stride`, from one downsampled by 2."""
    for stride in (1, 2):
        module = probe.build(C, out_dim=CONV_OUT, num_heads=HEADS, key_dim=RD, value_dim=5, kv_stride=stride)
        output = probe.forward(module, probe.tensor(B, C, CONV_H, CONV_W))
        probe.expect("output", output, "(B, out_dim, H, W)", (B, CONV_OUT, CONV_H, CONV_W))


def _probe_map_pooling(probe: _Probe) -> None:
    """map_pooling: `(B, C, H, W) -> (B, out_features)`, with a projection and without, at the
    size it was built for and at another; `pre_logits=True` gives `(B, C)`."""
    for out_features in (OUT, 0):
        module = probe.build(C, out_features=out_features, feat_size=(H, W))
        for height, width in ((H, W), (CONV_H, CONV_W)):
            output = probe.forward(module, probe.tensor(B, C, height, width))
            probe.expect("output", output, "(B, out_features or C)", (B, out_features or C))
        pooled = probe.forward(module, probe.tensor(B, C, H, W), pre_logits=True)
        probe.expect("output with pre_logits=True", pooled, "(B, C)", (B, C))


def _probe_latent_pool(probe: _Probe) -> None:
    """latent_pool: `(B, N, dim) -> (B, dim)`; with `need_weights=True`, weights `(B, heads, N)`."""
    from torch import nn

    module = probe.build(DIM, num_heads=HEADS, mlp_ratio=2.0, act_layer="gelu", norm_layer=nn.LayerNorm)
    x = probe.tensor(B, N, DIM)
    probe.expect("output", probe.forward(module, x), "(B, dim)", (B, DIM))
    out, weights = probe.parts(
        probe.forward(module, x, need_weights=True), 2, "(out, weights) with need_weights=True"
    )
    probe.expect("output", out, "(B, dim)", (B, DIM))
    probe.expect("weights", weights, "(B, num_heads, N)", (B, HEADS, N))


@runtime_checkable
class IncrementalAttention(Protocol):
    """A sequence attention with a key-value cache (see the `sequence` kind above): a decoder
    keeps `project_kv`'s keys and values between steps and calls `attend` over them."""

    def project_kv(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def attend(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class AttentionKind:
    """What a model passes to an attention class of this kind, and the probe of its forward."""

    name: str
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    summary: str
    probe: Callable[[_Probe], None] = field(repr=False, compare=False)
    optional: tuple[str, ...] = ()
    """Keywords (among `keywords`) added within the major version: a slot passes one only to a
    variant whose constructor names it, and a constructor that names one gives it a default."""
    since: str = "1.0"
    """The plugin interface version that added the kind."""

    @property
    def required(self) -> tuple[str, ...]:
        """The keywords every variant of the kind takes: its contract."""
        return tuple(keyword for keyword in self.keywords if keyword not in self.optional)

    def signature(self) -> str:
        """The constructor as the docs write it: `(channels, *, rd_channels=None, device, dtype,
        **options)` (an optional keyword shows its default)."""
        keywords = [f"{k}=None" if k in self.optional else k for k in self.keywords]
        return f"({', '.join(self.positional)}, *, {', '.join(keywords)}, **options)"


ATTENTION_KINDS: dict[str, AttentionKind] = {
    kind.name: kind
    for kind in (
        AttentionKind(
            "channel",
            positional=("channels",),
            keywords=("rd_channels", "device", "dtype"),
            summary="(B, C, H, W) -> (B, C, H, W) re-weighting inside a conv block",
            probe=_probe_channel,
            optional=("rd_channels",),
        ),
        AttentionKind(
            "token",
            positional=("dim",),
            keywords=("num_heads", "qkv_bias", "attn_drop", "proj_drop", "block_index", "device", "dtype"),
            summary="(B, N, dim) -> (B, N, dim) token mixing inside a transformer block",
            probe=_probe_token,
            optional=("block_index",),
        ),
        AttentionKind(
            "sequence",
            positional=("embed_dim",),
            keywords=("num_heads", "kdim", "vdim", "out_dim", "dropout", "bias", "device", "dtype"),
            summary="(B, Lq, E) over (B, Lk, kdim/vdim) -> (B, Lq, out_dim), masked self- or cross-attention",
            probe=_probe_sequence,
        ),
        AttentionKind(
            "pooling",
            positional=("dim",),
            keywords=("device", "dtype"),
            summary="(B, N, dim) -> (B, dim) with weights (B, N): a sequence pooled to one vector",
            probe=_probe_pooling,
        ),
        AttentionKind(
            "alignment",
            positional=("query_dim", "key_dim"),
            keywords=("device", "dtype"),
            summary="(B, Dq) against (B, S, Dk) -> context (B, Dk), weights (B, S): one decoder step",
            probe=_probe_alignment,
        ),
        AttentionKind(
            "window",
            positional=("dim",),
            keywords=("num_heads", "window_size", "qkv_bias", "attn_drop", "proj_drop", "device", "dtype"),
            summary="(B * nW, Wh * Ww, dim) -> same: self-attention within windows of a token grid",
            probe=_probe_window,
            since="1.1",
        ),
        # class: CaiT's class-attention kind.
        AttentionKind(
            "class",
            positional=("dim",),
            keywords=("num_heads", "qkv_bias", "attn_drop", "proj_drop", "device", "dtype"),
            summary="(B, N, dim) -> (B, 1, dim): the class token (token 0) attends over all tokens",
            probe=_probe_class,
            since="1.1",
        ),
        AttentionKind(
            "conv",
            positional=("in_channels", "out_channels"),
            keywords=("stride", "feat_size", "device", "dtype"),
            summary="(B, C, H, W) -> (B, C', H / s, W / s): a block's spatial conv with its norm, attending",
            probe=_probe_conv,
            optional=("feat_size",),
            since="1.2",
        ),
        # map: MobileNetV4's attention over the positions of a feature map.
        AttentionKind(
            "map",
            positional=("dim",),
            keywords=(
                "out_dim",
                "num_heads",
                "key_dim",
                "value_dim",
                "kv_stride",
                "kv_kernel_size",
                "device",
                "dtype",
            ),
            summary="(B, C, H, W) -> (B, C', H, W): self-attention among the positions of a feature map",
            probe=_probe_map,
            optional=("kv_stride", "kv_kernel_size"),
            since="1.4",
        ),
        # map_pooling: CLIP's attention pooling of a ResNet's last feature map.
        AttentionKind(
            "map_pooling",
            positional=("in_features",),
            keywords=("out_features", "feat_size", "device", "dtype"),
            summary="(B, C, H, W) -> (B, out_features): a feature map pooled to one vector by attention",
            probe=_probe_map_pooling,
            since="1.4",
        ),
        # latent_pool: the attention-pooling head (SigLIP's MAP).
        AttentionKind(
            "latent_pool",
            positional=("dim",),
            keywords=("num_heads", "mlp_ratio", "act_layer", "norm_layer", "device", "dtype"),
            summary="(B, N, dim) -> (B, dim): learned queries attend over the tokens, a pooling head",
            probe=_probe_latent_pool,
            since="1.4",
        ),
    )
}


def check_attention_class(cls: Any, kind: AttentionKind, *, name: str) -> None:
    """Raise `AttentionInterfaceError` unless `cls` follows the interface of `kind`."""
    if not inspect.isclass(cls):
        raise AttentionInterfaceError(f"attention '{name}': {cls!r} is not a class")
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = [p.name for p in parameters]
    for required in (*kind.positional, *kind.required):
        if required not in names:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): a {kind.name} attention's "
                f"constructor takes '{required}' (interface: {kind.signature()})"
            )
    for parameter in parameters:
        if parameter.name in kind.optional and parameter.default is inspect.Parameter.empty:
            raise AttentionInterfaceError(
                f"attention '{name}' ({cls.__qualname__}): '{parameter.name}' needs a default "
                f"(None: the variant's own choice), as a {kind.name} slot may leave it out"
            )
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


def probe_attention_class(cls: type, kind: AttentionKind, *, name: str) -> None:
    """Raise `AttentionInterfaceError` unless `cls`, built with its default options, returns
    what `kind`'s contract requires on small probe inputs (see `_Probe` for where it runs)."""
    import torch

    # The CPU's random numbers are put back after: whether a probe ran (or was remembered from
    # an earlier process) must not change the weights a seeded build draws next.
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        kind.probe(_Probe(cls, kind, name))


def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


def _size_in_bytes(module: torch.nn.Module) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in _tensors(module))


def accepted_keywords(cls: type, kind: AttentionKind) -> frozenset[str]:
    """The optional keywords of `kind` that `cls`'s constructor names."""
    parameters = inspect.signature(cls.__init__).parameters
    return frozenset(keyword for keyword in kind.optional if keyword in parameters)


def slot_keywords(cls: type, kind: AttentionKind, keywords: dict[str, Any]) -> dict[str, Any]:
    """What a slot passes to `cls`: `keywords` less the optional ones it does not name."""
    accepted = accepted_keywords(cls, kind)
    return {k: v for k, v in keywords.items() if k not in kind.optional or k in accepted}


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
