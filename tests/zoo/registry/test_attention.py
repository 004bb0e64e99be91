"""The attention interface: signatures checked when a class is loaded, forwards probed on meta
for the shapes of their kind, options typed by the signature."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.attention import ATTENTION_KINDS, ChannelAttention, check_attention_class, options_model
from zoo.errors import ArgumentError, AttentionInterfaceError
from zoo.registry import Registry
from zoo.registry.attention import probe_attention_class
from zoo_plugins.attention.mhsa import MultiHeadSelfAttention

CHANNEL = ATTENTION_KINDS["channel"]


class Scale(nn.Module):
    """A minimal channel attention: a learned scalar gate."""

    def __init__(
        self, channels: int, *, rd_channels: int | None = None, init: float = 1.0, device=None, dtype=None
    ):
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
        ("def __init__(self, dim, *, rd_channels=None, device=None, dtype=None): ...", "takes 'channels'"),
        ("def __init__(self, channels, *, rd_channels=None, dtype=None): ...", "takes 'device'"),
        (
            "def __init__(self, channels, *, rd_channels, device=None, dtype=None): ...",
            "'rd_channels' needs a default .None: the variant's own choice., as a channel slot may leave it out",
        ),
        (
            "def __init__(self, channels, ratio: float = 1.0, *, rd_channels=None, device=None, dtype=None): ...",
            "must be keyword-only",
        ),
        (
            "def __init__(self, channels, *, rd_channels=None, ratio: float, device=None, dtype=None): ...",
            "option 'ratio' needs a default",
        ),
        (
            "def __init__(self, channels, *, rd_channels=None, ratio=1.0, device=None, dtype=None): ...",
            "needs a type annotation",
        ),
    ],
)
def test_a_class_off_the_interface_is_refused_with_the_reason(signature, complaint):
    namespace: dict = {}
    exec(f"class Bad:\n    {signature}\n    def forward(self, x): ...", namespace)
    with pytest.raises(AttentionInterfaceError, match=complaint):
        check_attention_class(namespace["Bad"], CHANNEL, name="bad")


class ParameterFree(nn.Module):
    """A channel attention with no reduced width, written before slots could pass one."""

    def __init__(self, channels: int, *, device=None, dtype=None):
        super().__init__()

    def forward(self, x):
        return x * torch.sigmoid(x)


def test_an_optional_keyword_is_no_part_of_the_contract():
    assert CHANNEL.required == ("device", "dtype") and CHANNEL.optional == ("rd_channels",)
    check_attention_class(ParameterFree, CHANNEL, name="parameter_free")
    probe_attention_class(ParameterFree, CHANNEL, name="parameter_free")


def test_a_slot_passes_an_optional_keyword_only_to_a_constructor_that_names_it():
    from zoo.registry.attention import accepted_keywords, slot_keywords

    asked = {"rd_channels": 4, "device": None, "dtype": None, "init": 0.5}
    assert accepted_keywords(ParameterFree, CHANNEL) == frozenset()
    assert slot_keywords(ParameterFree, CHANNEL, asked) == {"device": None, "dtype": None, "init": 0.5}
    assert accepted_keywords(Scale, CHANNEL) == {"rd_channels"}
    assert slot_keywords(Scale, CHANNEL, asked) == asked


@pytest.mark.parametrize("family", ["resnet18", "efficientnet_b0", "mobilenetv3_large_100", "regnety_002"])
def test_a_variant_without_a_reduced_width_plugs_into_slots_that_fix_one(builtin_registry, family):
    builtin_registry.add_attention("parameter_free", ParameterFree, kind="channel", owner="tests")
    model = zoo.create(family, attn="parameter_free", device="meta", registry=builtin_registry)
    assert any(isinstance(module, ParameterFree) for module in model.modules())


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


class Halve(nn.Module):
    """Channel: drops every other channel."""

    def __init__(self, channels: int, *, rd_channels: int | None = None, device=None, dtype=None):
        super().__init__()

    def forward(self, x):
        return x[:, ::2]


class FirstToken(nn.Module):
    """Token: keeps only the first token."""

    def __init__(self, dim, *, num_heads, qkv_bias, attn_drop, proj_drop, device=None, dtype=None):
        super().__init__()

    def forward(self, x, need_weights=False):
        return x[:, :1]


class IgnoresOutDim(nn.Module):
    """Sequence: returns the query, whatever `out_dim` asks for."""

    def __init__(self, embed_dim, *, num_heads, kdim, vdim, out_dim, dropout, bias, device=None, dtype=None):
        super().__init__()
        self.num_heads = num_heads

    def forward(self, query, key, value, mask=None, need_weights=False):
        weights = torch.zeros(query.shape[0], self.num_heads, query.shape[1], key.shape[1])
        return (query, weights) if need_weights else query


class KeepsDims(nn.Module):
    """Pooling: weights of shape (B, N, 1) instead of (B, N)."""

    def __init__(self, dim, *, device=None, dtype=None):
        super().__init__()

    def forward(self, x, mask=None):
        weights = torch.ones(x.shape[0], x.shape[1], 1)
        return (weights * x).sum(1), weights, None


class QueryContext(nn.Module):
    """Alignment: returns the query as the context."""

    def __init__(self, query_dim, key_dim, *, device=None, dtype=None):
        super().__init__()

    def forward(self, query, memory, mask=None):
        return query, torch.ones(memory.shape[:2])


@pytest.mark.parametrize(
    ("cls", "kind", "complaint"),
    [
        (Halve, "channel", "output must be (B, C, H, W) = (2, 16, 5, 7) on the probe input; it returned (2, 8, 5, 7)"),
        (FirstToken, "token", "output must be (B, N, dim) = (2, 5, 16) on the probe input; it returned (2, 1, 16)"),
        (IgnoresOutDim, "sequence", "output must be (B, Lq, out_dim) = (2, 3, 8) on the probe input; it returned (2, 3, 16)"),
        (KeepsDims, "pooling", "weights must be (B, N) = (2, 5) on the probe input; it returned (2, 5, 1)"),
        (QueryContext, "alignment", "context must be (B, key_dim) = (2, 16) on the probe input; it returned (2, 12)"),
    ],
)  # fmt: skip
def test_a_probe_refuses_a_variant_that_changes_the_shape_its_slot_needs(cls, kind, complaint):
    check_attention_class(cls, ATTENTION_KINDS[kind], name="bad")  # the signature is right
    with pytest.raises(AttentionInterfaceError) as raised:
        probe_attention_class(cls, ATTENTION_KINDS[kind], name="bad")
    assert str(raised.value) == f"attention 'bad' ({cls.__qualname__}): a {kind} attention's {complaint}"


def test_a_probe_runs_on_meta_so_a_large_variant_costs_no_memory():
    class Huge(Scale):
        def __init__(self, channels: int, *, rd_channels: int | None = None, device=None, dtype=None):
            super().__init__(channels, device=device, dtype=dtype)
            self.table = nn.Parameter(torch.empty(10**6, 10**6))  # 4 TB anywhere but on meta

    probe_attention_class(Huge, CHANNEL, name="huge")


def test_a_variant_off_its_shape_is_refused_on_first_use_naming_plugin_and_variant(builtin_registry):
    builtin_registry.add_attention("halve", Halve, kind="channel", owner="shrinking")
    with pytest.raises(AttentionInterfaceError) as raised:
        zoo.create("resnet18", attn="halve", device="meta", registry=builtin_registry)
    assert str(raised.value).startswith(
        "plugin 'shrinking': attention 'halve' (Halve): a channel attention's output"
    )


def test_a_variant_is_probed_once():
    class Counted(Scale):
        forwards = 0

        def forward(self, x):
            Counted.forwards += 1
            return super().forward(x)

    registry = Registry()
    registry.add_attention("counted", Counted, kind="channel", owner="tests")
    variant = registry.attention("counted")
    variant.check()
    assert variant.module_class() is Counted and variant.module_class() is Counted
    assert Counted.forwards == 2  # one probe: at the variant's own reduced width, then at a slot's
