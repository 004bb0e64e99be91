"""What a forward pass costs: multiply-adds, FLOPs, parameters and activations, by operator
and by module, counted on the `meta` device (no memory, no compute).

    >>> report = zoo.flops("vit_base_patch16_224")
    >>> report.macs / 1e9, report.flops / 1e9      # 17.6 GMACs, 35.1 GFLOPs
    >>> [(row.label, row.macs) for row in report.operators]

Conventions, those of the papers and of timm's published figures:

- **MACs** are the multiply-adds of convolutions and matrix products (linear layers, the
  attention products QK^T and AV, LSTM gates); a bias is not counted. **FLOPs** are 2 per
  multiply-add, what `torch.utils.flop_counter.FlopCounterMode` counts and what `zoo bench`
  divides by time. timm's "GMACs" (counted by fvcore) are the same multiply-adds, plus a few
  per element of each normalisation, which is a tenth of a percent of a ViT or a ResNet.
- The rest is counted apart, as FLOPs outside the multiply-adds (`other_flops`), one row each:
  softmax, 5 per element (max, subtract, exp, sum, divide); layer and group norm and batch
  norm in training, 5 per element (4 without affine); batch norm with running statistics,
  2 per element (1 without affine); activations (relu, gelu, silu, sigmoid, tanh, ...), 1
  per element. Additions (residuals), scaling, pooling, embedding look-ups and data movement
  are not counted.
- **Attention** is shown as its terms, which grow with the number of queries times the number
  of keys (N^2 for self-attention, N times the window for window attention): `attention
  QK^T`, `attention softmax`, `attention AV`. A fused `scaled_dot_product_attention` is split
  by the shapes of its query, key and value; variants that compute attention step by step
  mark their steps with `zoo.attention.flop_term` (see `zoo.registry.flop_terms`). Causal
  masks are not discounted, as torch and timm do not.
- **Activations** are the elements written by the convolutions and matrix products (fvcore's
  and timm's "activations"), the attention scores included as if they were written, which
  fused kernels avoid; `activation_bytes` is their size in the dtype counted in.

The count is `FlopCounterMode` with the formulas torch has for convolutions, matrix products
and fused attention kernels, and formulas of the zoo's own for the rows above; modules are
told apart by `torch.utils.module_tracker.ModuleTracker`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..devices import resolve_dtype
from ..errors import Argument, ArgumentError, ZooError
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, image_size, model_of
from ..registry.flop_terms import (
    ATTENTION_AV,
    ATTENTION_QK,
    ATTENTION_SOFTMAX,
    FUSED_ATTENTION,
    counting_terms,
    current_term,
)
from ..weights.resolve import resolve

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTENTION_TERMS",
    "FlopCount",
    "FlopReport",
    "ModuleRow",
    "OperatorRow",
    "count_flops",
    "example_inputs",
    "flops",
    "growth",
    "growth_sizes",
    "report_size",
]

ATTENTION_TERMS = (ATTENTION_QK, ATTENTION_SOFTMAX, ATTENTION_AV)
"""The rows of attention's terms, which grow with queries times keys."""

SOFTMAX_FLOPS = 5
"""Per element: max, subtract, exp, sum, divide."""

_MATRIX_ROWS = {
    "mm": "linear",
    "addmm": "linear",
    "_scaled_mm": "linear",
    "bmm": "matmul",
    "baddbmm": "matmul",
}
_CONV_ROWS = {
    "convolution": "conv",
    "_convolution": "conv",
    "cudnn_convolution": "conv",
    "convolution_overrideable": "conv",
    "_slow_conv2d_forward": "conv",
    "convolution_backward": "conv (backward)",
}
_FUSED_KERNELS = (
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
)
_ACTIVATIONS = (
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "leaky_relu",
    "elu",
    "mish",
)


