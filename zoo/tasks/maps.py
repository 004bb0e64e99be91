"""Attention maps: where a model looks, as tensors and as pictures.

The core knows no model. A model family offers maps by implementing one method, the
*attention-map protocol*:

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]

which, for an input batch `x` of shape (B, C, H, W), returns named maps, each (B, h, w),
non-negative, laid over the whole input (map cell (i, j) covers input pixels
[i * H / h, (i + 1) * H / h) x [j * W / w, (j + 1) * W / w)). The first entry is the one shown
by default. The built-in families name their maps:

- ViT (and DeiT): `"rollout"`, attention rollout (Abnar and Zuidema 2020,
  https://arxiv.org/abs/2005.00928) from the class token to the patches, and `"last"`, the
  class token's attention to the patches in the last block; heads averaged in both.
- ResNet whose attention gates space (CBAM): `"stage4"`, ..., `"stage1"`, the spatial gate
  of each stage's last block, deepest first. A channel attention takes part by offering
  `spatial_map(x) -> (B, 1, H, W)`, the spatial gate it would apply to `x`.

`attention_rollout` and `class_token_attention` work on the per-block attention weights of
any transformer, for plugin families to reuse; `overlay` draws a map over an image and
`save_picture` writes it in the format its file name says. A map that is constant, or
nearly (`flatness`), says nothing about the input: untrained or zero-initialised weights
give one (a CBAM ResNet whose residual branches start at zero gates every pixel by 0.5), and
`overlay` warns, in one line on the `zoo` logger, that it draws a flat tint.

Sequence models offer their attention weights through a protocol of their own,
`zoo.tasks.sequence_maps`.

    >>> maps = zoo.attention_maps(model, x)   # {"rollout": (B, 14, 14), "last": (B, 14, 14)}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArgumentError, AttentionMapError
from ..files import atomic_path
from ..registry.family import HasAttentionMaps
from .preprocessing import rgb_for_display

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "PICTURE_FORMATS",
    "HasAttentionMaps",
    "attention_maps",
    "attention_rollout",
    "class_token_attention",
    "colorize",
    "flat_map_warning",
    "flatness",
    "overlay",
    "picture_format",
    "save_picture",
]


logger = logging.getLogger("zoo")

FLAT_SPREAD = 1e-3
"""A map whose values differ by less than this fraction of the largest is nearly constant."""


def attention_maps(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The named attention maps of `model` for the batch `x`, each (B, h, w) float32.

    The model runs in eval mode without gradients; its training flags are restored after.

    Raises:
        AttentionMapError: the model's family does not implement the protocol, or the model
            has nothing to show (a ResNet whose attention has no spatial gate).
    """
    import torch

    if not isinstance(model, HasAttentionMaps):
        raise AttentionMapError(
            f"{type(model).__name__} offers no attention maps (its family implements no "
            "attention_maps(x) method; see zoo.maps)"
        )
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            maps = model.attention_maps(x)
    finally:
        for module, training in modes.items():
            module.training = training
    if not maps:
        raise AttentionMapError(f"{type(model).__name__} returned no attention maps")
    checked = {}
    for name, value in maps.items():
        if value.ndim != 3 or value.shape[0] != x.shape[0]:
            raise AttentionMapError(
                f"{type(model).__name__}.attention_maps: map '{name}' is {tuple(value.shape)}, "
                f"expected (B={x.shape[0]}, h, w)"
            )
        checked[name] = value.detach().float()
    return checked


def class_token_attention(
    weights: torch.Tensor, *, num_prefix_tokens: int = 1, grid: tuple[int, int]
) -> torch.Tensor:
    """The class token's attention to the patches in one block, heads averaged.

    Args:
        weights: One block's attention weights (B, heads, N, N), rows summing to 1; token 0
            is the class token, then `num_prefix_tokens - 1` other prefix tokens, then the
            patches in row-major order.
        num_prefix_tokens: Tokens before the patches (class token, distillation token, ...).
        grid: (rows, columns) of patches.

    Returns:
        (B, rows, columns).
    """
    attention = weights.float().mean(dim=1)  # (B, N, N)
    return _patch_grid(attention[:, 0, num_prefix_tokens:], grid)


def attention_rollout(
    weights: Sequence[torch.Tensor], *, num_prefix_tokens: int = 1, grid: tuple[int, int]
) -> torch.Tensor:
    """Attention rollout (Abnar and Zuidema 2020) from the class token to the patches.

    Each block's weights are averaged over heads, the residual connection is accounted for
    by adding the identity, `A' = (A + I) / 2` with rows renormalised, and the blocks are
    composed from the first: `R = A'_L ... A'_2 A'_1`. The class token's row of `R`, over
    the patches, is the map.

    Args:
        weights: Every block's attention weights, first block first, each (B, heads, N, N).
        num_prefix_tokens: Tokens before the patches.
        grid: (rows, columns) of patches.

    Returns:
        (B, rows, columns).
    """
    import torch

    if not weights:
        raise ValueError("attention rollout needs the weights of at least one block")
    rollout = None
    for block in weights:
        attention = block.float().mean(dim=1)  # (B, N, N)
        identity = torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
        attention = (attention + identity) / 2
        attention = attention / attention.sum(dim=-1, keepdim=True)
        rollout = attention if rollout is None else attention @ rollout
    return _patch_grid(rollout[:, 0, num_prefix_tokens:], grid)


