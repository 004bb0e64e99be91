"""Vision Transformer (ViT), and its descendants: DeiT, DINOv2, CLIP's image tower.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021. https://arxiv.org/abs/2010.11929
Touvron et al., "Training data-efficient image transformers & distillation through
attention", ICML 2021. https://arxiv.org/abs/2012.12877
Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision", 2023.
https://arxiv.org/abs/2304.07193; Darcet et al., "Vision Transformers Need Registers",
ICLR 2024. https://arxiv.org/abs/2309.16588
Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021. https://arxiv.org/abs/2103.00020

The image is cut into patches by a strided conv, a class token (and for DeiT a distillation
token) is prepended, learned position embeddings are added, and pre-norm transformer blocks
follow. The head reads the class token after the final norm, optionally through the
paper's representation layer (Linear + tanh); as in timm, `global_pool="avg"` reads the
mean of the patch tokens instead (normed after pooling, `fc_norm`), and `global_pool=""`
every token. `forward_intermediates` gives the outputs of chosen blocks, as timm's does.
As in timm, `dynamic_img_size=True` takes inputs of any size, resampling the position
embeddings to each input's patch grid, and `dynamic_img_pad=True` pads an input whose size
is not a multiple of the patch size on the right and bottom to the next multiple.

The descendants change a few pieces, each an argument: DINOv2 scales each residual branch
by a learned per-channel LayerScale (`init_values`) and may add register tokens after the
class token (`reg_tokens`), which carry no position embedding (`no_embed_class`); CLIP
normalises the tokens before the blocks (`pre_norm`, and then the patch embedding has no
bias), uses QuickGELU (`act_layer`) and LayerNorm eps 1e-5, and its head is the image
projection into the joint text-image space (`proj_dim`, the head of a model without
classes). Submodule names match timm, so its checkpoints load unchanged. The attention
inside each block is a pluggable token attention (`attn`), by default multi-head
self-attention on `scaled_dot_product_attention`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, model_validator
from torch import nn

import zoo.maps
from zoo.attention import TokenAttention
from zoo.registry.family import ImageFamily, feature_take_indices

from ..layers import (
    DropPath,
    Mlp,
    PatchEmbed,
    drop_path_rates,
    factory_of,
    init_linears,
    init_submodules,
    reconfigured,
    resample_pos_embed,
    run_blocks,
    tokens_as_grid,
    trunc_normal_,
)

__all__ = ["ViTConfig", "VisionTransformer", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]


class ViTConfig(BaseModel):
    """Architecture of a Vision Transformer (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    img_size: PositiveInt | tuple[PositiveInt, PositiveInt] = 224
    """Input size: square, or (height, width)."""
    patch_size: int = Field(default=16, gt=0)
    in_chans: int = Field(default=3, gt=0)
    num_classes: int = Field(default=1000, ge=0)
    embed_dim: int = Field(default=768, gt=0)
    depth: int = Field(default=12, gt=0)
    num_heads: int = Field(default=12, gt=0)
    mlp_ratio: float = Field(default=4.0, gt=0)
    qkv_bias: bool = True
    qk_scale: float | None = Field(default=None, gt=0)
    """Scale of the attention scores instead of head_dim ** -0.5 (an option of the attention)."""
    representation_size: int | None = Field(default=None, gt=0)
    distilled: bool = False
    reg_tokens: int = Field(default=0, ge=0)
    no_embed_class: bool = False
    init_values: float | None = Field(default=None, gt=0)
    pre_norm: bool = False
    act_layer: Literal["gelu", "quick_gelu"] = "gelu"
    layer_norm_eps: float = Field(default=1e-6, gt=0)
    proj_dim: int | None = Field(default=None, gt=0)
    global_pool: Literal["token", "avg", ""] = "token"
    """What the head reads: the class token, the mean of the patch tokens, or every token."""
    fc_norm: bool | None = None
    """Norm the pooled features instead of the tokens; None: only when `global_pool` is avg."""
    drop_rate: Rate = 0.0
    attn_drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    attn: TokenAttention = Field(default="mhsa", validate_default=True)
    dynamic_img_size: bool = False
    """Take inputs of any size, the position embeddings resampled to each one's patch grid."""
    dynamic_img_pad: bool = False
    """Pad inputs on the right and bottom to a multiple of the patch size."""

    @model_validator(mode="after")
    def _fits_together(self) -> ViTConfig:
        if any(size % self.patch_size for size in self.size):
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.distilled and self.global_pool != "token":
            raise ValueError(f"distilled reads its two tokens, not global_pool '{self.global_pool}'")
        return self

    @model_validator(mode="after")
    def _attention_takes_qk_scale(self, info: ValidationInfo) -> ViTConfig:
        if self.qk_scale is None:
            return self
        import zoo  # the installed registry, when validation is given none

        registry = (info.context or {}).get("registry") or zoo.default_registry()
        variant = registry.attention(self.attn.name, kind="token")
        if "qk_scale" not in variant.options_model().model_fields:
            raise ValueError(f"qk_scale: attention '{self.attn.name}' has no qk_scale option")
        if "qk_scale" in self.attn.options:
            raise ValueError("qk_scale is given twice: as an argument and as an option of attn")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """The input size, (height, width)."""
        return (self.img_size, self.img_size) if isinstance(self.img_size, int) else tuple(self.img_size)

    @property
    def use_fc_norm(self) -> bool:
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm


class LayerScale(nn.Module):
    """A learned per-channel scale of a residual branch (CaiT, DINOv2), from `init_values`."""

    def __init__(self, dim: int, init_values: float, *, device=None, dtype=None):
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.full((dim,), init_values, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


def layer_scale(config: ViTConfig, *, device=None, dtype=None) -> nn.Module:
    if config.init_values is None:
        return nn.Identity()
    return LayerScale(config.embed_dim, config.init_values, device=device, dtype=dtype)


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm(x))), then x + ls2(mlp(norm(x))); the
    LayerScales are identities unless `init_values` is set."""

    def __init__(self, config: ViTConfig, drop_path: float, *, device=None, dtype=None):
        super().__init__()
        dim, eps = config.embed_dim, config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps, device=device, dtype=dtype)
        attn = config.attn
        if config.qk_scale is not None:  # an option of the attention, checked by the config
            attn = attn.model_copy(update={"options": {**attn.options, "qk_scale": config.qk_scale}})
        self.attn = attn.build(
            dim,
            num_heads=config.num_heads,
            qkv_bias=config.qkv_bias,
            attn_drop=config.attn_drop_rate,
            proj_drop=config.drop_rate,
            device=device,
            dtype=dtype,
        )
        self.ls1 = layer_scale(config, device=device, dtype=dtype)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps, device=device, dtype=dtype)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = Mlp(dim, hidden, config.drop_rate, config.act_layer, device=device, dtype=dtype)
        self.ls2 = layer_scale(config, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its attention weights (B, heads, N, N), by the eager path."""
        attended, weights = self.attn(self.norm1(x), need_weights=True)
        x = x + self.drop_path(self.ls1(attended))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x)))), weights


