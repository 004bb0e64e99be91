"""Mobile multi-query attention over the positions of a feature map (MobileNetV4's MQA).

Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024.
https://arxiv.org/abs/2404.10518
Shazeer, "Fast Transformer Decoding: One Write-Head is All You Need", 2019.
https://arxiv.org/abs/1911.02150

Every position of a (B, C, H, W) map is a query; `num_heads` query heads share a single
key and a single value head (multi-query), which cuts the memory traffic that dominates
attention on mobile accelerators. Keys and values may come from a map downsampled by
`kv_stride` (a strided depthwise conv and BatchNorm before each projection), which cuts the
positions attended over by `kv_stride ** 2`. All projections are 1x1 convs without bias, so
the map stays NCHW throughout. Names (`query.proj`, `key.down_conv`, `key.norm`, `key.proj`,
`value.*`, `output.proj`) match timm's `MultiQueryAttention2d`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .functional import scaled_dot_product_attention

__all__ = ["MultiQueryAttention2d"]


def _key_or_value(dim: int, width: int, kv_stride: int, kernel_size: int, **factory) -> nn.Sequential:
    """A 1x1 projection to `width`, after a strided depthwise conv and BatchNorm if `kv_stride` > 1."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if kv_stride > 1:
        layers["down_conv"] = nn.Conv2d(
            dim, dim, kernel_size, kv_stride, kernel_size // 2, groups=dim, bias=False, **factory
        )
        layers["norm"] = nn.BatchNorm2d(dim, **factory)
    layers["proj"] = nn.Conv2d(dim, width, 1, bias=False, **factory)
    return nn.Sequential(layers)


class MultiQueryAttention2d(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        out_dim: int | None = None,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        kv_stride: int = 1,
        kv_kernel_size: int = 3,
        attn_drop: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_heads, self.key_dim, self.value_dim = num_heads, key_dim, value_dim
        self.attn_drop = attn_drop
        query = nn.Conv2d(dim, num_heads * key_dim, 1, bias=False, **factory)
        self.query = nn.Sequential(OrderedDict(proj=query))
        self.key = _key_or_value(dim, key_dim, kv_stride, kv_kernel_size, **factory)
        self.value = _key_or_value(dim, value_dim, kv_stride, kv_kernel_size, **factory)
        output = nn.Conv2d(num_heads * value_dim, out_dim or dim, 1, bias=False, **factory)
        self.output = nn.Sequential(OrderedDict(proj=output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_dim, H, W)."""
        batch, _, height, width = x.shape
        q = self.query(x).reshape(batch, self.num_heads, self.key_dim, height * width).transpose(-1, -2)
        k = self.key(x).flatten(2).transpose(-1, -2).unsqueeze(1)  # (B, 1, S, key_dim): one head
        v = self.value(x).flatten(2).transpose(-1, -2).unsqueeze(1)  # (B, 1, S, value_dim)
        heads = (-1, self.num_heads, -1, -1)  # every query head attends over the same keys
        dropout = self.attn_drop if self.training else 0.0
        o = scaled_dot_product_attention(q, k.expand(heads), v.expand(heads), dropout_p=dropout)
        o = o.transpose(1, 2).reshape(batch, height, width, self.num_heads * self.value_dim)  # (B, H, W, h*v)
        return self.output(o.permute(0, 3, 1, 2))
