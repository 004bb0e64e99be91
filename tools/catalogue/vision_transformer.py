"""timm's `vision_transformer` module in the zoo's `vit` builder's words."""

from __future__ import annotations

from typing import Any

from .facts import Architecture, Unsupported, Weight
from .writer import is_classifier

IGNORED = {"pretrained_filter_fn", "pretrained_strict", "feature_cfg", "cache_dir", "num_classes", "img_size"}
PASSED = (
    "class_token",
    "global_pool",
    "fc_norm",
    "final_norm",
    "pre_norm",
    "qkv_bias",
    "proj_bias",
    "init_values",
    "reg_tokens",
    "no_embed_class",
    "pool_include_prefix",
    "scale_attn_norm",
    "scale_mlp_norm",
    "dynamic_img_size",
)
"""Arguments the zoo takes under timm's name, with timm's meaning."""
NORMS = {"timm.layers.norm.LayerNorm": "layernorm", "timm.layers.norm.RmsNorm": "rmsnorm"}
ACTIVATIONS = {
    "gelu": "gelu",
    "quick_gelu": "quick_gelu",
    "gelu_tanh": "gelu_tanh",
    "silu": "silu",
    "torch.nn.modules.activation.SiLU": "silu",
}
BLOCKS = {
    "timm.models.vision_transformer.ResPostBlock": "res_post",
    "timm.models.vision_transformer.ParallelScalingBlock": "parallel_scaling",
    "timm.models.vision_transformer.DiffParallelScalingBlock": "diff_parallel_scaling",
}
TIMM_LAYER_NORM_EPS = 1e-6
"""The eps of timm's `LayerNorm`, the ViT's norm when `norm_layer` is not given."""

PAPERS = {  # the first name fragment that matches picks the paper
    "siglip": "https://arxiv.org/abs/2303.15343",
    "aimv2": "https://arxiv.org/abs/2411.14402",
    "beit3": "https://arxiv.org/abs/2208.10442",
    "flexivit": "https://arxiv.org/abs/2212.08013",
    "reg4_dinov2": "https://arxiv.org/abs/2309.16588",
    "dinov2": "https://arxiv.org/abs/2304.07193",
    "tipsv2": "https://arxiv.org/abs/2410.16512",
    "_clip_": "https://arxiv.org/abs/2103.00020",
    "eva_": "https://arxiv.org/abs/2211.07636",
    "radio": "https://arxiv.org/abs/2312.06709",
    "intern": "https://arxiv.org/abs/2312.14238",
    "_rpn_": "https://arxiv.org/abs/2203.09795",
}
VIT_PAPER = "https://arxiv.org/abs/2010.11929"


def _norm(value: Any, what: str) -> tuple[str, float]:
    """A timm norm layer (a partial of LayerNorm or RmsNorm with its eps) -> (name, eps)."""
    if isinstance(value, dict) and value.get("partial") in NORMS and not value.get("args"):
        unknown = set(value["kwargs"]) - {"eps"}
        if not unknown:
            return NORMS[value["partial"]], value["kwargs"].get("eps", TIMM_LAYER_NORM_EPS)
    raise Unsupported(f"{what} {value}")


def _activation(value: Any) -> str:
    if value not in ACTIVATIONS:
        raise Unsupported(f"act_layer {value}")
    return ACTIVATIONS[value]


def _mlp_layer(value: Any) -> str:
    if value == "timm.layers.mlp.SwiGLU":
        return "swiglu"
    # a GLU gating its second half (`gate_last=False`); the partial's act_layer is overridden
    # by the block's, which passes the model's
    glu = isinstance(value, dict) and value.get("partial") == "timm.layers.mlp.GluMlp"
    if (
        glu
        and value["kwargs"].get("gate_last") is False
        and set(value["kwargs"]) <= {"act_layer", "gate_last"}
    ):
        return "glu"
    raise Unsupported(f"mlp_layer {value}")


