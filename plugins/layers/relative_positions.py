"""Relative position bias tables resampled to another window size, as timm resamples them.

A window attention keeps one learned bias per head for every offset (dy, dx) between two
tokens of a window of h x w: a table of (2h - 1)(2w - 1) rows, offsets in row-major order.
A checkpoint trained at one window loads at another by resampling that grid of offsets per
head. timm (after BEiT, Bao et al., https://arxiv.org/abs/2106.08254) does not stretch the
grid evenly: it places the source offsets at geometrically growing distances from 0, the
ratio chosen so that the outermost source offset lands on the outermost target offset, and
interpolates linearly in between. Near offsets keep their values; far ones spread out.
"""

from __future__ import annotations

import math

import torch

__all__ = ["resample_relative_position_table"]


def resample_relative_position_table(table: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """A (S * S, heads) table of a square S x S offset grid -> ((2h - 1)(2w - 1), heads) for a
    window of `window` = (h, w); returned as it is when it fits already."""
    side = math.isqrt(table.shape[0])
    if side * side != table.shape[0]:
        raise ValueError(f"a relative position table of {table.shape[0]} rows is not a square grid")
    height, width = 2 * window[0] - 1, 2 * window[1] - 1
    if (side, side) == (height, width):
        return table
    if table.is_meta:
        return table.new_empty(height * width, table.shape[1])
    grid = table.float().T.reshape(-1, side, side)  # (heads, S, S): dy, dx
    rows = _interpolation(_spread_offsets(side, height), height)  # (2h - 1, S)
    cols = _interpolation(_spread_offsets(side, width), width)  # (2w - 1, S)
    resampled = torch.einsum("is,hst,jt->hij", rows, grid, cols)  # (heads, 2h - 1, 2w - 1)
    return resampled.reshape(table.shape[1], -1).T.to(table.dtype)


def _spread_offsets(source: int, target: int) -> torch.Tensor:
    """Where the `source` offsets (-(S-1)/2 ... (S-1)/2) sit on the target's offset axis:
    0, then distances 1, 1 + q, 1 + q + q^2, ... either side, with q in [1.01, 1.5] found by
    bisection so that the last one is about (T-1)/2 (timm's rule, kept to the letter)."""
    steps, reach = source // 2, target // 2
    low, high = 1.01, 1.5
    while high - low > 1e-6:
        ratio = (low + high) / 2.0
        if (1.0 - ratio**steps) / (1.0 - ratio) > reach:
            high = ratio
        else:
            low = ratio
    distances, distance = [], 1.0
    for step in range(steps):
        distances.append(distance)
        distance += ratio ** (step + 1)
    return torch.tensor([-d for d in reversed(distances)] + [0.0] + distances)


def _interpolation(points: torch.Tensor, target: int) -> torch.Tensor:
    """(T, S): linear interpolation from values at `points` to the integer offsets of a target
    axis of `target` entries, held at the end values beyond them."""
    reach = target // 2
    offsets = torch.arange(-reach, reach + 0.1, 1.0)
    right = torch.bucketize(offsets, points).clamp(max=len(points) - 1)
    left = (right - 1).clamp(min=0)
    to_left = (offsets - points[left]).clamp(min=0)
    to_right = (points[right] - offsets).clamp(min=0)
    on_a_point = (to_left == 0) & (to_right == 0)
    to_left, to_right = to_left.masked_fill(on_a_point, 1.0), to_right.masked_fill(on_a_point, 1.0)
    weights = torch.zeros(len(offsets), len(points))
    rows = torch.arange(len(offsets))
    weights.index_put_((rows, left), to_right / (to_left + to_right), accumulate=True)
    weights.index_put_((rows, right), to_left / (to_left + to_right), accumulate=True)
    return weights
