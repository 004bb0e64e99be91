"""Stable path: `zoo.tasks.predict`."""

from __future__ import annotations

from .tasks.predict import (
    Prediction,
    Predictor,
    predictor,
    save_embeddings,
)

__all__ = [
    "Prediction",
    "Predictor",
    "predictor",
    "save_embeddings",
]
