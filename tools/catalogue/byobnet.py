"""timm's `byobnet` module in the zoo's `byob` builder's words.

timm writes each network as a `ByoModelCfg`: stages of `ByoBlockCfg` (type, d, c, s, gs, br,
per-block overrides) and model-wide choices. They map one to one onto the `byob` config, but
for MobileOne, whose stages timm spells out block by block (a depthwise 3x3 block, then a
pointwise 1x1 one, per repeat): the zoo writes `d` such pairs as one `mobileone` spec.
"""

from __future__ import annotations

from typing import Any

from .facts import Architecture, Unsupported, Weight
from .writer import is_classifier

IGNORED = {"cache_dir", "num_classes", "pretrained_filter_fn", "feature_cfg"}
BLOCK_TYPES = {"basic", "bottle", "dark", "edge", "rep", "self_attn"}
STEM_TYPES = {"tiered": "tiered", "deep": "deep", "quad": "quad", "quad2": "quad2", "3x3": "3x3", "": "3x3"}
BLOCK_STEMS = {"rep": "rep", "one": "mobileone"}
BLOCK_OPTIONS = {  # the model-wide block options, and the block types that take each
    "bottle_in": {"bottle", "self_attn"},
    "linear_out": {"basic", "bottle", "dark", "edge", "self_attn"},
    "extra_conv": {"bottle"},
}
EVONORM = "timm.layers.evo_norm.EvoNorm2dS0a"
PAPERS = {
    "repvgg": "https://arxiv.org/abs/2101.03697",
    "mobileone": "https://arxiv.org/abs/2206.04040",
    "gernet": "https://arxiv.org/abs/2006.14090",
    "regnetz": "https://arxiv.org/abs/2103.06877",
    "gc": "https://arxiv.org/abs/1904.11492",
    "eca": "https://arxiv.org/abs/1910.03151",
    "se": "https://arxiv.org/abs/1709.01507",
}
CLIP_PAPER = "https://arxiv.org/abs/2103.00020"
RESNET_PAPER = "https://arxiv.org/abs/1512.03385"


BYOB_IMG_SIZE = 256
"""The byob builder's default `img_size`."""


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - IGNORED - {"model_cfg"})
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    cfg = model_args["model_cfg"]
    args: dict[str, Any] = {"blocks": [stage(spec, cfg) for spec in cfg["blocks"]]}
    args.update(stem(cfg))
    args.update(layers(cfg))
    args.update(head(cfg, weights[0]))
    if rep_groups := alternate_groups(cfg, weights[0]):
        args["blocks"] = [{**spec, "alternate_groups": rep_groups} for spec in args["blocks"]]
    side = weights[0].cfg["input_size"][-1]
    if side != BYOB_IMG_SIZE:  # the size the network is built for, which zoo flops counts at
        args.setdefault("img_size", side)
    return Architecture(builder="byob", args=args, paper=paper(arch), tag_args=projection)


def paper(arch: str) -> str:
    if "clip" in arch:
        return CLIP_PAPER
    return next((url for prefix, url in PAPERS.items() if arch.startswith(prefix)), RESNET_PAPER)


def projection(weight: Weight) -> dict[str, Any]:
    """A CLIP tower's head projects to its embedding width (`proj_dim`), not to classes."""
    if weight.num_classes and not is_classifier(weight):
        return {"proj_dim": weight.num_classes}
    return {}


# ---------------------------------------------------------------------------------------------
# Stages


def stage(blocks: dict | list[dict], cfg: dict) -> dict | list[dict]:
    """A stage: one spec, or a list run one after another (MobileOne's, written as pairs)."""
    if isinstance(blocks, dict):
        return block(blocks, cfg)
    if all(b["type"] == "one" for b in blocks):
        specs = mobileone_specs(blocks)
    else:
        specs = [block(b, cfg) for b in blocks]
    return specs[0] if len(specs) == 1 else specs


