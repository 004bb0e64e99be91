"""Building models by name, on the requested device and dtype, with or without weights.

With weights, the model is built on the `meta` device (no memory, no random init), the
checkpoint header is checked against it name by name and shape by shape, and only then are
the tensors read and assigned, straight onto the target device and dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError, CheckpointError, DeviceError, NoWeightsError
from .registry import Registry, Resolved, default_registry

if TYPE_CHECKING:
    import torch

__all__ = ["create", "resolve_device", "resolve_dtype", "load_checkpoint"]

DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
}


def create(
    name: str,
    *,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> torch.nn.Module:
    """Build a registered model.

    Args:
        name: A registry name, optionally with a weight tag (`"vit_base_patch16_224.augreg_in21k"`).
            A tag selects the head that tag's checkpoint has.
        pretrained: Load the published weights of the tag (the entry's default tag if none).
        checkpoint: Load this local safetensors file instead, strictly.
        num_classes: Size of the classifier head (0 for none).
        device: Where to build (`"cpu"`, `"cuda"`, `"cuda:1"`, `"meta"`, ...).
        dtype: Floating-point dtype of parameters and buffers (`"bfloat16"`, `torch.float16`, ...).
        registry: The registry to use instead of the installed plugins' one.
        **overrides: Builder arguments replacing the registry's (`attn="cbam"`, `drop_path_rate=0.1`).

    Returns:
        The model, in training mode like any freshly built `nn.Module`.
    """
    registry = registry if registry is not None else default_registry()
    resolved = registry.resolve(name)
    if pretrained and checkpoint is not None:
        raise ArgumentError("pass either pretrained=True or checkpoint=..., not both")
    if pretrained:
        resolved = _with_default_tag(resolved)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    config = registry.build_config(resolved, overrides)
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype)
    build = registry.builder(resolved.entry.builder).function

    if checkpoint is None and not pretrained:
        return build(config, device=target_device, dtype=target_dtype)

    adapter = None
    if pretrained:
        from .hub import fetch

        checkpoint = fetch(resolved)
        if resolved.weights.adapter:
            adapter = registry.adapter(resolved.weights.adapter)
    model = build(config, device="meta", dtype=target_dtype)
    load_checkpoint(model, checkpoint, device=target_device, dtype=target_dtype, adapter=adapter)
    return model


def _with_default_tag(resolved: Resolved) -> Resolved:
    if resolved.tag is not None:
        return resolved
    tag = resolved.entry.default_weight_tag
    if tag is None:
        raise NoWeightsError(f"'{resolved.name}' has no published weights; build it with pretrained=False")
    return Resolved(resolved.name, resolved.source, tag)


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """A `torch.device` that exists on this machine, or `DeviceError` saying why not."""
    if device is None:
        return None
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device '{device}' (expected cpu, cuda, cuda:N, mps, meta, ...)") from None
    if resolved.type in ("cpu", "meta"):
        return resolved
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"device '{device}' is not available: torch {torch.__version__} sees no CUDA GPU here"
            )
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"device '{device}' is not available: this machine has {count} CUDA GPU(s)")
        return resolved
    backend = getattr(torch, resolved.type, None) or getattr(torch.backends, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None or not is_available():
        raise DeviceError(f"device '{device}' is not available on this machine")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A floating-point `torch.dtype` from a name such as `"bf16"`, or `DeviceError`."""
    if dtype is None:
        return None
    import torch

    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        canonical = DTYPE_NAMES.get(str(dtype).removeprefix("torch.").lower())
        if canonical is None:
            choices = ", ".join(sorted(DTYPE_NAMES))
            raise DeviceError(f"unknown dtype '{dtype}' (expected one of: {choices})")
        resolved = getattr(torch, canonical)
    if not resolved.is_floating_point:
        raise DeviceError(f"dtype '{dtype}' is not a floating-point type")
    return resolved


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Load a safetensors file into `model` strictly, assigning tensors on `device`/`dtype`.

    The file's header is checked against the model before any tensor is read. With
    `device="meta"` only that check is done.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = {name: handle.get_slice(name) for name in handle.keys()}
            found = {name: (tuple(s.get_shape()), s.get_dtype()) for name, s in header.items()}
            if adapter is not None:
                found = _adapted_header(found, adapter)
            check_state_names(expected, {name: shape for name, (shape, _) in found.items()}, path)
            if device is not None and device.type == "meta":
                return
            state = {name: handle.get_tensor(name) for name in header}
    except SafetensorError as error:
        raise CheckpointError(f"checkpoint '{path}' is not a valid safetensors file: {error}") from None
    if adapter is not None:
        state = dict(adapter(state))
    state = {name: _placed(tensor, device, dtype) for name, tensor in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    left_on_meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise CheckpointError(
            f"checkpoint '{path}' left tensors uninitialised: {', '.join(left_on_meta[:5])}"
        )


def _placed(tensor: torch.Tensor, device: torch.device | None, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is not None and tensor.is_floating_point():
        return tensor.to(device=device, dtype=dtype)
    return tensor.to(device=device) if device is not None else tensor


_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _adapted_header(
    found: dict[str, tuple[tuple[int, ...], str]], adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]]
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Run the adapter on meta tensors, to learn the names and shapes it will produce."""
    import torch

    meta = {
        name: torch.empty(
            shape, dtype=getattr(torch, _SAFETENSORS_DTYPES.get(dtype, "float32")), device="meta"
        )
        for name, (shape, dtype) in found.items()
    }
    return {name: (tuple(t.shape), str(t.dtype)) for name, t in adapter(meta).items()}


def check_state_names(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]], path: str | Path
) -> None:
    """Raise `CheckpointError` naming what is missing, unexpected or of the wrong shape."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    mismatched = [
        f"{name} (checkpoint {list(found[name])}, model {list(shape)})"
        for name, shape in expected.items()
        if name in found and tuple(found[name]) != tuple(shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{len(names)} {label}: {shown}")
    raise CheckpointError(f"checkpoint '{path}' does not fit the model: " + "; ".join(parts))
