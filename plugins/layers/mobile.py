"""Mobile inverted bottleneck blocks and the trunk they form: what EfficientNet and
MobileNetV3 share.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
https://arxiv.org/abs/1801.04381
Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019.
https://arxiv.org/abs/1807.11626

A network is a strided stem conv, stages of blocks, and a head of its own. A stage is
written as block definitions (`BlockDef`: kind, repeats, kernel, stride, expansion, output
width, SE ratio, activation, ...); a channel multiplier scales every width
(`round_channels`) and a depth multiplier every stage's repeats (`scale_depth`). Five kinds
of block:

- `ds`, depthwise-separable: depthwise conv, BN + act, attention, pointwise conv, BN;
- `dsa`: the same with an activation after the pointwise conv, and never residual
  (MobileNetV1's);
- `ir`, inverted residual (MBConv): pointwise expansion, BN + act, depthwise conv, BN + act,
  attention, pointwise projection, BN (a linear bottleneck); with experts, CondConv's;
- `er`, edge residual (fused MBConv): a full conv expanding, BN + act, attention, pointwise
  projection, BN (EfficientNet-EdgeTPU and EfficientNetV2);
- `cn`: conv, BN + act.

A `ds`, `ir` or `er` block with stride 1 and unchanged width adds its input (a `cn` block
only if asked), the branch dropped by stochastic depth while training. The attention slot
(`se`) holds any channel attention, where the definition has an SE ratio, at the reduced
width the family's rule gives (`ReducedWidth`). A kernel may be a tuple: a mixed conv
(MixNet), each size on its share of the channels. How convs are padded and BatchNorm's eps
are the network's (`ConvStyle`). Module names follow timm's `_efficientnet_blocks`, so its
checkpoints load unchanged.

Block definitions read as strings in the notation of the TensorFlow reference and timm
(`BlockDef.parse`): `ir_r2_k3_s2_e6_c24_se0.25` is two inverted residuals, 3x3 depthwise,
the first of stride 2, expansion 6, 24 channels out, SE at a quarter of the input width.
The block kind comes first, then options in any order:

    r  repeats                      k  kernel size (k3.5.7: a mixed conv)
    s  stride of the first block    e  expansion ratio
    c  output width (unscaled)      se SE ratio (none: no attention)
    a  expansion conv's kernel (ir; a1.1: a 1x1 conv in two groups)
    p  projection conv's kernel (p1.1 likewise)
    gs group size of the spatial conv (ds, ir: 1, depthwise; er, cn: none, dense)
    fc width the expansion is counted from (er; EfficientNet-EdgeTPU's quirk)
    cc number of CondConv experts (ir)
    nre, nr6, nsw, nhs  the block's activation: relu, relu6, silu, hard_swish
    noskip, skip  no residual connection; a residual `cn` block
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import feature_take_indices

from .activations import Activation
from .blocks import run_blocks
from .condconv import CondConv2d
from .conv import make_divisible
from .drop import DropPath
from .init import init_convs
from .mixconv import MixedConv2d
from .norm_act import NormLayer, norm_act
from .padding import Padding, conv2d

__all__ = [
    "BlockDef",
    "BlockKind",
    "CondConvResidual",
    "ConvBnAct",
    "ConvStyle",
    "DepthwiseSeparable",
    "EdgeResidual",
    "InvertedResidual",
    "Kernel",
    "MobileTrunk",
    "ReducedWidth",
    "TrunkSpec",
    "round_channels",
    "scale_depth",
]

BlockKind = Literal["ds", "dsa", "ir", "er", "cn"]
Kernel = int | tuple[int, ...]
"""A conv's kernel size, or a mixed conv's sizes (one per share of the channels)."""

ACTIVATION_CODES: dict[str, Activation] = {"re": "relu", "r6": "relu6", "sw": "silu", "hs": "hard_swish"}
"""The block strings' `n..` codes (the TensorFlow reference's) for the zoo's activations."""


