"""Peak memory of `zoo attn` against `zoo predict` on a 64-megapixel photo.

Makes, in a temporary folder, an 8000x8000 JPEG (a smooth scene with some texture, as a
photo compresses) and a tiny ViT checkpoint (`vit_tiny_patch16_224` built with 48-wide
embeddings and 2 blocks at 224 pixels, so a 14x14 map, random weights saved with
safetensors). Then runs, each in its own process:

- `zoo predict` on the photo, which reads it fully and preprocesses it;
- `zoo attn` on the photo, which does the same and draws the map on a copy reduced to
  --max-size (default 2048) on its longer side.

Prints each one's peak resident memory (ru_maxrss of that child process, from wait4) and
wall time, and the ratio of attn to predict. Run:

    .venv/bin/python benchmarks/attn_memory.py [--size 8000] [--max-size 2048]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import zoo_executable

MODEL = "vit_tiny_patch16_224"
SHAPE = {"embed_dim": 48, "depth": 2, "num_heads": 3}


def make_photo(path: Path, size: int) -> None:
    """A size x size JPEG: smooth colour gradients with a fine texture, built in bands."""
    import numpy as np
    from PIL import Image

    photo = Image.new("RGB", (size, size))
    columns = np.arange(size, dtype=np.float32)[None, :]
    rng = np.random.default_rng(0)
    band = 500
    for top in range(0, size, band):
        rows = np.arange(top, min(top + band, size), dtype=np.float32)[:, None]
        channels = [
            128
            + 90 * np.sin(rows / 700 + k) * np.cos(columns / 900 - k)
            + 20 * np.sin(columns / 7 + rows / 11)
            for k in range(3)
        ]
        pixels = np.stack(channels, axis=-1) + rng.normal(0, 6, (len(rows), size, 3))
        photo.paste(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), (0, top))
    photo.save(path, quality=90)


def make_checkpoint(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    import zoo

    torch.manual_seed(0)
    save_file(zoo.create(MODEL, num_classes=10, **SHAPE).state_dict(), path)


def peak(command: list[str]) -> tuple[float, float]:
    """Peak RSS in MB of `command`, run in its own child process, and its wall time in s."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit status {process.returncode}")
    return usage.ru_maxrss / 1024, elapsed  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000, help="Side of the square photo, in pixels.")
    parser.add_argument("--max-size", type=int, default=2048, help="zoo attn --max-size.")
    options = parser.parse_args()

    zoo = zoo_executable()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        photo, checkpoint = workdir / "photo.jpg", workdir / "tiny_vit.safetensors"
        make_photo(photo, options.size)
        make_checkpoint(checkpoint)
        common = ["--checkpoint", str(checkpoint), "--num-classes", "10"]
        common += [arg for key, value in SHAPE.items() for arg in ("-a", f"{key}={value}")]
        predict = peak([zoo, "predict", MODEL, str(photo), *common])
        drawn = ["-o", str(workdir / "map.png"), "--max-size", str(options.max_size)]
        attn = peak([zoo, "attn", MODEL, str(photo), *drawn, *common])
    megapixels = options.size**2 / 1e6
    print(
        f"photo: {options.size}x{options.size} JPEG ({megapixels:.0f} MP); attn --max-size {options.max_size}"
    )
    print(f"zoo predict  peak RSS {predict[0]:7.0f} MB  wall {predict[1]:6.1f} s")
    print(f"zoo attn     peak RSS {attn[0]:7.0f} MB  wall {attn[1]:6.1f} s")
    print(f"attn / predict: {attn[0] / predict[0]:.2f}x memory, {attn[1] / predict[1]:.2f}x time")


if __name__ == "__main__":
    main()
