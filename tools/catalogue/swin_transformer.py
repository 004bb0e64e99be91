"""timm's `swin_transformer` module in the zoo's `swin` builder's words."""

from __future__ import annotations

from .facts import Architecture, Unsupported, Weight
from .inputs import input_side

TRANSLATED = ("patch_size", "window_size", "embed_dim", "depths", "num_heads")
IGNORED = {"pretrained_filter_fn", "feature_cfg", "cache_dir", "num_classes"}
SWIN = "https://arxiv.org/abs/2103.14030"
SWIN_S3 = "https://arxiv.org/abs/2111.14725"  # the searched windows of "Searching the Search Space of ViT"


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(set(model_args) - set(TRANSLATED) - IGNORED)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    args = {key: model_args[key] for key in TRANSLATED}
    windows = args["window_size"]
    if isinstance(windows, list) and len(set(windows)) == 1:
        args["window_size"] = windows[0]
    img_size = input_side(weights)
    if img_size != 224:  # timm builds at the weights' fixed input size; the builder's default is 224
        args = {"img_size": img_size, **args}
    return Architecture(
        builder="swin",
        args=args,
        description=description(args, img_size),
        paper=SWIN_S3 if arch.startswith("swin_s3") else SWIN,
    )


def description(args: dict, img_size: int) -> str:
    depths = ", ".join(str(depth) for depth in args["depths"])
    windows = args["window_size"]
    if isinstance(windows, list):
        window = f"windows {', '.join(f'{w}x{w}' for w in windows)} by stage"
    else:
        window = f"{windows}x{windows} windows"
    return (
        f"Swin Transformer: {len(args['depths'])} stages of depths {depths}, width {args['embed_dim']} "
        f"doubling per stage, {window}, {args['patch_size']}x{args['patch_size']} patches, "
        f"{img_size}x{img_size} input."
    )