@dataclass(frozen=True)
class OperatorRow:
    """One row of the count by operator: every call counted under one label."""

    label: str
    """`conv`, `linear` (products of 2-D operands: linear layers, LSTM gates), `matmul`
    (batched products outside attention), `attention QK^T`, `attention softmax`,
    `attention AV`, `softmax`, `layer norm`, `batch norm`, `gelu`, ... or a variant's own
    `flop_term` label."""
    calls: int
    macs: int
    flops: int
    """2 per multiply-add, plus the row's FLOPs outside multiply-adds."""
    activations: int
    scores: tuple[tuple[int, int], ...] = ()
    """For attention terms, each (Lq, Lk) seen: the queries and keys the term grows with."""


@dataclass(frozen=True)
class ModuleRow:
    """One module of the model (its submodules included)."""

    name: str
    """Dotted path in the model (`blocks.0.attn`); "" for the model itself."""
    depth: int
    """0 for the model, 1 for its children, ..."""
    params: int
    macs: int
    flops: int
    activations: int


@dataclass(frozen=True)
class FlopCount:
    """What `count_flops` counted: one forward pass (or whatever `step` ran)."""

    operators: tuple[OperatorRow, ...]
    modules: tuple[ModuleRow, ...]
    params: int

    @property
    def macs(self) -> int:
        """Multiply-adds of convolutions and matrix products: the papers' and timm's MACs."""
        return sum(row.macs for row in self.operators)

    @property
    def flops(self) -> int:
        """2 per multiply-add (`2 * macs`)."""
        return 2 * self.macs

    @property
    def other_flops(self) -> int:
        """FLOPs outside the multiply-adds: softmax, normalisation, activations."""
        return sum(row.flops for row in self.operators) - self.flops

    @property
    def activations(self) -> int:
        return sum(row.activations for row in self.operators)

    def operator(self, label: str) -> OperatorRow | None:
        """The row of `label`, if anything was counted under it."""
        return next((row for row in self.operators if row.label == label), None)

    def module(self, name: str) -> ModuleRow | None:
        return next((row for row in self.modules if row.name == name), None)


@dataclass(frozen=True)
class FlopReport:
    """What `flops` reports for a model at one input size; `as_dict()` is JSON-able."""

    name: str
    task: str | None
    input_size: tuple[int, ...]
    """Shape of one sample of the (first) input: (C, H, W) for images, (L,) for token ids."""
    batch: int
    dtype: str
    count: FlopCount = field(repr=False)

    @property
    def params(self) -> int:
        return self.count.params

    @property
    def macs(self) -> int:
        return self.count.macs

    @property
    def flops(self) -> int:
        return self.count.flops

    @property
    def other_flops(self) -> int:
        return self.count.other_flops

    @property
    def activations(self) -> int:
        return self.count.activations

    @property
    def activation_bytes(self) -> int:
        """The activations' size in `dtype`."""
        return self.activations * resolve_dtype(self.dtype).itemsize

    @property
    def operators(self) -> tuple[OperatorRow, ...]:
        return self.count.operators

    @property
    def modules(self) -> tuple[ModuleRow, ...]:
        return self.count.modules

    def operator(self, label: str) -> OperatorRow | None:
        """The row of `label`, if anything was counted under it."""
        return self.count.operator(label)

    def module(self, name: str) -> ModuleRow | None:
        """The row of the module at `name` ("" for the model), if it was called."""
        return self.count.module(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "input_size": list(self.input_size),
            "batch": self.batch,
            "dtype": self.dtype,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "other_flops": self.other_flops,
            "activations": self.activations,
            "activation_bytes": self.activation_bytes,
            "operators": [
                {**asdict(row), "scores": [list(pair) for pair in row.scores]} for row in self.operators
            ],
            "modules": [asdict(row) for row in self.modules],
        }


# ---------------------------------------------------------------------- counting


