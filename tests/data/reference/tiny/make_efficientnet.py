"""Write the tiny EfficientNet-module cases with timm 1.0.31 (run once, never in the tests).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python \\
        tests/data/reference/tiny/make_efficientnet.py

Each case is a shrunken timm `EfficientNet` with deterministic random weights (BatchNorm
statistics perturbed too), saved as `NAME.safetensors`, with `NAME.io.safetensors`
(`input` 2x3x32x32, timm's `features` and `output`) and `NAME.json` (the zoo's builder
arguments, the family and a note).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.layers import EvoNorm2dS0
from timm.models._efficientnet_builder import decode_arch_def, round_channels
from timm.models.efficientnet import EfficientNet
from torch import nn

from tests.data.reference.tiny.timm_weights import perturbed

HERE = Path(__file__).parent
TF_BATCHNORM = partial(nn.BatchNorm2d, eps=1e-3)

CASES = {
    "efficientnetv2_tf_tiny_cls10": {
        "note": "TensorFlow's SAME padding and BN eps 1e-3; a residual 3x3 conv stage, fused MBConv "
        "(er) stages, one with SE, then MBConv with SE (EfficientNetV2's layout)",
        "timm": {
            "arch_def": [
                ["cn_r1_k3_s1_e1_c8_skip"],
                ["er_r2_k3_s2_e4_c16"],
                ["er_r1_k3_s2_e4_c24_se0.25"],
                ["ir_r2_k3_s2_e4_c32_se0.25"],
                ["ir_r1_k5_s1_e6_c40_se0.25"],
            ],
            "act_layer": nn.SiLU,
            "norm_layer": TF_BATCHNORM,
            "pad_type": "same",
        },
        "zoo": {
            "blocks": [
                ["cn_r1_k3_s1_c8_skip"],
                ["er_r2_k3_s2_e4_c16"],
                ["er_r1_k3_s2_e4_c24_se0.25"],
                ["ir_r2_k3_s2_e4_c32_se0.25"],
                ["ir_r1_k5_s1_e6_c40_se0.25"],
            ],
            "act": "silu",
            "padding": "tf_same",
            "norm_eps": 0.001,
        },
    },
    "mixnet_tiny_cls10": {
        "note": "mixed depthwise kernels split unevenly (40 channels in 3), 1x1 convs in two groups, "
        "SiLU blocks with SE in a ReLU network (MixNet's layout)",
        "timm": {
            "arch_def": [
                ["ds_r1_k3_s1_e1_c8"],
                ["ir_r1_k3.5.7_a1.1_p1.1_s2_e5_c16"],
                ["ir_r1_k3.5_s2_e6_c24_se0.5_nsw", "ir_r1_k3.5.7.9_a1.1_p1.1_s1_e3_c24_se0.5_nsw"],
            ],
            "act_layer": nn.ReLU,
        },
        "zoo": {
            "blocks": [
                ["ds_r1_k3_s1_c8"],
                ["ir_r1_k3.5.7_s2_e5_c16_a1.1_p1.1"],
                ["ir_r1_k3.5_s2_e6_c24_se0.5_nsw", "ir_r1_k3.5.7.9_s1_e3_c24_se0.5_a1.1_p1.1_nsw"],
            ],
            "act": "relu",
        },
    },
    "efficientnet_cc_tiny_cls10": {
        "note": "CondConv: inverted residuals with 4 expert kernels mixed per sample (the batch of 2 "
        "routes differently), TensorFlow padding",
        "timm": {
            "arch_def": [
                ["ds_r1_k3_s1_e1_c8_se0.25"],
                ["ir_r2_k3_s2_e6_c16_se0.25_cc4"],
                ["ir_r1_k5_s2_e6_c24_se0.25_cc4"],
            ],
            "act_layer": nn.SiLU,
            "norm_layer": TF_BATCHNORM,
            "pad_type": "same",
        },
        "zoo": {
            "blocks": [
                ["ds_r1_k3_s1_c8_se0.25"],
                ["ir_r2_k3_s2_e6_c16_se0.25_cc4"],
                ["ir_r1_k5_s2_e6_c24_se0.25_cc4"],
            ],
            "act": "silu",
            "padding": "tf_same",
            "norm_eps": 0.001,
        },
    },
    "mobilenetv1_tiny_cls10": {
        "note": "depthwise-separable blocks with an activation after the pointwise conv (dsa), "
        "ReLU6, no head conv (MobileNetV1's layout)",
        "timm": {
            "arch_def": [["dsa_r1_k3_s1_c16"], ["dsa_r2_k3_s2_c32"], ["dsa_r1_k3_s2_c48"]],
            "act_layer": nn.ReLU6,
            "num_features": 0,
        },
        "zoo": {
            "blocks": [["dsa_r1_k3_s1_c16"], ["dsa_r2_k3_s2_c32"], ["dsa_r1_k3_s2_c48"]],
            "act": "relu6",
            "num_features": 0,
        },
    },
    "efficientnet_gc_evonorm_tiny_cls10": {
        "note": "global context attention in place of SE, EvoNorm-S0 over groups of 8 channels in "
        "place of BatchNorm + act (timm's test_efficientnet_evos, with gc from gc_efficientnetv2)",
        "timm": {
            "arch_def": [
                ["cn_r1_k3_s1_e1_c16_skip"],
                ["er_r1_k3_s2_e4_c24_se0.25"],
                ["ir_r2_k3_s2_e4_c32_se0.25"],
            ],
            "act_layer": nn.SiLU,
            "norm_layer": partial(EvoNorm2dS0, group_size=8),
            "se_layer": "gc",
        },
        "zoo": {
            "blocks": [
                ["cn_r1_k3_s1_c16_skip"],
                ["er_r1_k3_s2_e4_c24_se0.25"],
                ["ir_r2_k3_s2_e4_c32_se0.25"],
            ],
            "act": "silu",
            "attn": {"name": "gc", "fuse": "scale"},
            "norm_layer": "evonorm_s0",
        },
    },
}
SHARED = {"stem_size": 8, "num_features": 64, "num_classes": 10}


def make(name: str, case: dict) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    timm_args = {**SHARED, **case["timm"]}
    model = EfficientNet(
        block_args=decode_arch_def(timm_args.pop("arch_def")),
        round_chs_fn=partial(round_channels, multiplier=1.0),
        **timm_args,
    ).eval()
    model.load_state_dict(perturbed(model.state_dict(), generator))
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32, generator=generator)
    with torch.no_grad():
        features = model.forward_features(x)
        output = model.forward_head(features)
    save_file(state, HERE / f"{name}.safetensors")
    save_file({"input": x, "features": features, "output": output}, HERE / f"{name}.io.safetensors")
    description = {"family": "efficientnet", **SHARED, **case["zoo"], "note": case["note"]}
    (HERE / f"{name}.json").write_text(json.dumps(description, indent=1) + "\n")


if __name__ == "__main__":
    for case_name, case in CASES.items():
        make(case_name, case)
        print(f"wrote {case_name}")
