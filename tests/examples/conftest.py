"""Fixtures for the recipes in examples/: the recipe module, and a folder of images to train on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


@pytest.fixture(scope="session")
def finetune() -> ModuleType:
    """examples/finetune.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("finetune", EXAMPLES / "finetune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `python examples/finetune.py` has it: its dataclasses need it
    spec.loader.exec_module(module)
    return module


def square_images(folder: Path, per_class: int, rng: np.random.Generator) -> None:
    """`folder/red/*.png` and `folder/blue/*.png`: a square of the class's colour filling most
    of a grey image, in noise. Image `i` of each class has the same square and the same noise,
    so that colour is the only thing that tells the classes apart."""
    for name in COLOURS:
        (folder / name).mkdir(parents=True)
    for index in range(per_class):
        side = int(rng.integers(36, 41))
        left, top = rng.integers(0, 40 - side + 1, 2)
        noise = rng.integers(-24, 25, (40, 40, 1))
        for name, colour in COLOURS.items():
            pixels = np.full((40, 40, 3), 128)
            pixels[top : top + side, left : left + side] = colour
            Image.fromarray((pixels + noise).astype(np.uint8)).save(folder / name / f"{index}.png")


@pytest.fixture(scope="session")
def squares(tmp_path_factory) -> Path:
    """`train/` (8 images a class) and `val/` (4 a class) of red and blue squares."""
    root = tmp_path_factory.mktemp("squares")
    rng = np.random.default_rng(0)
    square_images(root / "train", 8, rng)
    square_images(root / "val", 4, rng)
    return root
