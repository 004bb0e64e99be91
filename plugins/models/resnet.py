"""ResNet and its descendants (ResNet-C/D/S/T, ResNeXt, wide ResNet, SE-ResNeXt, ResNet-RS),
with a pluggable channel attention in every block.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
https://arxiv.org/abs/1512.03385
He et al., "Bag of Tricks for Image Classification with Convolutional Neural Networks"
(ResNet-C: deep 3x3 stem; ResNet-D: and an average-pool shortcut), CVPR 2019.
https://arxiv.org/abs/1812.01187
Xie et al., "Aggregated Residual Transformations for Deep Neural Networks" (ResNeXt:
`cardinality` groups of `base_width` channels in the 3x3 conv), CVPR 2017.
https://arxiv.org/abs/1611.05431
Zagoruyko and Komodakis, "Wide Residual Networks", BMVC 2016. https://arxiv.org/abs/1605.07146
Bello et al., "Revisiting ResNets: Improved Training and Scaling Strategies" (ResNet-RS: a
strided conv in place of the stem's max pool), NeurIPS 2021. https://arxiv.org/abs/2103.07579
Zhang, "Making Convolutional Networks Shift-Invariant Again" (`aa_layer`), ICML 2019.
https://arxiv.org/abs/1904.11486
Wu and He, "Group Normalization" (`norm_layer: groupnorm`), ECCV 2018.
https://arxiv.org/abs/1803.08494
Aflalo et al., "Knapsack Pruning with Inner Distillation" (`pruned_widths`), 2020.
https://arxiv.org/abs/2002.08258

Any registered channel attention (`attn`: SE, CBAM, ECA, or a plugin's) re-weights each
block's residual branch just before the shortcut is added. The block's attention slot is
named `se`, as in timm, whatever fills it: timm's `resnet`, `seresnet` and `ecaresnet`
checkpoints load unchanged.

Any registered conv attention (`conv_attn`: Selective Kernel, split attention, bottleneck
self-attention, or a plugin's) replaces each block's spatial convolution with its norm and
activation: the basic block's first 3x3 conv (the second then takes timm's `conv2.conv`,
`conv2.bn` names, as in timm's SKNet) and the bottleneck's 3x3 conv (no `bn2`, as in timm's
ResNeSt; the `sk_bottleneck` block keeps timm's SKNet names instead, `conv1.conv`,
`conv1.bn`, ...). Where its parameters depend on the size of the map (bottleneck
self-attention), `img_size` fixes it, and the model takes images of that size only.

Li et al., "Selective Kernel Networks", CVPR 2019. https://arxiv.org/abs/1903.06586
Zhang et al., "ResNeSt: Split-Attention Networks", 2020. https://arxiv.org/abs/2004.08955
Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021.
https://arxiv.org/abs/2101.11605
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import ChannelAttention, ConvAttention
from zoo.errors import AttentionMapError
from zoo.registry.family import ImageFamily, feature_take_indices, image_size

from ..layers import (
    ConvNormAct,
    DropPath,
    GlobalPool,
    PoolType,
    attention_received,
    bare_conv2d,
    drop_path_rates,
    factory_of,
    init_submodules,
    reconfigured,
    run_blocks,
)
from ..layers.antialias import AntiAlias, anti_alias

__all__ = ["ResNetConfig", "ResNet", "BasicBlock", "Bottleneck", "SelectiveKernelBottleneck", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
BlockType = Literal["basic", "bottleneck", "sk_bottleneck"]
NormLayer = Literal["batchnorm", "groupnorm"]


class ResNetConfig(BaseModel):
    """Architecture of a ResNet (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block: BlockType | tuple[BlockType, ...] = "bottleneck"
    """The residual block, of every stage or of each (`sk_bottleneck`: the bottleneck in timm's
    SKNet layout, each conv with its own norm)."""
    layers: tuple[Positive, ...] = (3, 4, 6, 3)
    channels: tuple[Positive, ...] = (64, 128, 256, 512)
    cardinality: Positive = 1
    """Groups of the bottleneck's 3x3 conv (ResNeXt)."""
    base_width: Positive = 64
    """Channels per group of the bottleneck's 3x3 conv at 64 planes: its width is
    `planes * base_width / 64 * cardinality` (128: the wide ResNets)."""
    block_reduce_first: Positive = 1
    """Divides the width of each block's first conv (SENet-154: 2)."""
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    stem_width: Positive = 64
    stem_type: Literal["", "deep", "deep_tiered"] = ""
    """'': one 7x7 conv to 64 channels; deep: three 3x3 convs of `stem_width`, `stem_width`,
    `2 * stem_width` channels; deep_tiered: of `3 * (stem_width // 4)`, `stem_width`,
    `2 * stem_width`."""
    replace_stem_pool: bool = False
    """A strided 3x3 conv with norm and activation in place of the stem's max pool (ResNet-RS)."""
    avg_down: bool = False
    down_kernel_size: Literal[1, 3] = 1
    """The kernel of a strided projection shortcut's conv (SENet-154: 3)."""
    aa_layer: AntiAlias | None = None
    """Anti-aliased downsampling: strided 3x3 convs and the stem's pool run at stride 1, then
    filter and subsample by `avg` pooling or a `blur`."""
    norm_layer: NormLayer = "batchnorm"
    """The norm after every conv (groupnorm: 32 groups)."""
    pruned_widths: tuple[tuple[Positive, Positive, Positive], ...] | None = None
    """A pruned channel plan: for every block in order, the widths of its first conv, of its
    3x3 conv (a basic block: ignored) and of its output."""
    attn: ChannelAttention | None = None
    conv_attn: ConvAttention | None = None
    """The attention that is each block's spatial conv (`selective_kernel`, `split_attention`, `bot`)."""
    img_size: Positive | tuple[Positive, Positive] | None = None
    """The input size, fixed for a `conv_attn` sized by its feature map (bot): None takes any
    size, and builds such an attention for 224-pixel images."""
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    zero_init_last: bool = True
    global_pool: PoolType = "avg"
    """timm's pooling before the classifier (catavgmax: average and max side by side; "": none)."""

    @model_validator(mode="after")
    def _one_width_per_stage(self) -> ResNetConfig:
        stages = len(self.layers)
        if len(self.channels) != stages:
            raise ValueError(f"{stages} stages in 'layers' but {len(self.channels)} in 'channels'")
        if not isinstance(self.block, str) and len(self.block) != stages:
            raise ValueError(f"{stages} stages in 'layers' but {len(self.block)} in 'block'")
        if self.pruned_widths is not None and len(self.pruned_widths) != sum(self.layers):
            blocks = len(self.pruned_widths)
            raise ValueError(f"'pruned_widths' has {blocks} blocks but 'layers' {sum(self.layers)}")
        if "basic" in self.stage_blocks and (self.cardinality != 1 or self.base_width != 64):
            raise ValueError("a basic block has no grouped bottleneck: cardinality 1 and base_width 64 only")
        if self.aa_layer is not None and self.conv_attn is not None:
            raise ValueError("'aa_layer' filters a strided 3x3 conv, which a 'conv_attn' replaces")
        if not self.global_pool and self.num_classes:
            raise ValueError("global_pool '' leaves the feature map unpooled: it takes num_classes=0")
        return self

    @property
    def stage_blocks(self) -> tuple[BlockType, ...]:
        return (self.block,) * len(self.layers) if isinstance(self.block, str) else self.block


# Bare: every conv of a ResNet gets its He-normal initialisation when the model is built.
def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, **factory) -> nn.Conv2d:
    return bare_conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, **factory)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, **factory) -> nn.Conv2d:
    return bare_conv2d(in_channels, out_channels, 1, stride=stride, **factory)


