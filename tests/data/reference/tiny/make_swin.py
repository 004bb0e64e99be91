"""Make the tiny Swin S3 reference case with timm 1.0.31 (never run by the test suite).

    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python tests/data/reference/tiny/make_swin.py

`swin_s3_tiny_cls10`: a shrunken `swin_s3_tiny_224`, one window size per stage, with random
weights; its input and timm's outputs at the built size, and (`.resized128.io`) the same
checkpoint loaded by timm's own filter into the model built at 128x128 with larger windows,
so that most relative position bias tables are resampled on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from timm.models.swin_transformer import checkpoint_filter_fn

HERE = Path(__file__).parent
NAME = "swin_s3_tiny_cls10"
ARCHITECTURE = {
    "img_size": 64,
    "patch_size": 4,
    "window_size": [8, 4, 4, 2],
    "embed_dim": 16,
    "depths": [2, 2, 2, 1],
    "num_heads": [1, 2, 2, 4],
    "num_classes": 10,
}
RESIZED = {"img_size": 128, "window_size": [8, 8, 8, 4]}


def timm_model(**args) -> torch.nn.Module:
    return timm.create_model("swin_s3_tiny_224", pretrained=False, **args).eval()


def outputs(model: torch.nn.Module, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    image = torch.randn(2, 3, size, size, generator=generator)
    with torch.no_grad():
        features = model.forward_features(image)
        return {"input": image, "features": features, "output": model.forward_head(features)}


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    model = timm_model(**ARCHITECTURE)
    state = {
        name: tensor + 0.05 * torch.randn(tensor.shape, generator=generator)
        for name, tensor in model.state_dict().items()
    }
    model.load_state_dict(state)
    save_file({name: tensor.contiguous() for name, tensor in state.items()}, HERE / f"{NAME}.safetensors")
    save_file(outputs(model, ARCHITECTURE["img_size"], generator), HERE / f"{NAME}.io.safetensors")

    resized = timm_model(**{**ARCHITECTURE, **RESIZED})
    resized.load_state_dict(checkpoint_filter_fn(state, resized))
    save_file(outputs(resized, RESIZED["img_size"], generator), HERE / f"{NAME}.resized128.io.safetensors")

    description = {
        "family": "swin",
        "shrinks": "swin_s3_tiny_224",
        **ARCHITECTURE,
        "resized128": RESIZED,
        "note": (
            "one window size per stage (8, 4, 4, 2 over grids 16, 8, 4, 2: shifted windows in the "
            "first two stages only); resized128: the same checkpoint built at 128x128 with windows "
            "8, 8, 8, 4, the tables of stages 1 to 3 resampled on load by timm's checkpoint filter"
        ),
    }
    (HERE / f"{NAME}.json").write_text(json.dumps(description, indent=1) + "\n")


if __name__ == "__main__":
    main()
