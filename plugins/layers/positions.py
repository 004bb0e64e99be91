"""Position embeddings: sinusoidal tables, and learned ones resampled to another grid."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["resample_pos_embed", "sinusoidal_positions"]


def sinusoidal_positions(
    length: int, dim: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """(length, dim): PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim))."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    angles = position * frequency  # (length, ceil(dim / 2))
    table = torch.empty(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return table.to(dtype or torch.get_default_dtype())


def resample_pos_embed(
    pos_embed: torch.Tensor,
    prefix: int,
    old: tuple[int, int],
    new: tuple[int, int],
    *,
    antialias: bool = True,
) -> torch.Tensor:
    """Position embeddings (1, prefix + h*w, D) of an `old` grid resampled to a `new` one,
    bicubic; the `prefix` tokens' embeddings are kept as they are.

    With `antialias`, as timm resamples a ViT's, whose kernel differs from plain bicubic even
    when enlarging; CaiT resamples without.
    """
    grid = pos_embed[:, prefix:].reshape(1, *old, -1).permute(0, 3, 1, 2).float()  # (1, D, h, w)
    grid = F.interpolate(grid, size=new, mode="bicubic", align_corners=False, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1).to(pos_embed.dtype)
    return torch.cat([pos_embed[:, :prefix], grid], dim=1)
