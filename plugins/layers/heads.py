"""The classifier head of image models: global pooling, dropout, a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from .pooling import GlobalPool, MapFormat, PoolType

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    """Global pooling, dropout, then the classifier, under timm's names (`head.global_pool`,
    `head.drop`, `head.fc`; only `fc` holds tensors, and none for 0 classes).

    A `(B, C, H, W)` map (`input_fmt="NHWC"`: `(B, H, W, C)`) -> `(B, num_classes)`; with the
    pooling '' the map is kept, and an NHWC map gets logits per position. The head does not
    initialise its classifier: each family does, as its checkpoints were trained.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        pool_type: PoolType = "avg",
        drop_rate: float = 0.0,
        *,
        input_fmt: MapFormat = "NCHW",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.global_pool = GlobalPool(pool_type, input_fmt=input_fmt)
        self.drop = nn.Dropout(drop_rate)
        self.fc = self._classifier(num_classes, device=device, dtype=dtype)

    def _classifier(self, num_classes: int, **factory) -> nn.Module:
        width = self.in_features * self.global_pool.feat_mult
        return nn.Linear(width, num_classes, **factory) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int, pool_type: PoolType | None = None, *, device=None, dtype=None) -> None:
        """A new classifier of `num_classes` (0: none), after another pooling if given; PyTorch's
        initialisation, until the family's `init_classifier` gives its own."""
        if pool_type is not None:
            self.global_pool = GlobalPool(pool_type, input_fmt=self.global_pool.input_fmt)
        self.fc = self._classifier(num_classes, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)
