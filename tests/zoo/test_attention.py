"""The attention interface: checked when a class is loaded; options typed by its signature."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.attention import ATTENTION_KINDS, ChannelAttention, check_attention_class, options_model
from zoo.errors import ArgumentError, AttentionInterfaceError

CHANNEL = ATTENTION_KINDS["channel"]


class Scale(nn.Module):
    """A minimal channel attention: a learned scalar gate."""

    def __init__(self, channels: int, *, init: float = 1.0, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.full((), init, device=device, dtype=dtype))

    def forward(self, x):
        return x * torch.sigmoid(self.weight)


def test_a_conforming_class_passes_and_its_options_are_typed():
    check_attention_class(Scale, CHANNEL, name="scale")
    options = options_model(Scale, CHANNEL)
    assert options.model_validate({"init": 2}).init == 2.0
    with pytest.raises(ValueError):
        options.model_validate({"init": "high"})
    with pytest.raises(ValueError):
        options.model_validate({"unknown": 1})


@pytest.mark.parametrize(
    ("signature", "complaint"),
    [
        ("def __init__(self, dim, *, device=None, dtype=None): ...", "takes 'channels'"),
        ("def __init__(self, channels, *, dtype=None): ...", "takes 'device'"),
        (
            "def __init__(self, channels, ratio: float = 1.0, *, device=None, dtype=None): ...",
            "must be keyword-only",
        ),
        ("def __init__(self, channels, *, ratio: float, device=None, dtype=None): ...", "needs a default"),
        (
            "def __init__(self, channels, *, ratio=1.0, device=None, dtype=None): ...",
            "needs a type annotation",
        ),
    ],
)
def test_a_class_off_the_interface_is_refused_with_the_reason(signature, complaint):
    namespace: dict = {}
    exec(f"class Bad:\n    {signature}\n    def forward(self, x): ...", namespace)
    with pytest.raises(AttentionInterfaceError, match=complaint):
        check_attention_class(namespace["Bad"], CHANNEL, name="bad")


def test_a_spec_reads_short_and_long_forms():
    assert ChannelAttention.model_validate("se") == ChannelAttention(name="se")
    long = ChannelAttention.model_validate({"name": "cbam", "options": {"kernel_size": 3}})
    assert ChannelAttention.model_validate({"name": "cbam", "kernel_size": 3}) == long
    assert str(long) == "cbam(kernel_size=3)"


def test_a_registered_variant_plugs_into_a_resnet_by_name(builtin_registry):
    builtin_registry.add_attention("scale", Scale, kind="channel", owner="tests")
    model = zoo.create("resnet18", attn={"name": "scale", "init": -2.0}, registry=builtin_registry)
    gates = [block.se for stage in model.stages() for block in stage]
    assert len(gates) == 8 and all(isinstance(g, Scale) for g in gates)
    assert gates[0].weight.item() == -2.0
    with pytest.raises(ArgumentError, match="option 'init'"):
        zoo.create("resnet18", attn={"name": "scale", "init": "x"}, registry=builtin_registry)
