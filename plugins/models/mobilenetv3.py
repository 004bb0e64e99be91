"""MobileNetV3 and the networks built like it: LCNet, FBNetV3 and MobileNetV4.

Howard et al., "Searching for MobileNetV3", ICCV 2019. https://arxiv.org/abs/1905.02244
Dai et al., "FBNetV3: Joint Architecture-Recipe Search using Predictor Pretraining", CVPR
2021. https://arxiv.org/abs/2006.02049
Cui et al., "PP-LCNet: A Lightweight CPU Convolutional Neural Network", 2021.
https://arxiv.org/abs/2109.15099
Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024.
https://arxiv.org/abs/2404.10518

A strided 3x3 stem conv, stages of blocks, and MobileNetV3's efficient head: pool first,
then a 1x1 conv (with bias, or with BatchNorm in MobileNetV4) and the activation, then the
classifier. The stages are data (`stages`): one list of `BlockArgs` per stage, each
`repeats` blocks alike of one kind:

- `ds`, `dsa`, `ir`, `cn`: the depthwise-separable blocks (`dsa`, LCNet's: with an
  activation after the pointwise conv and no residual), the inverted residual and the conv of
  `plugins.layers.mobile` (MobileNetV3, FBNetV3, LCNet);
- `er`, `uir`, `mqa`: MobileNetV4's fused and universal inverted residuals and its mobile
  attention block (`plugins.layers.universal`).

MobileNetV3-Large, the default: the first stages use ReLU, the later ones hard-swish
`x * relu6(x + 3) / 6`; some have SE, whose reduced width is a quarter of the *expanded*
width rounded to a multiple of 8, with a ReLU and a hard-sigmoid gate `relu6(x + 3) / 6`.
A channel multiplier scales every block's width (and the stem's, unless `fix_stem`), not the
head's. Tensor names follow timm's `mobilenetv3` checkpoints, which load unchanged.

The blocks' attention slot (`attn`) takes any channel attention; the default is SE as
MobileNetV3 has it (convs named `conv_reduce`/`conv_expand`). The mobile attention blocks'
slot (`map_attn`) takes any map attention; the default is MobileNetV4's multi-query
attention.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo.attention import ChannelAttention, MapAttention
from zoo.registry.family import ImageFamily

from ..layers import (
    Activation,
    BatchNormAct2d,
    GlobalPool,
    PoolType,
    activation,
    init_fan_out,
    make_divisible,
)
from ..layers.antialias import AntiAlias
from ..layers.mobile import BlockDef, ConvStyle, MobileTrunk, TrunkSpec
from ..layers.padding import Padding
from ..layers.universal import EdgeResidual, MobileAttention, UniversalInvertedResidual

__all__ = ["MOBILENETV3_LARGE_STAGES", "BlockArgs", "MobileNetV3", "MobileNetV3Config", "build", "family"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
Kernel = Annotated[int, Field(ge=0)]
Multiplier = Annotated[float, Field(gt=0.0)]


class BlockArgs(BaseModel):
    """`repeats` blocks of one kind, alike but for the stride: only the first has `stride`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ds", "dsa", "ir", "cn", "er", "uir", "mqa"]
    repeats: Positive = 1
    kernel_size: Kernel = Field(
        default=3,
        description="ds, dsa, ir: the depthwise conv's; cn: the conv's; er: the expanding conv's; "
        "uir: the middle depthwise conv's (0: none); mqa: the key-value downsampling conv's",
    )
    stride: Literal[1, 2] = 1
    out_chs: Positive = Field(description="the output width, before the channel multiplier")
    exp_ratio: Annotated[float, Field(gt=0.0)] = 1.0
    se_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    act: Activation | None = Field(default=None, description="None: the network's activation")
    residual: bool | None = Field(
        default=None, description="add the input where shapes allow; None: as the kind does (not dsa, cn)"
    )
    start_kernel_size: Kernel = Field(default=0, description="uir: the first depthwise conv's (0: none)")
    num_heads: Positive = 8
    key_dim: Positive = 64
    value_dim: Positive = 64
    kv_stride: Literal[1, 2] = 1


def _ir(kernel: int, stride: int, exp_ratio: float, out_chs: int, *, se: bool, act: Activation | None = None):
    se_ratio = 0.25 if se else 0.0
    return BlockArgs(
        kind="ir",
        kernel_size=kernel,
        stride=stride,
        out_chs=out_chs,
        exp_ratio=exp_ratio,
        se_ratio=se_ratio,
        act=act,
    )