GROUP_NORM_GROUPS = 32


def norm2d(kind: NormLayer, channels: int, **factory) -> nn.Module:
    if kind == "groupnorm":
        return nn.GroupNorm(GROUP_NORM_GROUPS, channels, **factory)
    return nn.BatchNorm2d(channels, **factory)


@dataclass(frozen=True)
class BlockOptions:
    """What every block of a ResNet shares."""

    cardinality: int = 1
    attn: ChannelAttention | None = None
    conv_attn: ConvAttention | None = None
    aa_layer: AntiAlias | None = None
    norm_layer: NormLayer = "batchnorm"


@dataclass(frozen=True)
class BlockWidths:
    """The channels of one block: its input, its first conv's output, its 3x3 conv's
    output (a bottleneck's), its output, and the width its channel attention is built for:
    the output, or a pruned block's unpruned output (timm's pruned checkpoints narrowed
    only the convs and norms, so ECA keeps the kernel of the unpruned width)."""

    inplanes: int
    first: int
    mid: int
    out: int
    attn: int


def attention_slot(spec: ChannelAttention | None, channels: int, **factory) -> nn.Module | None:
    return spec.build(channels, **factory) if spec is not None else None


def conv_attention_slot(
    spec: ConvAttention, in_channels: int, out_channels: int, stride: int, feat_size, **factory
) -> nn.Module:
    return spec.build(in_channels, out_channels, stride=stride, feat_size=feat_size, **factory)


