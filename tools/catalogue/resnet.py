"""timm's `resnet` module (with `resnest` and `sknet`) in the zoo's `resnet` builder's words."""

from __future__ import annotations

from .facts import Architecture, Unsupported, Weight

BLOCKS = {"timm.models.resnet.BasicBlock": "basic", "timm.models.resnet.Bottleneck": "bottleneck"}
IGNORED = {"cache_dir", "num_classes"}


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - IGNORED - {"block", "layers", "stem_width", "stem_type", "avg_down"})
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    if model_args["block"] not in BLOCKS:
        raise Unsupported(f"block {model_args['block']}")
    args = {"block": BLOCKS[model_args["block"]], "layers": list(model_args["layers"])}
    for key in ("stem_width", "stem_type", "avg_down"):
        if key in model_args:
            args[key] = model_args[key]
    return Architecture(builder="resnet", args=args, paper="https://arxiv.org/abs/1512.03385")