class VisionTransformer(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    first_conv = "patch_embed.proj"

    def __init__(self, config: ViTConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.config = config
        # Tokens before the patches: class, then distillation (DeiT) or registers (DINOv2).
        self.num_prefix_tokens = 1 + int(config.distilled) + config.reg_tokens
        # How many of them have a position embedding: none with `no_embed_class`.
        self.num_embedded_prefix = 0 if config.no_embed_class else self.num_prefix_tokens
        self.num_features = config.representation_size or dim

        self.patch_embed = PatchEmbed(
            config.img_size,
            config.patch_size,
            config.in_chans,
            dim,
            bias=not config.pre_norm,
            dynamic_img_size=config.dynamic_img_size,
            dynamic_img_pad=config.dynamic_img_pad,
            **factory,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **factory))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim, **factory)) if config.distilled else None
        self.reg_token = (
            nn.Parameter(torch.zeros(1, config.reg_tokens, dim, **factory)) if config.reg_tokens else None
        )
        num_tokens = self.patch_embed.num_patches + self.num_embedded_prefix
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim, **factory))
        self.pos_drop = nn.Dropout(config.drop_rate)
        self.norm_pre = self._norm(**factory) if config.pre_norm else nn.Identity()

        rates = drop_path_rates(config.drop_path_rate, config.depth)
        self.blocks = nn.Sequential(*(Block(config, rate, **factory) for rate in rates))
        self.grad_checkpointing = False
        self.feature_info = [  # every block's tokens, as a map over the patch grid
            {"module": f"blocks.{i}", "num_chs": dim, "reduction": config.patch_size}
            for i in range(config.depth)
        ]
        self.norm = nn.Identity() if config.use_fc_norm else self._norm(**factory)
        self.fc_norm = self._norm(**factory) if config.use_fc_norm else nn.Identity()

        if config.representation_size:
            fc = nn.Linear(dim, config.representation_size, **factory)
            self.pre_logits = nn.Sequential(OrderedDict(fc=fc, act=nn.Tanh()))
        else:
            self.pre_logits = nn.Identity()
        # Without classes, the head is CLIP's image projection, if there is one.
        self.head = self._classifier(config.num_classes or config.proj_dim or 0, **factory)
        self.head_dist = self._classifier(config.num_classes, **factory) if config.distilled else None
        self.distilled_training = False  # see `set_distilled_training`
        self.reset_parameters()

    def _norm(self, **factory) -> nn.LayerNorm:
        return nn.LayerNorm(self.config.embed_dim, eps=self.config.layer_norm_eps, **factory)

    def _classifier(self, num_classes: int, **factory) -> nn.Module:
        return nn.Linear(self.num_features, num_classes, **factory) if num_classes > 0 else nn.Identity()

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) weights, zero biases."""
        if self.pos_embed.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.dist_token is not None:
            trunc_normal_(self.dist_token, std=0.02)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        init_linears(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks."""
        init_submodules(self, names, init_linears)

    def blocks_in_order(self) -> list[nn.Module]:
        return list(self.blocks)

    @property
    def classifier_names(self) -> tuple[str, ...]:
        return ("head", "head_dist") if self.head_dist is not None else ("head",)

    def init_classifier(self) -> None:
        """Initialise the head(s) as `reset_parameters` does, e.g. after a new `num_classes`."""
        for head in (self.head, self.head_dist):
            if isinstance(head, nn.Linear):
                trunc_normal_(head.weight, std=0.02)
                nn.init.zeros_(head.bias)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New head(s) of `num_classes` (0: none, CLIP's projection included), initialised as
        `init_classifier` does; `global_pool` changes what they read (token, avg, ""), the
        norms staying as they are, as in timm."""
        pool = self.config.global_pool if global_pool is None else global_pool
        self.config = reconfigured(
            self.config,
            num_classes=num_classes,
            proj_dim=None,
            global_pool=pool,
            fc_norm=self.config.use_fc_norm,
        )
        factory = factory_of(self)
        self.head = self._classifier(num_classes, **factory)
        if self.head_dist is not None:
            self.head_dist = self._classifier(num_classes, **factory)
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """The position embeddings and the prefix tokens (timm's set, of those this ViT has)."""
        names = {"pos_embed", "cls_token", "dist_token", "reg_token"}
        return {name for name, _ in self.named_parameters(recurse=False) if name in names}

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the blocks up to
        the last one asked for, the final norm unless `prune_norm`, no head if `prune_head`.

        Returns:
            The indices, counted from the first block (negative ones no longer fit).
        """
        take = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max(take) + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.fc_norm, self.pre_logits = nn.Identity(), nn.Identity()
            self.head = nn.Identity()
            self.head_dist = nn.Identity() if self.head_dist is not None else None
        return take

    def adapt_pretrained(self, name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, str] | None:
        """Position embeddings of another square grid, resampled to this one as timm does
        (`resample_pos_embed`); the embeddings of prefix tokens (class, distillation,
        registers) are kept as they are. Other tensors: None."""
        prefix = self.num_embedded_prefix
        if name != "pos_embed" or tensor.ndim != 3 or tensor.shape[-1] != self.pos_embed.shape[-1]:
            return None
        old = math.isqrt(tensor.shape[1] - prefix)
        if old * old != tensor.shape[1] - prefix or tensor.shape[0] != 1:
            return None
        height, width = self.patch_embed.grid_size
        resampled = resample_pos_embed(tensor, prefix, (old, old), (height, width))
        return resampled, (
            f"pos_embed: position embeddings resampled from a {old}x{old} to a {height}x{width} grid "
            f"(bicubic), {prefix} prefix token(s) kept"
        )

    def _prefix_tokens(self, batch: int) -> list[torch.Tensor]:
        tokens = [self.cls_token, self.dist_token, self.reg_token]
        return [token.expand(batch, -1, -1) for token in tokens if token is not None]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patches and prefix tokens, position embedded, normed first for CLIP."""
        x = self.patch_embed.forward_grid(x)
        pos_embed = self._pos_embed_for(tuple(x.shape[-2:]))
        x = x.flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, N, D)
        prefix = self._prefix_tokens(x.shape[0])
        if self.config.no_embed_class:
            x = torch.cat([*prefix, x + pos_embed], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + pos_embed
        return self.norm_pre(self.pos_drop(x))

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embeddings of a patch grid: resampled when it is not the built one."""
        if grid == self.patch_embed.grid_size:
            return self.pos_embed
        return resample_pos_embed(self.pos_embed, self.num_embedded_prefix, self.patch_embed.grid_size, grid)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> normed tokens (B, prefix + N, D)."""
        return self.norm(run_blocks(self.blocks, self._embed(x), checkpointed=self.grad_checkpointing))

    def forward_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normed tokens and every block's attention weights, each (B, heads, N, N)."""
        x = self._embed(x)
        weights = []
        for block in self.blocks:
            x, block_weights = block.forward_with_attention(x)
            weights.append(block_weights)
        return self.norm(x), weights

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Where the class token looks (the zoo's attention-map protocol, see `zoo.maps`):
        `"rollout"` over all blocks and `"last"` in the last block, each (B, h, w) over the
        patch grid."""
        _, weights = self.forward_attention(x)
        grid = self.patch_embed.dynamic_grid(*x.shape[-2:])
        return {
            "rollout": zoo.maps.attention_rollout(
                weights, num_prefix_tokens=self.num_prefix_tokens, grid=grid
            ),
            "last": zoo.maps.class_token_attention(
                weights[-1], num_prefix_tokens=self.num_prefix_tokens, grid=grid
            ),
        }

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW", "NLC"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The outputs of some blocks, as timm gives them.

        Args:
            indices: The blocks: all (None), the last n (an int), or their indices (negative
                ones count from the end).
            norm: Pass each output through the final norm.
            output_fmt: "NCHW": each (B, D, h, w) over the patch grid; "NLC": (B, h*w, D).
                The prefix tokens (class, distillation, registers) are left out.
            intermediates_only: Return the list alone.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt '{output_fmt}': expected 'NCHW' or 'NLC'")
        take = feature_take_indices(len(self.blocks), indices)
        height, width = self.patch_embed.dynamic_grid(*x.shape[-2:])
        x = self._embed(x)
        intermediates = []
        for index, block in enumerate(self.blocks):
            x = run_blocks([block], x, checkpointed=self.grad_checkpointing)
            if index in take:
                intermediates.append(self.norm(x) if norm else x)
        intermediates = [y[:, self.num_prefix_tokens :] for y in intermediates]
        if output_fmt == "NCHW":
            intermediates = [tokens_as_grid(y, height, width) for y in intermediates]
        return intermediates if intermediates_only else (self.norm(x), intermediates)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens (B, prefix + N, D) -> what the head reads (`global_pool`)."""
        if self.config.global_pool == "avg":
            return x[:, self.num_prefix_tokens :].mean(dim=1)
        return x[:, 0] if self.config.global_pool == "token" else x

    def forward_head(
        self, x: torch.Tensor, pre_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Class logits from the tokens; with `pre_logits`, the pooled features instead.

        DeiT averages the class-token head and the distillation-token head, except while
        training with `set_distilled_training()`: then it returns the two logits apart,
        `(class-token logits, distillation-token logits)`, as timm's distilled model does.
        """
        if self.head_dist is None:
            x = self.pre_logits(self.fc_norm(self.pool(x)))
            return x if pre_logits else self.head(x)
        cls, dist = self.pre_logits(x[:, 0]), self.pre_logits(x[:, 1])
        if pre_logits:
            return (cls + dist) / 2
        logits = self.head(cls), self.head_dist(dist)
        if self.distilled_training and self.training:
            return logits
        return (logits[0] + logits[1]) / 2

    def set_distilled_training(self, enable: bool = True) -> None:
        """DeiT's distillation: in training mode, `forward` returns `(class-token logits,
        distillation-token logits)`, the first for the labels, the second for the teacher.
        Evaluation mode averages them still."""
        if self.head_dist is None and enable:
            raise ValueError("this ViT has no distillation token (distilled=False)")
        self.distilled_training = enable

    def forward_distillation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """DeiT training: class-token logits (for the labels) and distillation-token logits
        (for the teacher), kept apart, in either mode."""
        if self.head_dist is None:
            raise ValueError("this ViT has no distillation token (distilled=False)")
        x = self.forward_features(x)
        return self.head(self.pre_logits(x[:, 0])), self.head_dist(self.pre_logits(x[:, 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VisionTransformerFamily(ImageFamily):
    """Family `vit`: Vision Transformers and their descendants (DeiT, DINOv2, CLIP), with any
    token attention."""

    config = ViTConfig
    test_args: ClassVar[dict[str, Any]] = {
        "img_size": 32,
        "patch_size": 8,
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "num_classes": 10,
    }

    def build(self, config: ViTConfig, *, device=None, dtype=None) -> VisionTransformer:
        return VisionTransformer(config, device=device, dtype=dtype)


family = VisionTransformerFamily()
build = family.build
