"""timm's `mobilenetv3` module (MobileNetV3, LCNet, FBNetV3, MobileNetV4) in the zoo's
`mobilenetv3` builder's words: the decoded block arguments become the builder's `stages`."""

from __future__ import annotations

from typing import Any

from .facts import Architecture, Unsupported, Weight

ACTIVATIONS = {
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.Hardswish": "hard_swish",
    "timm.layers.activations.GELU": "gelu",
}
PAPERS = {
    "mobilenetv3": "https://arxiv.org/abs/1905.02244",
    "tf_mobilenetv3": "https://arxiv.org/abs/1905.02244",
    "lcnet": "https://arxiv.org/abs/2109.15099",
    "fbnetv3": "https://arxiv.org/abs/2006.02049",
    "mobilenetv4": "https://arxiv.org/abs/2404.10518",
}
ROUND_CHANNELS = "timm.models._efficientnet_builder.round_channels"
TRANSLATED = {
    "block_args",
    "num_features",
    "head_bias",
    "head_norm",
    "stem_size",
    "fix_stem",
    "round_chs_fn",
    "norm_layer",
    "act_layer",
    "se_layer",
    "se_from_exp",
    "layer_scale_init_value",
    "aa_layer",
    "pad_type",
}
IGNORED = {"cache_dir", "num_classes", "features_only", "pretrained_strict", "kwargs_filter"}
BLOCK_DEFAULTS = {
    "repeats": 1,
    "kernel_size": 3,
    "stride": 1,
    "exp_ratio": 1.0,
    "se_ratio": 0.0,
    "act": None,
    "residual": None,
    "start_kernel_size": 0,
    "num_heads": 8,
    "key_dim": 64,
    "value_dim": 64,
    "kv_stride": 1,
}
"""The builder's defaults of a block's arguments, left out of the registry."""


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - TRANSLATED - IGNORED)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    act = activation(model_args["act_layer"])
    args: dict[str, Any] = {"stages": [stage(blocks) for blocks in model_args["block_args"]]}
    args.update(widths(model_args))
    args["act"] = act
    eps = model_args["norm_layer"]["kwargs"].get("eps")
    if eps is not None:
        args["norm_eps"] = eps
    for key in ("head_bias", "head_norm", "se_from_exp"):
        if key in model_args:
            args[key] = model_args[key]
    if model_args.get("layer_scale_init_value") is not None:
        args["layer_scale_init"] = model_args["layer_scale_init_value"]
    if model_args.get("aa_layer"):
        args["aa"] = model_args["aa_layer"]
    if model_args.get("pad_type"):
        if model_args["pad_type"] != "same":
            raise Unsupported(f"padding {model_args['pad_type']}")
        args["padding"] = "tf_same"
    if any(block["se_ratio"] for blocks in args["stages"] for block in blocks if "se_ratio" in block):
        args.update(squeeze_excite(model_args["se_layer"]))
    family = arch.split("_")[0]
    return Architecture(builder="mobilenetv3", args=args, paper=PAPERS.get(family))


def activation(path: str) -> str:
    if path not in ACTIVATIONS:
        raise Unsupported(f"activation {path}")
    return ACTIVATIONS[path]


def widths(model_args: dict[str, Any]) -> dict[str, Any]:
    """The stem, the head and the channel multiplier with its rounding."""
    rounding = model_args["round_chs_fn"]
    if rounding.get("partial") != ROUND_CHANNELS or set(rounding["kwargs"]) - {"multiplier", "round_limit"}:
        raise Unsupported(f"width rounding {rounding}")
    multiplier = rounding["kwargs"].get("multiplier", 1.0)
    args = {
        "channel_multiplier": multiplier,
        "stem_size": model_args.get("stem_size", 16),  # timm's defaults where not given
        "num_features": model_args.get("num_features", 1280),
    }
    fix_stem = model_args.get("fix_stem", False)
    if fix_stem != (multiplier < 0.75):  # the builder's rule where not given
        args["fix_stem"] = fix_stem
    if "round_limit" in rounding["kwargs"]:
        args["round_limit"] = rounding["kwargs"]["round_limit"]
    return args


