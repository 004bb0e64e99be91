"""Make the tiny RegNet cases of the later recipes with timm 1.0.31 (not run by the tests).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python tests/data/reference/tiny/make_regnet.py

Each case shrinks a published architecture to RegNetY-032's tiny widths (depth 6, w0 16,
wa 16, wm 2, group width 8: stages of 16, 32, 64 and 128 channels), keeps the block kind
under test, and saves `NAME.json` (the zoo builder's arguments), `NAME.safetensors` (timm's
state dict, every float tensor perturbed, BatchNorm statistics included) and
`NAME.io.safetensors` (`input` 2x3xSxS at the case's `img_size`, timm's `features` and
`output` in eval mode). The average-pool cases run at 40 pixels, so that a stage's input of
5x5 exercises the pool's odd edge (ceil mode, padding left out of the average).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.models.regnet import RegNet, RegNetCfg

from tests.data.reference.tiny.timm_weights import perturbed

HERE = Path(__file__).parent
SIZES = {"depth": 6, "w0": 16, "wa": 16.0, "wm": 2.0, "group_size": 8}
SILU_SE = {"name": "se", "act": "silu"}

CASES = {
    "regnetv_tiny_cls10": {
        "shrinks": "regnetv_040",
        "note": "pre-activation blocks (BN and SiLU before each conv, shortcut after the first), "
        "bare conv stem and 1x1 conv projections, SE with SiLU, SiLU after the last stage",
        "timm": {"preact": True, "act_layer": "silu", "se_ratio": 0.25},
        "zoo": {"preact": True, "act_layer": "silu", "attn": SILU_SE},
    },
    "regnetv_avgdown_tiny_cls10": {
        "shrinks": "regnetv_064",
        "note": "pre-activation blocks whose projection shortcuts average-pool 2x2 before a 1x1 conv",
        "timm": {"preact": True, "act_layer": "silu", "se_ratio": 0.25, "downsample": "avg"},
        "zoo": {"preact": True, "act_layer": "silu", "attn": SILU_SE, "downsample": "avg"},
        "img_size": 40,
    },
    "regnety_avgdown_tiny_cls10": {
        "shrinks": "regnety_032",
        "note": "post-activation blocks whose projection shortcuts average-pool 2x2 before a 1x1 conv and BN",
        "timm": {"se_ratio": 0.25, "downsample": "avg"},
        "zoo": {"attn": "se", "downsample": "avg"},
        "img_size": 40,
    },
    "regnetz_h_tiny_cls10": {
        "shrinks": "regnetz_040_h",
        "note": "inverted bottlenecks (bottle_ratio 4), SiLU, no residual where a block changes shape, "
        "no activation after the residual sum, a final 1x1 conv, BN and SiLU to 96 channels",
        "timm": {
            "bottle_ratio": 4.0,
            "se_ratio": 0.25,
            "downsample": None,
            "linear_out": True,
            "num_features": 96,
            "act_layer": "silu",
        },
        "zoo": {
            "bottle_ratio": 4.0,
            "attn": SILU_SE,
            "downsample": None,
            "linear_out": True,
            "num_features": 96,
            "act_layer": "silu",
            "zero_init_last": False,
        },
    },
}


def make(name: str, case: dict) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = RegNet(RegNetCfg(**SIZES, **case["timm"]), num_classes=10).eval()
    state = perturbed(model.state_dict(), generator)
    model.load_state_dict(state)
    size = case.get("img_size", 32)
    image = torch.randn(2, 3, size, size, generator=generator)
    with torch.no_grad():
        features = model.forward_features(image)
        output = model.forward_head(features)
    description = {"family": "regnet", "shrinks": case["shrinks"], "note": case["note"]}
    description |= {**SIZES, **case["zoo"], "num_classes": 10, "img_size": size}
    (HERE / f"{name}.json").write_text(json.dumps(description, indent=1) + "\n")
    save_file({key: value.contiguous() for key, value in state.items()}, HERE / f"{name}.safetensors")
    save_file({"input": image, "features": features, "output": output}, HERE / f"{name}.io.safetensors")


if __name__ == "__main__":
    for name, case in CASES.items():
        make(name, case)