def block(b: dict, cfg: dict) -> dict:
    if b["type"] not in BLOCK_TYPES:
        raise Unsupported(f"block type '{b['type']}' outside a MobileOne stage")
    if b["self_attn_layer"] or b["self_attn_kwargs"]:
        raise Unsupported("a block's own self-attention")
    check_block_options(b, cfg)
    spec: dict[str, Any] = {"type": b["type"], "d": b["d"], "c": width(b["c"]), "s": b["s"]}
    if isinstance(b["gs"], int) and b["gs"]:
        spec["gs"] = b["gs"]
    if b["br"] != 1.0:
        spec["br"] = b["br"]
    if b["attn_layer"] is not None or b["attn_kwargs"] is not None:
        spec["attn"] = attention(b["attn_layer"] or cfg["attn_layer"], b["attn_kwargs"] or cfg["attn_kwargs"])
    return spec


def check_block_options(b: dict, cfg: dict) -> None:
    """A block's own `block_kwargs` replace the model's: only where none of the model's would
    apply to its type anyway (resnet61q's edge block, which takes no `extra_conv`)."""
    if b["block_kwargs"] is None:
        return
    applying = {key for key in cfg["block_kwargs"] if b["type"] in BLOCK_OPTIONS.get(key, ())}
    if b["block_kwargs"] or applying:
        raise Unsupported(f"a {b['type']} block's own block_kwargs {b['block_kwargs']}")


def width(c: float) -> int:
    if c != int(c):
        raise Unsupported(f"a fractional width {c}")
    return int(c)


def mobileone_specs(blocks: list[dict]) -> list[dict]:
    """timm's MobileOne blocks, a depthwise 3x3 (`gs=1`) and a pointwise 1x1 per repeat, as
    `mobileone` specs of `d` repeats alike (width, branches, attention)."""
    if len(blocks) % 2:
        raise Unsupported("a MobileOne stage of unpaired blocks")
    specs: list[dict] = []
    for depthwise, pointwise in zip(blocks[::2], blocks[1::2], strict=True):
        kwargs = depthwise["block_kwargs"] or {}
        pointwise_kwargs = pointwise["block_kwargs"] or {}
        paired = (
            depthwise["gs"] == 1
            and set(kwargs) <= {"num_conv_branches"}
            and pointwise["gs"] == 0
            and pointwise_kwargs == {**kwargs, "kernel_size": 1}
            and depthwise["attn_layer"] == pointwise["attn_layer"]
        )
        if not paired:
            raise Unsupported("a MobileOne stage that is not depthwise-pointwise pairs")
        spec: dict[str, Any] = {"type": "mobileone", "d": 1, "c": width(pointwise["c"]), "s": depthwise["s"]}
        if kwargs.get("num_conv_branches", 1) != 1:
            spec["num_conv_branches"] = kwargs["num_conv_branches"]
        if depthwise["attn_layer"]:
            spec["attn"] = attention(depthwise["attn_layer"], depthwise["attn_kwargs"] or {})
        if specs and {**specs[-1], "d": 1} == spec:
            specs[-1]["d"] += 1
        else:
            specs.append(spec)
    return specs


def alternate_groups(cfg: dict, weight: Weight) -> int:
    """RepVGG's `g` variants: timm's group size is a function (every second block of a stage
    in groups); the checkpoint's second block says how many."""
    specs = [b for s in cfg["blocks"] for b in (s if isinstance(s, list) else [s])]
    functions = {isinstance(b["gs"], str) for b in specs}
    if functions == {False}:
        return 0
    if functions != {True} or any(b["type"] != "rep" for b in specs):
        raise Unsupported("a group size given as a function, outside RepVGG")
    shapes = dict(weight.layout())
    kernel = shapes["stages.0.1.conv_kxk.conv.weight"]  # (out, in / groups, k, k), in == out
    return kernel[0] // kernel[1]


# ---------------------------------------------------------------------------------------------
# Stem, layers, head


