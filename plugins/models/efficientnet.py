"""EfficientNet and the mobile networks built as it is: MBConv stages with SE, scaled in
width and depth.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019. https://arxiv.org/abs/1905.11946
Tan and Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021.
https://arxiv.org/abs/2104.00298
Tan and Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019.
https://arxiv.org/abs/1907.09595
Yang et al., "CondConv: Conditionally Parameterized Convolutions for Efficient Inference",
NeurIPS 2019. https://arxiv.org/abs/1904.04971

B0 is seven stages of MBConv blocks (`plugins.layers.mobile`) with SiLU, each with SE at a
quarter of the block's *input* width; B1 to B8 and L2 scale B0 by a channel multiplier
(widths rounded to multiples of 8) and a depth multiplier (each stage's repeats rounded
up), for larger inputs. The head is a 1x1 conv to 1280 (scaled) channels, BN + act, global
pooling and a linear classifier. Tensor names follow timm's `efficientnet` checkpoints,
which load unchanged.

Other stages make the other networks of timm's `efficientnet` module: `blocks` lists them,
stage by stage, one string per run of like blocks in the notation of the TensorFlow
reference (see `plugins.layers.mobile`), e.g. EfficientNet-B0's

    [[ds_r1_k3_s1_e1_c16_se0.25], [ir_r2_k3_s2_e6_c24_se0.25], [ir_r2_k5_s2_e6_c40_se0.25],
     [ir_r3_k3_s2_e6_c80_se0.25], [ir_r3_k5_s1_e6_c112_se0.25], [ir_r4_k5_s2_e6_c192_se0.25],
     [ir_r1_k3_s1_e6_c320_se0.25]]

Fused MBConv (`er`) stages make EfficientNetV2 and EfficientNet-EdgeTPU; mixed kernels
(`k3.5.7`) MixNet; experts (`cc4`) CondConv; `dsa` and `ir` without SE MobileNetV1 and V2,
MnasNet, FBNet and SPNASNet. Weights ported from TensorFlow (timm's `tf_` names) pad as
TensorFlow does (`padding: tf_same`) with BatchNorm's eps 1e-3.

The blocks' attention slot (`attn`) takes any channel attention; the default is SE as
EfficientNet has it (a sigmoid gate, convs named `conv_reduce`/`conv_expand`, and the
activation of the block it sits in unless its options name one), and whichever variant
fills it is given that reduced width.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import ImageFamily

from ..layers import Activation, GlobalPool, PoolType
from ..layers.mobile import BlockDef, ConvStyle, MobileTrunk, TrunkSpec, round_channels
from ..layers.norm_act import NormLayer
from ..layers.padding import Padding

__all__ = ["EFFICIENTNET_STAGES", "EfficientNet", "EfficientNetConfig", "build", "family"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
Multiplier = Annotated[float, Field(gt=0.0)]

EFFICIENTNET_STAGES: tuple[tuple[BlockDef, ...], ...] = tuple(
    (BlockDef(kind, repeats, kernel, stride, out_chs, exp_ratio, se_ratio=0.25),)
    for kind, repeats, kernel, stride, exp_ratio, out_chs in (
        ("ds", 1, 3, 1, 1, 16),
        ("ir", 2, 3, 2, 6, 24),
        ("ir", 2, 5, 2, 6, 40),
        ("ir", 3, 3, 2, 6, 80),
        ("ir", 3, 5, 1, 6, 112),
        ("ir", 4, 5, 2, 6, 192),
        ("ir", 1, 3, 1, 6, 320),
    )
)
"""EfficientNet-B0: (kind, repeats, kernel, stride of the first block, expansion, width)."""

EFFICIENTNET_SE = {"name": "se", "tensor_names": "conv_reduce/conv_expand"}
"""SE as EfficientNet has it; with no `act` of its own, it takes its block's activation."""


