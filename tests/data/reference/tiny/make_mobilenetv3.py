"""Make the tiny reference cases of the `mobilenetv3` family's newer blocks with timm 1.0.31.

Run once, where timm is installed (never in the test suite):

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python tests/data/reference/tiny/make_mobilenetv3.py

Each case is a shrunken timm `MobileNetV3` built from block strings, with deterministic random
weights (BatchNorm statistics and layer scales perturbed too): `NAME.json` (the zoo builder's
arguments, with "family" and "note"), `NAME.safetensors` (timm's state dict) and
`NAME.io.safetensors` (`input`, `features` = forward_features, `output` = forward_head).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import decode_arch_def, round_channels
from timm.models.mobilenetv3 import MobileNetV3
from torch import nn

from tests.data.reference.tiny.timm_weights import perturbed
from tools.catalogue.mobilenetv3 import stage

HERE = Path(__file__).parent

CASES = {
    "mobilenetv4_hybrid_tiny_cls10": {
        "note": "MobileNetV4 blocks: fused (er) and universal inverted residuals of every form "
        "(extra depthwise, inverted, ConvNeXt-like, feed-forward), mobile multi-query attention "
        "with and without key-value downsampling, layer scale, blur anti-aliasing, head norm",
        "arch": [
            ["er_r1_k3_s2_e4_c16"],
            [
                "uir_r1_a3_k5_s2_e4_c24",
                "uir_r1_a0_k3_s1_e2_c24",
                "uir_r1_a5_k0_s1_e2_c24",
                "uir_r1_a0_k0_s1_e2_c24",
            ],
            ["uir_r1_a3_k3_s2_e4_c32", "mqa_r1_k3_h2_v2_s1_d8_c32", "mqa_r1_k3_h4_s1_d8_c32"],
            ["cn_r1_k1_s1_c48"],
        ],
        "timm": dict(
            stem_size=8,
            num_features=64,
            head_norm=True,
            head_bias=False,
            act_layer=nn.ReLU,
            layer_scale_init_value=1e-5,
            aa_layer="blurpc",
        ),
        "zoo": dict(
            stem_size=8,
            fix_stem=False,
            num_features=64,
            head_norm=True,
            head_bias=False,
            act="relu",
            layer_scale_init=1e-5,
            aa="blurpc",
        ),
    },
    "lcnet_tiny_cls10": {
        "note": "LCNet: depthwise-separable blocks with an activation after the pointwise conv and no "
        "residual, SE from the block input with a ReLU, widths at a multiplier of 0.5",
        "arch": [
            ["dsa_r1_k3_s1_c16"],
            ["dsa_r2_k3_s2_c32"],
            ["dsa_r1_k5_s2_c64_se0.25", "dsa_r1_k5_s1_c64"],
        ],
        "timm": dict(
            stem_size=16,
            num_features=64,
            act_layer=nn.Hardswish,
            round_chs_fn=partial(round_channels, multiplier=0.5),
            se_layer=partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=nn.ReLU),
        ),
        "zoo": dict(
            stem_size=16,
            fix_stem=False,
            num_features=64,
            act="hard_swish",
            channel_multiplier=0.5,
            attn={
                "name": "se",
                "act": "relu",
                "gate": "hard_sigmoid",
                "tensor_names": "conv_reduce/conv_expand",
            },
            se_divisor=1,
            se_round_limit=0.0,
        ),
    },
    "fbnetv3_tiny_cls10": {
        "note": "FBNetV3's rounding (widths and SE within 5%, SE from the block input) with "
        "MobileNetV3-RW's SE taking its block's activation and BatchNorm eps 1e-3",
        "arch": [
            ["ds_r2_k3_s1_e1_c16"],
            ["ir_r1_k5_s2_e4_c24_se0.25_nre", "ir_r1_k5_s1_e2_c24_se0.25"],
            ["ir_r1_k3_s2_e5_c40_se0.25", "ir_r2_k5_s1_e3_c40_se0.25"],
            ["cn_r1_k1_s1_c120"],
        ],
        "timm": dict(
            stem_size=16,
            num_features=96,
            head_bias=False,
            act_layer=nn.Hardswish,
            se_from_exp=False,
            norm_layer=partial(nn.BatchNorm2d, eps=1e-3),
            round_chs_fn=partial(round_channels, multiplier=1.0, round_limit=0.95),
            se_layer=partial(
                SqueezeExcite,
                gate_layer="hard_sigmoid",
                rd_round_fn=partial(round_channels, round_limit=0.95),
            ),
        ),
        "zoo": dict(
            stem_size=16,
            fix_stem=False,
            num_features=96,
            head_bias=False,
            act="hard_swish",
            se_from_exp=False,
            norm_eps=1e-3,
            round_limit=0.95,
            se_round_limit=0.95,
            se_block_act=True,
            attn={
                "name": "se",
                "gate": "hard_sigmoid",
                "tensor_names": "conv_reduce/conv_expand",
            },
        ),
    },
}


def as_facts(block: dict) -> dict:
    """A decoded block as the catalogue's facts spell it: classes by qualified name."""
    act = block["act_layer"]
    return {**block, "act_layer": act and f"{act.__module__}.{act.__qualname__}"}


def make(name: str, case: dict) -> None:
    torch.manual_seed(0)
    block_args = decode_arch_def(case["arch"])
    stages = [stage([as_facts(block) for block in blocks]) for blocks in block_args]
    model = MobileNetV3(decode_arch_def(case["arch"]), num_classes=10, **case["timm"]).eval()
    generator = torch.Generator().manual_seed(0)
    state = {name: tensor.contiguous() for name, tensor in perturbed(model.state_dict(), generator).items()}
    model.load_state_dict(state)
    image = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        features = model.forward_features(image)
        output = model.forward_head(features)
    description = {
        "family": "mobilenetv3",
        "note": case["note"],
        "stages": stages,
        **case["zoo"],
        "num_classes": 10,
    }
    (HERE / f"{name}.json").write_text(json.dumps(description, indent=1) + "\n")
    save_file(state, HERE / f"{name}.safetensors")
    save_file({"input": image, "features": features, "output": output}, HERE / f"{name}.io.safetensors")
    print(f"{name}: {sum(t.numel() for t in state.values())} values")


if __name__ == "__main__":
    for name, case in CASES.items():
        make(name, case)
