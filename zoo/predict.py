"""Stable path: `zoo.tasks.predict`."""

from __future__ import annotations

from .tasks.predict import (
    EmbeddedFiles,
    PredictedFiles,
    Prediction,
    Predictor,
    embed_files,
    predict_files,
    predictor,
    save_embeddings,
)

__all__ = [
    "EmbeddedFiles",
    "PredictedFiles",
    "Prediction",
    "Predictor",
    "embed_files",
    "predict_files",
    "predictor",
    "save_embeddings",
]