def _patch_grid(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    rows, columns = grid
    if values.shape[-1] != rows * columns:
        raise ValueError(f"{values.shape[-1]} patch tokens do not fill a {rows}x{columns} grid")
    return values.reshape(values.shape[0], rows, columns)


def flatness(values: torch.Tensor) -> str | None:
    """How a map is flat, in words (`"constant (0.5 everywhere)"`, `"nearly constant (0.4999
    to 0.5001)"`), or None when its values spread by at least `FLAT_SPREAD` of the largest."""
    values = values.detach().float()
    if values.numel() == 0:
        return None
    low, high = float(values.min()), float(values.max())
    if low == high:
        return f"constant ({high:.4g} everywhere)"
    if high - low < FLAT_SPREAD * max(abs(low), abs(high)):
        return f"nearly constant ({low:.6g} to {high:.6g})"
    return None


def flat_map_warning(what: str, how: str) -> str:
    """The one line said when a flat map is drawn: `what` is `how` (see `flatness`)."""
    return (
        f"{what} is {how}, as untrained or zero-initialised weights give; "
        "it is drawn as a flat tint and shows nothing about the input"
    )


# A perceptually ordered colour ramp, dark violet -> blue -> teal -> yellow -> red, as
# (position, (r, g, b)) stops; values between stops are interpolated linearly.
_RAMP = (
    (0.00, (40, 16, 70)),
    (0.25, (45, 95, 200)),
    (0.50, (30, 185, 160)),
    (0.75, (245, 210, 50)),
    (1.00, (215, 40, 30)),
)


def colorize(values: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] of any shape -> RGB colours in [0, 255], shape (..., 3), float32."""
    import torch

    positions = torch.tensor([p for p, _ in _RAMP], dtype=torch.float32)
    colours = torch.tensor([c for _, c in _RAMP], dtype=torch.float32)  # (S, 3)
    v = values.float().clamp(0, 1)
    upper = torch.searchsorted(positions, v.contiguous(), right=False).clamp(1, len(_RAMP) - 1)
    lower = upper - 1
    t = ((v - positions[lower]) / (positions[upper] - positions[lower])).unsqueeze(-1)
    return colours[lower] * (1 - t) + colours[upper] * t


def overlay(
    image: Image.Image,
    attention: torch.Tensor,
    *,
    box: tuple[float, float, float, float] | None = None,
    alpha: float = 0.5,
    outside: float = 0.35,
    what: str = "the attention map",
) -> Image.Image:
    """Draw an attention map over an image; returns an RGB image of the image's size.

    Args:
        image: The picture the model saw (before preprocessing), or a reduced copy of it
            (`zoo.load_image(path, max_size=N)`) with `box` scaled to it; any mode
            `zoo.load_image` reads (16-bit and float images are shown in 8 bits).
        attention: A map (h, w); scaled to [0, 1] by its own minimum and maximum, upsampled
            bilinearly to `box` and coloured (dark violet low, red high).
        box: (left, top, right, bottom), in the image's pixels, of the part the map covers:
            the model's centre crop (`ImageTransform.crop_box`). Default: the whole image.
        alpha: Weight of the colours where the map lies.
        outside: Brightness of the parts the model did not see (outside `box`).
        what: The map's name in the warning logged when it is flat (`flatness`).
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    if attention.ndim != 2:
        raise ValueError(f"expected one map (h, w), got shape {tuple(attention.shape)}")
    width, height = image.size
    left, top, right, bottom = box if box is not None else (0, 0, width, height)
    x0, y0 = min(width - 1, max(0, round(left))), min(height - 1, max(0, round(top)))
    x1, y1 = min(width, max(x0 + 1, round(right))), min(height, max(y0 + 1, round(bottom)))

    values = attention.detach().float().cpu()
    if not bool(torch.isfinite(values).all()):
        raise ArgumentError(f"{what} holds NaN or infinite values")
    how = flatness(values)
    if how is not None:
        logger.warning(flat_map_warning(what, how))
    low, high = values.min(), values.max()
    values = (values - low) / (high - low) if high > low else torch.zeros_like(values)
    size = (y1 - y0, x1 - x0)
    values = F.interpolate(values[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    colours = colorize(values)  # (h, w, 3)

    picture = torch.from_numpy(np.asarray(rgb_for_display(image), dtype=np.uint8).copy()).float()  # (H, W, 3)
    result = picture * outside
    region = picture[y0:y1, x0:x1]
    result[y0:y1, x0:x1] = region * (1 - alpha) + colours * alpha
    return Image.fromarray(result.round().clamp(0, 255).to(torch.uint8).numpy())


PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
"""The PIL format written for each file suffix (in any case)."""


def picture_format(path: str | Path) -> str:
    """The PIL format the suffix of `path` names (`PICTURE_FORMATS`).

    Raises:
        ArgumentError: a suffix not in `PICTURE_FORMATS`.
    """
    suffix = Path(path).suffix
    if suffix.lower() not in PICTURE_FORMATS:
        named = f"'{suffix}'" if suffix else "no suffix"
        raise ArgumentError(
            f"{path}: cannot tell which image format to write from {named}; "
            f"name it {', '.join(PICTURE_FORMATS)}"
        )
    return PICTURE_FORMATS[suffix.lower()]


def save_picture(image: Image.Image, path: str | Path) -> None:
    """Write `image` as the format its suffix names (PNG, JPEG at quality 95 as RGB, or
    WebP at quality 95), whole or not at all."""
    format = picture_format(path)
    options = {"quality": 95} if format in ("JPEG", "WEBP") else {}
    image = image.convert("RGB") if format == "JPEG" and image.mode != "RGB" else image
    with atomic_path(path) as temporary:
        image.save(temporary, format=format, **options)
