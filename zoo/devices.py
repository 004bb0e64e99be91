"""Devices and dtypes by name: what exists on this machine, or one line saying why not."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import DeviceError

if TYPE_CHECKING:
    import torch

__all__ = ["DTYPE_NAMES", "rank_device", "resolve_device", "resolve_dtype"]

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


def rank_device(device: str | torch.device | None) -> torch.device | None:
    """`resolve_device` for one process of a `torchrun` launch: a device type without an index
    (`"cuda"`) is this process's own, `cuda:LOCAL_RANK`; outside torchrun, GPU 0 as ever."""
    resolved = resolve_device(device)
    if resolved is None or resolved.index is not None or resolved.type in ("cpu", "meta"):
        return resolved
    return resolve_device(f"{resolved.type}:{int(os.environ.get('LOCAL_RANK', 0))}")
