"""The `seq2seq_lstm` family (`seq2seq_lstm_attn`): encoder outputs, additive attention, decoding."""

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from safetensors.torch import save_file

import zoo
from zoo_plugins.attention.additive import AdditiveAttention
from zoo_plugins.models.seq2seq_lstm import Seq2SeqConfig

PAD, BOS, EOS, FIRST_DIGIT = 0, 1, 2, 3
TINY = {"src_vocab_size": 13, "tgt_vocab_size": 13, "embed_dim": 8, "hidden_size": 12}


def tiny(**overrides):
    torch.manual_seed(0)
    return zoo.create("seq2seq_lstm_attn", **{**TINY, **overrides})


def digits(n, generator, shortest=4, longest=12):
    """Random digit sequences, padded, and their reversals (targets end with EOS)."""
    lengths = torch.randint(shortest, longest + 1, (n,), generator=generator)
    width = int(lengths.max())
    src = (torch.randint(0, 10, (n, width), generator=generator) + FIRST_DIGIT).masked_fill(
        torch.arange(width) >= lengths[:, None], PAD
    )
    tgt = torch.full((n, width + 1), PAD)
    for row, length in enumerate(lengths.tolist()):
        tgt[row, :length] = src[row, :length].flip(0)
        tgt[row, length] = EOS
    return src, lengths, tgt


def expected_parameters(src_vocab, tgt_vocab, embed, hidden):
    lstm = 4 * hidden * (embed + hidden) + 8 * hidden  # one direction, one layer
    memory = 2 * hidden
    encoder = src_vocab * embed + 2 * lstm + 2 * (memory * hidden + hidden)  # + init_h, init_c
    attention = hidden * hidden + (memory * hidden + hidden) + hidden
    cell = 4 * hidden * (embed + memory + hidden) + 8 * hidden
    output = (hidden + memory + embed) * hidden + hidden + hidden * tgt_vocab + tgt_vocab
    return encoder + tgt_vocab * embed + attention + cell + output


def test_registry_entry_builds_on_meta_with_the_expected_parameter_count():
    model = zoo.create("seq2seq_lstm_attn", device="meta")
    expected = expected_parameters(32000, 32000, 256, 512)
    assert (
        sum(p.numel() for p in model.parameters())
        == expected
        == zoo.model_info("seq2seq_lstm_attn").num_params
    )
    assert isinstance(model.decoder.attn, AdditiveAttention)
    assert model.decoder.attn.key_proj.in_features == 1024, "the attention reads the encoder outputs"


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_decoder_attends_over_every_encoder_output_with_consistent_shapes(bidirectional, num_layers):
    model = tiny(bidirectional=bidirectional, num_layers=num_layers).eval()
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(0))
    memory, mask, state = model.encode(src, lengths)
    directions = 2 if bidirectional else 1
    assert memory.shape == (3, src.shape[1], 12 * directions) and memory.is_floating_point()
    assert torch.equal(mask, src != PAD)
    assert len(state) == num_layers and all(h.shape == c.shape == (3, 12) for h, c in state)
    assert torch.all(memory[~mask] == 0), "padded steps have no encoder output"
    logits, weights = model.forward_attention(src, tgt, lengths)
    assert logits.shape == (3, tgt.shape[1], 13)
    assert weights.shape == (3, tgt.shape[1], src.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, tgt.shape[1]))
    assert torch.all(weights.masked_select(~mask[:, None, :].expand_as(weights)) == 0)
    torch.testing.assert_close(model(src, tgt, lengths), logits)


def test_padding_content_in_the_source_changes_nothing():
    model = tiny().eval()
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(1))
    noisy = src.masked_fill(src == PAD, 7)
    with torch.no_grad():
        torch.testing.assert_close(model(noisy, tgt, lengths), model(src, tgt, lengths), atol=1e-5, rtol=0)


def test_a_source_attention_mask_means_what_source_lengths_mean():
    model = tiny().eval()
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(4))
    attention_mask = (src != PAD).long()  # 1 = real token, as Hugging Face tokenizers give it
    with torch.no_grad():
        logits, weights = model.forward_attention(src, tgt, lengths)
        torch.testing.assert_close(model(src, tgt, attention_mask=attention_mask), logits)
        torch.testing.assert_close(
            model.forward_attention(src, tgt, attention_mask=attention_mask)[1], weights
        )
    generated = model.generate(src, lengths, max_len=5)
    assert torch.equal(model.generate(src, attention_mask=attention_mask, max_len=5), generated)
    with pytest.raises(ValueError, match="right-padded"):
        model(src, tgt, attention_mask=attention_mask.flip(1))


