"""Every bad argument to the zoo's own functions and models, found from types and shapes
alone, is an `ArgumentError` (a `ZooError`) with a one-line message, never a raw TypeError,
IndexError or RuntimeError from deeper down."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.bench import benchmark
from zoo.errors import ArgumentError
from zoo_plugins.attention.functional import causal_mask, normalize_mask, sequence_mask


def seq2seq_lstm():
    return zoo.create("seq2seq_lstm_attn", src_vocab_size=13, tgt_vocab_size=13).eval()


def speech_lstm():
    return zoo.create("speech_lstm_attn").eval()


def text_transformer():
    return zoo.create("text_transformer_small", vocab_size=20, depth=1).eval()


def transformer_seq2seq():
    return zoo.create("transformer_seq2seq_small", src_vocab_size=20, tgt_vocab_size=20).eval()


IDS = torch.randint(3, 13, (2, 9))
FRAMES = torch.randn(2, 20, 80)

BAD_CALLS = {
    "create: checkpoint not a path": lambda: zoo.create("resnet18", checkpoint=123),
    "create: out_indices not ints": lambda: zoo.create("resnet18", features_only=True, out_indices="abc"),
    "causal_mask: negative size": lambda: causal_mask(-1),
    "causal_mask: not an int": lambda: causal_mask(2.5),
    "seq2seq LSTM: lengths past the sequence": lambda: seq2seq_lstm().generate(IDS, torch.tensor([12, 5])),
    "seq2seq LSTM: lengths of another batch": lambda: seq2seq_lstm().generate(IDS, torch.tensor([9, 5, 3])),
    "seq2seq LSTM: 1-D token ids": lambda: seq2seq_lstm().generate(IDS[0], torch.tensor([9])),
    "seq2seq LSTM: empty batch": lambda: seq2seq_lstm().generate(IDS[:0], torch.tensor([], dtype=torch.long)),
    "speech LSTM: lengths past the sequence": lambda: speech_lstm()(FRAMES, torch.tensor([30, 5])),
    "speech LSTM: empty batch": lambda: speech_lstm()(FRAMES[:0], torch.tensor([], dtype=torch.long)),
    "text transformer: 1-D token ids": lambda: text_transformer()(torch.randint(0, 20, (7,))),
    "text transformer: empty batch": lambda: text_transformer()(torch.randint(0, 20, (0, 7))),
    "transformer seq2seq: 1-D source": lambda: transformer_seq2seq().generate(torch.randint(0, 20, (7,))),
    "bench: run time without end": lambda: benchmark("resnet18", min_time=float("inf")),
    "bench: no samples": lambda: benchmark("resnet18", batch=0),
    "mask: more dimensions than the scores": lambda: normalize_mask(
        torch.ones(1, 1, 1, 1, 1, dtype=torch.bool), 4
    ),
    "mask: complex": lambda: normalize_mask(torch.ones(2, 3, dtype=torch.complex64), 2),
    "sequence mask: lengths and attention_mask both": lambda: sequence_mask(
        3, lengths=torch.tensor([3]), attention_mask=torch.ones(1, 3)
    ),
    "ViT: an image of another size": lambda: zoo.create("vit_tiny_patch16_224", depth=1)(
        torch.randn(1, 3, 32, 32)
    ),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_a_bad_argument_is_an_argument_error_in_one_line(call):
    with pytest.raises(ArgumentError) as raised:
        call()
    assert isinstance(raised.value, zoo.ZooError)
    assert len(str(raised.value).splitlines()) == 1