@dataclass(frozen=True)
class BlockDef:
    """`repeats` blocks of one kind; only the first has `stride`. `act` None: the network's.

    `kernel_size` is the spatial conv's (depthwise for `ds`, `dsa` and `ir`, the expansion
    conv for `er`); `residual` None follows the kind (`ds`, `ir`, `er` where shapes allow;
    `dsa` and `cn` never); `group_size` None likewise (depthwise for `ds`, `dsa` and `ir`,
    dense for `er` and `cn`).
    """

    kind: BlockKind
    repeats: int
    kernel_size: Kernel
    stride: int
    out_chs: int
    exp_ratio: float = 1.0
    se_ratio: float = 0.0
    act: Activation | None = None
    exp_kernel_size: Kernel = 1
    pw_kernel_size: Kernel = 1
    residual: bool | None = None
    group_size: int | None = None
    force_in_chs: int = 0
    num_experts: int = 0

    @classmethod
    def parse(cls, text: str) -> BlockDef:
        """A definition from its string (see the module's docstring); ValueError if malformed."""
        kind, *tokens = text.split("_")
        if kind not in ("ds", "dsa", "ir", "er", "cn"):
            raise ValueError(f"block '{text}': unknown kind '{kind}' (ds, dsa, ir, er or cn)")
        options: dict[str, str] = {}
        fields: dict[str, Any] = {}
        for token in tokens:
            if token in ("skip", "noskip"):
                fields["residual"] = token == "skip"
            elif token[:1] == "n" and token[1:] in ACTIVATION_CODES:
                fields["act"] = ACTIVATION_CODES[token[1:]]
            elif match := re.fullmatch(r"([a-z]+)(\d[\d.]*)", token):
                options[match[1]] = match[2]
            else:
                raise ValueError(f"block '{text}': cannot read '{token}'")
        unknown = set(options) - {"r", "k", "s", "e", "c", "se", "a", "p", "gs", "fc", "cc"}
        missing = {"r", "k", "s", "c"} - set(options)
        if unknown or missing:
            problem = f"unknown option {sorted(unknown)}" if unknown else f"no {sorted(missing)}"
            raise ValueError(f"block '{text}': {problem}")
        converters = {
            "e": ("exp_ratio", float),
            "se": ("se_ratio", float),
            "a": ("exp_kernel_size", _kernel),
            "p": ("pw_kernel_size", _kernel),
            "gs": ("group_size", int),
            "fc": ("force_in_chs", int),
            "cc": ("num_experts", int),
        }
        for key, (name, convert) in converters.items():
            if key in options:
                fields[name] = convert(options[key])
        return cls(
            kind,
            int(options["r"]),
            _kernel(options["k"]),
            int(options["s"]),
            int(options["c"]),
            **fields,
        )

    @property
    def has_residual(self) -> bool:
        """Whether the block adds its input where shapes allow."""
        return self.residual if self.residual is not None else self.kind not in ("dsa", "cn")


def _kernel(text: str) -> Kernel:
    sizes = tuple(int(size) for size in text.split("."))
    return sizes[0] if len(sizes) == 1 else sizes


ReducedWidth = Callable[[int, BlockDef], int]
"""A family's rule for its attention's reduced width: (width the attention sees, the block's
definition) -> `rd_channels`."""


def round_channels(
    channels: float, multiplier: float = 1.0, divisor: int = 8, round_limit: float = 0.9
) -> int:
    """A width scaled by the channel multiplier, rounded as timm rounds it: to the nearest
    multiple of `divisor`, and never more than 10% below (`round_limit`; 0: any amount)."""
    return make_divisible(channels * multiplier, divisor, round_limit=round_limit)


def expanded_width(in_chs: int, exp_ratio: float) -> int:
    """The width inside an inverted residual: the input's, expanded and rounded to multiples of 8."""
    return make_divisible(in_chs * exp_ratio, 8, round_limit=0.9)


def scale_depth(stage: Sequence[BlockDef], multiplier: float) -> list[BlockDef]:
    """One definition per block of a stage whose repeats are scaled by `multiplier`.

    As in EfficientNet: the stage's total is rounded up, then shared out in proportion from
    the last definition back, so that the first one is the least likely to grow.
    """
    remaining = sum(definition.repeats for definition in stage)
    remaining_scaled = math.ceil(remaining * multiplier)
    repeats = []
    for definition in reversed(stage):
        scaled = max(1, round(definition.repeats / remaining * remaining_scaled))
        repeats.append(scaled)
        remaining -= definition.repeats
        remaining_scaled -= scaled
    return [d for d, count in zip(stage, reversed(repeats), strict=True) for _ in range(count)]


