"""CaiT: Class-Attention in Image Transformers.

Touvron et al., "Going deeper with Image Transformers", ICCV 2021.
https://arxiv.org/abs/2103.17239

Two changes let ViTs grow deeper:

- LayerScale: each residual branch is multiplied by a learned per-channel vector
  (`gamma_1`, `gamma_2`) initialised small (`init_values`), so deep stacks start close to
  the identity. The patch blocks use talking-heads attention (`attn`).
- Class attention: the class token is not among the patches during self-attention. It is
  added after the patch blocks, and a few class-attention blocks (`blocks_token_only`)
  update it alone, attending over itself and the frozen patch tokens (`class_attn`).

Position embeddings cover the patches only. The head reads the class token after the
final norm. Submodule names match timm, so its checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator
from torch import nn

import zoo.maps
from zoo.attention import ClassAttention, TokenAttention
from zoo.registry.family import ImageFamily, feature_take_indices

from ..layers import (
    DropPath,
    Mlp,
    PatchEmbed,
    factory_of,
    init_linears,
    init_submodules,
    reconfigured,
    resample_pos_embed,
    run_blocks,
    tokens_as_grid,
    trunc_normal_,
)

__all__ = ["CaiT", "CaiTConfig", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]


class CaiTConfig(BaseModel):
    """Architecture of a CaiT (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    img_size: PositiveInt | tuple[PositiveInt, PositiveInt] = Field(
        default=224, description="a square, or (height, width)"
    )
    patch_size: int = Field(default=16, gt=0)
    in_chans: int = Field(default=3, gt=0)
    num_classes: int = Field(default=1000, ge=0)
    embed_dim: int = Field(default=768, gt=0)
    depth: int = Field(default=12, gt=0)
    num_heads: int = Field(default=12, gt=0)
    mlp_ratio: float = Field(default=4.0, gt=0)
    qkv_bias: bool = True
    init_values: float = Field(default=1e-5, gt=0)
    depth_token_only: int = Field(default=2, ge=1)
    mlp_ratio_token_only: float = Field(default=4.0, gt=0)
    drop_rate: Rate = 0.0
    attn_drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    attn: TokenAttention = Field(default="talking_heads", validate_default=True)
    class_attn: ClassAttention = Field(default="class_attention", validate_default=True)
    global_pool: Literal["token", "avg", ""] = "token"
    """What the head reads: the class token, the mean of the patch tokens, or every token."""

    @model_validator(mode="after")
    def _fits_together(self) -> CaiTConfig:
        sides = (self.img_size,) if isinstance(self.img_size, int) else self.img_size
        if any(side % self.patch_size for side in sides):
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        return self


class LayerScaleBlock(nn.Module):
    """Pre-norm block with LayerScale: x + gamma_1 * attn(norm(x)), x + gamma_2 * mlp(norm(x))."""

    def __init__(self, config: CaiTConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, **factory)
        self.attn = config.attn.build(
            dim,
            num_heads=config.num_heads,
            qkv_bias=config.qkv_bias,
            attn_drop=config.attn_drop_rate,
            proj_drop=config.drop_rate,
            **factory,
        )
        self.drop_path = DropPath(config.drop_path_rate)  # the same rate in every block, as in the paper
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, **factory)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate, **factory)
        self.gamma_1 = nn.Parameter(torch.full((dim,), config.init_values, **factory))
        self.gamma_2 = nn.Parameter(torch.full((dim,), config.init_values, **factory))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class LayerScaleBlockClassAttn(nn.Module):
    """Class-attention block: updates the class token only, attending over [class, patches]."""

    def __init__(self, config: CaiTConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, **factory)
        # The paper trains these blocks without dropout or stochastic depth.
        self.attn = config.class_attn.build(
            dim, num_heads=config.num_heads, qkv_bias=config.qkv_bias, attn_drop=0.0, proj_drop=0.0, **factory
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, **factory)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio_token_only), 0.0, **factory)
        self.gamma_1 = nn.Parameter(torch.full((dim,), config.init_values, **factory))
        self.gamma_2 = nn.Parameter(torch.full((dim,), config.init_values, **factory))

    def forward(self, x: torch.Tensor, x_cls: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, D) and the class token (B, 1, D) -> the new class token."""
        return self.forward_with_attention(x, x_cls)[0]

    def forward_with_attention(
        self, x: torch.Tensor, x_cls: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The new class token and its attention weights (B, heads, 1, 1 + N)."""
        attended, weights = self.attn(self.norm1(torch.cat([x_cls, x], dim=1)), need_weights=True)
        x_cls = x_cls + self.gamma_1 * attended
        return x_cls + self.gamma_2 * self.mlp(self.norm2(x_cls)), weights


