"""The attention interface: checked when a class is loaded; options typed by its signature."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.attention import ATTENTION_KINDS, ChannelAttention, check_attention_class, options_model
from zoo.errors import ArgumentError, AttentionInterfaceError
from zoo_plugins.attention.mhsa import MultiHeadSelfAttention

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


class GainedHeads(MultiHeadSelfAttention):
    """A token attention with one extra option: a gain on its output."""

    def __init__(self, dim: int, *, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, gain: float = 1.0, device=None, dtype=None):  # fmt: skip
        super().__init__(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop,
                         device=device, dtype=dtype)  # fmt: skip
        self.gain = gain

    def forward(self, x, need_weights=False):
        if need_weights:
            out, weights = super().forward(x, need_weights=True)
            return out * self.gain, weights
        return super().forward(x) * self.gain


def test_a_registered_token_attention_plugs_into_a_vit_by_name(builtin_registry):
    builtin_registry.add_attention("gained_heads", GainedHeads, kind="token", owner="tests")
    model = zoo.create(
        "vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2,
        attn={"name": "gained_heads", "gain": 0.5}, registry=builtin_registry,
    )  # fmt: skip
    assert all(isinstance(block.attn, GainedHeads) and block.attn.gain == 0.5 for block in model.blocks)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    with pytest.raises(ArgumentError, match="unknown token attention 'se'"):
        zoo.create("vit_tiny_patch16_224", attn="se", registry=builtin_registry)


def test_a_dumped_spec_reads_back_in_the_registrys_short_form():
    from zoo.attention import registry_form

    assert registry_form(ChannelAttention(name="se").model_dump()) == "se"
    with_options = ChannelAttention.model_validate({"name": "cbam", "kernel_size": 3})
    assert registry_form(with_options.model_dump()) == {"name": "cbam", "kernel_size": 3}
    assert ChannelAttention.model_validate(registry_form(with_options.model_dump())) == with_options
    assert registry_form([3, 4, 6, 3]) == [3, 4, 6, 3]
