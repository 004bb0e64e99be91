"""ResNet with a pluggable channel attention in every block, and ResNet-D.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
https://arxiv.org/abs/1512.03385
He et al., "Bag of Tricks for Image Classification with Convolutional Neural Networks"
(ResNet-D: deep 3x3 stem, average-pool shortcut), CVPR 2019. https://arxiv.org/abs/1812.01187

Any registered channel attention (`attn`: SE, CBAM, ECA, or a plugin's) re-weights each
block's residual branch just before the shortcut is added. The block's attention slot is
named `se`, as in timm, whatever fills it: timm's `resnet`, `seresnet` and `ecaresnet`
checkpoints load unchanged.

Any registered conv attention (`conv_attn`: Selective Kernel, split attention, bottleneck
self-attention, or a plugin's) replaces each block's spatial convolution with its norm and
activation: the basic block's first 3x3 conv (the second then takes timm's `conv2.conv`,
`conv2.bn` names, as in timm's SKNet) and the bottleneck's 3x3 conv (no `bn2`, as in timm's
ResNeSt). Where its parameters depend on the size of the map (bottleneck self-attention),
`img_size` fixes it, and the model takes images of that size only.

Li et al., "Selective Kernel Networks", CVPR 2019. https://arxiv.org/abs/1903.06586
Zhang et al., "ResNeSt: Split-Attention Networks", 2020. https://arxiv.org/abs/2004.08955
Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021.
https://arxiv.org/abs/2101.11605
"""

from __future__ import annotations

from collections.abc import Sequence
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

__all__ = ["ResNetConfig", "ResNet", "BasicBlock", "Bottleneck", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]