class EfficientNetConfig(BaseModel):
    """Architecture of an EfficientNet (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: list[list[str]] | None = Field(
        default=None,
        description="the stages, each a list of block strings (see the module's docstring); "
        "None: EfficientNet-B0's",
    )
    channel_multiplier: Multiplier = 1.0
    depth_multiplier: Multiplier = 1.0
    channel_divisor: Positive = 8
    round_limit: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.9, description="a scaled width is rounded up a divisor more if it lost more than this"
    )
    stem_size: Positive = 32
    stem_kernel_size: Positive = 3
    fix_stem: bool = Field(default=False, description="the stem's width as given, not scaled")
    num_features: int = Field(
        default=1280, ge=0, description="the head's width before the channel multiplier; 0: no head conv"
    )
    fix_head: bool = Field(default=False, description="the head's width as given, not scaled")
    img_size: Positive | tuple[Positive, Positive] = Field(
        default=224,
        description="the resolution the multipliers were chosen for, which preprocessing and example "
        "inputs use; the network itself takes any size",
    )
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    act: Activation = "silu"
    padding: Padding = Field(default="symmetric", description="tf_same: TensorFlow's, for its ports")
    norm_layer: NormLayer = "batchnorm"
    norm_eps: Annotated[float, Field(gt=0.0)] = 1e-5
    norm_group_size: Positive = Field(default=8, description="channels per group (groupnorm, evonorm_s0)")
    attn: ChannelAttention | None = Field(default=EFFICIENTNET_SE, validate_default=True)
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0

    @field_validator("blocks")
    @classmethod
    def _blocks_read(cls, stages: list[list[str]] | None) -> list[list[str]] | None:
        if stages is not None:
            if not stages or not all(stages):
                raise ValueError("every stage needs a block, and there must be a stage")
            for stage in stages:
                for text in stage:
                    BlockDef.parse(text)  # raises ValueError naming what it cannot read
        return stages

    def stages(self) -> tuple[tuple[BlockDef, ...], ...]:
        """The stages' block definitions."""
        if self.blocks is None:
            return EFFICIENTNET_STAGES
        return tuple(tuple(BlockDef.parse(text) for text in stage) for stage in self.blocks)


def reduced_width(width: int, definition: BlockDef) -> int:
    """SE's width in EfficientNet: `se_ratio` of the block's input width, as the attention
    (on the expanded width) sees it: `width * se_ratio / exp_ratio`."""
    return round(width * (definition.se_ratio / definition.exp_ratio))


class EfficientNet(MobileTrunk):
    def __init__(self, config: EfficientNetConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        width = partial(
            round_channels,
            multiplier=config.channel_multiplier,
            divisor=config.channel_divisor,
            round_limit=config.round_limit,
        )
        style = ConvStyle(
            padding=config.padding,
            norm_eps=config.norm_eps,
            norm_layer=config.norm_layer,
            norm_group_size=config.norm_group_size,
        )
        spec = TrunkSpec(
            in_chans=config.in_chans,
            stem_size=config.stem_size if config.fix_stem else width(config.stem_size),
            stages=config.stages(),
            width=width,
            depth_multiplier=config.depth_multiplier,
            act=config.act,
            attn=config.attn,
            reduced_width=reduced_width,
            drop_path_rate=config.drop_path_rate,
            style=style,
            stem_kernel_size=config.stem_kernel_size,
            attn_follows_act=True,
        )
        trunk_width = self.build_trunk(spec, **factory)

        if config.num_features:
            head_width = config.num_features if config.fix_head else width(config.num_features)
            self.conv_head = style.conv(trunk_width, head_width, 1, **factory)
            self.bn2 = style.norm(head_width, config.act, **factory)
        else:  # the last stage is the head (MobileNetV1)
            head_width = trunk_width
            self.conv_head, self.bn2 = nn.Identity(), nn.Identity()
        self.num_features = self.head_hidden_size = head_width
        self.global_pool = GlobalPool(config.global_pool)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.classifier = self.new_classifier(
            self.num_features * self.global_pool.feat_mult, config.num_classes
        )
        self.reset_parameters()

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another pooling if given."""
        if global_pool is not None:
            self.global_pool = GlobalPool(global_pool)
        self.classifier = self.new_classifier(self.num_features * self.global_pool.feat_mult, num_classes)

    head_names = ("conv_head", "bn2")

    def finish_features(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_head(trunk))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the head conv's map (B, num_features, H/32, W/32)."""
        return self.finish_features(self.forward_trunk(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class EfficientNetFamily(ImageFamily):
    """Family `efficientnet`: EfficientNet at any width and depth multiplier, with any channel
    attention in its blocks."""

    config = EfficientNetConfig
    test_args: ClassVar[dict[str, Any]] = {
        "channel_multiplier": 0.25,
        "depth_multiplier": 0.34,
        "img_size": 32,
        "num_classes": 10,
    }

    def build(self, config: EfficientNetConfig, *, device=None, dtype=None) -> EfficientNet:
        return EfficientNet(config, device=device, dtype=dtype)


family = EfficientNetFamily()
build = family.build
