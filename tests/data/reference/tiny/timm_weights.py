"""The weights of the tiny timm cases (for the `make_*.py` generators beside this file, run
with timm; never by the tests)."""

from __future__ import annotations

import torch

__all__ = ["perturbed"]


def perturbed(
    state: dict[str, torch.Tensor], generator: torch.Generator, scale: float = 0.1
) -> dict[str, torch.Tensor]:
    """Every float tensor moved off its initial value by `scale` normal noise, BatchNorm
    variances drawn in [0.5, 1.5) (so that a case checks the statistics are read); integer
    tensors (counters) as they are."""
    result = {}
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            result[name] = tensor
        elif name.endswith("running_var"):
            result[name] = torch.rand(tensor.shape, generator=generator) + 0.5
        else:
            result[name] = tensor + scale * torch.randn(tensor.shape, generator=generator)
    return result