MOBILENETV3_LARGE_STAGES: tuple[tuple[BlockArgs, ...], ...] = (
    (BlockArgs(kind="ds", out_chs=16, act="relu"),),
    (_ir(3, 2, 4, 24, se=False, act="relu"), _ir(3, 1, 3, 24, se=False, act="relu")),
    (
        BlockArgs(
            kind="ir", repeats=3, kernel_size=5, stride=2, out_chs=40, exp_ratio=3, se_ratio=0.25, act="relu"
        ),
    ),
    (
        _ir(3, 2, 6, 80, se=False),
        _ir(3, 1, 2.5, 80, se=False),
        BlockArgs(kind="ir", repeats=2, out_chs=80, exp_ratio=2.3),
    ),
    (BlockArgs(kind="ir", repeats=2, out_chs=112, exp_ratio=6, se_ratio=0.25),),
    (BlockArgs(kind="ir", repeats=3, kernel_size=5, stride=2, out_chs=160, exp_ratio=6, se_ratio=0.25),),
    (BlockArgs(kind="cn", kernel_size=1, out_chs=960),),
)
"""MobileNetV3-Large's stages; blocks without `act` use the network's hard-swish."""

MOBILENETV3_SE = {"name": "se", "gate": "hard_sigmoid", "tensor_names": "conv_reduce/conv_expand"}