class ResNetConfig(BaseModel):
    """Architecture of a ResNet (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block: Literal["basic", "bottleneck"] = "bottleneck"
    layers: tuple[Positive, ...] = (3, 4, 6, 3)
    channels: tuple[Positive, ...] = (64, 128, 256, 512)
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    stem_width: Positive = 64
    stem_type: Literal["", "deep"] = ""
    avg_down: bool = False
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
        if len(self.layers) != len(self.channels):
            raise ValueError(f"{len(self.layers)} stages in 'layers' but {len(self.channels)} in 'channels'")
        if not self.global_pool and self.num_classes:
            raise ValueError("global_pool '' leaves the feature map unpooled: it takes num_classes=0")
        return self


# Bare: every conv of a ResNet gets its He-normal initialisation when the model is built.
def conv3x3(in_channels: int, out_channels: int, stride: int = 1, **factory) -> nn.Conv2d:
    return bare_conv2d(in_channels, out_channels, 3, stride=stride, padding=1, **factory)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, **factory) -> nn.Conv2d:
    return bare_conv2d(in_channels, out_channels, 1, stride=stride, **factory)


def attention_slot(spec: ChannelAttention | None, channels: int, **factory) -> nn.Module | None:
    return spec.build(channels, **factory) if spec is not None else None


def conv_attention_slot(
    spec: ConvAttention, in_channels: int, out_channels: int, stride: int, feat_size, **factory
) -> nn.Module:
    return spec.build(in_channels, out_channels, stride=stride, feat_size=feat_size, **factory)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34); with a conv attention, it is the first."""

    expansion = 1

    def __init__(
        self,
        inplanes,
        planes,
        *,
        stride,
        downsample,
        attn,
        conv_attn=None,
        feat_size=None,
        drop_path,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if conv_attn is None:
            self.conv1 = conv3x3(inplanes, planes, stride, **factory)
            self.bn1 = nn.BatchNorm2d(planes, **factory)
            self.act1 = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes, **factory)
            self.bn2 = nn.BatchNorm2d(planes, **factory)
        else:  # timm's SKNet layout: the attention owns its norms; conv2 is conv2.conv, conv2.bn
            self.conv1 = conv_attention_slot(conv_attn, inplanes, planes, stride, feat_size, **factory)
            self.conv2 = ConvNormAct(planes, planes, 3, act=False, **factory)
            self.bn2 = None
        self.se = attention_slot(attn, planes, **factory)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample
        self.act2 = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.conv2.bn if self.bn2 is None else self.bn2

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn2 is None:
            return self.conv2(self.conv1(x))
        return self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.residual(x)
        if self.se is not None:
            x = self.se(x)
        return self.act2(self.drop_path(x) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided; or a conv attention), 1x1 expand by 4 (ResNet-50/101)."""

    expansion = 4

    def __init__(
        self,
        inplanes,
        planes,
        *,
        stride,
        downsample,
        attn,
        conv_attn=None,
        feat_size=None,
        drop_path,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        outplanes = planes * self.expansion
        self.conv1 = conv1x1(inplanes, planes, **factory)
        self.bn1 = nn.BatchNorm2d(planes, **factory)
        self.act1 = nn.ReLU(inplace=True)
        if conv_attn is None:
            self.conv2 = conv3x3(planes, planes, stride, **factory)
            self.bn2 = nn.BatchNorm2d(planes, **factory)
            self.act2 = nn.ReLU(inplace=True)
        else:  # timm's ResNeSt layout: the attention owns its norms, there is no bn2
            self.conv2 = conv_attention_slot(conv_attn, planes, planes, stride, feat_size, **factory)
            self.bn2 = None
        self.conv3 = conv1x1(planes, outplanes, **factory)
        self.bn3 = nn.BatchNorm2d(outplanes, **factory)
        self.se = attention_slot(attn, outplanes, **factory)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample
        self.act3 = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(x) if self.bn2 is None else self.act2(self.bn2(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn3(self.conv3(self.spatial(x)))
        if self.se is not None:
            x = self.se(x)
        return self.act3(self.drop_path(x) + shortcut)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def downsample(inplanes: int, outplanes: int, stride: int, avg_down: bool, **factory) -> nn.Sequential:
    """The projection shortcut: strided 1x1 conv, or (ResNet-D) 2x2 average pool then 1x1 conv."""
    if not avg_down:
        return nn.Sequential(
            conv1x1(inplanes, outplanes, stride, **factory), nn.BatchNorm2d(outplanes, **factory)
        )
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, conv1x1(inplanes, outplanes, **factory), nn.BatchNorm2d(outplanes, **factory))


PLAIN_STEM_WIDTH = 64
DEFAULT_IMG_SIZE = (224, 224)


def reduced(size: tuple[int, int] | None, stride: int) -> tuple[int, int] | None:
    """A map's size after `stride` (padded convs and pools round up); None stays unknown."""
    return None if size is None else (-(-size[0] // stride), -(-size[1] // stride))


def stem(config: ResNetConfig, **factory) -> tuple[nn.Module, int]:
    """The first conv(s) and the width they output.

    Plain: one 7x7 conv to 64 channels. Deep (ResNet-D): three 3x3 convs of `stem_width`,
    `stem_width` and `2 * stem_width` channels. As in timm, `stem_width` sizes only the deep
    stem, so checkpoints of either kind keep their shapes.
    """
    if config.stem_type != "deep":
        conv = bare_conv2d(config.in_chans, PLAIN_STEM_WIDTH, 7, stride=2, padding=3, **factory)
        return conv, PLAIN_STEM_WIDTH
    width = config.stem_width
    layers = nn.Sequential(
        conv3x3(config.in_chans, width, stride=2, **factory),
        nn.BatchNorm2d(width, **factory),
        nn.ReLU(inplace=True),
        conv3x3(width, width, **factory),
        nn.BatchNorm2d(width, **factory),
        nn.ReLU(inplace=True),
        conv3x3(width, 2 * width, **factory),
    )
    return layers, 2 * width


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
        block = BLOCKS[config.block]

        self.conv1, inplanes = stem(config, **factory)
        self.feature_info = [{"module": "act1", "num_chs": inplanes, "reduction": 2}]
        self.bn1 = nn.BatchNorm2d(inplanes, **factory)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        rates = iter(drop_path_rates(config.drop_path_rate, sum(config.layers)))
        feat_size = reduced(image_size(config) or (config.conv_attn and DEFAULT_IMG_SIZE), 4)  # stem's stride
        self.stage_names = []
        for index, (num_blocks, planes) in enumerate(zip(config.layers, config.channels, strict=True)):
            stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(num_blocks):
                outplanes = planes * block.expansion
                needs_projection = block_index == 0 and (stride != 1 or inplanes != outplanes)
                blocks.append(
                    block(
                        inplanes,
                        planes,
                        stride=stride if block_index == 0 else 1,
                        downsample=downsample(inplanes, outplanes, stride, config.avg_down, **factory)
                        if needs_projection
                        else None,
                        attn=config.attn,
                        conv_attn=config.conv_attn,
                        feat_size=feat_size,
                        drop_path=next(rates),
                        **factory,
                    )
                )
                inplanes = outplanes
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
        """He-normal convs; unit BatchNorm, with each block's last one zeroed if asked."""
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
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.config.zero_init_last:
            for module in root.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.last_norm.weight)

    @property
    def first_conv(self) -> str:
        return "conv1.0" if self.config.stem_type == "deep" else "conv1"

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
            attending = block.conv2 if isinstance(block, Bottleneck) else block.conv1
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
