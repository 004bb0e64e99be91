"""Make the tiny byob cases with timm 1.0.31 (not run by the tests).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python tests/data/reference/tiny/make_byob.py

Each case shrinks a published `byobnet` architecture (widths of 16 to 128, one or two blocks
a stage, 64-pixel images), keeps the blocks, stem and head under test, and saves `NAME.json`
(the zoo builder's arguments), `NAME.safetensors` (timm's state dict, every float tensor
perturbed, BatchNorm statistics included) and `NAME.io.safetensors` (`input` 2x3x64x64,
timm's `features` and `output` in eval mode).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.layers.evo_norm import EvoNorm2dS0a
from timm.models.byobnet import ByoBlockCfg, ByobNet, ByoModelCfg, _mobileone_bcfg, _rep_vgg_bcfg

from tests.data.reference.tiny.timm_weights import perturbed

HERE = Path(__file__).parent
IMG_SIZE = 64
SE = {"name": "se", "rd_ratio": 0.0625, "rd_divisor": 8}


def mobileone_blocks() -> tuple:
    """MobileOne's pairs at a quarter of the widths, SE in the last stage's last pair."""
    stages = _mobileone_bcfg(
        d=(1, 2, 1, 1), wf=(0.25, 0.25, 0.25, 0.25), se_blocks=(0, 0, 1, 1), num_conv_branches=2
    )
    return tuple(tuple(stage) for stage in stages)


CASES = {
    "repvgg_tiny_cls10": {
        "shrinks": "repvgg_b1g4",
        "note": "RepVGG blocks (3x3, 1x1 and identity branches, each with BatchNorm) with every second "
        "block of a stage in 4 groups, a RepVGG stem; also folds into one conv per block",
        "timm": ByoModelCfg(
            blocks=_rep_vgg_bcfg(d=(2, 2, 3, 1), wf=(0.25, 0.25, 0.25, 0.25), groups=4),
            stem_type="rep",
            stem_chs=16,
        ),
        "zoo": {
            "blocks": [
                {"type": "rep", "d": d, "c": c, "alternate_groups": 4}
                for d, c in zip((2, 2, 3, 1), (16, 32, 64, 128), strict=True)
            ],
            "stem_type": "rep",
            "stem_chs": 16,
            "stem_pool": "",
            "act_layer": "relu",
        },
    },
    "mobileone_tiny_cls10": {
        "shrinks": "mobileone_s4",
        "note": "MobileOne depthwise-pointwise pairs with two conv branches, SE in the last pairs, a "
        "MobileOne stem; also folds into one conv per block",
        "timm": ByoModelCfg(blocks=mobileone_blocks(), stem_type="one", stem_chs=16),
        "zoo": {
            "blocks": [
                {"type": "mobileone", "d": 1, "c": 16, "num_conv_branches": 2},
                {"type": "mobileone", "d": 2, "c": 32, "num_conv_branches": 2},
                {"type": "mobileone", "d": 1, "c": 64, "num_conv_branches": 2, "attn": SE},
                {"type": "mobileone", "d": 1, "c": 128, "num_conv_branches": 2, "attn": SE},
            ],
            "stem_type": "mobileone",
            "stem_chs": 16,
            "stem_pool": "",
            "act_layer": "relu",
        },
    },
    "gcresnext_tiny_cls10": {
        "shrinks": "gcresnext26ts",
        "note": "grouped bottlenecks with global context attention (additive fusion), SiLU, a tiered stem "
        "without pool (its last conv strided), a final 1x1 conv",
        "timm": ByoModelCfg(
            blocks=tuple(
                ByoBlockCfg(type="bottle", d=1, c=c, s=s, gs=8, br=0.25)
                for c, s in ((32, 1), (64, 2), (128, 2), (256, 2))
            ),
            stem_type="tiered",
            stem_pool="",
            stem_chs=32,
            act_layer="silu",
            attn_layer="gca",
            num_features=160,
        ),
        "zoo": {
            "blocks": [
                {"type": "bottle", "d": 1, "c": c, "s": s, "gs": 8, "br": 0.25}
                for c, s in ((32, 1), (64, 2), (128, 2), (256, 2))
            ],
            "stem_type": "tiered",
            "stem_chs": 32,
            "stem_pool": "",
            "act_layer": "silu",
            "attn": "gc",
            "num_features": 160,
        },
    },
    "regnetz_evos_tiny_cls10": {
        "shrinks": "regnetz_d8_evos",
        "note": "RegNetZ bottlenecks (widths from the block's input, no shortcut where the shape changes, "
        "no activation after the sum) with EvoNorm-S0 (groups of 8 channels) and SE, a deep stem",
        "timm": ByoModelCfg(
            blocks=tuple(
                ByoBlockCfg(type="bottle", d=d, c=c, s=s, gs=8, br=4)
                for d, c, s in ((2, 16, 1), (2, 32, 2), (1, 64, 2), (1, 96, 2))
            ),
            stem_type="deep",
            stem_pool="",
            stem_chs=16,
            downsample="",
            act_layer="silu",
            norm_layer=partial(EvoNorm2dS0a, group_size=8),
            attn_layer="se",
            attn_kwargs={"rd_ratio": 0.25},
            block_kwargs={"bottle_in": True, "linear_out": True},
            num_features=128,
        ),
        "zoo": {
            "blocks": [
                {"type": "bottle", "d": d, "c": c, "s": s, "gs": 8, "br": 4}
                for d, c, s in ((2, 16, 1), (2, 32, 2), (1, 64, 2), (1, 96, 2))
            ],
            "stem_type": "deep",
            "stem_chs": 16,
            "stem_pool": "",
            "downsample": "",
            "act_layer": "silu",
            "norm_layer": "evonorm_s0a",
            "norm_group_size": 8,
            "attn": {"name": "se", "rd_ratio": 0.25, "rd_divisor": 8},
            "bottle_in": True,
            "linear_out": True,
            "num_features": 128,
        },
    },
    "qnet_tiny_cls10": {
        "shrinks": "resnet61q",
        "note": "a quad stem (its first two convs bare), an edge block, bottlenecks with a second 3x3 conv, "
        "a dark and a basic stage, SiLU, a final 1x1 conv",
        "timm": ByoModelCfg(
            blocks=(
                ByoBlockCfg(type="edge", d=1, c=32, s=1, gs=0, br=1.0, block_kwargs={}),
                ByoBlockCfg(type="bottle", d=2, c=64, s=2, gs=8, br=0.25),
                ByoBlockCfg(type="dark", d=1, c=96, s=2, gs=0, br=0.5, block_kwargs={}),
                ByoBlockCfg(type="basic", d=1, c=128, s=2, gs=16, br=0.5, block_kwargs={}),
            ),
            stem_type="quad2",
            stem_pool="",
            stem_chs=32,
            act_layer="silu",
            block_kwargs={"extra_conv": True},
            num_features=144,
        ),
        "zoo": {
            "blocks": [
                {"type": "edge", "d": 1, "c": 32, "s": 1},
                {"type": "bottle", "d": 2, "c": 64, "s": 2, "gs": 8, "br": 0.25},
                {"type": "dark", "d": 1, "c": 96, "s": 2, "br": 0.5},
                {"type": "basic", "d": 1, "c": 128, "s": 2, "gs": 16, "br": 0.5},
            ],
            "stem_type": "quad2",
            "stem_chs": 32,
            "stem_pool": "",
            "act_layer": "silu",
            "extra_conv": True,
            "num_features": 144,
        },
    },
    "resnet_clip_tiny_proj16": {
        "shrinks": "resnet50_clip",
        "note": "CLIP's ResNet: a stem of three 3x3 convs and a 2x2 average pool, strided convs as stride 1 "
        "and a 2x2 average pool after their norm, average-pool shortcuts, attention pooling of the last "
        "map (4 heads of 64 channels) projected to a 16-wide embedding",
        "timm": ByoModelCfg(
            blocks=tuple(
                ByoBlockCfg(type="bottle", d=1, c=c, s=s, br=0.25)
                for c, s in ((32, 1), (64, 2), (128, 2), (256, 2))
            ),
            stem_type="",
            stem_pool="avg2",
            stem_chs=(8, 8, 16),
            downsample="avg",
            aa_layer="avg",
            head_type="attn_abs",
        ),
        "timm_head": {"num_classes": 16},
        "zoo": {
            "blocks": [
                {"type": "bottle", "d": 1, "c": c, "s": s, "br": 0.25}
                for c, s in ((32, 1), (64, 2), (128, 2), (256, 2))
            ],
            "stem_type": "3x3",
            "stem_chs": [8, 8, 16],
            "stem_pool": "avg2",
            "downsample": "avg",
            "aa_layer": "avg",
            "act_layer": "relu",
            "attn_pool": "attention_pool",
            "proj_dim": 16,
            "num_classes": 0,
        },
    },
}


def make(name: str, case: dict) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    head = case.get("timm_head", {"num_classes": 10})
    model = ByobNet(case["timm"], img_size=IMG_SIZE, **head).eval()
    state = perturbed(model.state_dict(), generator)
    model.load_state_dict(state)
    image = torch.randn(2, 3, IMG_SIZE, IMG_SIZE, generator=generator)
    with torch.no_grad():
        features = model.forward_features(image)
        output = model.forward_head(features)
    args = {"family": "byob", "shrinks": case["shrinks"], "img_size": IMG_SIZE, "num_classes": 10}
    args.update(case["zoo"])
    args["note"] = case["note"]
    (HERE / f"{name}.json").write_text(json.dumps(args, indent=1) + "\n")
    save_file({k: v.contiguous() for k, v in state.items()}, HERE / f"{name}.safetensors")
    io = {"input": image, "features": features, "output": output}
    save_file({k: v.contiguous() for k, v in io.items()}, HERE / f"{name}.io.safetensors")
    print(f"{name}: {sum(v.numel() for v in state.values())} values, output {tuple(output.shape)}")


if __name__ == "__main__":
    for case_name, case in CASES.items():
        make(case_name, case)