class _Tally:
    """The rows counted so far, by label and by module."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.rows: dict[str, dict[str, Any]] = {}
        self.modules: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.after_softmax = False  # within a fused attention call: its softmax is done

    def add(
        self,
        label: str,
        *,
        macs: int = 0,
        flops: int = 0,
        activations: int = 0,
        scores: tuple[int, int] | None = None,
    ) -> None:
        row = self.rows.setdefault(label, {"calls": 0, "macs": 0, "flops": 0, "activations": 0, "scores": []})
        row["calls"] += 1
        row["macs"] += macs
        row["flops"] += flops
        row["activations"] += activations
        if scores is not None and scores not in row["scores"]:
            row["scores"].append(scores)
        for parent in set(self.tracker.parents):
            if parent != "Global":
                totals = self.modules[parent]
                totals[0] += macs
                totals[1] += flops
                totals[2] += activations

    def operator_rows(self) -> tuple[OperatorRow, ...]:
        return tuple(
            OperatorRow(
                label, row["calls"], row["macs"], row["flops"], row["activations"], tuple(row["scores"])
            )
            for label, row in self.rows.items()
        )


def _name(packet: Any) -> str:
    return getattr(packet, "__name__", str(packet)).split(".")[-1]


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else ()


def _numel(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(_numel(item) for item in value)
    return 0


def _matrix_operands(name: str, args: Sequence[Any]) -> tuple[Any, Any]:
    """The two matrices of a product: `addmm` and `baddbmm` take the bias first."""
    return (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])


class _Formulas:
    """The formulas `FlopCounterMode` counts with, each recording its calls in a `_Tally`:
    torch's own for convolutions, matrix products and attention kernels, and the zoo's for
    softmax, normalisation and activations."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally

    def mapping(self) -> dict[Any, Callable[..., int]]:
        import torch
        from torch.utils.flop_counter import flop_registry

        mapping = {packet: self._products(packet, formula) for packet, formula in flop_registry.items()}
        aten = torch.ops.aten
        cpu_kernel = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
        if cpu_kernel is not None and cpu_kernel not in mapping:  # a kernel torch does not count
            mapping[cpu_kernel] = self._products(cpu_kernel, None)
        for name in ("_softmax", "_safe_softmax", "_log_softmax"):
            self._add(mapping, name, self._softmax)
        for name in ("native_layer_norm", "native_group_norm"):
            self._add(mapping, name, self._norm)
        for name in ("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training"):
            self._add(mapping, name, self._batch_norm)
        for name in _ACTIVATIONS:
            self._add(mapping, name, self._activation)
            self._add(mapping, f"{name}_", self._activation)
        return mapping

    @staticmethod
    def _add(mapping: dict[Any, Callable[..., int]], name: str, formula: Callable[..., int]) -> None:
        import torch

        packet = getattr(torch.ops.aten, name, None)
        if packet is not None:
            mapping[packet] = _raw(lambda *args, out_val=None, **kwargs: formula(packet, args, out_val))

    def _products(self, packet: Any, formula: Callable[..., int] | None) -> Callable[..., int]:
        name = _name(packet)

        def count(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
            if name in _FUSED_KERNELS:
                return self._fused_attention(args)
            flops = formula(*args, out_val=out_val, **kwargs)
            self._record_product(name, args, out_val, flops)
            return flops

        return _raw(count)

    def _record_product(self, name: str, args: Sequence[Any], out: Any, flops: int) -> None:
        term = current_term()
        if term == FUSED_ATTENTION:  # torch's math path of a fused call: QK^T, softmax, AV
            term = ATTENTION_AV if self.tally.after_softmax else ATTENTION_QK
        label = term or _MATRIX_ROWS.get(name) or _CONV_ROWS.get(name) or name
        scores = None
        if label == ATTENTION_QK:
            scores = _shape(out)[-2:]
        elif label == ATTENTION_AV and name in _MATRIX_ROWS:
            scores = _shape(_matrix_operands(name, args)[0])[-2:]
        self.tally.add(label, macs=flops // 2, flops=flops, activations=_numel(out), scores=scores or None)

    def _fused_attention(self, args: Sequence[Any]) -> int:
        """A fused kernel: (B, h, Lq, d) queries, (B, h_kv, Lk, d) keys, (B, h_kv, Lk, dv)
        values, split into its three terms as the step-by-step computation has them."""
        query, key, value = (_shape(x) for x in args[:3])
        *batch, queries, depth = query
        keys, value_depth = key[-2], value[-1]
        scores = math.prod(batch) * queries * keys
        qk, av = scores * depth, scores * value_depth
        pair = (queries, keys)
        self.tally.add(ATTENTION_QK, macs=qk, flops=2 * qk, activations=scores, scores=pair)
        self.tally.add(ATTENTION_SOFTMAX, flops=SOFTMAX_FLOPS * scores, scores=pair)
        self.tally.add(
            ATTENTION_AV,
            macs=av,
            flops=2 * av,
            activations=math.prod(batch) * queries * value_depth,
            scores=pair,
        )
        return 2 * (qk + av) + SOFTMAX_FLOPS * scores

    def _elementwise(self, label: str, flops: int) -> int:
        term = current_term()
        self.tally.add(term if term not in (None, FUSED_ATTENTION) else label, flops=flops)
        return flops

    def _softmax(self, packet: Any, args: Sequence[Any], out: Any) -> int:
        term = current_term()
        in_attention = term in (FUSED_ATTENTION, ATTENTION_SOFTMAX)
        if term == FUSED_ATTENTION:
            self.tally.after_softmax = True
        label = ATTENTION_SOFTMAX if in_attention else (term or "softmax")
        flops = SOFTMAX_FLOPS * _numel(out)
        scores = _shape(out)[-2:] if in_attention else None
        self.tally.add(label, flops=flops, scores=scores)
        return flops

    def _norm(self, packet: Any, args: Sequence[Any], out: Any) -> int:
        x, weight = args[0], args[1] if len(args) > 1 else None
        label = "layer norm" if _name(packet) == "native_layer_norm" else "group norm"
        return self._elementwise(label, (5 if weight is not None else 4) * x.numel())

    def _batch_norm(self, packet: Any, args: Sequence[Any], out: Any) -> int:
        x, weight = args[0], args[1]
        running = _name(packet) == "_native_batch_norm_legit_no_training" or (
            len(args) > 5 and args[3] is not None and not args[5]
        )
        per_element = (2 if weight is not None else 1) if running else (5 if weight is not None else 4)
        return self._elementwise("batch norm", per_element * x.numel())

    def _activation(self, packet: Any, args: Sequence[Any], out: Any) -> int:
        return self._elementwise(_name(packet).rstrip("_"), _numel(out))


def _raw(formula: Callable[..., int]) -> Callable[..., int]:
    """Mark a formula as taking the tensors themselves, not their shapes."""
    formula._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode's flag
    return formula


def _fused_attention_calls(tally: _Tally) -> AbstractContextManager[Any]:
    """A `TorchFunctionMode` that marks each `scaled_dot_product_attention` call, so that the
    products torch computes it with are told apart (QK^T before the softmax, AV after)."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    from ..registry.flop_terms import flop_term

    class FusedAttentionCalls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is not F.scaled_dot_product_attention:
                return func(*args, **kwargs)
            with flop_term(FUSED_ATTENTION):
                tally.after_softmax = False
                return func(*args, **kwargs)

    return FusedAttentionCalls()


def count_flops(
    model: torch.nn.Module,
    inputs: Sequence[Any],
    *,
    step: Callable[[torch.nn.Module, Sequence[Any]], Any] | None = None,
) -> FlopCount:
    """Count what a model's forward pass on `inputs` costs, by operator and by module.

    Runs on whatever device the model and inputs are on; `meta` counts without memory or
    compute. The model is not put in eval mode here: dropout and batch norm count as the mode
    the model is in.

    Args:
        model: The model.
        inputs: Positional inputs of its forward pass.
        step: What to run instead of `model(*inputs)` under `torch.no_grad()`: a training
            step, say (`lambda model, x: loss(model(*x)).backward()`), counts the backward
            pass too.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from torch.utils.module_tracker import ModuleTracker

    tracker = ModuleTracker()
    tally = _Tally(tracker)
    counter = FlopCounterMode(display=False, custom_mapping=_Formulas(tally).mapping())
    with ExitStack() as stack:
        stack.enter_context(counting_terms())
        stack.enter_context(tracker)
        stack.enter_context(counter)
        stack.enter_context(_fused_attention_calls(tally))
        if step is None:
            stack.enter_context(torch.no_grad())
            model(*inputs)
        else:
            step(model, inputs)
    return FlopCount(tally.operator_rows(), _module_rows(model, tally.modules), _params(model))


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _module_rows(model: torch.nn.Module, counted: Mapping[str, list[int]]) -> tuple[ModuleRow, ...]:
    """One row per module that was called, in the model's order; the tracker names modules
    `ClassName.path.in.model`."""
    by_path = {name.partition(".")[2] if "." in name else "": totals for name, totals in counted.items()}
    rows = []
    for path, module in model.named_modules():
        if path in by_path:
            macs, flops, activations = by_path[path]
            depth = path.count(".") + 1 if path else 0
            rows.append(ModuleRow(path, depth, _params(module), macs, flops, activations))
    return tuple(rows)


# ---------------------------------------------------------------------- a model by name


def example_inputs(
    resolved: Resolved,
    registry: Registry,
    model_args: Mapping[str, Any],
    *,
    img_size: int | None = None,
    seq_len: int | None = None,
    device: Any = None,
    dtype: Any = None,
) -> tuple[dict[str, Any], Callable[[int], tuple[Any, ...]]]:
    """The builder arguments a model takes these inputs with, and `inputs(batch)`: random
    inputs of a forward pass.

    Images come at `img_size` (a square) or else at the input size of the weights'
    preprocessing (a model whose config fixes its input size by `img_size` at that size);
    a family with an `img_size` argument is built for `img_size`. Other families give their
    own example input, `seq_len` steps long where they take sequences.

    Raises:
        ArgumentError: the model has no task, or takes no input of the kind asked for.
    """
    import torch

    task = registry.task(resolved)
    if task is None:
        raise ArgumentError(f"'{resolved}': its family declares no task, so no example input to count")
    model_args = dict(model_args)
    if task in IMAGE_TASKS:
        if seq_len is not None:
            raise ArgumentError(
                f"'{resolved}' takes images: {{seq_len}} does not apply", arguments=[Argument("seq_len")]
            )
        family_config = registry.builder(resolved.entry.builder).config_type
        if img_size is not None and "img_size" in family_config.model_fields:
            model_args["img_size"] = img_size
        size = _image_input_size(resolved, registry, model_args, img_size)
        return model_args, lambda batch: (torch.randn(batch, *size, device=device, dtype=dtype),)
    if img_size is not None:
        raise ArgumentError(
            f"'{resolved}' is {model_of(task)}: it takes no images, so {{img_size}} does not apply",
            arguments=[Argument("img_size")],
        )
    family = registry.builder(resolved.entry.builder).family
    config = registry.build_config(resolved, model_args)

    def inputs(batch: int) -> tuple[Any, ...]:
        made = tuple(family.example_input(config, batch=batch, seq_len=seq_len, device=device, dtype=dtype))
        if seq_len is not None and not any(_length(x) == seq_len for x in made):
            lengths = sorted({_length(x) for x in made if _length(x) is not None})
            raise ArgumentError(
                f"'{resolved}' cannot take sequences of {seq_len} steps: its family's example input "
                f"has {', '.join(map(str, lengths)) or 'no'} steps"
            )
        return made

    return model_args, inputs


def _length(x: Any) -> int | None:
    """Steps of a batch of sequences: (B, L) ids or (B, T, F) frames."""
    shape = _shape(x)
    return shape[1] if len(shape) >= 2 else None


def _image_input_size(
    resolved: Resolved, registry: Registry, model_args: Mapping[str, Any], img_size: int | None
) -> tuple[int, int, int]:
    config = registry.build_config(resolved, model_args)
    weights = resolved.published
    preprocessing = weights.preprocessing if weights is not None else None
    published = tuple(preprocessing.input_size) if preprocessing is not None else None
    channels = getattr(config, "in_chans", None) or (published[0] if published else 3)
    if img_size is not None:
        return channels, img_size, img_size
    if published is not None and "img_size" not in model_args:  # the weights' own input size
        return channels, *published[1:]
    height, width = image_size(config) or (published[1:] if published else (224, 224))
    return channels, height, width


def flops(
    name: str | Resolved,
    *,
    img_size: int | None = None,
    seq_len: int | None = None,
    batch: int = 1,
    dtype: str | torch.dtype | None = None,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> FlopReport:
    """Count what one forward pass of a model costs, on `meta` (random weights are never made).

    Args:
        name: A model name of any form (`name.tag` counts that tag's head at its input size).
        img_size: Images of this size (a square) instead of the weights' input size; a
            family with an `img_size` argument is built for it.
        seq_len: Steps of each sequence, for sequence models (default: the family's).
        batch: Samples in the batch counted.
        dtype: Dtype the activations are sized in (default float32).
        model_args: Builder arguments on top of the registry's.
        registry: The registry to use instead of the installed plugins' one.

    Raises:
        ArgumentError: an input the model cannot take (a size it refuses, a sequence length for
            an image model, ...), in one line.
    """
    import torch

    if batch < 1:
        raise ArgumentError(f"batch must be at least 1, not {batch}")
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    precision = resolve_dtype(dtype) or torch.float32
    model_args, inputs = example_inputs(
        resolved,
        registry,
        model_args or {},
        img_size=img_size,
        seq_len=seq_len,
        device="meta",
        dtype=precision,
    )
    config = registry.build_config(resolved, model_args)
    model = registry.builder(resolved.entry.builder).build(config, device="meta", dtype=precision).eval()
    sample = inputs(batch)
    try:
        count = count_flops(model, sample)
    except ZooError:
        raise
    except (ValueError, RuntimeError, TypeError, IndexError, NotImplementedError) as error:
        shapes = " and ".join("x".join(map(str, _shape(x))) for x in sample)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArgumentError(f"'{resolved}' cannot run on {shapes}: {reason}") from error
    return FlopReport(
        name=str(resolved),
        task=registry.task(resolved),
        input_size=_shape(sample[0])[1:],
        batch=batch,
        dtype=str(precision).removeprefix("torch."),
        count=count,
    )


def growth_sizes(
    name: str | Resolved, *, registry: Registry | None = None, model_args: Mapping[str, Any] | None = None
) -> tuple[str, list[int]]:
    """What a model's cost grows with and the sizes `growth` counts it at by default:
    `("image size", [S/2, 3S/4, ..., 2S])` around an image model's input size S (in steps
    of S/4), `("sequence length", [L/4, L/2, ..., 8L])` around a sequence model's length L."""
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    _, inputs = example_inputs(resolved, registry, model_args or {}, device="meta")
    sample = _shape(inputs(1)[0])[1:]
    if registry.task(resolved) in IMAGE_TASKS:
        return "image size", sorted({max(1, sample[-1] * k // 4) for k in range(2, 9)})
    length = sample[0] if sample else 16
    return "sequence length", sorted({max(1, length * 2**k // 4) for k in range(6)})


def growth(
    name: str | Resolved,
    sizes: Iterable[int] | None = None,
    *,
    batch: int = 1,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> tuple[str, list[FlopReport]]:
    """Count a model at several image sizes (image models) or sequence lengths (others).

    Args:
        sizes: The sizes; by default those of `growth_sizes`, leaving out any the model
            cannot take. Given sizes must all be taken.

    Returns:
        What the sizes are ("image size" or "sequence length") and one report per size.

    Raises:
        ArgumentError: a size given that the model cannot take, or fewer than two sizes.
    """
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    axis, defaults = growth_sizes(resolved, registry=registry, model_args=model_args)
    chosen = sorted(set(sizes)) if sizes is not None else defaults
    key = "img_size" if axis == "image size" else "seq_len"
    reports = []
    for size in chosen:
        try:
            reports.append(
                flops(resolved, batch=batch, model_args=model_args, registry=registry, **{key: size})
            )
        except ArgumentError:
            if sizes is not None:
                raise
    if len(reports) < 2:
        taken = ", ".join(str(r.input_size[-1] if axis == "image size" else r.input_size[0]) for r in reports)
        raise ArgumentError(
            f"'{resolved}': a plot needs two {axis}s or more; it takes only {taken or 'none'} of "
            f"{', '.join(map(str, chosen))}"
        )
    return axis, reports


def report_size(report: FlopReport, axis: str) -> int:
    """The image side or sequence length of a report of `growth`."""
    return report.input_size[-1] if axis == "image size" else report.input_size[0]
