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

The later ViTs of the timm catalogue change more pieces, each an argument too: no class token
(`class_token=False`; the head averages the patches, `global_pool="avg"`, or pools them by a
learned query, `global_pool="map"` with a latent-pool attention `attn_pool`, as SigLIP does),
RMSNorm for every norm and a norm of the patch embeddings (`norm_layer`, `embed_norm_layer`:
AIMv2), gated MLPs (`mlp_layer`: SwiGLU, GLU), no bias in the projections (`proj_bias`),
NormFormer's extra norms inside attention and MLP (`scale_attn_norm`, `scale_mlp_norm`:
BEiT-3), no final norm (`final_norm=False`: RADIO), and other blocks (`block_fn`): post-norm
residuals (`res_post`), and the parallel blocks of ViT-22B, whose attention and MLP read one
norm and one fused input projection (`parallel_scaling`; `diff_parallel_scaling` with
differential attention, Ye et al., ICLR 2025, https://arxiv.org/abs/2410.05258).
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
from zoo.attention import LatentPoolAttention, TokenAttention
from zoo.registry.family import ImageFamily, feature_take_indices

from ..attention.diff import add_differential_parts, attend_differentially, init_lambdas
from ..attention.functional import scaled_dot_product_attention
from ..layers import (
    Activation,
    DropPath,
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
from ..layers.activations import activation
from ..layers.mlp import MlpLayer, mlp_layer
from ..layers.norms import NormFactory, NormLayer, norm_factory

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
    proj_bias: bool = True
    """Biases in the attention's output projection and the MLP's Linears (AIMv2 has none)."""
    representation_size: int | None = Field(default=None, gt=0)
    class_token: bool = True
    """Prepend a class token; SigLIP, AIMv2 and the register ViTs pool the patches without one."""
    distilled: bool = False
    reg_tokens: int = Field(default=0, ge=0)
    no_embed_class: bool = False
    init_values: float | None = Field(default=None, gt=0)
    pre_norm: bool = False
    final_norm: bool = True
    """Norm the tokens after the blocks (or the pooled features, with `fc_norm`)."""
    act_layer: Activation = "gelu"
    norm_layer: NormLayer = "layernorm"
    """Every norm of the model: LayerNorm, or RMSNorm (AIMv2); of eps `layer_norm_eps`."""
    layer_norm_eps: float = Field(default=1e-6, gt=0)
    embed_norm_layer: NormLayer | None = None
    """A norm of the patch embeddings before the position embeddings are added (AIMv2)."""
    mlp_layer: MlpLayer = "mlp"
    """The feed-forward network: Linear-act-Linear, or gated (SwiGLU's two first Linears, or
    GLU's one fused first Linear whose activated first half gates the second)."""
    scale_attn_norm: bool = False
    """NormFormer: norm the attention's heads before its output projection (an option of it)."""
    scale_mlp_norm: bool = False
    """NormFormer: norm the MLP's hidden activations before its second Linear."""
    block_fn: Literal["block", "res_post", "parallel_scaling", "diff_parallel_scaling"] = "block"
    """The block: pre-norm (`block`), post-norm residuals (`res_post`), or ViT-22B's parallel
    attention and MLP with fused input projections (`parallel_scaling`, with differential
    attention `diff_parallel_scaling`); the parallel blocks hold their attention themselves."""
    proj_dim: int | None = Field(default=None, gt=0)
    global_pool: Literal["token", "avg", "map", ""] = "token"
    """What the head reads: the class token, the mean of the patch tokens, the patch tokens
    pooled by `attn_pool` (multihead attention pooling), or every token."""
    attn_pool: LatentPoolAttention | None = None
    """The attention-pooling head of `global_pool="map"` (by default `map`); naming one makes
    the pool `map`, whatever `global_pool` says."""
    pool_include_prefix: bool = False
    """Average (or attention-pool) the prefix tokens with the patches."""
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
    drop_remainder: bool = False
    """Take an `img_size` that is not a multiple of the patch size: the last rows and columns
    of pixels that no whole patch covers are left out, as the strided conv leaves them (timm's
    SigLIP at 384 pixels with 14-pixel patches)."""

    @model_validator(mode="before")
    @classmethod
    def _map_pools_by_attention(cls, data: Any) -> Any:
        """`global_pool="map"` and `attn_pool` go together: either one implies the other."""
        if not isinstance(data, dict):
            return data
        if data.get("attn_pool") is not None:
            return {**data, "global_pool": "map"}
        if data.get("global_pool") == "map" and data.get("attn_pool") is None:
            return {**data, "attn_pool": "map"}
        return data

    @model_validator(mode="after")
    def _fits_together(self) -> ViTConfig:
        if not self.drop_remainder and any(size % self.patch_size for size in self.size):
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.distilled and self.global_pool not in ("token", "map"):
            raise ValueError(f"distilled reads its two tokens, not global_pool '{self.global_pool}'")
        if not self.class_token and (self.global_pool == "token" or self.distilled):
            raise ValueError(
                "global_pool 'token' (and distilled) read the class token: class_token=False has none"
            )
        if self.block_fn.startswith(("parallel", "diff_parallel")):
            if self.scale_attn_norm or self.scale_mlp_norm or self.mlp_layer != "mlp":
                raise ValueError(f"block_fn '{self.block_fn}' has no scale norms and a plain MLP")
            if self.attn.name != "mhsa" or self.attn.options or self.qk_scale is not None:
                raise ValueError(
                    f"block_fn '{self.block_fn}' holds its own attention, not attn '{self.attn}'"
                )
        if self.scale_attn_norm and self.norm_layer != "layernorm":
            raise ValueError("scale_attn_norm norms the heads by a LayerNorm: norm_layer must be layernorm")
        return self

    @model_validator(mode="after")
    def _attention_takes_options(self, info: ValidationInfo) -> ViTConfig:
        options = self.attention_options
        if not options:
            return self
        import zoo  # the installed registry, when validation is given none

        registry = (info.context or {}).get("registry") or zoo.default_registry()
        variant = registry.attention(self.attn.name, kind="token")
        for option, argument in ATTENTION_OPTIONS.items():
            if option not in options:
                continue
            if option not in variant.options_model().model_fields:
                raise ValueError(f"{argument}: attention '{self.attn.name}' has no {option} option")
            if option in self.attn.options:
                raise ValueError(f"{option} is given twice: as {argument} and as an option of attn")
        return self

    @property
    def attention_options(self) -> dict[str, Any]:
        """What arguments of the config fix in each block's attention, as its options."""
        options: dict[str, Any] = {}
        if self.qk_scale is not None:
            options["qk_scale"] = self.qk_scale
        if not self.proj_bias:
            options["proj_bias"] = False
        if self.scale_attn_norm:
            options["scale_norm_eps"] = self.layer_norm_eps
        return options

    @property
    def size(self) -> tuple[int, int]:
        """The input size, (height, width)."""
        return (self.img_size, self.img_size) if isinstance(self.img_size, int) else tuple(self.img_size)

    @property
    def use_fc_norm(self) -> bool:
        return self.global_pool == "avg" if self.fc_norm is None else self.fc_norm

    @property
    def norm(self) -> NormFactory:
        """The factory of the model's norms (`norm_layer`, `layer_norm_eps`)."""
        return norm_factory(self.norm_layer, self.layer_norm_eps)


ATTENTION_OPTIONS = {
    "qk_scale": "qk_scale",
    "proj_bias": "proj_bias=False",
    "scale_norm_eps": "scale_attn_norm",
}
"""The attention options the config's arguments fix: option -> the argument that fixes it."""


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


def token_attention(config: ViTConfig, block_index: int, *, device=None, dtype=None) -> nn.Module:
    """The block's token attention (`attn`), with the options the config's arguments fix."""
    attn = config.attn
    if config.attention_options:  # checked against the variant by the config
        attn = attn.model_copy(update={"options": {**attn.options, **config.attention_options}})
    return attn.build(
        config.embed_dim,
        num_heads=config.num_heads,
        qkv_bias=config.qkv_bias,
        attn_drop=config.attn_drop_rate,
        proj_drop=config.drop_rate,
        block_index=block_index,
        device=device,
        dtype=dtype,
    )


def feed_forward(config: ViTConfig, *, device=None, dtype=None) -> nn.Module:
    """The block's MLP (`mlp_layer`), its hidden activations normed with `scale_mlp_norm`."""
    dim = config.embed_dim
    return mlp_layer(config.mlp_layer)(
        dim,
        int(dim * config.mlp_ratio),
        config.drop_rate,
        config.act_layer,
        bias=config.proj_bias,
        norm=config.norm if config.scale_mlp_norm else None,
        device=device,
        dtype=dtype,
    )


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm(x))), then x + ls2(mlp(norm(x))); the
    LayerScales are identities unless `init_values` is set."""

    def __init__(self, config: ViTConfig, drop_path: float, block_index: int = 0, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm1 = config.norm(config.embed_dim, **factory)
        self.attn = token_attention(config, block_index, **factory)
        self.ls1 = layer_scale(config, **factory)
        self.drop_path = DropPath(drop_path)
        self.norm2 = config.norm(config.embed_dim, **factory)
        self.mlp = feed_forward(config, **factory)
        self.ls2 = layer_scale(config, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its attention weights (B, heads, N, N), by the eager path."""
        attended, weights = self.attn(self.norm1(x), need_weights=True)
        x = x + self.drop_path(self.ls1(attended))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x)))), weights


