"""Running a model's repeated blocks, with activations recomputed if asked."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["run_blocks"]


def run_blocks(blocks: Iterable[nn.Module], x: torch.Tensor, *, checkpointed: bool) -> torch.Tensor:
    """Run blocks in order; `checkpointed` (and gradients on), each through
    `torch.utils.checkpoint`: its activations are recomputed in the backward pass rather
    than kept."""
    recompute = checkpointed and torch.is_grad_enabled()
    if not recompute and isinstance(blocks, nn.Module):
        return blocks(x)  # called as a module, so that its hooks (and module-level counts) see it
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
    return x