def stem(cfg: dict) -> dict[str, Any]:
    chs = cfg["stem_chs"]
    stem_chs = [int(c) for c in chs] if isinstance(chs, list) else int(chs)
    if cfg["stem_type"] in BLOCK_STEMS:
        return {"stem_type": BLOCK_STEMS[cfg["stem_type"]], "stem_chs": stem_chs, "stem_pool": ""}
    if cfg["stem_type"] not in STEM_TYPES:
        raise Unsupported(f"stem type '{cfg['stem_type']}'")
    pool = cfg["stem_pool"] or ""
    if pool not in ("", "maxpool", "avg2"):
        raise Unsupported(f"stem pool '{pool}'")
    return {"stem_type": STEM_TYPES[cfg["stem_type"]], "stem_chs": stem_chs, "stem_pool": pool}


def layers(cfg: dict) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if cfg["downsample"] not in ("conv1x1", "avg", ""):
        raise Unsupported(f"downsample '{cfg['downsample']}'")
    if cfg["downsample"] != "conv1x1":
        args["downsample"] = cfg["downsample"]
    if cfg["act_layer"] not in ("relu", "silu"):
        raise Unsupported(f"activation '{cfg['act_layer']}'")
    args["act_layer"] = cfg["act_layer"]
    args.update(norm(cfg["norm_layer"]))
    if cfg["aa_layer"] not in ("", "avg"):
        raise Unsupported(f"anti-aliasing '{cfg['aa_layer']}'")
    if cfg["aa_layer"]:
        args["aa_layer"] = cfg["aa_layer"]
    if cfg["attn_layer"]:
        args["attn"] = attention(cfg["attn_layer"], cfg["attn_kwargs"])
    if cfg["self_attn_layer"]:
        raise Unsupported(f"self-attention '{cfg['self_attn_layer']}'")
    unknown = sorted(set(cfg["block_kwargs"]) - set(BLOCK_OPTIONS))
    if unknown:
        raise Unsupported(f"block options {', '.join(unknown)}")
    args.update({key: bool(value) for key, value in cfg["block_kwargs"].items() if value})
    if cfg["width_factor"] != 1.0:
        args["width_factor"] = cfg["width_factor"]
    if cfg["num_features"]:
        args["num_features"] = cfg["num_features"]
    if not cfg["zero_init_last"]:
        args["zero_init_last"] = False
    return args


def norm(layer: Any) -> dict[str, Any]:
    if layer == "batchnorm":
        return {}
    if isinstance(layer, dict) and layer.get("partial") == EVONORM and not layer["args"]:
        group_size = layer["kwargs"].get("group_size")
        if set(layer["kwargs"]) != {"group_size"}:
            raise Unsupported(f"EvoNorm options {layer['kwargs']}")
        return {"norm_layer": "evonorm_s0a", "norm_group_size": group_size}
    raise Unsupported(f"norm layer {layer}")


def attention(name: str, kwargs: dict[str, Any]) -> str | dict[str, Any]:
    """timm's channel attentions by its names, with the options of its modules' defaults."""
    kwargs = dict(kwargs or {})
    if name == "bat":
        raise Unsupported(
            "BAT (bilinear attention transform) needs maps divisible by its block size, which a "
            "channel attention slot does not promise"
        )
    if name == "se":  # timm's SEModule: 1/16, widths rounded to multiples of 8
        unknown = sorted(set(kwargs) - {"rd_ratio", "rd_divisor"})
        if unknown:
            raise Unsupported(f"SE options {', '.join(unknown)}")
        return {
            "name": "se",
            "rd_ratio": kwargs.get("rd_ratio", 1 / 16),
            "rd_divisor": kwargs.get("rd_divisor", 8),
        }
    if kwargs:
        raise Unsupported(f"attention '{name}' options {kwargs}")
    if name == "eca":
        return "eca"
    if name == "gca":  # global context, fused by addition
        return "gc"
    raise Unsupported(f"attention '{name}'")


def head(cfg: dict, weight: Weight) -> dict[str, Any]:
    if cfg["head_hidden_size"] is not None:
        raise Unsupported("a head hidden size")
    if cfg["head_type"] == "classifier":
        return {}
    if cfg["head_type"] == "attn_abs":  # CLIP's attention pooling, for the pretrained image size
        return {"attn_pool": "attention_pool", "img_size": weight.cfg["input_size"][-1]}
    raise Unsupported(f"head '{cfg['head_type']}'")
