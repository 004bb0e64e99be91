"""Bottleneck multi-head self-attention with relative position logits (BoTNet).

Srinivas, Lin, Parmar, Shlens, Abbeel and Vaswani, "Bottleneck Transformers for Visual
Recognition", CVPR 2021. https://arxiv.org/abs/2101.11605

A ResNet bottleneck's 3x3 conv replaced by self-attention over all H * W positions of its
input. One 1x1 conv (`qkv`) projects queries, keys and values; a query at (y, x) scores a
key at (y', x') by

    q . k * dim_head**-0.5  +  q . height_rel[y' - y + H - 1]  +  q . width_rel[x' - x + W - 1]

(with `scale_pos_embed`, the whole sum is scaled), where `height_rel` (2H - 1, dim_head) and
`width_rel` (2W - 1, dim_head) embed every relative offset along each axis, shared by the
heads. The tables fix the input size: the module is built for one `feat_size` and refuses
any other. A stride of 2 average-pools the attention's output 2x2, as in the paper.

Tensor names and numerics follow timm's `BottleneckAttn` (`qkv`, `pos_embed.height_rel`,
`pos_embed.width_rel`), so timm's BoTNet checkpoints load unchanged.

Each step is marked with `zoo.attention.flop_term`, so that `zoo flops` shows the attention's
terms (and the position logits) apart.

`BottleneckSelfAttention` is the variant registered as attention kind `conv`: the attention,
then BatchNorm and ReLU (`post_attn`), as a block's spatial conv with its norm.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term

from ..layers import BatchNormAct2d, make_divisible, trunc_normal_

POSITION_LOGITS = "relative position logits"  # a term of its own in `zoo flops`

__all__ = [
    "BottleneckAttention",
    "BottleneckSelfAttention",
    "RelPosEmbedding",
    "rel_logits_1d",
]


def rel_logits_1d(q: torch.Tensor, rel_k: torch.Tensor) -> torch.Tensor:
    """Relative position logits along the last grid axis.

    Args:
        q: (N, rows, L, d) queries on a grid.
        rel_k: (2L - 1, d) embeddings of the offsets -(L - 1) ... L - 1.

    Returns:
        (N, rows, L, L): entry [n, r, i, j] is q[n, r, i] . rel_k[j - i + L - 1], the logit of
        the key j positions along for the query at i.
    """
    length = q.shape[-2]
    logits = q @ rel_k.transpose(-1, -2)  # (N, rows, L, 2L - 1): one logit per offset
    positions = torch.arange(length, device=q.device)
    offsets = positions[None, :] - positions[:, None] + length - 1  # [i, j] -> j - i + L - 1
    return logits.gather(-1, offsets.expand(*logits.shape[:-1], length))


class RelPosEmbedding(nn.Module):
    """Relative position logits of queries on an (H, W) grid against every key position
    (timm's `PosEmbedRel`): one table of offsets per axis, their logits added."""

    def __init__(
        self, feat_size: tuple[int, int], dim_head: int, *, scale: float, device=None, dtype=None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.height, self.width = feat_size
        self.scale = scale
        self.height_rel = nn.Parameter(torch.empty(2 * self.height - 1, dim_head, **factory))
        self.width_rel = nn.Parameter(torch.empty(2 * self.width - 1, dim_head, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal with the attention's scale as std, as timm initialises them."""
        trunc_normal_(self.height_rel, std=self.scale)
        trunc_normal_(self.width_rel, std=self.scale)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        """(N, H * W, d) queries -> (N, H * W, H * W) position logits."""
        n = q.shape[0]
        grid = q.reshape(n, self.height, self.width, -1)
        along_width = rel_logits_1d(grid, self.width_rel)  # [n, y, x, x']
        along_height = rel_logits_1d(grid.transpose(1, 2), self.height_rel)  # [n, x, y, y']
        along_height = along_height.permute(0, 2, 1, 3)  # [n, y, x, y']
        logits = along_height[..., :, None] + along_width[..., None, :]  # [n, y, x, y', x']
        return logits.reshape(n, self.height * self.width, self.height * self.width)


class BottleneckAttention(nn.Module):
    """Multi-head self-attention over an (H, W) map with relative position logits (timm's
    `BottleneckAttn`): (B, dim, H, W) -> (B, dim_out, H / stride, W / stride).

    Queries and keys have `dim_head` channels per head (default: `dim_out * qk_ratio`
    rounded to a multiple of 8, over the heads), values `dim_out / num_heads`.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int | None = None,
        *,
        feat_size: tuple[int, int] | None,
        stride: int = 1,
        num_heads: int = 4,
        dim_head: int | None = None,
        qk_ratio: float = 1.0,
        qkv_bias: bool = False,
        scale_pos_embed: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if feat_size is None:
            raise ValueError("bottleneck attention needs feat_size, the (H, W) of its input")
        dim_out = dim_out or dim
        if dim_out % num_heads:
            raise ValueError(
                f"bottleneck attention: {dim_out} output channels do not split into {num_heads} heads"
            )
        if stride not in (1, 2):
            raise ValueError(f"bottleneck attention strides by 1 or 2 (a 2x2 average pool), not {stride}")
        self.feat_size = (int(feat_size[0]), int(feat_size[1]))
        self.num_heads = num_heads
        self.dim_head_qk = dim_head or make_divisible(dim_out * qk_ratio, 8, round_limit=0.9) // num_heads
        self.dim_head_v = dim_out // num_heads
        self.dim_out_qk = num_heads * self.dim_head_qk
        self.dim_out_v = num_heads * self.dim_head_v
        self.scale = self.dim_head_qk**-0.5
        self.scale_pos_embed = scale_pos_embed
        self.qkv = nn.Conv2d(dim, 2 * self.dim_out_qk + self.dim_out_v, 1, bias=qkv_bias, **factory)
        self.pos_embed = RelPosEmbedding(self.feat_size, self.dim_head_qk, scale=self.scale, **factory)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The projection truncated normal with std fan_in**-0.5; the position tables too."""
        trunc_normal_(self.qkv.weight, std=self.qkv.weight.shape[1] ** -0.5)
        if self.qkv.bias is not None:
            nn.init.zeros_(self.qkv.bias)
        self.pos_embed.reset_parameters()

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, dim, H, W) -> q (B * heads, HW, d_qk), k (B * heads, d_qk, HW), v (B * heads, HW, d_v)."""
        size = tuple(x.shape[-2:])
        if size != self.feat_size:
            (h, w), (fh, fw) = size, self.feat_size
            raise ValueError(
                f"bottleneck attention was built for a {fh}x{fw} map (feat_size, from the model's img_size), "
                f"not {h}x{w}"
            )
        batch = x.shape[0]
        # channels are [q | k | v], each head-major: timm's order, which its checkpoints keep
        q, k, v = self.qkv(x).split([self.dim_out_qk, self.dim_out_qk, self.dim_out_v], dim=1)
        q = q.reshape(batch * self.num_heads, self.dim_head_qk, -1).transpose(-1, -2)
        k = k.reshape(batch * self.num_heads, self.dim_head_qk, -1)
        v = v.reshape(batch * self.num_heads, self.dim_head_v, -1).transpose(-1, -2)
        return q, k, v

    def _weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Softmax over the keys of content and position logits: (B * heads, HW, HW)."""
        with flop_term(ATTENTION_QK):
            content = q @ k
        with flop_term(POSITION_LOGITS):
            position = self.pos_embed(q)
        logits = (
            (content + position) * self.scale if self.scale_pos_embed else content * self.scale + position
        )
        with flop_term(ATTENTION_SOFTMAX):
            return logits.softmax(dim=-1)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Where each position looks: (B, dim, H, W) -> (B, heads, H * W, H * W), each query's
        row summing to 1 over the keys (row-major positions)."""
        q, k, _ = self._project(x)
        weights = self._weights(q, k)
        return weights.reshape(x.shape[0], self.num_heads, *weights.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        q, k, v = self._project(x)
        weights = self._weights(q, k)
        with flop_term(ATTENTION_AV):
            out = weights @ v  # (B * heads, HW, d_v)
        out = out.transpose(-1, -2).reshape(batch, self.dim_out_v, height, width)
        return self.pool(out)

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, feat_size={self.feat_size}, scale_pos_embed={self.scale_pos_embed}"
        )


class BottleneckSelfAttention(nn.Module):
    """Bottleneck self-attention (BoTNet): multi-head, with relative position logits.

    Attention kind `conv`: the attention, then BatchNorm and ReLU, a block's spatial conv with
    its norm (timm's SelfAttnBlock `self_attn`, `post_attn`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int,
        feat_size: tuple[int, int] | None = None,
        device=None,
        dtype=None,
        num_heads: int = 4,
        dim_head: int | None = None,
        qk_ratio: float = 1.0,
        qkv_bias: bool = False,
        scale_pos_embed: bool = False,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.self_attn = BottleneckAttention(
            in_channels,
            out_channels,
            feat_size=feat_size,
            stride=stride,
            num_heads=num_heads,
            dim_head=dim_head,
            qk_ratio=qk_ratio,
            qkv_bias=qkv_bias,
            scale_pos_embed=scale_pos_embed,
            **factory,
        )
        self.post_attn = BatchNormAct2d(out_channels, act="relu", **factory)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, heads, H * W, H * W): see `BottleneckAttention`."""
        return self.self_attn.attention_weights(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_attn(self.self_attn(x))