def strided_conv3x3(
    in_channels: int, out_channels: int, stride: int, options: BlockOptions, groups: int = 1, **factory
) -> tuple[nn.Conv2d, nn.Module]:
    """A 3x3 conv that downsamples by `stride`, and the filter after its activation: with
    anti-aliasing the conv runs at stride 1 and the filter subsamples."""
    if options.aa_layer is None or stride == 1:
        return conv3x3(in_channels, out_channels, stride, groups, **factory), nn.Identity()
    conv = conv3x3(in_channels, out_channels, 1, groups, **factory)
    return conv, anti_alias(options.aa_layer, out_channels, stride=stride, **factory)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34); with a conv attention, it is the first."""

    expansion = 1

    @staticmethod
    def inner_widths(planes: int, base_width: int, cardinality: int, reduce_first: int) -> tuple[int, int]:
        """The first conv's width, and its second's (a basic block has no bottleneck)."""
        return planes // reduce_first, planes

    def __init__(
        self,
        widths: BlockWidths,
        *,
        stride: int,
        downsample: nn.Module | None,
        options: BlockOptions,
        feat_size=None,
        drop_path: float,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if options.conv_attn is None:
            self.conv1, self.aa = strided_conv3x3(widths.inplanes, widths.first, stride, options, **factory)
            self.bn1 = norm2d(options.norm_layer, widths.first, **factory)
            self.act1 = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(widths.first, widths.out, **factory)
            self.bn2 = norm2d(options.norm_layer, widths.out, **factory)
        else:  # timm's SKNet layout: the attention owns its norms; conv2 is conv2.conv, conv2.bn
            self.conv1 = conv_attention_slot(
                options.conv_attn, widths.inplanes, widths.first, stride, feat_size, **factory
            )
            self.conv2 = ConvNormAct(widths.first, widths.out, 3, act=False, **factory)
            self.bn2 = None
        self.se = attention_slot(options.attn, widths.attn, **factory)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample
        self.act2 = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv2.bn if self.bn2 is None else self.bn2

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn2 is None:
            return self.conv2(self.conv1(x))
        return self.bn2(self.conv2(self.aa(self.act1(self.bn1(self.conv1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.residual(x)
        if self.se is not None:
            x = self.se(x)
        return self.act2(self.drop_path(x) + shortcut)


def bottleneck_widths(planes: int, base_width: int, cardinality: int, reduce_first: int) -> tuple[int, int]:
    """The first conv's and the grouped 3x3 conv's widths: `planes * base_width / 64` channels
    per group, rounded down."""
    width = int(planes * base_width / 64) * cardinality
    return width // reduce_first, width


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped; or a conv attention), 1x1 expand by 4 (ResNet-50/101)."""

    expansion = 4
    inner_widths = staticmethod(bottleneck_widths)

    def __init__(
        self,
        widths: BlockWidths,
        *,
        stride: int,
        downsample: nn.Module | None,
        options: BlockOptions,
        feat_size=None,
        drop_path: float,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.conv1 = conv1x1(widths.inplanes, widths.first, **factory)
        self.bn1 = norm2d(options.norm_layer, widths.first, **factory)
        self.act1 = nn.ReLU(inplace=True)
        if options.conv_attn is None:
            self.conv2, self.aa = strided_conv3x3(
                widths.first, widths.mid, stride, options, options.cardinality, **factory
            )
            self.bn2 = norm2d(options.norm_layer, widths.mid, **factory)
            self.act2 = nn.ReLU(inplace=True)
        else:  # timm's ResNeSt layout: the attention owns its norms, there is no bn2
            self.conv2 = conv_attention_slot(
                options.conv_attn, widths.first, widths.mid, stride, feat_size, **factory
            )
            self.bn2 = None
        self.conv3 = conv1x1(widths.mid, widths.out, **factory)
        self.bn3 = norm2d(options.norm_layer, widths.out, **factory)
        self.se = attention_slot(options.attn, widths.attn, **factory)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample
        self.act3 = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(x) if self.bn2 is None else self.aa(self.act2(self.bn2(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn3(self.conv3(self.spatial(x)))
        if self.se is not None:
            x = self.se(x)
        return self.act3(self.drop_path(x) + shortcut)


class SelectiveKernelBottleneck(nn.Module):
    """The bottleneck in timm's SKNet layout: every conv owns its norm (`conv1.conv`,
    `conv1.bn`, `conv3.conv`, `conv3.bn`); the 3x3 is the conv attention, or a grouped
    conv-norm-act without one. BatchNorm only."""

    expansion = 4
    inner_widths = staticmethod(bottleneck_widths)

    def __init__(
        self,
        widths: BlockWidths,
        *,
        stride: int,
        downsample: nn.Module | None,
        options: BlockOptions,
        feat_size=None,
        drop_path: float,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if options.norm_layer != "batchnorm" or options.aa_layer is not None:
            raise ValueError("the sk_bottleneck block takes BatchNorm and no aa_layer")
        self.conv1 = ConvNormAct(widths.inplanes, widths.first, 1, **factory)
        if options.conv_attn is None:
            groups = options.cardinality
            self.conv2 = ConvNormAct(widths.first, widths.mid, 3, stride=stride, groups=groups, **factory)
        else:
            self.conv2 = conv_attention_slot(
                options.conv_attn, widths.first, widths.mid, stride, feat_size, **factory
            )
        self.conv3 = ConvNormAct(widths.mid, widths.out, 1, act=False, **factory)
        self.se = attention_slot(options.attn, widths.attn, **factory)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample
        self.act = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv3.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.conv3(self.conv2(self.conv1(x)))
        if self.se is not None:
            x = self.se(x)
        return self.act(self.drop_path(x) + shortcut)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck] | type[SelectiveKernelBottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "sk_bottleneck": SelectiveKernelBottleneck,
}
RESIDUAL_BLOCKS = tuple(BLOCKS.values())


def downsample(inplanes: int, outplanes: int, stride: int, config: ResNetConfig, **factory) -> nn.Sequential:
    """The projection shortcut: strided conv (1x1, or `down_kernel_size`), or (ResNet-D) 2x2
    average pool then 1x1 conv; then the norm."""
    norm = norm2d(config.norm_layer, outplanes, **factory)
    if not config.avg_down:
        kernel = config.down_kernel_size if stride > 1 else 1
        padding = (stride - 1 + kernel - 1) // 2
        return nn.Sequential(
            bare_conv2d(inplanes, outplanes, kernel, stride=stride, padding=padding, **factory), norm
        )
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, conv1x1(inplanes, outplanes, **factory), norm)


PLAIN_STEM_WIDTH = 64
DEFAULT_IMG_SIZE = (224, 224)


def reduced(size: tuple[int, int] | None, stride: int) -> tuple[int, int] | None:
    """A map's size after `stride` (padded convs and pools round up); None stays unknown."""
    return None if size is None else (-(-size[0] // stride), -(-size[1] // stride))


def stem(config: ResNetConfig, **factory) -> tuple[nn.Module, int]:
    """The first conv(s) and the width they output.

    Plain: one 7x7 conv to 64 channels. Deep (ResNet-C/D/S): three 3x3 convs of `stem_width`,
    `stem_width` and `2 * stem_width` channels; deep-tiered (ResNet-T) narrows the first to
    `3 * (stem_width // 4)`. As in timm, `stem_width` sizes only the deep stems, so
    checkpoints of either kind keep their shapes.
    """
    if not config.stem_type:
        conv = bare_conv2d(config.in_chans, PLAIN_STEM_WIDTH, 7, stride=2, padding=3, **factory)
        return conv, PLAIN_STEM_WIDTH
    width = config.stem_width
    first = 3 * (width // 4) if config.stem_type == "deep_tiered" else width
    layers = nn.Sequential(
        conv3x3(config.in_chans, first, stride=2, **factory),
        norm2d(config.norm_layer, first, **factory),
        nn.ReLU(inplace=True),
        conv3x3(first, width, **factory),
        norm2d(config.norm_layer, width, **factory),
        nn.ReLU(inplace=True),
        conv3x3(width, 2 * width, **factory),
    )
    return layers, 2 * width


def stem_pool(config: ResNetConfig, channels: int, **factory) -> nn.Module:
    """The stem's stride-2 downsampling (timm's `maxpool`, whatever it is): a 3x3 max pool;
    with `replace_stem_pool`, a strided 3x3 conv, norm and ReLU; anti-aliased, the max pool
    at stride 1 then the filter (or the average pool alone)."""
    if config.replace_stem_pool:
        options = BlockOptions(aa_layer=config.aa_layer)
        conv, aa = strided_conv3x3(channels, channels, 2, options, **factory)
        layers = [conv, aa, norm2d(config.norm_layer, channels, **factory), nn.ReLU(inplace=True)]
        return nn.Sequential(*(layer for layer in layers if not isinstance(layer, nn.Identity)))
    if config.aa_layer == "avg":
        return anti_alias("avg", channels)
    if config.aa_layer == "blur":
        return nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1), anti_alias("blur", channels, **factory)
        )
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


def capture_gate(captured: dict, key: str, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    """Forward pre-hook: a spatial gate's map of its input, (B, 1, h, w) -> (B, h, w)."""
    captured[key] = module.spatial_map(args[0])[:, 0]


def capture_received(captured: dict, key: str, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
    """Forward pre-hook: the mean attention each position of the input receives, (B, h, w)."""
    captured[key] = attention_received(module.attention_weights(args[0]), *args[0].shape[-2:])


class ResNet(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    classifier_names = ("fc",)

    def __init__(self, config: ResNetConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        options = BlockOptions(
            cardinality=config.cardinality,
            attn=config.attn,
            conv_attn=config.conv_attn,
            aa_layer=config.aa_layer,
            norm_layer=config.norm_layer,
        )

        self.conv1, inplanes = stem(config, **factory)
        self.feature_info = [{"module": "act1", "num_chs": inplanes, "reduction": 2}]
        self.bn1 = norm2d(config.norm_layer, inplanes, **factory)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = stem_pool(config, inplanes, **factory)

        rates = iter(drop_path_rates(config.drop_path_rate, sum(config.layers)))
        pruned = iter(config.pruned_widths or ())
        feat_size = reduced(image_size(config) or (config.conv_attn and DEFAULT_IMG_SIZE), 4)  # stem's stride
        nominal_inplanes = inplanes  # unpruned: whether a block needs a projection is decided on these
        self.stage_names = []
        stages = zip(config.stage_blocks, config.layers, config.channels, strict=True)
        for index, (block_type, num_blocks, planes) in enumerate(stages):
            block = BLOCKS[block_type]
            stride = 1 if index == 0 else 2
            outplanes = planes * block.expansion
            first, mid = block.inner_widths(
                planes, config.base_width, config.cardinality, config.block_reduce_first
            )
            blocks = []
            for block_index in range(num_blocks):
                widths = BlockWidths(inplanes, first, mid, outplanes, attn=outplanes)
                if config.pruned_widths is not None:
                    widths = BlockWidths(inplanes, *next(pruned), attn=outplanes)
                needs_projection = block_index == 0 and (stride != 1 or nominal_inplanes != outplanes)
                blocks.append(
                    block(
                        widths,
                        stride=stride if block_index == 0 else 1,
                        downsample=downsample(inplanes, widths.out, stride, config, **factory)
                        if needs_projection
                        else None,
                        options=options,
                        feat_size=feat_size,
                        drop_path=next(rates),
                        **factory,
                    )
                )
                inplanes, nominal_inplanes = widths.out, outplanes
                if block_index == 0:
                    feat_size = reduced(feat_size, stride)
            self.stage_names.append(f"layer{index + 1}")
            self.add_module(self.stage_names[-1], nn.Sequential(*blocks))
            stage = {"module": self.stage_names[-1], "num_chs": inplanes, "reduction": 4 * 2**index}
            self.feature_info.append(stage)

        self.num_features = inplanes
        self.grad_checkpointing = False
        self.global_pool = GlobalPool(config.global_pool)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.fc = self._classifier(config.num_classes, **factory)
        self.reset_parameters()

    def _classifier(self, num_classes: int, **factory) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return nn.Linear(self.num_features * self.global_pool.feat_mult, num_classes, **factory)

    def reset_parameters(self) -> None:
        """He-normal convs; unit norms, with each block's last one zeroed if asked."""
        if self.bn1.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        self._init_weights(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks (a new attention in every block)."""
        init_submodules(self, names, self._init_weights)

    def _init_weights(self, root: nn.Module) -> None:
        for module in root.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.config.zero_init_last:
            for module in root.modules():
                if isinstance(module, RESIDUAL_BLOCKS):
                    nn.init.zeros_(module.last_norm.weight)

    @property
    def first_conv(self) -> str:
        return "conv1.0" if self.config.stem_type else "conv1"

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh `nn.Linear` is, e.g. after a new `num_classes`."""
        if isinstance(self.fc, nn.Linear):
            self.fc.reset_parameters()

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new classifier of `num_classes` (0: none), initialised as `init_classifier` does,
        after `global_pool` pooling if given (timm's meanings, see `ResNetConfig`)."""
        pool = self.config.global_pool if global_pool is None else global_pool
        self.config = reconfigured(self.config, num_classes=num_classes, global_pool=pool)
        self.global_pool = GlobalPool(pool)
        self.fc = self._classifier(num_classes, **factory_of(self))
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """None: timm's ResNets decay every parameter (optimisers leave out norms and biases)."""
        return set()

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.stages() for block in stage]

    def check_input_size(self, x: torch.Tensor) -> None:
        """Refuse, in one line, an input of another size than `img_size` where one is fixed."""
        size = image_size(self.config)
        if size is not None and tuple(x.shape[-2:]) != size:
            raise ValueError(f"input is {tuple(x.shape[-2:])} pixels; this model takes {size[0]}x{size[1]}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> last feature map (B, num_features, H/32, W/32)."""
        self.check_input_size(x)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of `feature_info`, as timm gives them: the stem's (after `act1`,
        stride 2) and each stage's, (B, C, H, W). `norm` does nothing (a ResNet has no final
        norm); with `intermediates_only` the stages after the last one asked for are not run.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': a ResNet gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.feature_info), indices)
        self.check_input_size(x)
        x = self.act1(self.bn1(self.conv1(x)))
        intermediates = [x] if 0 in take else []
        x = self.maxpool(x)
        for index, stage in enumerate(self.stages(), 1):
            if intermediates_only and index > max(take):
                break
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
            if index in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The spatial attention of each stage's last block, deepest first, each (B, h, w)
        (the zoo's attention-map protocol, see `zoo.maps`): `"stage4"`, ..., `"stage1"`.

        Two kinds of attention have a map: a conv attention that attends over positions
        (bottleneck self-attention: its `attention_weights`, shown as the mean attention each
        position receives over heads and queries), else a block attention that gates space
        (CBAM: its `spatial_map`). Channel-only ones (SE, ECA, Selective Kernel, split
        attention) have none.
        """
        captured: dict[str, torch.Tensor] = {}
        hooks = []
        for number, stage in enumerate(self.stages(), 1):
            block, key = stage[-1], f"stage{number}"
            attending = block.conv1 if isinstance(block, BasicBlock) else block.conv2
            if callable(getattr(attending, "attention_weights", None)):
                hooks.append(attending.register_forward_pre_hook(partial(capture_received, captured, key)))
            elif callable(getattr(block.se, "spatial_map", None)):
                hooks.append(block.se.register_forward_pre_hook(partial(capture_gate, captured, key)))
        if not hooks:
            names = [spec.name for spec in (self.config.attn, self.config.conv_attn) if spec is not None]
            raise AttentionMapError(
                f"this ResNet's attention ({', '.join(names) or 'none'}) has no spatial map, so nothing "
                "to draw; CBAM's spatial gate and bottleneck self-attention (bot) have one"
            )
        try:
            self.forward_features(x)
        finally:
            for hook in hooks:
                hook.remove()
        return dict(reversed(captured.items()))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class logits from the last feature map; with `pre_logits`, the pooled features."""
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ResNetFamily(ImageFamily):
    """Family `resnet`: ResNets at any depth and width, with any channel attention in their blocks."""

    config = ResNetConfig
    test_args: ClassVar[dict[str, Any]] = {
        "block": "basic",
        "layers": (1, 1, 1, 1),
        "channels": (8, 16, 32, 64),
        "num_classes": 10,
        "img_size": 32,
    }

    def build(self, config: ResNetConfig, *, device=None, dtype=None) -> ResNet:
        return ResNet(config, device=device, dtype=dtype)


family = ResNetFamily()
build = family.build
