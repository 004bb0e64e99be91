"""`features_only` models: a model's per-stage feature maps, built from what it declares.

Any model that describes its feature maps (`feature_info`, see
`zoo.registry.family.HasFeatureInfo`) can be turned into a feature extractor: through its
own `forward_intermediates` if it has one, else by forward hooks on the modules
`feature_info` names, the forward pass stopped once the last feature asked for is taken.
What the features do not need is dropped first (the model's `prune_intermediate_layers`
where it has one; else the stages after the last one asked for and the classifier), so
that every parameter left is trained, as DistributedDataParallel expects.

This module defines an `nn.Module`, so it imports torch; the factory imports it only when
`features_only=True` is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ArgumentError
from ..registry.family import (
    FeatureInfo,
    HasFeatureInfo,
    HasIntermediates,
    HasTrainingInterface,
    feature_take_indices,
)

__all__ = ["FeatureExtractor"]


class _Collected(Exception):
    """Ends a forward pass once the last feature asked for is taken."""


class FeatureExtractor(nn.Module):
    """The feature maps of `model` at `out_indices` of its `feature_info`, as a list.

    Args:
        model: A model with `feature_info` (it is pruned in place and kept as `.model`).
        out_indices: Which features: all (None), the last n (an int), or their indices
            (negative ones count from the end), as timm's `out_indices`.

    `feature_info` is a `zoo.registry.family.FeatureInfo` over the features returned:
    `.channels()`, `.reduction()`, `.module_name()`.
    """

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(model, HasFeatureInfo):
            name = type(model).__name__
            raise ArgumentError(f"{name} declares no feature_info: it has no features_only form")
        try:
            take = feature_take_indices(len(model.feature_info), out_indices)
        except ValueError as error:
            raise ArgumentError(f"out_indices {out_indices!r}: {error}") from None
        self.feature_info = FeatureInfo(model.feature_info, take)
        self.out_indices = self.feature_info.out_indices
        self.uses_intermediates = isinstance(model, HasIntermediates)
        _prune(model, list(self.out_indices), self.feature_info)
        self.model = model
        self._collecting = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if isinstance(self.model, HasTrainingInterface):
            self.model.set_grad_checkpointing(enable)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) -> one feature map (B, channels, H / reduction, W / reduction) per
        index asked for, in order."""
        if self.uses_intermediates:
            indices = list(self.out_indices)
            return self.model.forward_intermediates(x, indices=indices, intermediates_only=True)
        return self._hooked(x)

    def _hooked(self, x: torch.Tensor) -> list[torch.Tensor]:
        names = self.feature_info.module_name()
        taken: dict[str, torch.Tensor] = {}

        def take(name: str, output: torch.Tensor) -> None:
            if not self._collecting:  # a checkpointed module recomputed in the backward pass
                return
            taken[name] = output
            if len(taken) == len(names):
                raise _Collected

        hooks = [
            self.model.get_submodule(name).register_forward_hook(
                lambda module, args, output, name=name: take(name, output)
            )
            for name in names
        ]
        self._collecting = True
        run = getattr(self.model, "forward_features", self.model)
        try:
            run(x)
        except _Collected:
            pass
        finally:
            self._collecting = False
            for hook in hooks:
                hook.remove()
        return [taken[name] for name in names]


def _prune(model: nn.Module, take: list[int], info: FeatureInfo) -> None:
    """Drop what the features at `take` do not need: the model's own way, or the feature
    modules after the last one taken and the classifier."""
    prune = getattr(model, "prune_intermediate_layers", None)
    if callable(prune):
        prune(take, prune_norm=True, prune_head=True)
        return
    for index in range(max(take) + 1, len(info)):
        parent, _, child = info.module_name(index).rpartition(".")
        setattr(model.get_submodule(parent), child, nn.Identity())
    if isinstance(model, HasTrainingInterface):
        model.reset_classifier(0)
