"""TinyNet: two conv stages, a channel attention after each, a linear classifier."""

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import Family


class TinyNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_classes: int = 10
    width: int = 16
    attn: ChannelAttention | None = None


class TinyNet(nn.Module):
    def __init__(self, config, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        widths = (config.width, 2 * config.width)
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=2, padding=1, **factory)
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, stride=2, padding=1, **factory)
        self.attn1 = config.attn.build(widths[0], **factory) if config.attn else nn.Identity()
        self.attn2 = config.attn.build(widths[1], **factory) if config.attn else nn.Identity()
        self.fc = nn.Linear(widths[1], config.num_classes, **factory)

    def forward(self, x):
        x = self.attn1(torch.relu(self.conv1(x)))
        x = self.attn2(torch.relu(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


class TinyNetFamily(Family):
    config = TinyNetConfig
    tasks = ("image-classification",)
    test_args = {"width": 8, "num_classes": 5}

    def build(self, config, *, device=None, dtype=None):
        return TinyNet(config, device=device, dtype=dtype)

    def example_input(self, config, *, batch=2, seq_len=None, device=None, dtype=None):
        return (torch.randn(batch, 3, 32, 32, device=device, dtype=dtype),)


family = TinyNetFamily()