def squeeze_excite(se_layer: dict[str, Any]) -> dict[str, Any]:
    """The SE variant's options (activation, gate) and its rounding of the reduced width."""
    kwargs = dict(se_layer["kwargs"])
    if kwargs.pop("gate_layer", None) != "hard_sigmoid":
        raise Unsupported(f"SE gate of {se_layer}")
    forced = kwargs.pop("force_act_layer", None)
    attn: dict[str, Any] = {"name": "se", "gate": "hard_sigmoid", "tensor_names": "conv_reduce/conv_expand"}
    rounding = kwargs.pop("rd_round_fn", None)
    if kwargs:
        raise Unsupported(f"SE arguments {sorted(kwargs)}")
    args: dict[str, Any] = {"attn": attn}
    if forced:
        attn["act"] = activation(forced)
    else:  # the activation of the block SE sits in
        args["se_block_act"] = True
    if rounding is None:  # Python's round
        args.update(se_divisor=1, se_round_limit=0.0)
    elif isinstance(rounding, dict):
        if rounding.get("partial") != ROUND_CHANNELS or rounding["kwargs"].get("multiplier", 1.0) != 1.0:
            raise Unsupported(f"SE rounding {rounding}")
        args["se_round_limit"] = rounding["kwargs"].get("round_limit", 0.9)
    elif rounding != ROUND_CHANNELS:
        raise Unsupported(f"SE rounding {rounding}")
    return args


def stage(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A stage's blocks, consecutive blocks alike but for the stride as one with `repeats`."""
    merged: list[dict[str, Any]] = []
    for decoded in blocks:
        block = block_args(decoded)
        previous = merged[-1] if merged else None
        if previous is not None and _alike(previous, block) and block.get("stride", 1) == 1:
            previous["repeats"] = previous.get("repeats", 1) + 1
            continue
        merged.append(block)
    return [_ordered(block) for block in merged]


def _alike(a: dict[str, Any], b: dict[str, Any]) -> bool:
    ignored = {"stride", "repeats"}
    return {k: v for k, v in a.items() if k not in ignored} == {
        k: v for k, v in b.items() if k not in ignored
    }


def _ordered(block: dict[str, Any]) -> dict[str, Any]:
    order = ["kind", "repeats", *BLOCK_DEFAULTS, "out_chs"]
    return {key: block[key] for key in order if key in block}


def block_args(decoded: dict[str, Any]) -> dict[str, Any]:
    """One of timm's decoded block arguments in the builder's words, defaults left out."""
    kind = decoded["block_type"]
    args: dict[str, Any] = {"kind": kind, "out_chs": decoded["out_chs"]}
    args["stride"] = decoded["stride"]
    if decoded.get("act_layer"):
        args["act"] = activation(decoded["act_layer"])
    for key in ("exp_ratio", "se_ratio"):
        if key in decoded:
            args[key] = decoded[key]
    if decoded.get("noskip") and kind != "dsa":  # a dsa block never has a residual
        args["residual"] = False
    if decoded.get("pw_act", False) != (kind == "dsa"):  # dsa: ds with an activation after the pw conv
        raise Unsupported(f"depthwise-separable block {decoded}")
    if decoded.get("s2d") or decoded.get("pw_kernel_size", 1) != 1 or decoded.get("force_in_chs"):
        raise Unsupported(f"block arguments {decoded}")
    if kind in ("ds", "dsa"):
        args["kernel_size"] = decoded["dw_kernel_size"]
    elif kind == "ir":
        if decoded["exp_kernel_size"] != 1:
            raise Unsupported(f"inverted residual with an expansion kernel of {decoded['exp_kernel_size']}")
        args["kernel_size"] = decoded["dw_kernel_size"]
    elif kind == "cn":
        if decoded["skip"]:
            raise Unsupported("conv block with a residual")
        args["kernel_size"] = decoded["kernel_size"]
    elif kind == "er":
        args["kernel_size"] = decoded["exp_kernel_size"]
    elif kind == "uir":
        if decoded["dw_kernel_size_end"]:
            raise Unsupported("universal inverted residual with a depthwise conv after the projection")
        args["start_kernel_size"] = decoded["dw_kernel_size_start"]
        args["kernel_size"] = decoded["dw_kernel_size_mid"]
    elif kind == "mqa":
        for key in ("num_heads", "key_dim", "value_dim", "kv_stride"):
            args[key] = decoded[key]
        args["kernel_size"] = decoded["dw_kernel_size"]
    else:
        raise Unsupported(f"block type {kind}")
    return {k: v for k, v in args.items() if k not in BLOCK_DEFAULTS or BLOCK_DEFAULTS[k] != v}
