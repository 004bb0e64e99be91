"""Make the tiny cases of timm's ResNet descendants with timm 1.0.31 (not run by the tests).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python tests/data/reference/tiny/make_resnet.py

Each case shrinks a published architecture to one block per stage and narrow stages, keeps
what is under test (anti-aliased downsampling, group norm, the deep-tiered stem, ResNeXt's
grouped convs, SENet's 3x3 shortcuts, ResNet-RS's conv stem pool, SK-ResNeXt's bottleneck,
ResNeSt's pooling before the split attention, per-stage blocks), and saves `NAME.json` (the
zoo builder's arguments), `NAME.safetensors` (timm's state dict, every float tensor
perturbed, BatchNorm statistics included) and `NAME.io.safetensors` (`input` 2x3xSxS at the
case's `img_size`, timm's `features` and `output` in eval mode). Inputs of 40 pixels give
stages maps of odd size (5x5), where padding and ceil-mode pooling show (not with average-pool
anti-aliasing, whose 2x2 pool drops an odd edge that the shortcut keeps: timm's model fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.layers import BlurPool2d, SEModule
from timm.models import create_model
from timm.models.resnest import ResNestBottleneck
from timm.models.resnet import Bottleneck, ResNet
from timm.models.sknet import SelectiveKernelBottleneck

from tests.data.reference.tiny.timm_weights import perturbed

HERE = Path(__file__).parent
ONE_BLOCK = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}
SE = {"name": "se", "rd_divisor": 8}

CASES = {
    "resnext_tiered_blur_tiny_cls10": {
        "shrinks": "resnetblur50 (with seresnext26t_32x4d's stem and groups)",
        "note": "deep-tiered stem (3x3 convs of 12, 16 and 32 channels), blur pooling after the stem's "
        "stride-1 max pool and after each strided 3x3 conv (binomial 3x3, reflection padding), "
        "ResNeXt bottlenecks (4 groups of 4 channels at 8 planes), SE, ResNet-D shortcuts",
        "timm": {
            "block": Bottleneck,
            "stem_type": "deep_tiered",
            "stem_width": 16,
            "avg_down": True,
            "cardinality": 4,
            "base_width": 32,
            "aa_layer": BlurPool2d,
            "block_args": {"attn_layer": "se"},
        },
        "zoo": {
            "block": "bottleneck",
            "stem_type": "deep_tiered",
            "stem_width": 16,
            "avg_down": True,
            "cardinality": 4,
            "base_width": 32,
            "aa_layer": "blur",
            "attn": SE,
        },
        "img_size": 40,
    },
    "resnetrs_avgaa_tiny_cls10": {
        "shrinks": "resnetrs50 (with seresnextaa101d's anti-aliasing)",
        "note": "deep stem, a 3x3 conv, BN and ReLU in place of the stem's max pool, anti-aliased by a "
        "2x2 average pool after each stride-1 conv that would have been strided, SE with a quarter "
        "of the width, ResNet-D shortcuts",
        "timm": {
            "block": Bottleneck,
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "replace_stem_pool": True,
            "aa_layer": torch.nn.AvgPool2d,
            "block_args": {"attn_layer": lambda channels, **kw: SEModule(channels, rd_ratio=0.25, **kw)},
        },
        "zoo": {
            "block": "bottleneck",
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "replace_stem_pool": True,
            "aa_layer": "avg",
            "attn": {**SE, "rd_ratio": 0.25},
        },
    },
    "resnet_gn_tiny_cls10": {
        "shrinks": "resnet50_gn",
        "note": "GroupNorm (32 groups) after every conv, stem and shortcuts included",
        "timm": {"block": Bottleneck, "norm_layer": "groupnorm", "channels": [32, 32, 64, 64]},
        "zoo": {"block": "bottleneck", "norm_layer": "groupnorm", "channels": [32, 32, 64, 64]},
    },
    "senet_tiny_cls10": {
        "shrinks": "senet154",
        "note": "deep stem, grouped bottlenecks whose first conv is half their width, 3x3 strided "
        "projection shortcuts, SE",
        "timm": {
            "block": Bottleneck,
            "stem_type": "deep",
            "stem_width": 16,
            "cardinality": 4,
            "base_width": 32,
            "down_kernel_size": 3,
            "block_reduce_first": 2,
            "block_args": {"attn_layer": "se"},
        },
        "zoo": {
            "block": "bottleneck",
            "stem_type": "deep",
            "stem_width": 16,
            "cardinality": 4,
            "base_width": 32,
            "down_kernel_size": 3,
            "block_reduce_first": 2,
            "attn": SE,
        },
        "img_size": 40,
    },
    "skresnext_tiny_cls10": {
        "shrinks": "skresnext50_32x4d",
        "note": "SKNet bottlenecks (every conv with its own BN: conv1.conv, conv1.bn, ...), the 3x3 a "
        "selective kernel of two grouped paths over the whole input",
        "timm": {
            "block": SelectiveKernelBottleneck,
            "cardinality": 4,
            "base_width": 32,
            "zero_init_last": False,
            "block_args": {"sk_kwargs": {"rd_ratio": 1 / 16, "rd_divisor": 32, "split_input": False}},
        },
        "zoo": {
            "block": "sk_bottleneck",
            "cardinality": 4,
            "base_width": 32,
            "zero_init_last": False,
            "conv_attn": {
                "name": "selective_kernel",
                "rd_ratio": 1 / 16,
                "rd_divisor": 32,
                "split_input": False,
                "groups": 4,
            },
        },
    },
    "resnest_avdfirst_tiny_cls10": {
        "shrinks": "resnest50d_4s2x40d",
        "note": "ResNeSt bottlenecks with 2 groups of radix 4, the strided ones average-pooling 3x3 "
        "before the split attention",
        "timm": {
            "block": ResNestBottleneck,
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "cardinality": 2,
            "base_width": 32,
            "block_args": {"radix": 4, "avd": True, "avd_first": True},
        },
        "zoo": {
            "block": "bottleneck",
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "cardinality": 2,
            "base_width": 32,
            "conv_attn": {"name": "split_attention", "radix": 4, "groups": 2, "avd": True, "avd_first": True},
        },
        "img_size": 40,
    },
    "test_resnet_cls10": {
        "shrinks": "test_resnet",
        "note": "timm's own test_resnet: a block per stage, basic, basic, bottleneck, basic",
        "timm_name": "test_resnet",
        "zoo": {
            "block": ["basic", "basic", "bottleneck", "basic"],
            "layers": [1, 1, 1, 1],
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "channels": [32, 48, 48, 96],
        },
    },
}


def timm_model(case: dict) -> torch.nn.Module:
    if "timm_name" in case:
        return create_model(case["timm_name"], num_classes=10)
    return ResNet(**{**ONE_BLOCK, **case["timm"]}, num_classes=10)


def make(name: str, case: dict) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = timm_model(case).eval()
    state = perturbed(model.state_dict(), generator)
    model.load_state_dict(state)
    size = case.get("img_size", 32)
    image = torch.randn(2, 3, size, size, generator=generator)
    with torch.no_grad():
        features = model.forward_features(image)
        output = model.forward_head(features)
    description = {"family": "resnet", "shrinks": case["shrinks"], "note": case["note"]}
    description |= {**ONE_BLOCK, **case["zoo"], "num_classes": 10, "img_size": size}
    (HERE / f"{name}.json").write_text(json.dumps(description, indent=1) + "\n")
    save_file({key: value.contiguous() for key, value in state.items()}, HERE / f"{name}.safetensors")
    save_file({"input": image, "features": features, "output": output}, HERE / f"{name}.io.safetensors")


if __name__ == "__main__":
    for name, case in CASES.items():
        make(name, case)
