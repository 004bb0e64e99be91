"""Images cut into non-overlapping patches, each linearly embedded: the first layer of the
vision transformers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import InputError

__all__ = ["PatchEmbed"]


class PatchEmbed(nn.Module):
    """Non-overlapping patches, linearly embedded by a strided conv (`proj`), then normed if
    asked (`norm`, a LayerNorm, or the norm `norm_layer` makes): (B, C, H, W) -> (B, N, D) tokens, or with
    `output_fmt="NHWC"` the (B, h, w, D) grid of them.

    The input size is fixed at `img_size`, unless `dynamic_img_size`: then any input whose
    size is a multiple of the patch size is taken, and with `dynamic_img_pad` an input is
    first padded on the right and bottom to one.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int],
        patch_size: int,
        in_chans: int,
        embed_dim: int,
        *,
        output_fmt: Literal["NLC", "NHWC"] = "NLC",
        norm: bool = False,
        norm_layer: Callable[..., nn.Module] | None = None,
        bias: bool = True,
        dynamic_img_size: bool = False,
        dynamic_img_pad: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = patch_size
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.output_fmt = output_fmt
        self.dynamic_img_size = dynamic_img_size
        self.dynamic_img_pad = dynamic_img_pad
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=bias, **factory)
        if norm_layer is None and norm:
            norm_layer = nn.LayerNorm
        self.norm = norm_layer(embed_dim, **factory) if norm_layer is not None else nn.Identity()

    def dynamic_grid(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid of an input of this size (after padding, with `dynamic_img_pad`)."""
        if self.dynamic_img_pad:
            return -(-height // self.patch_size), -(-width // self.patch_size)
        return height // self.patch_size, width // self.patch_size

    def _check(self, x: torch.Tensor) -> None:
        if not self.dynamic_img_size:
            if tuple(x.shape[-2:]) != self.img_size:
                height, width = self.img_size
                raise InputError(f"input is {tuple(x.shape[-2:])} pixels; this model takes {height}x{width}")
        elif not self.dynamic_img_pad and any(size % self.patch_size for size in x.shape[-2:]):
            raise InputError(
                f"input is {tuple(x.shape[-2:])} pixels, not a multiple of patch_size {self.patch_size}"
            )

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the embedded patches (B, D, h, w), not normed."""
        self._check(x)
        if self.dynamic_img_pad:
            height, width = self.dynamic_grid(*x.shape[-2:])
            pad_h, pad_w = height * self.patch_size - x.shape[-2], width * self.patch_size - x.shape[-1]
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.proj(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_grid(x)
        if self.output_fmt == "NHWC":
            return self.norm(x.permute(0, 2, 3, 1))  # (B, D, h, w) -> (B, h, w, D)
        return self.norm(x.flatten(2).transpose(1, 2))  # (B, D, h, w) -> (B, N, D)
