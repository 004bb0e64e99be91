"""timm's `efficientnet` module in the zoo's `efficientnet` builder's words.

timm hands each architecture its blocks decoded and already scaled in depth (one dict per
block); they are written back as the block strings of the TensorFlow reference, one per run
of like blocks (see `plugins.layers.mobile`), with the network's widths, norm, padding and
activation as the builder's arguments.
"""

from __future__ import annotations

import math
from typing import Any

from .facts import Architecture, Unsupported, Weight

IGNORED = {"cache_dir", "num_classes", "features_only", "pretrained_strict", "kwargs_filter"}
ACTIVATIONS = {
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.ReLU6": "relu6",
    "torch.nn.modules.activation.SiLU": "silu",
    "torch.nn.modules.activation.Hardswish": "hard_swish",
}
ACTIVATION_CODES = {"relu": "re", "relu6": "r6", "silu": "sw", "hard_swish": "hs"}
NORMS = {
    "torch.nn.modules.batchnorm.BatchNorm2d": "batchnorm",
    "timm.layers.norm_act.GroupNormAct": "groupnorm",
    "timm.layers.norm_act.LayerNormAct2d": "layernorm",
    "timm.layers.evo_norm.EvoNorm2dS0": "evonorm_s0",
}
ROUND_CHANNELS = "timm.models._efficientnet_builder.round_channels"
DEFAULT_HEAD = 1280

PAPERS = {
    "efficientnetv2": "https://arxiv.org/abs/2104.00298",
    "mixnet": "https://arxiv.org/abs/1907.09595",
    "mnasnet": "https://arxiv.org/abs/1807.11626",
    "semnasnet": "https://arxiv.org/abs/1807.11626",
    "mobilenetv1": "https://arxiv.org/abs/1704.04861",
    "mobilenetv2": "https://arxiv.org/abs/1801.04381",
    "mobilenet_edgetpu": "https://arxiv.org/abs/2204.14007",
    "fbnet": "https://arxiv.org/abs/1812.03443",
    "spnasnet": "https://arxiv.org/abs/1904.02877",
    "tinynet": "https://arxiv.org/abs/2010.14819",
    "efficientnet_cc": "https://arxiv.org/abs/1904.04971",
    "efficientnet_x": "https://arxiv.org/abs/2102.05610",
    "efficientnet_h": "https://arxiv.org/abs/2102.05610",
}
EFFICIENTNET_PAPER = "https://arxiv.org/abs/1905.11946"

B0_STAGES = (
    ("ds", "k3_s1", "c16"),
    ("ir", "k3_s2_e6", "c24"),
    ("ir", "k5_s2_e6", "c40"),
    ("ir", "k3_s2_e6", "c80"),
    ("ir", "k5_s1_e6", "c112"),
    ("ir", "k5_s2_e6", "c192"),
    ("ir", "k3_s1_e6", "c320"),
)
B0_REPEATS = (1, 2, 2, 3, 3, 4, 1)
COMPOUND_SCALING = (
    (1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2),
    (1.8, 2.6), (2.0, 3.1), (2.2, 3.6), (4.3, 5.3),
)  # fmt: skip
"""EfficientNet-B0's stages (the builder's default), and the (width, depth) multipliers of B0
to B8 and L2."""
BUILDER_DEFAULTS = {"stem_size": 32, "num_features": 1280, "act": "silu"}


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    if model_args.get("pruned"):
        raise Unsupported("pruned: its per-layer widths come from timm's pruning files, not its block list")
    known = {"block_args", "num_features", "stem_size", "stem_kernel_size", "fix_stem", "round_chs_fn"}
    known |= {"act_layer", "norm_layer", "pad_type", "se_layer"}
    unknown = sorted(set(model_args) - IGNORED - known)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    if model_args.get("se_layer") not in (None, "gc"):
        raise Unsupported(f"attention '{model_args['se_layer']}' in place of SE")
    act = activation(model_args.get("act_layer", "torch.nn.modules.activation.ReLU"))
    args = widths(model_args)
    staged = stages(model_args["block_args"], act, args.get("channel_multiplier", 1.0))
    args = {"blocks": staged["blocks"], **args} if "blocks" in staged else {**args, **staged}
    args["act"] = act
    args |= norm(model_args.get("norm_layer"))
    if model_args.get("se_layer") == "gc":
        # global context, fused by scaling as timm's default: its activation the block's, as SE's
        args["attn"] = {"name": "gc", "fuse": "scale"}
    if model_args.get("pad_type") == "same":
        args["padding"] = "tf_same"
    elif model_args.get("pad_type", ""):
        raise Unsupported(f"pad_type {model_args['pad_type']!r}")
    args = {key: value for key, value in args.items() if BUILDER_DEFAULTS.get(key, ...) != value}
    return Architecture(builder="efficientnet", args=args, paper=paper(arch))


def stages(block_args: list[list[dict[str, Any]]], act: str, width: float) -> dict[str, Any]:
    """The stages as block strings, or as EfficientNet-B0's at the depth multiplier of the
    EfficientNet of this width where they are that."""
    blocks = [stage_strings(stage, act) for stage in block_args]
    for depth in (depth for scaled_width, depth in COMPOUND_SCALING if scaled_width == width):
        if blocks == b0_stages(depth):
            return {} if depth == 1.0 else {"depth_multiplier": depth}
    return {"blocks": blocks}


def b0_stages(depth: float) -> list[list[str]]:
    """EfficientNet-B0's stages at `depth` (one definition a stage: its repeats rounded up)."""
    return [
        [f"{kind}_r{math.ceil(repeats * depth)}_{shape}_{width}_se0.25"]
        for (kind, shape, width), repeats in zip(B0_STAGES, B0_REPEATS, strict=True)
    ]


