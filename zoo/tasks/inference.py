"""A model made ready for inference: weights loaded, in eval mode, on its device and dtype.

`zoo.tasks.predict` (images) and `zoo.tasks.sequence_maps` (sequences) both start here, so a
model runs the same whichever task takes it: the published weights of its name, or a local
checkpoint, built once from one checked config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import rank_device
from ..registry import Registry, Resolved
from ..weights.factory import build_planned, plan
from ..weights.resolve import published_weights

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel

__all__ = ["InferenceModel", "inference_model"]


@dataclass(frozen=True)
class InferenceModel:
    """A model ready for inference, and the builder config it was built with."""

    model: torch.nn.Module
    """In eval mode, on its device and dtype, its weights loaded."""
    config: BaseModel
    """The builder config, checked once when the model was planned."""


def inference_model(
    resolved: Resolved,
    registry: Registry,
    *,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> InferenceModel:
    """Load a resolved model for inference: its own published weights, or a local checkpoint.

    Args:
        resolved: The model.
        registry: The registry it was resolved in.
        checkpoint: A local safetensors file to load instead of the published weights.
        device: Where to run; under torchrun, a bare `"cuda"` is the process's own GPU.
        dtype: Floating-point dtype of the weights.
        model_args: Builder arguments on top of the registry's (`num_classes` among them).

    Raises:
        NoWeightsError: No checkpoint, and no published weights of its own.
    """
    if checkpoint is None:
        published_weights(resolved, or_checkpoint=True)
    planned = plan(
        resolved,
        pretrained=checkpoint is None,
        checkpoint=checkpoint,
        device=rank_device(device),
        dtype=dtype,
        registry=registry,
        **dict(model_args or {}),
    )
    return InferenceModel(build_planned(planned).eval(), planned.config)
