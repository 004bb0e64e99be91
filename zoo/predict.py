"""Stable path: `zoo.tasks.predict`."""

from __future__ import annotations

from .tasks.predict import (
    EmbeddedFiles,
    Prediction,
    Predictor,
    embed_files,
    predictor,
    save_embeddings,
)

__all__ = [
    "EmbeddedFiles",
    "Prediction",
    "Predictor",
    "embed_files",
    "predictor",
    "save_embeddings",
]
