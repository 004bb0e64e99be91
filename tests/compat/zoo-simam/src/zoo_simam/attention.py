"""Two channel attentions: SimAM (parameter-free) and a global-context block."""

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn


class SimAM(nn.Module):
    """SimAM: each activation weighted by the inverse of its energy against its channel's mean."""

    def __init__(
        self, channels: int, *, e_lambda: Annotated[float, Field(gt=0)] = 1e-4, device=None, dtype=None
    ):
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x):
        positions = x.shape[2] * x.shape[3] - 1
        deviation = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        variance = deviation.sum(dim=(2, 3), keepdim=True) / max(positions, 1)
        energy = deviation / (4 * (variance + self.e_lambda)) + 0.5
        return x * torch.sigmoid(energy)


class GlobalContext(nn.Module):
    """A global-context block: attention pooling over positions, a bottleneck transform, fused."""

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: Annotated[float, Field(gt=0, le=1)] = 0.125,
        fusion: Literal["add", "mul"] = "add",
        device=None,
        dtype=None,
    ):
        super().__init__()
        hidden = max(1, round(channels * rd_ratio))
        factory = {"device": device, "dtype": dtype}
        self.fusion = fusion
        self.context = nn.Conv2d(channels, 1, 1, **factory)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, **factory),
            nn.LayerNorm([hidden, 1, 1], **factory),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, **factory),
        )

    def forward(self, x):
        batch, channels = x.shape[:2]
        weights = self.context(x).flatten(2).softmax(dim=-1)  # (B, 1, HW)
        pooled = torch.bmm(x.flatten(2), weights.transpose(1, 2)).view(batch, channels, 1, 1)
        context = self.transform(pooled)
        return x + context if self.fusion == "add" else x * torch.sigmoid(context)
