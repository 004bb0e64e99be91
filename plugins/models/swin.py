"""Swin Transformer: hierarchical vision transformer with shifted windows.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
ICCV 2021. https://arxiv.org/abs/2103.14030

The image is cut into 4x4 patches and embedded; four stages follow, each halving the token
grid (patch merging: every 2x2 neighbourhood concatenated and projected to twice the
width) except the first. Inside a stage, blocks attend within non-overlapping windows of
`window_size` x `window_size` tokens, with a learned relative position bias; every second
block shifts the grid by half a window first, so that windows straddle the previous ones,
and masks the attention between tokens the shift brought together from opposite edges. A
stage whose grid is no larger than the window uses one window over it, unshifted. The head
averages the normed tokens. Tokens are kept as (B, H, W, C) throughout, as timm does, whose
tensor names the modules follow, so its checkpoints load unchanged.

The window attention is a pluggable `window` attention (`attn`), by default `wmsa`.

The input size is fixed at build time: `img_size` must give every stage an even token grid
(for patch merging) that its windows tile exactly, else the config is refused; 224 with
patch 4 and window 7 gives grids 56, 28, 14 and 7, 384 with window 12 grids 96, 48, 24 and
12. The window may differ per stage (Swin S3's searched windows, e.g. 7, 7, 14, 7). Each
relative position bias table is sized by its window: a checkpoint of another window size
loads with its tables resampled as timm resamples them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import WindowAttention
from zoo.registry.family import ImageFamily, feature_take_indices

from ..layers import (
    ClassifierHead,
    DropPath,
    Mlp,
    PatchEmbed,
    drop_path_rates,
    factory_of,
    init_linears,
    init_submodules,
    reconfigured,
    resample_relative_position_table,
    run_blocks,
)

__all__ = ["SwinConfig", "SwinTransformer", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]

MASKED = -100.0
"""Score added between tokens of different regions of a shifted window (timm's value)."""


class SwinConfig(BaseModel):
    """Architecture of a Swin Transformer (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    img_size: int = Field(default=224, gt=0)
    patch_size: int = Field(default=4, gt=0)
    in_chans: int = Field(default=3, gt=0)
    num_classes: int = Field(default=1000, ge=0)
    embed_dim: int = Field(default=96, gt=0)
    depths: tuple[Positive, ...] = Field(default=(2, 2, 6, 2), min_length=1)
    num_heads: tuple[Positive, ...] = Field(default=(3, 6, 12, 24), min_length=1)
    window_size: Positive | tuple[Positive, ...] = 7
    """The side of the attention windows: one for every stage, or one per stage (Swin S3)."""
    mlp_ratio: float = Field(default=4.0, gt=0)
    qkv_bias: bool = True
    drop_rate: Rate = 0.0
    attn_drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.1
    attn: WindowAttention = Field(default="wmsa", validate_default=True)
    global_pool: Literal["avg", ""] = "avg"
    """What the head reads: the mean over the token grid, or every token ("": per-token logits)."""

    @model_validator(mode="after")
    def _fits_together(self) -> SwinConfig:
        if len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"depths {list(self.depths)} and num_heads {list(self.num_heads)} differ in length"
            )
        if isinstance(self.window_size, tuple) and len(self.window_size) != len(self.depths):
            raise ValueError(
                f"window_size {list(self.window_size)} and depths {list(self.depths)} differ in length"
            )
        for stage, heads in enumerate(self.num_heads):
            if (width := stage_dim(self.embed_dim, stage)) % heads:
                raise ValueError(f"stage {stage}'s width {width} is not divisible by {heads} heads")
        self._check_grids()
        return self

    def _check_grids(self) -> None:
        stages = len(self.depths)
        grid, left = divmod(self.img_size, self.patch_size)
        for stage, window in enumerate(self.stage_windows()):
            window = min(window, grid)
            if left or grid % window or (stage < stages - 1 and grid % 2):
                raise ValueError(
                    f"img_size {self.img_size} does not fit patch_size {self.patch_size}, "
                    f"window_size {self.window_size} and {stages} stages: "
                    f"every stage's token grid must be even and tiled by its windows"
                    f"{self._fitting_sizes()}"
                )
            grid //= 2

    def _fitting_sizes(self) -> str:
        if isinstance(self.window_size, tuple):
            return ""
        fits = self.patch_size * 2 ** (len(self.depths) - 1) * self.window_size
        return f" (a multiple of {fits} fits)"

    def stage_windows(self) -> list[int]:
        """The window side each stage asks for (a stage whose grid is smaller takes its grid)."""
        if isinstance(self.window_size, tuple):
            return list(self.window_size)
        return [self.window_size] * len(self.depths)

    def resolutions(self) -> list[int]:
        """The side of each stage's token grid."""
        grid = self.img_size // self.patch_size
        return [grid // 2**stage for stage in range(len(self.depths))]


def stage_dim(embed_dim: int, stage: int) -> int:
    return embed_dim * 2**stage


# -- windows ----------------------------------------------------------------------------


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, window * window, C): windows in row-major order per image,
    tokens in row-major order per window."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window, window, width // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """The inverse of `window_partition`: (B * nW, window * window, C) -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shifted_window_mask(size: int, window: int, shift: int, *, device=None) -> torch.Tensor:
    """(nW, N, N) mask of a grid rolled by -`shift`: 0 between tokens of the same region,
    `MASKED` between tokens that were apart before the roll."""
    regions = torch.zeros(1, size, size, 1, device=device)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for label, (rows, cols) in enumerate((r, c) for r in bands for c in bands):
        regions[:, rows, cols, :] = label
    labels = window_partition(regions, window).squeeze(-1)  # (nW, N)
    apart = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(apart.shape, device=device).masked_fill(apart, MASKED)


# -- blocks -----------------------------------------------------------------------------


class SwinTransformerBlock(nn.Module):
    """x + attn(norm(x)) within (shifted) windows, then x + mlp(norm(x)); on (B, H, W, C)."""

    def __init__(
        self,
        config: SwinConfig,
        dim: int,
        num_heads: int,
        resolution: int,
        window_size: int,
        shifted: bool,
        drop_path: float,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.window_size = min(window_size, resolution)
        self.shift_size = self.window_size // 2 if shifted and resolution > window_size else 0
        self.norm1 = nn.LayerNorm(dim, **factory)
        self.attn = config.attn.build(
            dim,
            num_heads=num_heads,
            window_size=(self.window_size, self.window_size),
            qkv_bias=config.qkv_bias,
            attn_drop=config.attn_drop_rate,
            proj_drop=config.drop_rate,
            **factory,
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, **factory)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate, **factory)

    def _attend(self, x: torch.Tensor, need_weights: bool = False):
        """Window attention over (B, H, W, C); with `need_weights`, also (B * nW, heads, N, N)."""
        _, height, width, _ = x.shape
        window, shift = self.window_size, self.shift_size
        mask = None
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(height, window, shift, device=x.device)
        result = self.attn(window_partition(x, window), mask, need_weights=need_weights)
        windows, weights = result if need_weights else (result, None)
        x = window_reverse(windows, window, height, width)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x, weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self._attend(self.norm1(x))[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its window attention weights (B * nW, heads, N, N)."""
        attended, weights = self._attend(self.norm1(x), need_weights=True)
        x = x + self.drop_path(attended)
        return x + self.drop_path(self.mlp(self.norm2(x))), weights


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, H/2, W/2, 2C): each 2x2 neighbourhood concatenated, normed, projected."""

    def __init__(self, dim: int, out_dim: int, *, device=None, dtype=None):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, device=device, dtype=dtype)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        x = x.reshape(batch, height // 2, 2, width // 2, 2, channels)
        # Concatenated in the paper's order: (0, 0), (1, 0), (0, 1), (1, 1) as (row, column).
        x = x.permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class SwinTransformerStage(nn.Module):
    """Patch merging (every stage but the first), then blocks alternating plain and shifted windows."""

    def __init__(self, config: SwinConfig, stage: int, rates: list[float], *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = stage_dim(config.embed_dim, stage)
        resolution = config.resolutions()[stage]
        window = config.stage_windows()[stage]
        self.downsample = PatchMerging(dim // 2, dim, **factory) if stage > 0 else nn.Identity()
        self.blocks = nn.Sequential(
            *(
                SwinTransformerBlock(
                    config, dim, config.num_heads[stage], resolution, window, i % 2 == 1, rate, **factory
                )
                for i, rate in enumerate(rates)
            )
        )
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_blocks(self.blocks, self.downsample(x), checkpointed=self.grad_checkpointing)


# -- the model ---------------------------------------------------------------------------


class SwinTransformer(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    first_conv = "patch_embed.proj"
    classifier_names = ("head.fc",)

    def __init__(self, config: SwinConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        self.num_features = stage_dim(config.embed_dim, len(config.depths) - 1)
        self.patch_embed = PatchEmbed(
            config.img_size,
            config.patch_size,
            config.in_chans,
            config.embed_dim,
            output_fmt="NHWC",
            norm=True,
            **factory,
        )
        rates = drop_path_rates(config.drop_path_rate, sum(config.depths))
        starts = [sum(config.depths[:stage]) for stage in range(len(config.depths))]
        self.layers = nn.Sequential(
            *(
                SwinTransformerStage(config, stage, rates[start : start + depth], **factory)
                for stage, (start, depth) in enumerate(zip(starts, config.depths, strict=True))
            )
        )
        self.norm = nn.LayerNorm(self.num_features, **factory)
        self.head = ClassifierHead(
            self.num_features,
            config.num_classes,
            config.global_pool,
            config.drop_rate,
            input_fmt="NHWC",  # the tokens, (B, H, W, C)
            **factory,
        )
        self.feature_info = [  # each stage's tokens, as a map over its grid
            {"module": f"layers.{i}", "num_chs": stage_dim(config.embed_dim, i), "reduction": patch * 2**i}
            for i, patch in enumerate([config.patch_size] * len(config.depths))
        ]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) linear weights, zero biases."""
        if self.norm.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        init_linears(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks."""
        init_submodules(self, names, init_linears)

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.layers for block in stage.blocks]

    def init_classifier(self) -> None:
        """Initialise the head as `reset_parameters` does, e.g. after a new `num_classes`."""
        init_linears(self.head)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier of `num_classes` (0: none), initialised as `init_classifier` does,
        reading the mean token or (`global_pool=""`) every token."""
        pool = self.config.global_pool if global_pool is None else global_pool
        self.config = reconfigured(self.config, num_classes=num_classes, global_pool=pool)
        self.head.reset(num_classes, pool, **factory_of(self))
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        for stage in self.layers:
            stage.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Every relative position bias table (timm's set)."""
        return {name for name, _ in self.named_parameters() if "relative_position_bias_table" in name}

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Each stage's tokens as a feature map (B, C, H, W), as timm gives them.

        Args:
            indices: The stages: all (None), the last n (an int), or their indices.
            norm: Pass the last stage's output through the final norm (the others have none).
            output_fmt: "NCHW" only, as in timm.
            intermediates_only: Return the list alone, without running the stages after the
                last one asked for.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': Swin gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.layers), indices)
        last = len(self.layers) - 1
        x = self.patch_embed(x)
        intermediates = []
        for index, stage in enumerate(self.layers):
            if intermediates_only and index > max(take):
                break
            x = stage(x)
            if index in take:
                shown = self.norm(x) if norm and index == last else x
                intermediates.append(shown.permute(0, 3, 1, 2).contiguous())  # (B, H, W, C) -> (B, C, H, W)
        return intermediates if intermediates_only else (self.norm(x), intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the stages up to
        the last one asked for, the final norm unless `prune_norm`, no head if `prune_head`."""
        take = feature_take_indices(len(self.layers), indices)
        self.layers = self.layers[: max(take) + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.head.fc = nn.Identity()
        return take

    def adapt_pretrained(self, name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, str] | None:
        """Relative position bias tables of another window size, resampled to this one as timm
        does (`resample_relative_position_table`). Other tensors: None."""
        if not name.endswith("attn.relative_position_bias_table"):
            return None
        heads = self.get_parameter(name).shape[1]
        old = math.isqrt(tensor.shape[0]) if tensor.ndim == 2 else 0
        if tensor.ndim != 2 or tensor.shape[1] != heads or old * old != tensor.shape[0]:
            return None
        new = self.get_submodule(name.removesuffix(".attn.relative_position_bias_table")).window_size
        resampled = resample_relative_position_table(tensor, (new, new))
        return resampled, (
            f"{name}: relative position bias resampled from {(old + 1) // 2}x{(old + 1) // 2} "
            f"to {new}x{new} windows (timm's geometric spacing)"
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> normed tokens of the last stage (B, h, w, num_features)."""
        return self.norm(self.layers(self.patch_embed(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class logits from the tokens; with `pre_logits`, the pooled features instead."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """`"last"`: the attention each token receives in the last stage's blocks, averaged
        over heads, queries of its window and blocks, (B, h, w) over the last stage's grid."""
        x = self.layers[:-1](self.patch_embed(x))
        stage = self.layers[-1]
        x = stage.downsample(x)
        received = []
        for block in stage.blocks:
            size = x.shape[1]
            x, weights = block.forward_with_attention(x)
            per_token = weights.mean(dim=(1, 2)).unsqueeze(-1)  # (B * nW, N, 1): over heads, queries
            grid = window_reverse(per_token, block.window_size, size, size).squeeze(-1)
            if block.shift_size:  # back from the rolled grid to the image's
                grid = torch.roll(grid, shifts=(block.shift_size, block.shift_size), dims=(1, 2))
            received.append(grid)
        return {"last": torch.stack(received).mean(0)}


class SwinFamily(ImageFamily):
    """Family `swin`: Swin Transformers, with any window attention."""

    config = SwinConfig
    test_args: ClassVar[dict[str, Any]] = {
        "img_size": 32,
        "patch_size": 2,
        "window_size": 4,
        "embed_dim": 16,
        "depths": [2, 2],
        "num_heads": [2, 4],
        "num_classes": 10,
    }

    def build(self, config: SwinConfig, *, device=None, dtype=None) -> SwinTransformer:
        return SwinTransformer(config, device=device, dtype=dtype)


family = SwinFamily()
build = family.build