def _img_size(weights: list[Weight]) -> int | list[int]:
    sizes = {tuple(w.cfg["input_size"][1:]) for w in weights}
    if len(sizes) != 1:
        raise Unsupported(f"weights of different input sizes {sorted(sizes)}")
    height, width = sizes.pop()
    return height if height == width else [height, width]


def is_openai_clip(arch: str, weight: Weight) -> bool:
    """OpenAI's CLIP towers under timm's GELU-named architecture: trained with QuickGELU
    (timm's own fine-tunes of them, `openai_ft_*`, with GELU, as their configs say)."""
    return (
        "_clip_" in arch
        and "quickgelu" not in arch
        and weight.tag.startswith("openai")
        and "_ft_" not in weight.tag
    )


def translate(arch: str, weights: list[Weight]) -> Architecture:
    model_args = weights[0].model_args
    unknown = sorted(
        set(model_args)
        - IGNORED
        - set(PASSED)
        - {"patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio"}
        - {"norm_layer", "embed_norm_layer", "act_layer", "mlp_layer", "block_fn", "attn_layer"}
    )
    if unknown:
        raise Unsupported(f"arguments not translated yet: {', '.join(unknown)}")
    args: dict[str, Any] = {}
    size = _img_size(weights)
    if size != 224:
        args["img_size"] = size
    args["patch_size"] = model_args.get("patch_size", 16)
    if any(side % args["patch_size"] for side in ([size] if isinstance(size, int) else size)):
        args["drop_remainder"] = True  # timm's patch embedding leaves the remainder out
    for key in ("embed_dim", "depth", "num_heads"):
        args[key] = model_args[key]
    if model_args.get("mlp_ratio", 4.0) != 4.0:
        args["mlp_ratio"] = model_args["mlp_ratio"]
    for key in PASSED:
        if key in model_args:
            args[key] = model_args[key]
    norm, eps = (
        _norm(model_args["norm_layer"], "norm_layer") if "norm_layer" in model_args else ("layernorm", 1e-6)
    )
    if norm != "layernorm":
        args["norm_layer"] = norm
    if eps != TIMM_LAYER_NORM_EPS:
        args["layer_norm_eps"] = eps
    if "embed_norm_layer" in model_args:
        embed_norm, embed_eps = _norm(model_args["embed_norm_layer"], "embed_norm_layer")
        if embed_eps != eps:
            raise Unsupported(f"embed_norm_layer eps {embed_eps} differs from the norms' {eps}")
        args["embed_norm_layer"] = embed_norm
    if "act_layer" in model_args:
        args["act_layer"] = _activation(model_args["act_layer"])
    if "mlp_layer" in model_args:
        args["mlp_layer"] = _mlp_layer(model_args["mlp_layer"])
    if "block_fn" in model_args:
        if model_args["block_fn"] not in BLOCKS:
            raise Unsupported(f"block_fn {model_args['block_fn']}")
        args["block_fn"] = BLOCKS[model_args["block_fn"]]
    attn_layer = model_args.get("attn_layer", "")
    if attn_layer not in ("", "attn", "diff"):
        raise Unsupported(f"attn_layer {attn_layer}")
    args["attn"] = "diff" if attn_layer == "diff" else "mhsa"
    paper = next((url for fragment, url in PAPERS.items() if fragment in arch), VIT_PAPER)
    return Architecture(builder="vit", args=args, paper=paper, tag_args=lambda weight: tag_args(arch, weight))


def tag_args(arch: str, weight: Weight) -> dict[str, Any]:
    """A CLIP tower's projection width (its head, published as `num_classes`), and the
    activation OpenAI's towers were trained with."""
    extra: dict[str, Any] = {}
    if weight.num_classes and not is_classifier(weight):
        extra["proj_dim"] = weight.num_classes
    if is_openai_clip(arch, weight):
        extra["act_layer"] = "quick_gelu"
    return extra
