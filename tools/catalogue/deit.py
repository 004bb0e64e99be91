"""timm's `deit` module (DeiT, with or without its distillation token, and DeiT III) in the
zoo's `vit` builder's words."""

from __future__ import annotations

from .facts import Architecture, Unsupported, Weight
from .inputs import input_side

MODEL_CLASSES = {
    "timm.models.vision_transformer.VisionTransformer": False,
    "timm.models.deit.VisionTransformerDistilled": True,
}
"""timm's class -> whether it has the distillation token and head."""
TRANSLATED = ("patch_size", "embed_dim", "depth", "num_heads", "no_embed_class", "init_values")
IGNORED = {"pretrained_filter_fn", "feature_cfg", "cache_dir", "num_classes"}
DEIT = "https://arxiv.org/abs/2012.12877"
DEIT3 = "https://arxiv.org/abs/2204.07118"


def translate(arch: str, weights: list[Weight]) -> Architecture:
    row = weights[0].row
    if row["model_class"] not in MODEL_CLASSES:
        raise Unsupported(f"model class {row['model_class']}")
    model_args = row["model_args"]
    unknown = sorted(set(model_args) - set(TRANSLATED) - IGNORED)
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    args = {key: model_args[key] for key in TRANSLATED if key in model_args}
    img_size = input_side(weights)
    if img_size != 224:  # timm builds at the weights' fixed input size; the builder's default is 224
        args = {"img_size": img_size, **args}
    if MODEL_CLASSES[row["model_class"]]:
        args["distilled"] = True
    return Architecture(
        builder="vit",
        args=args,
        description=description(arch, args, img_size),
        paper=DEIT3 if arch.startswith("deit3") else DEIT,
    )


def description(arch: str, args: dict, img_size: int) -> str:
    patch = args["patch_size"]
    shape = (
        f"{args['depth']} blocks of width {args['embed_dim']}, {args['num_heads']} heads, "
        f"{patch}x{patch} patches, {img_size}x{img_size} input"
    )
    if arch.startswith("deit3"):
        return f"DeiT III: ViT with LayerScale, position embeddings on the patches only; {shape}."
    if args.get("distilled"):
        return f"DeiT with a distillation token and head (the two heads averaged); {shape}."
    return f"DeiT: ViT trained on ImageNet-1k with DeiT's recipe; {shape}."
