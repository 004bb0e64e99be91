"""timm's `regnet` module (RegNet X, Y, V and Z) in the zoo's `regnet` builder's words."""

from __future__ import annotations

from typing import Any

from .facts import Architecture, Unsupported, Weight

IGNORED = {"pretrained_filter_fn", "cache_dir", "num_classes"}
"""timm's loader hook and the head's width (each weight fixes it) are no concern of the layout."""

COPIED = ("depth", "w0", "wa", "wm", "group_size")
DEFAULTS = {
    "bottle_ratio": 1.0,
    "stem_width": 32,
    "act_layer": "relu",
    "preact": False,
    "downsample": "conv1x1",
    "linear_out": False,
    "num_features": 0,
}
"""The builder's defaults: a `model_cfg` value that differs is passed on."""

SE_RATIO = 0.25
ACTIVATIONS = {"relu", "silu"}
SE = "se"
SE_SILU = {"name": "se", "act": "silu"}

PAPERS = {
    "regnetz": "https://arxiv.org/abs/2103.06877",  # Fast and Accurate Model Scaling
}
RECIPE = "https://arxiv.org/abs/2003.13678"  # Designing Network Design Spaces

VARIANTS = {"regnetx": "RegNetX", "regnety": "RegNetY", "regnetv": "RegNetV", "regnetz": "RegNetZ"}


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - IGNORED - {"model_cfg", "zero_init_last"})
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    cfg = dict(model_args["model_cfg"])
    cfg.pop("type", None)
    if cfg.pop("norm_layer") != "batchnorm":
        raise Unsupported("norms other than BatchNorm")
    if cfg["act_layer"] not in ACTIVATIONS:
        raise Unsupported(f"activation {cfg['act_layer']}")

    args: dict[str, Any] = {key: cfg.pop(key) for key in COPIED}
    if cfg.pop("group_min_ratio"):
        # timm passes the ratio where torchvision's rounding takes a minimum; only the rounding counts
        args["width_rounding"] = "torchvision"
    for key, default in DEFAULTS.items():
        value = cfg.pop(key)
        if value != default:
            args[key] = value
    se_ratio = cfg.pop("se_ratio")
    if cfg:
        raise Unsupported(f"model_cfg fields not translated yet: {', '.join(sorted(cfg))}")
    if not se_ratio:  # RegNetX
        args["attn"] = None
    else:
        args["attn"] = SE if args.get("act_layer", "relu") == "relu" else dict(SE_SILU)  # no YAML aliases
        if se_ratio != SE_RATIO:
            args["se_ratio"] = se_ratio
    if model_args.get("zero_init_last") is False:
        args["zero_init_last"] = False
    return Architecture(builder="regnet", args=args, description=describe(arch, args), paper=paper(arch))


def paper(arch: str) -> str:
    return PAPERS.get(arch[:7], RECIPE)


def describe(arch: str, args: dict[str, Any]) -> str:
    """'RegNetY-1.6GF.', from the name's FLOP count (hundreds of MFLOPs), and what sets it apart."""
    family, hundreds = arch.split("_")[:2]
    flops = int(hundreds) / 10
    size = f"{round(flops * 1000)}MF" if flops < 1 else f"{flops:.1f}GF" if flops < 10 else f"{flops:.0f}GF"
    traits = []
    if args.get("preact"):
        traits.append("pre-activation RegNetY blocks")
    if args.get("bottle_ratio", 1.0) > 1.0:
        traits.append("inverted bottlenecks")
    if args.get("linear_out"):
        traits.append("no activation after the residual sum")
    if args.get("downsample") == "avg":
        traits.append("average-pool shortcuts")
    if args.get("width_rounding") == "torchvision":
        traits.append("widths rounded to the group width as torchvision does")
    if args.get("num_features"):
        traits.append(f"a final 1x1 conv to {args['num_features']} channels")
    return f"{VARIANTS[family]}-{size}" + (": " + ", ".join(traits) if traits else "") + "."
