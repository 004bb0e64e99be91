"""MobileNetV3-Large: inverted residuals with hard-swish and hard-sigmoid SE, and an
efficient head.

Howard et al., "Searching for MobileNetV3", ICCV 2019. https://arxiv.org/abs/1905.02244

The blocks are EfficientNet's (`plugins.layers.mobile`), found by architecture search: the
first stages use ReLU, the later ones hard-swish `x * relu6(x + 3) / 6`; some have SE,
whose reduced width is a quarter of the *expanded* width rounded to a multiple of 8, with a
ReLU and a hard-sigmoid gate `relu6(x + 3) / 6`. The last stage is a 1x1 conv to 960
channels. The efficient head pools first, then a 1x1 conv with bias to 1280 channels and
hard-swish, then the classifier. A channel multiplier scales every width but the head's
(and the stem's, below 0.75). Tensor names follow timm's `mobilenetv3` checkpoints, which
load unchanged.

The blocks' attention slot (`attn`) takes any channel attention; the default is SE as
MobileNetV3 has it (convs named `conv_reduce`/`conv_expand`).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import ImageFamily

from ..layers import Activation, GlobalPool, PoolType, activation, init_fan_out
from ..layers.mobile import BlockDef, MobileTrunk, TrunkSpec, round_channels

__all__ = ["MOBILENETV3_LARGE_STAGES", "MobileNetV3", "MobileNetV3Config", "build", "family"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
Multiplier = Annotated[float, Field(gt=0.0)]


def _ir(kernel: int, stride: int, exp_ratio: float, out_chs: int, *, se: bool, act: Activation | None = None):
    return BlockDef("ir", 1, kernel, stride, out_chs, exp_ratio, se_ratio=0.25 if se else 0.0, act=act)


MOBILENETV3_LARGE_STAGES: tuple[tuple[BlockDef, ...], ...] = (
    (BlockDef("ds", 1, 3, 1, 16, act="relu"),),
    (_ir(3, 2, 4, 24, se=False, act="relu"), _ir(3, 1, 3, 24, se=False, act="relu")),
    (BlockDef("ir", 3, 5, 2, 40, 3, se_ratio=0.25, act="relu"),),
    (_ir(3, 2, 6, 80, se=False), _ir(3, 1, 2.5, 80, se=False), BlockDef("ir", 2, 3, 1, 80, 2.3)),
    (BlockDef("ir", 2, 3, 1, 112, 6, se_ratio=0.25),),
    (BlockDef("ir", 3, 5, 2, 160, 6, se_ratio=0.25),),
    (BlockDef("cn", 1, 1, 1, 960),),
)
"""MobileNetV3-Large's stages; blocks without `act` use the network's hard-swish."""

MOBILENETV3_SE = {"name": "se", "gate": "hard_sigmoid", "tensor_names": "conv_reduce/conv_expand"}


class MobileNetV3Config(BaseModel):
    """Architecture of a MobileNetV3-Large (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_multiplier: Multiplier = 1.0
    depth_multiplier: Multiplier = 1.0
    stem_size: Positive = 16
    num_features: Positive = Field(default=1280, description="the head conv's width (not multiplied)")
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    act: Activation = "hard_swish"
    attn: ChannelAttention | None = Field(default=MOBILENETV3_SE, validate_default=True)
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0


def reduced_width(width: int, definition: BlockDef) -> int:
    """SE's width in MobileNetV3: `se_ratio` of the expanded width, rounded to multiples of 8."""
    return round_channels(width * definition.se_ratio)


class MobileNetV3(MobileTrunk):
    def __init__(self, config: MobileNetV3Config, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        width = partial(round_channels, multiplier=config.channel_multiplier)
        narrow = config.channel_multiplier < 0.75  # a narrow network keeps its stem's width
        spec = TrunkSpec(
            in_chans=config.in_chans,
            stem_size=config.stem_size if narrow else width(config.stem_size),
            stages=MOBILENETV3_LARGE_STAGES,
            width=width,
            depth_multiplier=config.depth_multiplier,
            act=config.act,
            attn=config.attn,
            reduced_width=reduced_width,
            drop_path_rate=config.drop_path_rate,
        )
        self.num_features = self.build_trunk(spec, **factory)  # what forward_features returns
        self.head_hidden_size = config.num_features  # what forward_head(pre_logits=True) returns

        # The efficient head: pool, then a 1x1 conv on the pooled vector.
        self.global_pool = GlobalPool(config.global_pool, flatten=False)
        pooled = self.num_features * self.global_pool.feat_mult
        self.conv_head = nn.Conv2d(pooled, self.head_hidden_size, 1, bias=True, **factory)
        self.act2 = activation(config.act, inplace=True)
        self.flatten = nn.Flatten(1) if config.global_pool else nn.Identity()
        self.head_drop = nn.Dropout(config.drop_rate)
        self.classifier = self.new_classifier(self.head_hidden_size, config.num_classes)
        self.reset_parameters()

    head_names = ("conv_head",)

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another
        pooling if given. A pooling of another width (to or from `catavgmax`) also needs a
        new head conv, which is initialised fresh too."""
        if global_pool is not None:
            pool = GlobalPool(global_pool, flatten=False)
            if pool.feat_mult != self.global_pool.feat_mult and isinstance(self.conv_head, nn.Conv2d):
                self.conv_head = self._new_head_conv(self.num_features * pool.feat_mult)
            self.global_pool = pool
            self.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        self.classifier = self.new_classifier(self.head_hidden_size, num_classes)

    def _new_head_conv(self, in_channels: int) -> nn.Conv2d:
        weight = self.conv_head.weight
        conv = nn.Conv2d(
            in_channels, self.head_hidden_size, 1, bias=True, device=weight.device, dtype=weight.dtype
        )
        if not weight.is_meta:
            init_fan_out(conv)
        return conv

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map (B, num_features, H/32, W/32)."""
        return self.forward_trunk(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act2(self.conv_head(self.global_pool(x)))  # (B, head_hidden_size, 1, 1)
        x = self.head_drop(self.flatten(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class MobileNetV3Family(ImageFamily):
    """Family `mobilenetv3`: MobileNetV3-Large at any width, with any channel attention in
    the blocks that have one."""

    config = MobileNetV3Config
    test_args: ClassVar[dict[str, Any]] = {
        "channel_multiplier": 0.25,
        "depth_multiplier": 0.5,
        "num_classes": 10,
    }

    def build(self, config: MobileNetV3Config, *, device=None, dtype=None) -> MobileNetV3:
        return MobileNetV3(config, device=device, dtype=dtype)


family = MobileNetV3Family()
build = family.build
