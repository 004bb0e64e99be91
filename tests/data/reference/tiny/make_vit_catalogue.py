"""Make the tiny reference cases of the timm catalogue's ViT blocks (run once, with timm 1.0.31).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python \\
        tests/data/reference/tiny/make_vit_catalogue.py

For each case: a shrunken timm `VisionTransformer` with deterministic random weights (every
float tensor drawn, so that zero-initialised gates, lambdas and layer scales all count), saved
as `NAME.safetensors`, its input and timm's outputs as `NAME.io.safetensors`, and the zoo's
builder arguments as `NAME.json`. Never run by the test suite.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.layers import LayerNorm, RmsNorm
from timm.layers.mlp import GluMlp, SwiGLU
from timm.models.vision_transformer import (
    DiffParallelScalingBlock,
    ParallelScalingBlock,
    ResPostBlock,
    VisionTransformer,
)

HERE = Path(__file__).parent
SIZE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 4}
REGISTERS = {"class_token": False, "reg_tokens": 1, "no_embed_class": True, "global_pool": "avg"}

# name: (timm's arguments, the zoo's arguments beyond SIZE and the head, note)
CASES = {
    "vit_siglip_map_tiny": (
        {"class_token": False, "global_pool": "map", "act_layer": "gelu_tanh", "num_classes": 0},
        {"class_token": False, "global_pool": "map", "act_layer": "gelu_tanh", "num_classes": 0},
        "SigLIP: no class token, multihead attention pooling head (MAP), GELU-tanh",
    ),
    "vit_aimv2_tiny": (
        {
            "class_token": False,
            "global_pool": "avg",
            "fc_norm": False,
            "qkv_bias": False,
            "proj_bias": False,
            "act_layer": "silu",
            "mlp_ratio": 2.75,
            "norm_layer": partial(RmsNorm, eps=1e-5),
            "embed_norm_layer": partial(RmsNorm, eps=1e-5),
            "mlp_layer": SwiGLU,
            "num_classes": 0,
        },
        {
            "class_token": False,
            "global_pool": "avg",
            "fc_norm": False,
            "qkv_bias": False,
            "proj_bias": False,
            "act_layer": "silu",
            "mlp_ratio": 2.75,
            "norm_layer": "rmsnorm",
            "layer_norm_eps": 1e-5,
            "embed_norm_layer": "rmsnorm",
            "mlp_layer": "swiglu",
            "num_classes": 0,
        },
        "AIMv2: RMSNorm everywhere and after the patch embedding, SwiGLU, no projection biases",
    ),
    "vit_beit3_tiny_cls10": (
        {
            "scale_attn_norm": True,
            "scale_mlp_norm": True,
            "global_pool": "avg",
            "norm_layer": partial(LayerNorm, eps=1e-5),
            "num_classes": 10,
        },
        {
            "scale_attn_norm": True,
            "scale_mlp_norm": True,
            "global_pool": "avg",
            "layer_norm_eps": 1e-5,
            "num_classes": 10,
        },
        "BEiT-3: NormFormer norms inside attention and MLP, class token kept, average pool, fc_norm",
    ),
    "vit_glu_tiny": (
        {
            "init_values": 1e-5,
            "mlp_ratio": 5.33334,
            "mlp_layer": partial(GluMlp, act_layer=torch.nn.SiLU, gate_last=False),
            "act_layer": "silu",
            "num_classes": 0,
        },
        {
            "init_values": 1e-5,
            "mlp_ratio": 5.33334,
            "mlp_layer": "glu",
            "act_layer": "silu",
            "num_classes": 0,
        },
        "DINOv2-giant's fused SwiGLU (GluMlp, gate_last=False) with LayerScale",
    ),
    "vit_rpn_tiny_cls10": (
        {
            "qkv_bias": False,
            "init_values": 1e-5,
            "class_token": False,
            "block_fn": ResPostBlock,
            "global_pool": "avg",
            "num_classes": 10,
        },
        {
            "qkv_bias": False,
            "init_values": 1e-5,
            "class_token": False,
            "block_fn": "res_post",
            "global_pool": "avg",
            "num_classes": 10,
        },
        "post-norm residual blocks (ResPostBlock)",
    ),
    "vit_pwee_tiny_cls10": (
        {
            **REGISTERS,
            "init_values": 1e-5,
            "mlp_ratio": 5,
            "block_fn": ParallelScalingBlock,
            "num_classes": 10,
        },
        {**REGISTERS, "init_values": 1e-5, "mlp_ratio": 5, "block_fn": "parallel_scaling", "num_classes": 10},
        "ViT-22B parallel blocks (ParallelScalingBlock), one register token, average pool",
    ),
    "vit_dpwee_tiny_cls10": (
        {
            **REGISTERS,
            "init_values": 1e-5,
            "mlp_ratio": 5,
            "block_fn": DiffParallelScalingBlock,
            "num_classes": 10,
        },
        {
            **REGISTERS,
            "init_values": 1e-5,
            "mlp_ratio": 5,
            "block_fn": "diff_parallel_scaling",
            "num_classes": 10,
        },
        "parallel blocks with differential attention (DiffParallelScalingBlock)",
    ),
    "vit_dwee_tiny_cls10": (
        {**REGISTERS, "init_values": 1e-5, "mlp_ratio": 5, "attn_layer": "diff", "num_classes": 10},
        {**REGISTERS, "init_values": 1e-5, "mlp_ratio": 5, "attn": "diff", "num_classes": 10},
        "differential attention as the blocks' token attention (lambda_init by block index)",
    ),
}


def randomised(model: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            tensor = 0.5 * torch.randn(tensor.shape, generator=generator) / max(1, tensor.shape[-1]) ** 0.25
        state[name] = tensor.contiguous()
    return state


def main() -> None:
    for index, (name, (timm_args, zoo_args, note)) in enumerate(CASES.items()):
        generator = torch.Generator().manual_seed(index)
        model = VisionTransformer(**SIZE, **timm_args).eval()
        state = randomised(model, generator)
        model.load_state_dict(state)
        image = torch.randn(2, 3, 32, 32, generator=generator)
        with torch.no_grad():
            features = model.forward_features(image)
            output = model.forward_head(features)
        save_file(state, HERE / f"{name}.safetensors")
        save_file(
            {"input": image, "features": features.contiguous(), "output": output.contiguous()},
            HERE / f"{name}.io.safetensors",
        )
        description = {"family": "vit", **SIZE, **zoo_args, "note": note}
        (HERE / f"{name}.json").write_text(json.dumps(description, indent=1) + "\n")
        print(name, tuple(output.shape))


if __name__ == "__main__":
    main()