def paper(arch: str) -> str:
    name = arch.removeprefix("tf_").removeprefix("gc_")
    return next((url for prefix, url in PAPERS.items() if name.startswith(prefix)), EFFICIENTNET_PAPER)


def activation(path: str | None) -> str:
    if path not in ACTIVATIONS:
        raise Unsupported(f"activation {path}")
    return ACTIVATIONS[path]


def norm(layer: Any) -> dict[str, Any]:
    """The norm by name, its eps where it is not 1e-5, its group size where it has groups."""
    if layer is None:
        return {}
    path, options = (layer, {}) if isinstance(layer, str) else (layer["partial"], dict(layer["kwargs"]))
    if path not in NORMS or (not isinstance(layer, str) and layer["args"]):
        raise Unsupported(f"norm layer {layer}")
    args = {} if NORMS[path] == "batchnorm" else {"norm_layer": NORMS[path]}
    eps = options.pop("eps", 1e-5)
    if eps != 1e-5:
        args["norm_eps"] = eps
    group_size = options.pop("group_size", 8)
    if group_size != 8:
        args["norm_group_size"] = group_size
    if options:
        raise Unsupported(f"norm arguments {sorted(options)}")
    return args


def widths(model_args: dict[str, Any]) -> dict[str, Any]:
    """The channel multiplier and its rounding, the stem's and the head's widths."""
    rounding = model_args.get("round_chs_fn") or {"partial": ROUND_CHANNELS, "args": [], "kwargs": {}}
    if rounding.get("partial") != ROUND_CHANNELS or rounding["args"]:
        raise Unsupported(f"channel rounding {rounding}")
    options = dict(rounding["kwargs"])
    multiplier = options.pop("multiplier", 1.0)
    divisor = options.pop("divisor", 8)
    round_limit = options.pop("round_limit", 0.9)
    if options:
        raise Unsupported(f"channel rounding options {sorted(options)}")
    args: dict[str, Any] = {}
    if multiplier != 1.0:
        args["channel_multiplier"] = multiplier
    if divisor != 8:
        args["channel_divisor"] = divisor
    if round_limit != 0.9:
        args["round_limit"] = round_limit
    args["stem_size"] = model_args.get("stem_size", 32)
    if model_args.get("stem_kernel_size", 3) != 3:
        args["stem_kernel_size"] = model_args["stem_kernel_size"]
    if model_args.get("fix_stem"):
        args["fix_stem"] = True
    head = model_args.get("num_features", DEFAULT_HEAD)
    if head == 0 or multiplier == 1.0:
        args["num_features"] = head
    elif scaled(DEFAULT_HEAD, multiplier, divisor, round_limit) == head:
        args["num_features"] = DEFAULT_HEAD
    else:  # a head timm does not scale (MixNet, EfficientNet-Lite) or scales from another width
        args |= {"num_features": head, "fix_head": True}
    return args


def scaled(channels: int, multiplier: float, divisor: int, round_limit: float) -> int:
    """timm's `round_channels` (the zoo's, without importing the builder)."""
    value = channels * multiplier
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def stage_strings(stage: list[dict[str, Any]], act: str) -> list[str]:
    """A stage's blocks as strings, like blocks in a row written once with their count.

    Only a stage's first block strides, so the later copies of a strided definition (which
    timm lists with the same stride) are the same blocks as that definition repeated.
    """
    strings: list[str] = []
    counts: list[int] = []
    for block in stage:
        text = block_string(block, act)
        if strings and strings[-1] == text:
            counts[-1] += 1
        else:
            strings.append(text)
            counts.append(1)
    return [text.replace("_r1_", f"_r{count}_", 1) for text, count in zip(strings, counts, strict=True)]


def kernel(value: int | list[int]) -> str:
    return ".".join(map(str, value)) if isinstance(value, list) else str(value)


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def block_string(block: dict[str, Any], network_act: str) -> str:
    """One decoded block in the reference's notation, repeats 1."""
    kind = block["block_type"]
    if kind not in ("ds", "dsa", "ir", "er", "cn"):
        raise Unsupported(f"block type {kind}")
    if block.get("s2d"):
        raise Unsupported("space-to-depth blocks (EfficientNet-X and -H)")
    spatial = (
        block["kernel_size"] if kind == "cn" else block.get("dw_kernel_size", block.get("exp_kernel_size"))
    )
    parts = [kind, "r1", f"k{kernel(spatial)}", f"s{block['stride']}"]
    if kind in ("ir", "er"):
        parts.append(f"e{number(block['exp_ratio'])}")
    parts.append(f"c{block['out_chs']}")
    if block.get("se_ratio"):
        parts.append(f"se{number(block['se_ratio'])}")
    if kind == "ir" and block["exp_kernel_size"] != 1:
        parts.append(f"a{kernel(block['exp_kernel_size'])}")
    if kind != "cn" and block["pw_kernel_size"] != 1:
        parts.append(f"p{kernel(block['pw_kernel_size'])}")
    if block.get("group_size") is not None:
        parts.append(f"gs{block['group_size']}")
    if block.get("force_in_chs"):
        parts.append(f"fc{block['force_in_chs']}")
    if block.get("num_experts"):
        parts.append(f"cc{block['num_experts']}")
    if block.get("act_layer"):
        block_act = activation(block["act_layer"])
        if block_act != network_act:
            parts.append(f"n{ACTIVATION_CODES[block_act]}")
    if kind == "cn" and block["skip"]:
        parts.append("skip")
    elif kind in ("ds", "ir", "er") and block["noskip"]:
        parts.append("noskip")
    return "_".join(parts)