def groups_of(group_size: int | None, channels: int) -> int:
    """A conv's groups for channels in groups of `group_size` (0 or None: one group)."""
    return channels // group_size if group_size else 1


@dataclass(frozen=True)
class ConvStyle:
    """How a network pads its convs and which norms it has: timm's defaults, or the
    TensorFlow ports' "SAME" padding and BatchNorm eps 1e-3; GroupNorm, LayerNorm or EvoNorm
    (`norm_layer`, over groups of `norm_group_size` channels) in place of BatchNorm."""

    padding: Padding = "symmetric"
    norm_eps: float = 1e-5
    norm_layer: NormLayer = "batchnorm"
    norm_group_size: int = 8

    def conv(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: Kernel,
        stride: int = 1,
        groups: int = 1,
        *,
        num_experts: int = 0,
        device=None,
        dtype=None,
    ) -> nn.Module:
        """A conv without bias: mixed if `kernel_size` is a tuple (depthwise if `groups` is
        `in_chs`), a CondConv if it has experts."""
        factory = {"device": device, "dtype": dtype, "padding": self.padding}
        if isinstance(kernel_size, tuple):
            depthwise = groups == in_chs and groups > 1
            return MixedConv2d(in_chs, out_chs, kernel_size, stride=stride, depthwise=depthwise, **factory)
        if num_experts:
            return CondConv2d(
                in_chs, out_chs, kernel_size, num_experts=num_experts, stride=stride, groups=groups, **factory
            )
        return conv2d(in_chs, out_chs, kernel_size, stride=stride, groups=groups, **factory)

    def norm(self, channels: int, act: Activation | None = None, *, device=None, dtype=None) -> nn.Module:
        """The network's norm with `act` after it (BatchNorm + act unless it says otherwise)."""
        return norm_act(
            self.norm_layer,
            channels,
            act,
            eps=self.norm_eps,
            group_size=self.norm_group_size,
            device=device,
            dtype=dtype,
        )


def conv(
    in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1, **factory
) -> nn.Conv2d:
    """A conv without bias, padded to keep the size at stride 1 (timm's symmetric padding)."""
    return ConvStyle().conv(in_chs, out_chs, kernel_size, stride, groups, **factory)


DEFAULT_STYLE = ConvStyle()


