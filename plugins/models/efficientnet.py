"""EfficientNet: MBConv blocks with Squeeze-and-Excitation, scaled in width and depth.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019. https://arxiv.org/abs/1905.11946

B0 is seven stages of MBConv blocks (`plugins.layers.mobile`) with SiLU, each with SE at a
quarter of the block's *input* width; B1 to B3 scale B0 by a channel multiplier (widths
rounded to multiples of 8) and a depth multiplier (each stage's repeats rounded up), for
inputs of 240, 260 and 300 pixels. The head is a 1x1 conv to 1280 (scaled) channels, BN +
SiLU, global pooling and a linear classifier. Tensor names follow timm's `efficientnet`
checkpoints, which load unchanged.

The blocks' attention slot (`attn`) takes any channel attention; the default is SE as
EfficientNet has it (SiLU, sigmoid gate, convs named `conv_reduce`/`conv_expand`), and
whichever variant fills it is given that reduced width.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import ImageFamily

from ..layers import Activation, BatchNormAct2d, GlobalPool, PoolType
from ..layers.mobile import BlockDef, MobileTrunk, TrunkSpec, round_channels

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

EFFICIENTNET_SE = {"name": "se", "act": "silu", "tensor_names": "conv_reduce/conv_expand"}


class EfficientNetConfig(BaseModel):
    """Architecture of an EfficientNet (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_multiplier: Multiplier = 1.0
    depth_multiplier: Multiplier = 1.0
    channel_divisor: Positive = 8
    stem_size: Positive = 32
    num_features: Positive = Field(default=1280, description="the head's width before the channel multiplier")
    img_size: Positive = Field(
        default=224,
        description="the resolution the multipliers were chosen for, which preprocessing and example "
        "inputs use; the network itself takes any size",
    )
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    act: Activation = "silu"
    attn: ChannelAttention | None = Field(default=EFFICIENTNET_SE, validate_default=True)
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0


def reduced_width(width: int, definition: BlockDef) -> int:
    """SE's width in EfficientNet: `se_ratio` of the block's input width, as the attention
    (on the expanded width) sees it: `width * se_ratio / exp_ratio`."""
    return round(width * (definition.se_ratio / definition.exp_ratio))


class EfficientNet(MobileTrunk):
    def __init__(self, config: EfficientNetConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        width = partial(round_channels, multiplier=config.channel_multiplier, divisor=config.channel_divisor)
        spec = TrunkSpec(
            in_chans=config.in_chans,
            stem_size=width(config.stem_size),
            stages=EFFICIENTNET_STAGES,
            width=width,
            depth_multiplier=config.depth_multiplier,
            act=config.act,
            attn=config.attn,
            reduced_width=reduced_width,
            drop_path_rate=config.drop_path_rate,
        )
        trunk_width = self.build_trunk(spec, **factory)

        self.num_features = self.head_hidden_size = width(config.num_features)
        self.conv_head = nn.Conv2d(trunk_width, self.num_features, 1, bias=False, **factory)
        self.bn2 = BatchNormAct2d(self.num_features, act=config.act, **factory)
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