class ResPostBlock(nn.Module):
    """Post-norm residuals: x + norm1(attn(x)), then x + norm2(mlp(x)). With `init_values`,
    the norms' weights start at that value, as LayerScale would (timm's `ResPostBlock`)."""

    def __init__(self, config: ViTConfig, drop_path: float, block_index: int = 0, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.init_values = config.init_values
        self.attn = token_attention(config, block_index, **factory)
        self.norm1 = config.norm(config.embed_dim, **factory)
        self.drop_path = DropPath(drop_path)
        self.mlp = feed_forward(config, **factory)
        self.norm2 = config.norm(config.embed_dim, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init_values is not None:
            nn.init.constant_(self.norm1.weight, self.init_values)
            nn.init.constant_(self.norm2.weight, self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.norm1(self.attn(x)))
        return x + self.drop_path(self.norm2(self.mlp(x)))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attn(x, need_weights=True)
        x = x + self.drop_path(self.norm1(attended))
        return x + self.drop_path(self.norm2(self.mlp(x))), weights


class ParallelScalingBlock(nn.Module):
    """ViT-22B's parallel block (Dehghani et al. 2023, https://arxiv.org/abs/2302.05442):
    attention and MLP read the same normed input through one fused projection (`in_proj`:
    the MLP's first Linear, then q, k, v), and their outputs are summed into the residual,
    x + ls(attn_out_proj(attention) + mlp_out_proj(act(mlp))). Without `qkv_bias` the MLP
    keeps a bias of its own (`mlp_bias`)."""

    def __init__(self, config: ViTConfig, drop_path: float, block_index: int = 0, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.num_heads = config.num_heads
        self.hidden = int(dim * config.mlp_ratio)
        self.in_norm = config.norm(dim, **factory)
        self.in_proj = nn.Linear(dim, self.hidden + 3 * dim, bias=config.qkv_bias, **factory)
        self.mlp_bias = None if config.qkv_bias else nn.Parameter(torch.zeros(self.hidden, **factory))
        self.attn_drop = nn.Dropout(config.attn_drop_rate)
        self.mlp_act = activation(config.act_layer)
        self.mlp_drop = nn.Dropout(config.drop_rate)
        self._output_projections(config, **factory)
        self.ls = layer_scale(config, **factory)
        self.drop_path = DropPath(drop_path)

    def _output_projections(self, config: ViTConfig, **factory) -> None:
        dim = config.embed_dim
        self.attn_out_proj = nn.Linear(dim, dim, bias=config.proj_bias, **factory)
        self.mlp_out_proj = nn.Linear(self.hidden, dim, bias=config.proj_bias, **factory)

    def reset_parameters(self) -> None:
        if self.mlp_bias is not None:
            nn.init.zeros_(self.mlp_bias)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The MLP's hidden activations (B, N, hidden), and q, k, v (B, N, dim) each."""
        dim = x.shape[-1]
        mlp, q, k, v = self.in_proj(self.in_norm(x)).split([self.hidden, dim, dim, dim], dim=-1)
        if self.mlp_bias is not None:
            mlp = mlp + self.mlp_bias
        return self.mlp_drop(self.mlp_act(mlp)), q, k, v

    def _attend(self, q, k, v, need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Multi-head attention of (B, N, dim) q, k, v -> (B, N, dim), and the weights if asked."""
        batch, tokens, dim = q.shape
        q, k, v = (t.reshape(batch, tokens, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        dropout = self.attn_drop.p if self.training else 0.0
        result = scaled_dot_product_attention(q, k, v, dropout_p=dropout, need_weights=need_weights)
        attended, weights = result if need_weights else (result, None)
        return attended.transpose(1, 2).reshape(batch, tokens, dim), weights

    def _combine(self, attended: torch.Tensor, mlp: torch.Tensor) -> torch.Tensor:
        return self.attn_out_proj(attended) + self.mlp_out_proj(mlp)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its attention weights (B, heads, N, N), by the eager path."""
        mlp, q, k, v = self._project(x)
        attended, weights = self._attend(q, k, v, need_weights=True)
        return x + self.drop_path(self.ls(self._combine(attended, mlp))), weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mlp, q, k, v = self._project(x)
        attended, _ = self._attend(q, k, v, need_weights=False)
        return x + self.drop_path(self.ls(self._combine(attended, mlp)))


class DiffParallelScalingBlock(ParallelScalingBlock):
    """The parallel block with differential attention (see `zoo_plugins.attention.diff`):
    each head's two half-width query-key maps, their difference over the values, RMS-normed
    (`sub_norm`) and scaled by 1 - lambda_init; one output projection (`out_proj`) of the
    attention and the MLP side by side."""

    def __init__(self, config: ViTConfig, drop_path: float, block_index: int = 0, *, device=None, dtype=None):
        super().__init__(config, drop_path, block_index, device=device, dtype=dtype)
        factory = {"device": device, "dtype": dtype}
        add_differential_parts(self, config.embed_dim, config.num_heads, block_index, **factory)
        self.reset_parameters()

    def _output_projections(self, config: ViTConfig, **factory) -> None:
        dim = config.embed_dim
        self.out_proj = nn.Linear(dim + self.hidden, dim, bias=config.proj_bias, **factory)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        init_lambdas(self)

    def _attend(self, q, k, v, need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        dropout = self.attn_drop.p if self.training else 0.0
        return attend_differentially(self, q, k, v, dropout_p=dropout, need_weights=need_weights)

    def _combine(self, attended: torch.Tensor, mlp: torch.Tensor) -> torch.Tensor:
        return self.out_proj(torch.cat([attended, mlp], dim=-1))


BLOCKS: dict[str, type[nn.Module]] = {
    "block": Block,
    "res_post": ResPostBlock,
    "parallel_scaling": ParallelScalingBlock,
    "diff_parallel_scaling": DiffParallelScalingBlock,
}


class VisionTransformer(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    first_conv = "patch_embed.proj"

    def __init__(self, config: ViTConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.config = config
        # Tokens before the patches: class, then distillation (DeiT) or registers (DINOv2).
        self.num_prefix_tokens = int(config.class_token) + int(config.distilled) + config.reg_tokens
        # How many of them have a position embedding: none with `no_embed_class`.
        self.num_embedded_prefix = 0 if config.no_embed_class else self.num_prefix_tokens
        self.num_features = config.representation_size or dim

        self.patch_embed = PatchEmbed(
            config.img_size,
            config.patch_size,
            config.in_chans,
            dim,
            bias=not config.pre_norm,
            norm_layer=norm_factory(config.embed_norm_layer, config.layer_norm_eps)
            if config.embed_norm_layer
            else None,
            dynamic_img_size=config.dynamic_img_size,
            dynamic_img_pad=config.dynamic_img_pad,
            **factory,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **factory)) if config.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim, **factory)) if config.distilled else None
        self.reg_token = (
            nn.Parameter(torch.zeros(1, config.reg_tokens, dim, **factory)) if config.reg_tokens else None
        )
        num_tokens = self.patch_embed.num_patches + self.num_embedded_prefix
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim, **factory))
        self.pos_drop = nn.Dropout(config.drop_rate)
        self.norm_pre = self._norm(**factory) if config.pre_norm else nn.Identity()

        rates = drop_path_rates(config.drop_path_rate, config.depth)
        block = BLOCKS[config.block_fn]
        self.blocks = nn.Sequential(
            *(block(config, rate, index, **factory) for index, rate in enumerate(rates))
        )
        self.grad_checkpointing = False
        self.feature_info = [  # every block's tokens, as a map over the patch grid
            {"module": f"blocks.{i}", "num_chs": dim, "reduction": config.patch_size}
            for i in range(config.depth)
        ]
        final_norm = self._norm(**factory) if config.final_norm else nn.Identity()
        self.norm = nn.Identity() if config.use_fc_norm else final_norm
        self.attn_pool = self._attention_pool(**factory)
        self.fc_norm = final_norm if config.use_fc_norm else nn.Identity()

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

    def _norm(self, **factory) -> nn.Module:
        return self.config.norm(self.config.embed_dim, **factory)

    def _attention_pool(self, **factory) -> nn.Module | None:
        """The head's attention pooling (`global_pool="map"`), else None."""
        config = self.config
        if config.attn_pool is None:
            return None
        return config.attn_pool.build(
            config.embed_dim,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            act_layer=config.act_layer,
            norm_layer=config.norm,
            **factory,
        )

    def _classifier(self, num_classes: int, **factory) -> nn.Module:
        return nn.Linear(self.num_features, num_classes, **factory) if num_classes > 0 else nn.Identity()

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated normal (std 0.02) weights, zero biases."""
        if self.pos_embed.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        if self.dist_token is not None:
            trunc_normal_(self.dist_token, std=0.02)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        init_linears(self)
        for module in self.modules():  # what the blocks and the head initialise themselves
            if module is not self and isinstance(module, (ResPostBlock, ParallelScalingBlock)):
                module.reset_parameters()
        if self.attn_pool is not None and callable(getattr(self.attn_pool, "reset_parameters", None)):
            self.attn_pool.reset_parameters()

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
        if pool == "map" and self.attn_pool is None:
            raise ValueError("global_pool 'map' pools by an attention this ViT has not built (attn_pool)")
        self.config = reconfigured(
            self.config,
            num_classes=num_classes,
            proj_dim=None,
            global_pool=pool,
            attn_pool=self.config.attn_pool if pool == "map" else None,
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
            self.attn_pool = None
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
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))  # (B, D, h, w) -> (B, N, D)
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
        if self.cls_token is None:
            raise ValueError("attention maps follow the class token: this ViT has none (class_token=False)")
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
        pool = self.config.global_pool
        if pool == "token":
            return x[:, 0]
        if pool in ("avg", "map") and not self.config.pool_include_prefix:
            x = x[:, self.num_prefix_tokens :]
        if pool == "map":
            return self.attn_pool(x) if self.attn_pool is not None else x  # none: pruned
        return x.mean(dim=1) if pool == "avg" else x

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
        cls, dist = self._distilled_features(x)
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
        cls, dist = self._distilled_features(self.forward_features(x))
        return self.head(cls), self.head_dist(dist)

    def _distilled_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What DeiT's two heads read: the class token (or the attention-pooled patches, with
        `attn_pool`) and the distillation token."""
        cls = self.pool(x) if self.config.global_pool == "map" else x[:, 0]
        return self.pre_logits(cls), self.pre_logits(x[:, 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VisionTransformerFamily(ImageFamily):
    """Family `vit`: Vision Transformers and their descendants (DeiT, DINOv2, CLIP, SigLIP,
    AIMv2, BEiT-3, ...), with any token attention and any attention-pooling head."""

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