class DepthwiseSeparable(nn.Module):
    """Depthwise conv, attention, pointwise conv: the `ds` block (MobileNetV1's, and the first
    block of EfficientNet and MobileNetV3); with `pw_act`, the `dsa` block."""

    def __init__(
        self,
        in_chs,
        out_chs,
        *,
        kernel_size,
        stride,
        act,
        se,
        drop_path,
        pw_kernel_size: Kernel = 1,
        pw_act: bool = False,
        residual: bool = True,
        group_size: int | None = 1,
        style: ConvStyle = DEFAULT_STYLE,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = residual and stride == 1 and in_chs == out_chs
        groups = groups_of(group_size, in_chs)
        self.conv_dw = style.conv(in_chs, in_chs, kernel_size, stride, groups, **factory)
        self.bn1 = style.norm(in_chs, act, **factory)
        self.se = se if se is not None else nn.Identity()
        self.conv_pw = style.conv(in_chs, out_chs, pw_kernel_size, **factory)
        self.bn2 = style.norm(out_chs, act if pw_act else None, **factory)
        self.drop_path = DropPath(drop_path)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.se(self.bn1(self.conv_dw(x)))
        x = self.bn2(self.conv_pw(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class InvertedResidual(nn.Module):
    """Expand, depthwise conv, attention, project: the `ir` block (MBConv)."""

    def __init__(
        self,
        in_chs,
        mid_chs,
        out_chs,
        *,
        kernel_size,
        stride,
        act,
        se,
        drop_path,
        exp_kernel_size: Kernel = 1,
        pw_kernel_size: Kernel = 1,
        residual: bool = True,
        group_size: int | None = 1,
        num_experts: int = 0,
        style: ConvStyle = DEFAULT_STYLE,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype, "num_experts": num_experts}
        self.has_skip = residual and stride == 1 and in_chs == out_chs
        groups = groups_of(group_size, mid_chs)
        self.conv_pw = style.conv(in_chs, mid_chs, exp_kernel_size, **factory)
        self.bn1 = style.norm(mid_chs, act, device=device, dtype=dtype)
        self.conv_dw = style.conv(mid_chs, mid_chs, kernel_size, stride, groups, **factory)
        self.bn2 = style.norm(mid_chs, act, device=device, dtype=dtype)
        self.se = se if se is not None else nn.Identity()
        self.conv_pwl = style.conv(mid_chs, out_chs, pw_kernel_size, **factory)
        self.bn3 = style.norm(out_chs, device=device, dtype=dtype)  # linear bottleneck: no activation
        self.drop_path = DropPath(drop_path)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.bn1(self.conv_pw(x))  # (B, mid, H, W)
        x = self.se(self.bn2(self.conv_dw(x)))  # (B, mid, H / stride, W / stride)
        x = self.bn3(self.conv_pwl(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class CondConvResidual(InvertedResidual):
    """An inverted residual whose three convs are CondConvs (`num_experts` kernels each),
    mixed per sample by routing weights: a sigmoid of a linear map of the pooled input."""

    def __init__(
        self, in_chs, mid_chs, out_chs, *, num_experts: int, device=None, dtype=None, **block
    ) -> None:
        super().__init__(
            in_chs, mid_chs, out_chs, num_experts=num_experts, device=device, dtype=dtype, **block
        )
        self.routing_fn = nn.Linear(in_chs, num_experts, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        routing = torch.sigmoid(self.routing_fn(F.adaptive_avg_pool2d(x, 1).flatten(1)))  # (B, experts)
        x = self.bn1(self.conv_pw(x, routing))
        x = self.se(self.bn2(self.conv_dw(x, routing)))
        x = self.bn3(self.conv_pwl(x, routing))
        return self.drop_path(x) + shortcut if self.has_skip else x


class EdgeResidual(nn.Module):
    """A full conv expanding (and striding), attention, project: the `er` block (fused MBConv)."""

    def __init__(
        self,
        in_chs,
        mid_chs,
        out_chs,
        *,
        kernel_size,
        stride,
        act,
        se,
        drop_path,
        pw_kernel_size: Kernel = 1,
        residual: bool = True,
        group_size: int | None = None,
        style: ConvStyle = DEFAULT_STYLE,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = residual and stride == 1 and in_chs == out_chs
        groups = groups_of(group_size, mid_chs)  # counted on the output, as timm counts it
        self.conv_exp = style.conv(in_chs, mid_chs, kernel_size, stride, groups, **factory)
        self.bn1 = style.norm(mid_chs, act, **factory)
        self.se = se if se is not None else nn.Identity()
        self.conv_pwl = style.conv(mid_chs, out_chs, pw_kernel_size, **factory)
        self.bn2 = style.norm(out_chs, **factory)  # linear bottleneck: no activation
        self.drop_path = DropPath(drop_path)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.se(self.bn1(self.conv_exp(x)))  # (B, mid, H / stride, W / stride)
        x = self.bn2(self.conv_pwl(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class ConvBnAct(nn.Module):
    """Conv, BN + act: the `cn` block (MobileNetV3's last 1x1 stage, EfficientNetV2's first
    3x3 ones, which add their input)."""

    def __init__(
        self,
        in_chs,
        out_chs,
        *,
        kernel_size,
        stride,
        act,
        residual: bool = False,
        group_size: int | None = None,
        drop_path: float = 0.0,
        style: ConvStyle = DEFAULT_STYLE,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = residual and stride == 1 and in_chs == out_chs
        self.conv = style.conv(in_chs, out_chs, kernel_size, stride, groups_of(group_size, in_chs), **factory)
        self.bn1 = style.norm(out_chs, act, **factory)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv(x))
        return self.drop_path(out) + x if self.has_skip else out


@dataclass(frozen=True)
class TrunkSpec:
    """How a family builds its trunk: what its config and its rules fix.

    `attn_follows_act`: an attention whose options leave its activation unset takes its
    block's (EfficientNet's SE uses the activation of the block it sits in).
    """

    in_chans: int
    stem_size: int
    stages: Sequence[Sequence[BlockDef]]
    width: Callable[[int], int]  # a definition's width, scaled by the channel multiplier
    depth_multiplier: float
    act: Activation
    attn: ChannelAttention | None
    reduced_width: ReducedWidth
    drop_path_rate: float
    style: ConvStyle = field(default_factory=ConvStyle)
    stem_kernel_size: int = 3
    attn_follows_act: bool = False


class MobileTrunk(nn.Module):
    """The stem and the stages of an EfficientNet or a MobileNetV3, with what training code
    asks of them (timm's interface); a subclass adds its head.

    `feature_info` is one dict per output stride (timm's `module`, `num_chs`, `reduction`,
    `stage`): each stage output before a stride and the last one.
    """

    classifier_names: tuple[str, ...] = ("classifier",)
    first_conv = "conv_stem"

    def build_trunk(self, spec: TrunkSpec, **factory) -> int:
        """Set `conv_stem`, `bn1`, `blocks` and `feature_info`; return the trunk's output width."""
        self.grad_checkpointing = False
        self.conv_stem = spec.style.conv(spec.in_chans, spec.stem_size, spec.stem_kernel_size, 2, **factory)
        self.bn1 = spec.style.norm(spec.stem_size, spec.act, **factory)
        stages = [scale_depth(stage, spec.depth_multiplier) for stage in spec.stages]
        total = sum(map(len, stages))
        rates = iter(spec.drop_path_rate * index / total for index in range(total))  # timm's: / total
        width, built = spec.stem_size, []
        for stage in stages:
            blocks = []
            for position, definition in enumerate(stage):
                stride = definition.stride if position == 0 else 1
                blocks.append(self.block(spec, definition, width, stride, next(rates), **factory))
                width = spec.width(definition.out_chs)
            built.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*built)
        self.feature_info: list[dict[str, Any]] = stage_outputs(stages, spec)
        return width

    @staticmethod
    def block(spec: TrunkSpec, definition: BlockDef, in_chs: int, stride: int, drop_path: float, **factory):
        out_chs, act = spec.width(definition.out_chs), definition.act or spec.act
        shape = {"kernel_size": definition.kernel_size, "stride": stride, "act": act, "style": spec.style}
        residual = definition.has_residual
        if definition.group_size is not None:
            shape["group_size"] = definition.group_size
        if definition.kind == "cn":
            return ConvBnAct(in_chs, out_chs, **shape, residual=residual, drop_path=drop_path, **factory)

        def attention(width: int) -> nn.Module | None:
            if spec.attn is None or not definition.se_ratio:
                return None
            attn = with_activation(spec.attn, act) if spec.attn_follows_act else spec.attn
            return attn.build(width, rd_channels=spec.reduced_width(width, definition), **factory)

        block = {"drop_path": drop_path, "residual": residual, "pw_kernel_size": definition.pw_kernel_size}
        if definition.kind in ("ds", "dsa"):
            return DepthwiseSeparable(
                in_chs,
                out_chs,
                **shape,
                **block,
                se=attention(in_chs),
                pw_act=definition.kind == "dsa",
                **factory,
            )
        counted_from = spec.width(definition.force_in_chs) if definition.force_in_chs else in_chs
        mid_chs = expanded_width(counted_from, definition.exp_ratio)
        if definition.kind == "er":
            return EdgeResidual(in_chs, mid_chs, out_chs, **shape, **block, se=attention(mid_chs), **factory)
        block |= {"exp_kernel_size": definition.exp_kernel_size, "se": attention(mid_chs)}
        if definition.num_experts:
            return CondConvResidual(
                in_chs, mid_chs, out_chs, **shape, **block, num_experts=definition.num_experts, **factory
            )
        return InvertedResidual(in_chs, mid_chs, out_chs, **shape, **block, **factory)

    def reset_parameters(self) -> None:
        """The initialisation of the TensorFlow reference: convs normal with std
        sqrt(2 / fan_out) (fan_out per group), unit BatchNorm, uniform linear layers."""
        if self.conv_stem.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        init_convs(self, linear=init_linear)
        for module in self.modules():
            if isinstance(module, CondConv2d):
                module.reset_parameters()

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh model's is, e.g. after a new `num_classes`."""
        if isinstance(self.classifier, nn.Linear):
            init_linear(self.classifier)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def new_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """A freshly initialised classifier where the model's parameters are."""
        if num_classes <= 0:
            return nn.Identity()
        weight = self.conv_stem.weight
        classifier = nn.Linear(in_features, num_classes, device=weight.device, dtype=weight.dtype)
        if not weight.is_meta:
            init_linear(classifier)
        return classifier

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Parameters to exempt from weight decay by name: none. As in timm, optimisers exempt
        norms and biases by their shape (one dimension), which needs no names."""
        return set()

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.blocks for block in stage]

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map (B, width, H/32, W/32)."""
        x = self.bn1(self.conv_stem(x))
        for stage in self.blocks:  # stage by stage: `feature_info` names the stages' outputs
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
        return x

    def finish_features(self, trunk: torch.Tensor) -> torch.Tensor:
        """What `forward_features` applies after the trunk (a subclass's head conv); none here."""
        return trunk

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of `feature_info` at `indices`, (B, C, H, W) each, as timm gives
        them; `norm` does nothing (the trunk has no final norm). With `intermediates_only`
        the stages after the last one asked for are not run.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': this network gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.feature_info), indices)
        wanted = {self.feature_info[index]["module"] for index in take}
        last_stage = self._stage_of(max(take))
        x = self.bn1(self.conv_stem(x))
        intermediates = [x] if "bn1" in wanted else []
        for number, stage in enumerate(self.blocks):
            if intermediates_only and number > last_stage:
                break
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
            if f"blocks.{number}" in wanted:
                intermediates.append(x)
        return intermediates if intermediates_only else (self.finish_features(x), intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the stages up to
        the last one asked for, and no head (`head_names`, the classifier) if `prune_head`."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.blocks = self.blocks[: self._stage_of(max(take)) + 1]
        if prune_head:
            for name in self.head_names:
                setattr(self, name, nn.Identity())
            self.reset_classifier(0)
        return take

    head_names: tuple[str, ...] = ()
    """The modules after the trunk that a subclass's head adds (a head conv and its norm)."""

    def _stage_of(self, feature: int) -> int:
        """The index in `blocks` of the stage whose output is feature `feature` (-1: the stem)."""
        module = self.feature_info[feature]["module"]
        return -1 if module == "bn1" else int(module.removeprefix("blocks."))


def stage_outputs(stages: Sequence[Sequence[BlockDef]], spec: TrunkSpec) -> list[dict[str, Any]]:
    """timm's `feature_info` of a trunk: the output of each stage followed by a stride (the
    stem's, if the first stage strides) and of the last stage."""
    outputs, reduction = [], 2
    if stages[0][0].stride > 1:
        outputs.append({"module": "bn1", "num_chs": spec.stem_size, "reduction": reduction, "stage": 0})
    for number, stage in enumerate(stages):
        reduction *= stage[0].stride
        if number + 1 == len(stages) or stages[number + 1][0].stride > 1:
            module, width = f"blocks.{number}", spec.width(stage[-1].out_chs)
            outputs.append({"module": module, "num_chs": width, "reduction": reduction, "stage": number + 1})
    return outputs


def with_activation(attn: ChannelAttention, act: Activation) -> ChannelAttention:
    """`attn` with `act` as its activation, if it has one and its options leave it unset."""
    from zoo.registry.plugins import default_registry

    if "act" in attn.options:
        return attn
    variant = attn._variant or default_registry().attention(attn.name, kind="channel")
    if "act" not in variant.options_model().model_fields:
        return attn
    return attn.model_copy(update={"options": {**attn.options, "act": act}})


def init_linear(layer: nn.Linear) -> None:
    """Uniform in +-1/sqrt(out_features), zero bias (the TensorFlow reference's classifier)."""
    bound = 1.0 / math.sqrt(layer.weight.shape[0])
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