class MobileNetV3Config(BaseModel):
    """Architecture of a MobileNetV3 or a network built like it (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[tuple[BlockArgs, ...], ...] = MOBILENETV3_LARGE_STAGES
    channel_multiplier: Multiplier = 1.0
    round_limit: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.9, description="a scaled width is rounded to a multiple of 8 no more than 1 - this below"
    )
    depth_multiplier: Multiplier = 1.0
    stem_size: Positive = 16
    fix_stem: bool | None = Field(
        default=None, description="keep the stem's width unscaled; None: below a channel multiplier of 0.75"
    )
    num_features: Positive = Field(default=1280, description="the head conv's width (not multiplied)")
    head_bias: bool = True
    head_norm: bool = Field(default=False, description="BatchNorm after the head conv (then without bias)")
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    act: Activation = "hard_swish"
    norm_eps: Annotated[float, Field(gt=0.0)] = 1e-5
    padding: Padding = Field(default="symmetric", description="tf_same: TensorFlow's, for its ported weights")
    attn: ChannelAttention | None = Field(default=MOBILENETV3_SE, validate_default=True)
    se_from_exp: bool = Field(
        default=True, description="SE reduces from the expanded width (else from the block's input)"
    )
    se_divisor: Positive = Field(default=8, description="SE's reduced width is rounded to multiples of this")
    se_round_limit: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    se_block_act: bool = Field(
        default=False, description="an SE without its own `act` takes its block's (MobileNetV3-RW)"
    )
    map_attn: MapAttention = Field(default="mqa", validate_default=True)
    layer_scale_init: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="a layer scale on the uir and mqa branches, starting at this"
    )
    aa: AntiAlias | None = Field(
        default=None, description="anti-alias strided er and uir blocks with this low-pass pooling"
    )
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0


class MobileNetV3(MobileTrunk):
    def __init__(self, config: MobileNetV3Config, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        fix_stem = config.fix_stem if config.fix_stem is not None else config.channel_multiplier < 0.75
        spec = TrunkSpec(
            in_chans=config.in_chans,
            stem_size=config.stem_size if fix_stem else self.width(config.stem_size),
            stages=config.stages,
            width=self.width,
            depth_multiplier=config.depth_multiplier,
            act=config.act,
            attn=config.attn,
            reduced_width=self.reduced_width,
            drop_path_rate=config.drop_path_rate,
            style=ConvStyle(config.padding, config.norm_eps),
            attn_follows_act=config.se_block_act,
        )
        self.num_features = self.build_trunk(spec, **factory)  # what forward_features returns
        self.head_hidden_size = config.num_features  # what forward_head(pre_logits=True) returns

        # The efficient head: pool, then a 1x1 conv on the pooled vector.
        self.global_pool = GlobalPool(config.global_pool, flatten=False)
        self.conv_head = self._new_head_conv(self.num_features * self.global_pool.feat_mult, **factory)
        if config.head_norm:
            self.norm_head = BatchNormAct2d(self.head_hidden_size, act=config.act, **factory)
            self.act2 = nn.Identity()
        else:
            self.norm_head = nn.Identity()
            self.act2 = activation(config.act, inplace=True)
        self.flatten = nn.Flatten(1) if config.global_pool else nn.Identity()
        self.head_drop = nn.Dropout(config.drop_rate)
        self.classifier = self.new_classifier(self.head_hidden_size, config.num_classes)
        for module in self.modules():  # every norm of the network, as its norm layer sets them
            if isinstance(module, nn.BatchNorm2d):
                module.eps = config.norm_eps
        self.reset_parameters()

    head_names = ("conv_head", "norm_head")

    def width(self, channels: int) -> int:
        """A block's width scaled by the channel multiplier and rounded to a multiple of 8."""
        config = self.config
        return make_divisible(channels * config.channel_multiplier, 8, round_limit=config.round_limit)

    def reduced_width(self, width: int, definition: BlockArgs) -> int:
        """SE's width: `se_ratio` of the width it sees (the expanded width), or of the block's
        input if not `se_from_exp`, rounded to multiples of `se_divisor`."""
        config = self.config
        ratio = definition.se_ratio if config.se_from_exp else definition.se_ratio / definition.exp_ratio
        return make_divisible(width * ratio, config.se_divisor, round_limit=config.se_round_limit)

    def block(
        self, spec: TrunkSpec, definition: BlockArgs, in_chs: int, stride: int, drop_path: float, **factory
    ):
        config, out_chs = self.config, self.width(definition.out_chs)
        act = definition.act or config.act
        if definition.kind in ("ds", "dsa", "ir", "cn"):
            return super().block(spec, mobile_definition(definition), in_chs, stride, drop_path, **factory)
        shape = {"stride": stride, "exp_ratio": definition.exp_ratio, "act": act, "aa": config.aa}
        if definition.kind == "er":
            return EdgeResidual(
                in_chs, out_chs, kernel_size=definition.kernel_size, **shape, drop_path=drop_path, **factory
            )
        scale = config.layer_scale_init
        if definition.kind == "uir":
            return UniversalInvertedResidual(
                in_chs,
                out_chs,
                start_kernel_size=definition.start_kernel_size,
                kernel_size=definition.kernel_size,
                **shape,
                layer_scale_init=scale,
                drop_path=drop_path,
                **factory,
            )
        return MobileAttention(
            in_chs,
            out_chs,
            attn=config.map_attn,
            num_heads=definition.num_heads,
            key_dim=definition.key_dim,
            value_dim=definition.value_dim,
            kv_stride=definition.kv_stride,
            kernel_size=definition.kernel_size,
            layer_scale_init=scale,
            drop_path=drop_path,
            **factory,
        )

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another
        pooling if given. A pooling of another width (to or from `catavgmax`) also needs a
        new head conv, which is initialised fresh too."""
        if global_pool is not None:
            pool = GlobalPool(global_pool, flatten=False)
            if pool.feat_mult != self.global_pool.feat_mult and isinstance(self.conv_head, nn.Conv2d):
                weight = self.conv_head.weight
                self.conv_head = self._new_head_conv(
                    self.num_features * pool.feat_mult, device=weight.device, dtype=weight.dtype
                )
                if not weight.is_meta:
                    init_fan_out(self.conv_head)
            self.global_pool = pool
            self.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        self.classifier = self.new_classifier(self.head_hidden_size, num_classes)

    def _new_head_conv(self, in_channels: int, **factory) -> nn.Conv2d:
        bias = self.config.head_bias and not self.config.head_norm
        return nn.Conv2d(in_channels, self.head_hidden_size, 1, bias=bias, **factory)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map (B, num_features, H/32, W/32)."""
        return self.forward_trunk(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act2(self.norm_head(self.conv_head(self.global_pool(x))))  # (B, head_hidden_size, 1, 1)
        x = self.head_drop(self.flatten(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def mobile_definition(definition: BlockArgs) -> BlockDef:
    """A block of the kinds `plugins.layers.mobile` builds, as it defines them."""
    d = definition
    return BlockDef(
        d.kind,
        d.repeats,
        d.kernel_size,
        d.stride,
        d.out_chs,
        d.exp_ratio,
        d.se_ratio,
        d.act,
        residual=d.residual,
    )


class MobileNetV3Family(ImageFamily):
    """Family `mobilenetv3`: MobileNetV3, LCNet, FBNetV3 and MobileNetV4 from their stages,
    at any width, with any channel attention in the blocks that have one."""

    config = MobileNetV3Config
    test_args: ClassVar[dict[str, Any]] = {
        "channel_multiplier": 0.25,
        "depth_multiplier": 0.5,
        "num_classes": 10,
    }

    slot_args: ClassVar[dict[str, dict[str, Any]]] = {
        "map_attn": {
            "stages": [[{"kind": "mqa", "out_chs": 16, "num_heads": 2, "key_dim": 8, "value_dim": 8}]]
        }
    }
    """Arguments under which a slot is in the model: MobileNetV3-Large has no mobile attention."""

    def build(self, config: MobileNetV3Config, *, device=None, dtype=None) -> MobileNetV3:
        return MobileNetV3(config, device=device, dtype=dtype)


family = MobileNetV3Family()
build = family.build
