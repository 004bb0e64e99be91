"""What the weights of one architecture say about its input."""

from __future__ import annotations

from .facts import Unsupported, Weight


def input_side(weights: list[Weight]) -> int:
    """The side of the square input every weight of the architecture was trained at (timm
    builds a fixed-size model at it)."""
    sizes = {tuple(weight.cfg["input_size"][1:]) for weight in weights}
    if len(sizes) != 1 or len(set(next(iter(sizes)))) != 1:
        raise Unsupported(f"weights of one architecture at input sizes {sorted(sizes)}")
    return next(iter(sizes))[0]
