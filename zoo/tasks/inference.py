"""A model made ready for inference: weights loaded, in eval mode, on its device and dtype.

`zoo.tasks.predict` (images) and `zoo.tasks.sequence_maps` (sequences) both start here, so a
model runs the same whichever task takes it: the published weights of its name, or a local
checkpoint, built once from one checked config.

Nothing it serves is silently wrong. Published weights that lack modules the model has (an
attention variant added to a published architecture, by name or by argument) would give
outputs from untrained modules: they are refused before anything is fetched
(`untrained_modules`). Outputs that are not finite come from broken weights: every task
checks what the model returned (`refuse_non_finite`), which costs nothing beside the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import rank_device
from ..errors import CheckpointError, NoWeightsError
from ..registry import Registry, Resolved, SelectedWeight
from ..weights.factory import build_planned, plan
from ..weights.loading import rehearse_load
from ..weights.resolve import OWN_CHECKPOINT, published_weights

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel

__all__ = [
    "InferenceModel",
    "described",
    "inference_model",
    "refuse_non_finite",
    "untrained_modules",
    "weights_label",
]


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
        NoWeightsError: No checkpoint, and no published weights, or published weights that
            lack modules the model has (`untrained_modules`).
    """
    if checkpoint is None:
        weights = published_weights(resolved, borrowed=True, or_checkpoint=True)
        _refuse_untrained(resolved, registry, weights, dict(model_args or {}))
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


def untrained_modules(
    resolved: Resolved, registry: Registry, weights: SelectedWeight, model_args: Mapping[str, Any]
) -> list[str]:
    """The modules of the model `resolved` and `model_args` build that `weights` have no
    trained tensors of (new attention modules, a new head), rehearsed on `meta`: nothing is
    fetched or allocated."""
    builder = registry.builder(resolved.entry.builder)
    published_for = registry.backbone(resolved.source) if weights.borrowed else resolved
    published = builder.build(registry.build_config(published_for, weights=weights), device="meta")
    model = builder.build(registry.build_config(resolved, model_args, weights=weights), device="meta")
    report = rehearse_load(
        model, published.state_dict(), changed=set(model_args), fresh_modules=True, name=str(weights)
    )
    if report.new_modules:
        return list(report.new_modules)
    return list(dict.fromkeys(key.rpartition(".")[0] for key in report.fresh))


def _refuse_untrained(
    resolved: Resolved, registry: Registry, weights: SelectedWeight, model_args: Mapping[str, Any]
) -> None:
    if not weights.borrowed and not model_args:
        return  # a model as its own weights were published: nothing in it can be untrained
    untrained = untrained_modules(resolved, registry, weights, model_args)
    if untrained:
        shown = ", ".join(untrained[:3]) + (f" and {len(untrained) - 3} more" if len(untrained) > 3 else "")
        asked = "".join(f" with {key}={value}" for key, value in model_args.items())
        raise NoWeightsError(
            f"'{resolved}'{asked} has untrained modules: {weights} holds no weights for {shown}; "
            "load a checkpoint that has them ({checkpoint})",
            arguments=[OWN_CHECKPOINT],
        )


def weights_label(resolved: Resolved, checkpoint: str | Path | None) -> str:
    """What messages call the weights a model runs with: the file, or the published tag."""
    return str(checkpoint) if checkpoint is not None else str(resolved.selected)


def described(name: str, weights: str | None) -> str:
    """What messages call a model and its weights: `resnet18 (weights resnet18.a1_in1k)`."""
    return f"{name} (weights {weights})" if weights else name


def refuse_non_finite(outputs: torch.Tensor, what: str) -> None:
    """Refuse outputs of a model (`what`, see `described`) that hold NaN or infinite values.

    Raises:
        CheckpointError: They do; the weights are the likely cause.
    """
    import torch

    if not bool(torch.isfinite(outputs).all()):
        raise CheckpointError(
            f"{what}: model output holds NaN or infinite values: the weights are probably broken"
        )
