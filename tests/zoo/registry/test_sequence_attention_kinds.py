"""The sequence, pooling and alignment kinds of attention: interfaces, specs, plugins.

That every registered variant follows its kind is `tests/test_attention_variants.py`.
"""

import pytest
import torch
from torch import nn

import zoo
import zoo_plugins
from zoo.attention import (
    ATTENTION_KINDS,
    AlignmentAttention,
    PoolingAttention,
    SequenceAttention,
)
from zoo.errors import ArgumentError, AttentionInterfaceError


def fresh_registry(*extra_plugins):
    """The built-in plugin and any extra ones, registered as installed plugins are."""
    manager = zoo.PluginManager()
    manager.register("builtin", zoo_plugins.register)
    for name, register in extra_plugins:
        record = manager.register(name, register)
        assert record.error is None, record.error
    return manager.registry


def test_the_new_kinds_fix_what_a_model_passes():
    assert ATTENTION_KINDS["sequence"].positional == ("embed_dim",)
    assert set(ATTENTION_KINDS["sequence"].keywords) == {
        "num_heads",
        "kdim",
        "vdim",
        "out_dim",
        "dropout",
        "bias",
        "device",
        "dtype",
    }
    assert ATTENTION_KINDS["pooling"].positional == ("dim",)
    assert ATTENTION_KINDS["alignment"].positional == ("query_dim", "key_dim")
    assert ATTENTION_KINDS["channel"].positional == ("channels",)  # unchanged
    assert ATTENTION_KINDS["token"].keywords == (
        "num_heads",
        "qkv_bias",
        "attn_drop",
        "proj_drop",
        "block_index",  # optional (interface 1.4): passed only to a class that names it
        "device",
        "dtype",
    )
    assert ATTENTION_KINDS["token"].optional == ("block_index",)


def test_a_class_missing_an_interface_argument_fails_when_first_loaded():
    class NoHeads(nn.Module):
        def __init__(self, embed_dim, *, kdim, vdim, out_dim, dropout, bias, device=None, dtype=None):
            super().__init__()

    registry = fresh_registry(("broken", lambda z: z.add_attention("noheads", NoHeads, kind="sequence")))
    with pytest.raises(AttentionInterfaceError, match="'num_heads'"):
        registry.attention("noheads").module_class()


def test_specs_accept_only_variants_of_their_own_kind():
    registry = zoo.default_registry()
    assert str(SequenceAttention.model_validate("mha", context={"registry": registry})) == "mha"
    spec = PoolingAttention.model_validate({"name": "hard", "hidden": 4}, context={"registry": registry})
    assert spec.options == {"hidden": 4}
    with pytest.raises(ValueError, match="unknown alignment attention 'soft'"):
        AlignmentAttention.model_validate("soft", context={"registry": registry})


def test_annotated_option_constraints_are_checked_before_building():
    for name, attn, message in [
        ("seq2seq_lstm_attn", {"name": "additive", "attn_dim": 0}, "option 'attn_dim'"),
        ("text_transformer_small", {"name": "mha", "dk": -1}, "option 'dk'"),
        ("speech_lstm_attn", {"name": "soft", "hidden": 0}, "option 'hidden'"),
    ]:
        with pytest.raises(ArgumentError, match=message):
            zoo.create(name, attn=attn, device="meta")


def test_models_reject_an_attention_of_another_kind_with_one_line():
    with pytest.raises(ArgumentError, match="unknown sequence attention 'soft'"):
        zoo.create("text_transformer_small", attn="soft", device="meta")
    with pytest.raises(ArgumentError, match="unknown pooling attention 'mha'"):
        zoo.create("speech_lstm_attn", attn="mha", device="meta")  # pooling or alignment
    with pytest.raises(ArgumentError, match="unknown alignment attention 'mha'"):
        zoo.create("seq2seq_lstm_attn", attn="mha", device="meta")


class TalkingHeads(nn.Module):
    """A third party's sequence attention: a multi-head attention whose outputs are scaled."""

    def __init__(
        self,
        embed_dim,
        *,
        num_heads,
        kdim,
        vdim,
        out_dim,
        dropout,
        bias,
        gain: float = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.inner = nn.MultiheadAttention(
            embed_dim,
            num_heads,
            dropout=dropout,
            bias=bias,
            kdim=kdim,
            vdim=vdim,
            batch_first=True,
            device=device,
            dtype=dtype,
        )
        self.gain = gain
        self.out = nn.Linear(embed_dim, out_dim, device=device, dtype=dtype) if out_dim else nn.Identity()

    def forward(self, query, key, value, mask=None, need_weights=False):
        if mask is not None:
            mask = ~mask.expand(query.shape[0], self.inner.num_heads, query.shape[1], key.shape[1]).flatten(
                0, 1
            )
        out, weights = self.inner(
            query, key, value, attn_mask=mask, need_weights=need_weights, average_attn_weights=False
        )
        out = self.gain * self.out(out)
        return (out, weights) if need_weights else out


class MeanPool(nn.Module):
    """A third party's pooling: the plain mean of the real elements."""

    def __init__(self, dim, *, device=None, dtype=None):
        super().__init__()

    def forward(self, x, mask=None):
        weights = torch.ones(x.shape[:2], dtype=x.dtype) if mask is None else mask.to(x.dtype)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1)
        return (weights.unsqueeze(-1) * x).sum(1), weights, None


def test_a_plugins_variants_plug_into_the_sequence_models():
    def register(z):
        z.add_attention("talking", TalkingHeads, kind="sequence")
        z.add_attention("mean", MeanPool, kind="pooling")

    registry = fresh_registry(("thirdparty", register))
    text = zoo.create(
        "text_transformer_small",
        registry=registry,
        vocab_size=50,
        embed_dim=16,
        depth=1,
        num_heads=2,
        attn={"name": "talking", "gain": 0.5},
    )
    assert isinstance(text.blocks[0].attn, TalkingHeads) and text.blocks[0].attn.gain == 0.5
    tokens, lengths = torch.randint(1, 50, (2, 5)), torch.tensor([5, 2])
    _, weights = text.eval().forward_attention(tokens, lengths)
    assert weights[0].shape == (2, 2, 6, 6) and torch.all(weights[0][1, :, :, 3:] == 0)

    speech = zoo.create("speech_lstm_attn", registry=registry, in_features=4, hidden_size=8, attn="mean")
    logits, frame_weights = speech.forward_attention(torch.randn(2, 6, 4), torch.tensor([6, 3]))
    assert logits.shape == (2, 35)
    torch.testing.assert_close(frame_weights[1], torch.tensor([1 / 3] * 3 + [0.0] * 3))
    with pytest.raises(ArgumentError, match="option 'gain'"):
        zoo.create("text_transformer_small", registry=registry, attn={"name": "talking", "gain": "loud"})
