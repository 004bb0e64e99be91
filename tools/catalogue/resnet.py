"""timm's `resnet` module (with `resnest` and `sknet`) in the zoo's `resnet` builder's words.

Every one of these architectures is timm's `ResNet` class; what varies is its block, the
stem, the shortcut and what `block_args` puts into each block (a channel attention, or the
split attention and selective kernel that are a block's 3x3 conv).
"""

from __future__ import annotations

import re
from typing import Any

from .facts import Architecture, Unsupported, Weight

BLOCKS = {
    "timm.models.resnet.BasicBlock": "basic",
    "timm.models.resnet.Bottleneck": "bottleneck",
    "timm.models.resnest.ResNestBottleneck": "bottleneck",
    "timm.models.sknet.SelectiveKernelBasic": "basic",
    "timm.models.sknet.SelectiveKernelBottleneck": "sk_bottleneck",
}
CONV_ATTENTION = {
    "timm.models.resnest.ResNestBottleneck": "split_attention",
    "timm.models.sknet.SelectiveKernelBasic": "selective_kernel",
    "timm.models.sknet.SelectiveKernelBottleneck": "selective_kernel",
}
"""The blocks whose 3x3 conv is a conv attention, and which."""

ANTI_ALIASING = {"torch.nn.modules.pooling.AvgPool2d": "avg", "timm.layers.blur_pool.BlurPool2d": "blur"}
NORMS = {"batchnorm": "batchnorm", "batchnorm2d": "batchnorm", "groupnorm": "groupnorm"}
PASSED_AS_IS = (
    "layers",
    "channels",
    "cardinality",
    "base_width",
    "block_reduce_first",
    "stem_width",
    "stem_type",
    "replace_stem_pool",
    "avg_down",
    "down_kernel_size",
    "zero_init_last",
)
IGNORED = {"cache_dir", "num_classes"}
HANDLED = {"block", "block_args", "aa_layer", "norm_layer", "pruned", *PASSED_AS_IS}

SE_MODULE = "timm.layers.squeeze_excite.SEModule"
SE = {"name": "se", "rd_divisor": 8}
"""timm's `attn_layer='se'`: its `SEModule`, a sixteenth of the width rounded to multiples of 8."""

PAPERS = {
    "resnet": "https://arxiv.org/abs/1512.03385",
    "resnext": "https://arxiv.org/abs/1611.05431",
    "wide": "https://arxiv.org/abs/1605.07146",
    "se": "https://arxiv.org/abs/1709.01507",
    "eca": "https://arxiv.org/abs/1910.03151",
    "rs": "https://arxiv.org/abs/2103.07579",
    "aa": "https://arxiv.org/abs/1904.11486",
    "gn": "https://arxiv.org/abs/1803.08494",
    "pruned": "https://arxiv.org/abs/2002.08258",
    "split_attention": "https://arxiv.org/abs/2004.08955",
    "selective_kernel": "https://arxiv.org/abs/1903.06586",
}


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - IGNORED - HANDLED)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    timm_blocks = model_args["block"]
    args: dict[str, Any] = {"block": block_names(timm_blocks)}
    args.update({key: listed(model_args[key]) for key in PASSED_AS_IS if key in model_args})
    if model_args.get("aa_layer"):
        args["aa_layer"] = known(ANTI_ALIASING, model_args["aa_layer"], "anti-aliasing layer")
    if model_args.get("norm_layer"):
        norm = known(NORMS, model_args["norm_layer"], "norm layer")
        if norm != "batchnorm":
            args["norm_layer"] = norm
    args.update(block_arguments(timm_blocks, model_args.get("block_args") or {}, model_args))
    if model_args.get("pruned"):
        args["pruned_widths"] = pruned_widths(weights[0], args)
    return Architecture(builder="resnet", args=args, paper=paper(arch, args))