class CaiT(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    first_conv = "patch_embed.proj"
    classifier_names = ("head",)

    def __init__(self, config: CaiTConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.config = config
        self.num_features = dim

        self.patch_embed = PatchEmbed(config.img_size, config.patch_size, config.in_chans, dim, **factory)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **factory))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, dim, **factory))
        self.pos_drop = nn.Dropout(config.drop_rate)

        self.blocks = nn.Sequential(*(LayerScaleBlock(config, **factory) for _ in range(config.depth)))
        self.grad_checkpointing = False
        self.feature_info = [  # every block's tokens, as a map over the patch grid
            {"module": f"blocks.{i}", "num_chs": dim, "reduction": config.patch_size}
            for i in range(config.depth)
        ]
        self.blocks_token_only = nn.ModuleList(
            LayerScaleBlockClassAttn(config, **factory) for _ in range(config.depth_token_only)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6, **factory)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = self._classifier(config.num_classes, **factory)
        self.reset_parameters()

    def _classifier(self, num_classes: int, **factory) -> nn.Module:
        return nn.Linear(self.num_features, num_classes, **factory) if num_classes else nn.Identity()

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) weights, zero biases."""
        if self.pos_embed.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        init_linears(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks."""
        init_submodules(self, names, init_linears)

    def init_classifier(self) -> None:
        """Initialise the head as `reset_parameters` does, e.g. after a new `num_classes`."""
        if isinstance(self.head, nn.Linear):
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier of `num_classes` (0: none), initialised as `init_classifier` does,
        reading the class token, the mean patch token or (`global_pool=""`) every token."""
        pool = self.config.global_pool if global_pool is None else global_pool
        self.config = reconfigured(self.config, num_classes=num_classes, global_pool=pool)
        self.head = self._classifier(num_classes, **factory_of(self))
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each patch block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """The position embeddings and the class token (timm's set)."""
        names = {"pos_embed", "cls_token"}  # the class token is gone from a pruned model
        return {name for name, _ in self.named_parameters(recurse=False) if name in names}

    def blocks_in_order(self) -> list[nn.Module]:
        return [*self.blocks, *self.blocks_token_only]

    def adapt_pretrained(self, name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, str] | None:
        """Position embeddings of another grid, resampled to this one (bicubic). Other
        tensors: None."""
        if name != "pos_embed" or tensor.ndim != 3 or tensor.shape[0] != 1:
            return None
        old, (height, width) = math.isqrt(tensor.shape[1]), self.patch_embed.grid_size
        if old * old != tensor.shape[1] or tensor.shape[-1] != self.pos_embed.shape[-1]:
            return None
        resampled = resample_pos_embed(tensor, 0, (old, old), (height, width), antialias=False)
        return resampled, (
            f"pos_embed: position embeddings resampled from {old}x{old} to {height}x{width}, bicubic"
        )

    def _patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> patch tokens after the LayerScale blocks (B, N, D)."""
        return run_blocks(self.blocks, self._embed(x), checkpointed=self.grad_checkpointing)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos_drop(self.patch_embed(x) + self.pos_embed)

    def _with_class_token(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, D) -> normed tokens (B, 1 + N, D), the class token updated by the
        class-attention blocks first."""
        x_cls = self._class_token(x.shape[0])
        for block in self.blocks_token_only:
            x_cls = block(x, x_cls)
        return self.norm(torch.cat([x_cls, x], dim=1))

    def _class_token(self, batch: int) -> torch.Tensor:
        # A copy, not an expanded view: a view of a parameter made under no_grad still
        # requires grad yet has no grad_fn, which autograd hooks on block inputs reject.
        return self.cls_token.repeat(batch, 1, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> normed tokens (B, 1 + N, D), the class token first."""
        return self._with_class_token(self._patch_tokens(x))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW", "NLC"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The patch tokens after some patch blocks, as timm gives them.

        Args:
            indices: The patch blocks: all (None), the last n (an int), or their indices.
            norm: Pass each output through the final norm.
            output_fmt: "NCHW": each (B, D, h, w) over the patch grid; "NLC": (B, h*w, D).
            intermediates_only: Return the list alone, without running the blocks after the
                last one asked for nor the class-attention blocks.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt '{output_fmt}': expected 'NCHW' or 'NLC'")
        take = feature_take_indices(len(self.blocks), indices)
        x = self._embed(x)
        intermediates = []
        for index, block in enumerate(self.blocks):
            if intermediates_only and index > max(take):
                break
            x = run_blocks([block], x, checkpointed=self.grad_checkpointing)
            if index in take:
                intermediates.append(self.norm(x) if norm else x)
        if output_fmt == "NCHW":
            intermediates = [tokens_as_grid(y, *self.patch_embed.grid_size) for y in intermediates]
        return intermediates if intermediates_only else (self._with_class_token(x), intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the patch blocks
        up to the last one asked for, the final norm unless `prune_norm`, and if `prune_head`
        neither the class token, the class-attention blocks nor the head (the patch tokens
        never see them)."""
        take = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max(take) + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.cls_token = None
            self.blocks_token_only = nn.ModuleList()
            self.head = nn.Identity()
        return take

    def forward_class_attention(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every class-attention block's weights, each (B, heads, 1, 1 + N)."""
        x = self._patch_tokens(x)
        x_cls = self._class_token(x.shape[0])
        weights = []
        for block in self.blocks_token_only:
            x_cls, block_weights = block.forward_with_attention(x, x_cls)
            weights.append(block_weights)
        return weights

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Where the class token looks in the last class-attention block (the zoo's
        attention-map protocol, see `zoo.maps`): `"last"`, (B, h, w) over the patch grid."""
        last = self.forward_class_attention(x)[-1]
        return {
            "last": zoo.maps.class_token_attention(last, num_prefix_tokens=1, grid=self.patch_embed.grid_size)
        }

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class logits from the tokens; with `pre_logits`, what the head reads instead (the
        class token, the mean patch token or every token, by `global_pool`)."""
        if self.config.global_pool == "avg":
            x = x[:, 1:].mean(dim=1)
        elif self.config.global_pool == "token":
            x = x[:, 0]
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CaiTFamily(ImageFamily):
    """Family `cait`: CaiT, with any token attention in the patch blocks and any class attention."""

    config = CaiTConfig
    test_args: ClassVar[dict[str, Any]] = {
        "img_size": 32,
        "patch_size": 8,
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "depth_token_only": 1,
        "num_classes": 10,
    }

    def build(self, config: CaiTConfig, *, device=None, dtype=None) -> CaiT:
        return CaiT(config, device=device, dtype=dtype)


family = CaiTFamily()
build = family.build
