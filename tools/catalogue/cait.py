"""timm's `cait` module in the zoo's `cait` builder's words."""

from __future__ import annotations

from .facts import Architecture, Unsupported, Weight
from .inputs import input_side

TRANSLATED = ("patch_size", "embed_dim", "depth", "num_heads", "init_values")
IGNORED = {"pretrained_filter_fn", "feature_cfg", "cache_dir", "num_classes"}


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - set(TRANSLATED) - IGNORED)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    args = {key: model_args[key] for key in TRANSLATED if key in model_args}
    img_size = input_side(weights)
    if img_size != 224:  # timm builds at the weights' fixed input size; the builder's default is 224
        args = {"img_size": img_size, **args}
    patch = args["patch_size"]
    return Architecture(
        builder="cait",
        args=args,
        description=(
            f"CaiT: {args['depth']} LayerScale blocks with talking-heads attention and 2 class-attention "
            f"blocks, width {args['embed_dim']}, {args['num_heads']} heads, {patch}x{patch} patches, "
            f"{img_size}x{img_size} input."
        ),
        paper="https://arxiv.org/abs/2103.17239",
    )