def listed(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def known(table: dict[str, str], name: str, what: str) -> str:
    if name not in table:
        raise Unsupported(f"{what} {name}")
    return table[name]


def block_names(timm_blocks: str | list[str]) -> str | list[str]:
    if isinstance(timm_blocks, str):
        return known(BLOCKS, timm_blocks, "block")
    return [known(BLOCKS, name, "block") for name in timm_blocks]


def block_arguments(timm_blocks: str | list[str], block_args: dict, model_args: dict) -> dict[str, Any]:
    """`block_args` in the zoo's words: the channel attention (`attn`) and the conv attention
    (`conv_attn`) of every block."""
    block_args = dict(block_args)
    args: dict[str, Any] = {}
    if "attn_layer" in block_args:
        args["attn"] = channel_attention(block_args.pop("attn_layer"))
    conv_attention = CONV_ATTENTION.get(timm_blocks) if isinstance(timm_blocks, str) else None
    groups = model_args.get("cardinality", 1)
    if conv_attention == "split_attention":
        args["conv_attn"] = split_attention(block_args, groups)
    elif conv_attention == "selective_kernel":
        args["conv_attn"] = selective_kernel(block_args.pop("sk_kwargs", {}), groups)
    if block_args:
        raise Unsupported(f"block arguments not translated yet: {', '.join(sorted(block_args))}")
    return args


def channel_attention(attn_layer: Any) -> Any:
    if attn_layer == "se":
        return dict(SE)
    if attn_layer == "eca":
        return "eca"
    if isinstance(attn_layer, dict) and attn_layer.get("partial") == SE_MODULE and not attn_layer["args"]:
        options = dict(attn_layer["kwargs"])
        if set(options) - {"rd_ratio", "rd_divisor"}:
            raise Unsupported(f"SE options {sorted(options)}")
        return {**SE, **options}
    raise Unsupported(f"attention layer {attn_layer}")


def split_attention(block_args: dict, groups: int) -> dict[str, Any]:
    """ResNeSt's block options: `radix`, and `avd` pooling after (or, `avd_first`, before) it."""
    options: dict[str, Any] = {"name": "split_attention", "radix": block_args.pop("radix", 1)}
    if groups != 1:
        options["groups"] = groups
    if block_args.pop("avd", False):
        options["avd"] = True
        if block_args.pop("avd_first", False):
            options["avd_first"] = True
    block_args.pop("avd_first", None)
    return options


def selective_kernel(sk_kwargs: dict, groups: int) -> dict[str, Any]:
    options = dict(sk_kwargs)
    if set(options) - {"rd_ratio", "rd_divisor", "split_input"}:
        raise Unsupported(f"selective kernel options {sorted(options)}")
    if options.get("split_input", True):
        options.pop("split_input", None)  # the variant's default
    if groups != 1:
        options["groups"] = groups
    return {"name": "selective_kernel", **options}


BLOCK_CONV = re.compile(r"layer(\d+)\.(\d+)\.conv(\d)\.weight$")


def pruned_widths(weight: Weight, args: dict[str, Any]) -> list[list[int]]:
    """A pruned checkpoint's channel plan, read from its layout: each block's first conv,
    3x3 conv and output widths, in order."""
    if args["block"] != "bottleneck":
        raise Unsupported("pruned channel plans of blocks other than the bottleneck")
    convs: dict[tuple[int, int], dict[int, int]] = {}
    for name, shape in weight.layout():
        match = BLOCK_CONV.match(name)
        if match:
            stage, block, conv = map(int, match.groups())
            convs.setdefault((stage, block), {})[conv] = shape[0]
    return [[widths[1], widths[2], widths[3]] for _, widths in sorted(convs.items())]


def paper(arch: str, args: dict[str, Any]) -> str:
    """The paper that introduced what sets this architecture apart."""
    conv_attn = args.get("conv_attn")
    if conv_attn:
        return PAPERS[conv_attn["name"]]
    if "pruned_widths" in args:
        return PAPERS["pruned"]
    if arch.startswith("resnetrs"):
        return PAPERS["rs"]
    attn = args.get("attn")
    if attn:
        return PAPERS["eca" if attn == "eca" else "se"]
    if "aa_layer" in args:
        return PAPERS["aa"]
    if "norm_layer" in args:
        return PAPERS["gn"]
    if args.get("cardinality", 1) > 1:
        return PAPERS["resnext"]
    if args.get("base_width", 64) > 64:
        return PAPERS["wide"]
    return PAPERS["resnet"]
