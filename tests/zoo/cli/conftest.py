"""Fixtures of the CLI tests.

- `images`: two real images of different shapes and formats, a text file and a missing file.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def images(tmp_path):
    """Two real images of different shapes and formats, a text file and a missing file."""
    rng = np.random.default_rng(0)
    cat = tmp_path / "cat.png"
    Image.fromarray(rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)).save(cat)
    dog = tmp_path / "dog.jpg"
    Image.fromarray(rng.integers(0, 256, (80, 50, 3), dtype=np.uint8)).save(dog)
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    return {"cat": cat, "dog": dog, "text": text, "missing": tmp_path / "missing.png"}