def test_teacher_forcing_feeds_bos_then_the_target_shifted_right():
    model = tiny().eval()
    src, lengths, tgt = digits(2, torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(src, tgt, lengths)
        # the logits at step t depend on tgt[:, :t] only
        changed = tgt.clone()
        changed[:, 3] = FIRST_DIGIT + (changed[:, 3] - FIRST_DIGIT + 1) % 10
        other = model(src, changed, lengths)
    torch.testing.assert_close(other[:, :4], logits[:, :4])
    assert not torch.allclose(other[:, 4:], logits[:, 4:])


def test_generate_decodes_greedily_and_stops_at_eos():
    model = tiny().eval()
    src, lengths, _ = digits(4, torch.Generator().manual_seed(3))
    tokens, weights = model.generate(src, lengths, max_len=6, return_attention=True)
    assert tokens.shape[1] <= 6 and weights.shape == (4, tokens.shape[1], src.shape[1])
    assert torch.equal(model.generate(src, lengths, max_len=6), tokens)
    # greedy: each token is the argmax of the teacher-forced logits on the tokens so far
    with torch.no_grad():
        logits = model(src, tokens, lengths)
    for row in range(4):
        ended = (tokens[row] == EOS).nonzero()
        stop = int(ended[0]) + 1 if len(ended) else tokens.shape[1]
        assert torch.equal(logits[row, :stop].argmax(-1), tokens[row, :stop])
        assert torch.all(tokens[row, stop:] == PAD) and torch.all(weights[row, stop:] == 0)
    with pytest.raises(ValueError, match="max_len"):
        model.generate(src, lengths, max_len=0)


def test_gradients_reach_every_parameter():
    model = tiny(num_layers=2, dropout=0.1)
    src, lengths, tgt = digits(4, torch.Generator().manual_seed(4))
    F.cross_entropy(model(src, tgt, lengths).transpose(1, 2), tgt, ignore_index=PAD).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_checkpoint_round_trips_through_the_meta_build(tmp_path):
    model = tiny().eval()
    save_file(model.state_dict(), tmp_path / "s2s.safetensors")
    loaded = zoo.create("seq2seq_lstm_attn", checkpoint=tmp_path / "s2s.safetensors", **TINY).eval()
    src, lengths, _ = digits(3, torch.Generator().manual_seed(5))
    assert torch.equal(loaded.generate(src, lengths, max_len=8), model.generate(src, lengths, max_len=8))


def test_token_ids_must_fit_the_vocabularies():
    with pytest.raises(ValidationError, match="eos_id 20 is not below tgt_vocab_size"):
        Seq2SeqConfig(tgt_vocab_size=13, eos_id=20)
    with pytest.raises(ValidationError, match="pad_id must differ"):
        Seq2SeqConfig(pad_id=1, bos_id=1)


def test_learns_to_reverse_digit_sequences(single_thread):
    """Held-out sequences (never seen in training) of 4 to 12 digits, >= 95% exactly right."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = zoo.create(
        "seq2seq_lstm_attn", src_vocab_size=13, tgt_vocab_size=13, embed_dim=32, hidden_size=64
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    seen = set()
    for _ in range(300):
        src, lengths, tgt = digits(64, generator)
        seen.update(tuple(row[:n].tolist()) for row, n in zip(src, lengths.tolist(), strict=True))
        loss = F.cross_entropy(model(src, tgt, lengths).transpose(1, 2), tgt, ignore_index=PAD)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    src, lengths, tgt = digits(600, torch.Generator().manual_seed(1))
    held_out = torch.tensor(
        [tuple(row[:n].tolist()) not in seen for row, n in zip(src, lengths.tolist(), strict=True)]
    )
    src, lengths, tgt = src[held_out], lengths[held_out], tgt[held_out]
    assert len(src) >= 500
    model.eval()
    tokens = model.generate(src, lengths, max_len=tgt.shape[1])
    tokens = F.pad(tokens, (0, tgt.shape[1] - tokens.shape[1]), value=PAD)
    exact = (tokens == tgt).all(dim=1).float().mean()
    assert exact >= 0.95
    # and the attention learned the reversal: output step t looks at source position length-1-t
    _, weights = model.generate(src[:50], lengths[:50], max_len=tgt.shape[1], return_attention=True)
    picked = [
        (weights[row, : lengths[row]].argmax(-1) == torch.arange(lengths[row] - 1, -1, -1)).float().mean()
        for row in range(50)
    ]
    assert torch.stack(picked).mean() >= 0.8
