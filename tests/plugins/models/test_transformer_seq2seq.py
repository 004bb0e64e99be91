"""The `transformer_seq2seq` family: masks, teacher forcing, greedy and beam search, the cache."""

import functools
import itertools

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from safetensors.torch import save_file
from torch import nn

import zoo
import zoo_plugins
from zoo.attention import IncrementalAttention
from zoo_plugins.models.transformer_seq2seq import LayerCache, Search, TransformerSeq2SeqConfig

PAD, BOS, EOS, FIRST_DIGIT = 0, 1, 2, 3
TINY = {
    "src_vocab_size": 13,
    "tgt_vocab_size": 13,
    "max_len": 32,
    "embed_dim": 16,
    "encoder_depth": 2,
    "decoder_depth": 2,
    "num_heads": 2,
}
SEQUENCE_VARIANTS = [
    v.name for v in zoo.default_registry().components("attention") if v.kind.name == "sequence"
]
SLOTS = ("attn", "cross_attn")


def tiny(registry=None, **overrides):
    torch.manual_seed(0)
    return zoo.create("transformer_seq2seq_small", registry=registry, **{**TINY, **overrides}).eval()


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


def expected_parameters(config: TransformerSeq2SeqConfig) -> int:
    dim, hidden = config.embed_dim, int(config.embed_dim * config.mlp_ratio)
    attention = 4 * (dim * dim + dim)
    mlp = dim * hidden + hidden + hidden * dim + dim
    norm = 2 * dim
    encoder = config.encoder_depth * (attention + mlp + 2 * norm)
    decoder = config.decoder_depth * (2 * attention + mlp + 3 * norm)
    final_norms = 2 * norm if config.norm_first else 0
    embeddings = config.src_vocab_size * dim + (0 if config.share_embeddings else config.tgt_vocab_size * dim)
    head = 0 if config.tie_embeddings else dim * config.tgt_vocab_size
    positions = 2 * config.max_len * dim if config.pos_embed == "learned" else 0
    return encoder + decoder + final_norms + embeddings + head + positions


@pytest.mark.parametrize("name", ["transformer_seq2seq_small", "transformer_seq2seq_base"])
def test_registry_entries_have_the_parameters_of_their_architecture(name):
    model = zoo.create(name, device="meta")
    count = sum(p.numel() for p in model.parameters())
    assert count == expected_parameters(model.config) == zoo.model_info(name).num_params


def test_the_base_entry_is_the_papers_base_model():
    model = zoo.create("transformer_seq2seq_base", device="meta")
    config = model.config
    assert (config.embed_dim, config.num_heads, config.encoder_depth, config.decoder_depth) == (512, 8, 6, 6)
    assert model.decoder.layers[0].mlp.fc1.out_features == 2048
    assert not config.norm_first and config.pos_embed == "sinusoidal"
    # one embedding for source, target and output: 37000 x 512 once, about 63 M in all
    embeddings = [name for name in model.state_dict() if "embed" in name or name.startswith("head")]
    assert embeddings == ["src_embed.weight"]
    assert 62e6 < zoo.model_info("transformer_seq2seq_base").num_params < 66e6


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("variant", SEQUENCE_VARIANTS)
def test_any_sequence_attention_plugs_into_either_slot(variant, slot):
    model = tiny(**{slot: variant})
    cls = zoo.default_registry().attention(variant).module_class()
    layer = model.decoder.layers[0]
    assert isinstance(layer.cross_attn if slot == "cross_attn" else layer.self_attn, cls)
    src, lengths, tgt = digits(2, torch.Generator().manual_seed(0))
    assert model(src, tgt, lengths).shape == (2, tgt.shape[1], 13)


def test_teacher_forcing_feeds_bos_then_the_target_shifted_right():
    model = tiny()
    src, lengths, tgt = digits(2, torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(src, tgt, lengths)
        changed = tgt.clone()
        changed[:, 3] = FIRST_DIGIT + (changed[:, 3] - FIRST_DIGIT + 1) % 10
        other = model(src, changed, lengths)
    # the logits at step t depend on tgt[:, :t] only: the decoder's self-attention is causal
    torch.testing.assert_close(other[:, :4], logits[:, :4])
    assert not torch.allclose(other[:, 4:], logits[:, 4:])


@pytest.mark.parametrize("norm_first", [True, False])
def test_a_padded_source_gives_what_the_unpadded_one_gives(norm_first):
    model = tiny(norm_first=norm_first, pos_embed="learned")
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(1))
    noisy = src.masked_fill(src == PAD, 7)  # what padding holds must not matter
    with torch.no_grad():
        padded = model(noisy, tgt, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone = model(src[row : row + 1, :length], tgt[row : row + 1])
            torch.testing.assert_close(padded[row : row + 1], alone, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model(noisy, tgt, src_mask=src != PAD), padded)
        _, weights = model.forward_attention(noisy, tgt, lengths)
    assert len(weights) == 2 and weights[0].shape == (3, 2, tgt.shape[1], src.shape[1])
    padding = (src == PAD)[:, None, None, :].expand_as(weights[0])
    assert all(torch.all(w[padding] == 0) for w in weights)
    torch.testing.assert_close(weights[-1].sum(-1), torch.ones(3, 2, tgt.shape[1]))
    for beams in (1, 3):
        generated = model.generate(noisy, lengths, max_new_tokens=8, num_beams=beams)
        for row, length in enumerate(lengths.tolist()):
            alone = model.generate(src[row : row + 1, :length], max_new_tokens=8, num_beams=beams)
            width = alone.tokens.shape[1]
            assert torch.equal(generated.tokens[row, :width], alone.tokens[0])
            assert torch.all(generated.tokens[row, width:] == PAD)


def test_padded_target_steps_never_reach_the_real_ones():
    model = tiny()
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(3))
    real = tgt != PAD
    noisy = tgt.masked_fill(~real, 5)
    with torch.no_grad():
        logits = model(src, tgt, lengths)
        for other in (model(src, noisy, lengths), model(src, noisy, lengths, tgt_mask=real)):
            # step t reads tgt[:, t - 1]: the steps up to a row's eos read real tokens only
            steps = torch.cat([real.new_ones(3, 1), real[:, :-1]], dim=1)
            torch.testing.assert_close(other[steps], logits[steps], atol=1e-5, rtol=1e-4)


def test_the_output_projection_can_be_the_target_embedding(tmp_path):
    model = tiny(tie_embeddings=True, share_embeddings=True)
    names = [n for n in model.state_dict() if "embed" in n or n.startswith("head")]
    assert names == ["src_embed.weight"], "tied tensors are one parameter, saved once"
    h = torch.randn(2, 3, 16)
    torch.testing.assert_close(model.logits(h), h @ model.src_embed.weight.T)
    untied = tiny(tie_embeddings=False)
    assert {"src_embed.weight", "tgt_embed.weight", "head.weight"} <= set(untied.state_dict())
    with pytest.raises(ValidationError, match="share_embeddings needs one vocabulary"):
        TransformerSeq2SeqConfig(src_vocab_size=10, tgt_vocab_size=12, share_embeddings=True)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"share_embeddings": True}, {"tie_embeddings": False, "pos_embed": "learned", "norm_first": False}],
)
def test_a_checkpoint_round_trips_through_the_meta_build(tmp_path, overrides):
    model = tiny(**overrides)
    save_file(model.state_dict(), tmp_path / "t2t.safetensors")
    loaded = zoo.create(
        "transformer_seq2seq_small", checkpoint=tmp_path / "t2t.safetensors", **TINY, **overrides
    ).eval()
    src, lengths, tgt = digits(3, torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(loaded(src, tgt, lengths), model(src, tgt, lengths))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"share_embeddings": True}, {"tie_embeddings": False, "pos_embed": "learned", "norm_first": False}],
)
def test_gradients_reach_every_parameter(overrides):
    model = tiny(drop_rate=0.1, **overrides).train()
    src, lengths, tgt = digits(4, torch.Generator().manual_seed(4))
    F.cross_entropy(model(src, tgt, lengths).transpose(1, 2), tgt, ignore_index=PAD).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_config_refuses_what_cannot_be_built():
    with pytest.raises(ValidationError, match="eos_id 20 is not below tgt_vocab_size"):
        TransformerSeq2SeqConfig(tgt_vocab_size=13, eos_id=20)
    with pytest.raises(ValidationError, match="pad_id must differ"):
        TransformerSeq2SeqConfig(pad_id=1, bos_id=1)
    with pytest.raises(ValidationError, match="not divisible by num_heads"):
        TransformerSeq2SeqConfig(embed_dim=30, num_heads=4)


def test_generate_refuses_bad_arguments_with_one_line():
    model = tiny()
    src, lengths, _ = digits(2, torch.Generator().manual_seed(6))
    for kwargs, message in [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 33}, "max_len 32"),
        ({"num_beams": 0}, "num_beams"),
        ({"eos_id": 13}, "eos_id 13"),
        ({"src_mask": src != PAD}, "not both"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.generate(src, lengths, **kwargs)
    with pytest.raises(ValueError, match="longer than this model's max_len"):
        model(torch.ones(1, 33, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))


class TorchAttention(nn.Module):
    """A third party's sequence attention with no key-value cache: `torch.nn.MultiheadAttention`."""

    def __init__(self, embed_dim, *, num_heads, kdim, vdim, out_dim, dropout, bias, device=None, dtype=None):
        super().__init__()
        self.inner = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim, batch_first=True,
            device=device, dtype=dtype,
        )  # fmt: skip
        same = out_dim in (None, embed_dim)
        self.out = nn.Identity() if same else nn.Linear(embed_dim, out_dim, device=device, dtype=dtype)

    def forward(self, query, key, value, mask=None, need_weights=False):
        if mask is not None:  # torch's masks say True = may not attend
            heads = self.inner.num_heads
            mask = ~mask.expand(query.shape[0], heads, query.shape[1], key.shape[1]).flatten(0, 1)
        out, weights = self.inner(
            query, key, value, attn_mask=mask, need_weights=need_weights, average_attn_weights=False
        )
        out = self.out(out)
        return (out, weights) if need_weights else out


@functools.cache
def with_torch_attention():
    """The built-in plugin and one that adds `torch_mha`."""
    manager = zoo.PluginManager()
    manager.register("builtin", zoo_plugins.register)
    record = manager.register(
        "thirdparty", lambda z: z.add_attention("torch_mha", TorchAttention, kind="sequence")
    )
    assert record.error is None, record.error
    return manager.registry


def step_by_step_logits(model, tokens, memory, mask, chunks):
    """Logits of decoding `tokens` through a cache, fed `chunks` steps at a time."""
    caches, logits, offset = [LayerCache() for _ in model.decoder.layers], [], 0
    for size in chunks:
        step, _ = model.decode(tokens[:, offset : offset + size], memory, mask, caches=caches, offset=offset)
        logits.append(step)
        offset += size
    return torch.cat(logits, dim=1), caches


@pytest.mark.parametrize("cached", ["mha", "torch_mha"])
def test_the_cache_holds_projected_keys_when_the_attention_offers_them_and_inputs_otherwise(cached):
    model = tiny(registry=with_torch_attention(), attn=cached)
    src, lengths, tgt = digits(2, torch.Generator().manual_seed(7))
    tokens = torch.cat([torch.full((2, 1), BOS), tgt[:, :-1]], dim=1)
    with torch.no_grad():
        memory, mask = model.encode(src, lengths)
        full, _ = model.decode(tokens, memory, mask)
        length = tokens.shape[1]
        stepped, caches = step_by_step_logits(model, tokens, memory, mask, [3] + [1] * (length - 5) + [2])
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-4)
    attention = model.decoder.layers[0].self_attn
    keys, _ = caches[0].self_kv
    if isinstance(attention, IncrementalAttention):
        assert keys.shape == (2, 2, length, 8), "(B, heads, T, head size)"
    else:
        assert keys.shape == (2, length, 16), "(B, T, embed_dim): the sublayer's inputs"
    assert caches[0].cross_kv[0].shape[:1] == (2,) and caches[0].cross_kv[0].shape[-2] == src.shape[1]


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("variant", [*SEQUENCE_VARIANTS, "torch_mha"])
@pytest.mark.parametrize("beams", [1, 3])
def test_cached_decoding_gives_what_recomputing_every_step_gives(variant, slot, beams):
    model = tiny(registry=with_torch_attention(), **{slot: variant})
    src, lengths, _ = digits(3, torch.Generator().manual_seed(8))
    options = {"max_new_tokens": 10, "num_beams": beams, "output_attentions": True}
    cached = model.generate(src, lengths, **options)
    recomputed = model.generate(src, lengths, use_cache=False, **options)
    assert torch.equal(cached.tokens, recomputed.tokens)
    torch.testing.assert_close(cached.scores, recomputed.scores, atol=1e-5, rtol=1e-4)
    for ours, theirs in zip(cached.cross_attentions, recomputed.cross_attentions, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def reverser():
    """A small model trained to reverse 4 to 8 digits, and the sequences it was trained on."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models train several times faster without intra-op threads
    try:
        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        model = zoo.create(
            "transformer_seq2seq_small",
            src_vocab_size=13,
            tgt_vocab_size=13,
            max_len=16,
            embed_dim=64,
            num_heads=4,
            encoder_depth=2,
            decoder_depth=2,
            mlp_ratio=2.0,
            share_embeddings=True,
        )
        steps = 300
        optimiser = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98))
        warmup_then_decay = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min(1.0, (step + 1) / 50) * (1 - step / steps)
        )
        seen = set()
        for _ in range(steps):
            src, lengths, tgt = digits(32, generator, longest=8)
            seen.update(tuple(row[:n].tolist()) for row, n in zip(src, lengths.tolist(), strict=True))
            loss = F.cross_entropy(model(src, tgt, lengths).transpose(1, 2), tgt, ignore_index=PAD)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            warmup_then_decay.step()
        yield model.eval(), seen
    finally:
        torch.set_num_threads(threads)


def held_out(seen, n, seed):
    src, lengths, tgt = digits(n, torch.Generator().manual_seed(seed), longest=8)
    unseen = torch.tensor(
        [tuple(r[:k].tolist()) not in seen for r, k in zip(src, lengths.tolist(), strict=True)]
    )
    return src[unseen], lengths[unseen], tgt[unseen]


def test_learns_to_reverse_digit_sequences(reverser):
    """Held-out sequences (never seen in training) of 4 to 8 digits, >= 95% exactly right."""
    model, seen = reverser
    src, lengths, tgt = held_out(seen, 400, seed=1)
    assert len(src) >= 300
    for beams in (1, 4):
        tokens = model.generate(src, lengths, max_new_tokens=tgt.shape[1], num_beams=beams).tokens
        tokens = F.pad(tokens, (0, tgt.shape[1] - tokens.shape[1]), value=PAD)
        assert (tokens == tgt).all(dim=1).float().mean() >= 0.95
    # and the last layer's cross-attention learned the reversal: step t looks at length-1-t
    generated = model.generate(src[:50], lengths[:50], max_new_tokens=tgt.shape[1], output_attentions=True)
    weights = generated.cross_attentions[-1].mean(dim=1)  # (B, T, S), over heads
    picked = [
        (weights[row, :n].argmax(-1) == torch.arange(n - 1, -1, -1)).float().mean()
        for row, n in enumerate(lengths[:50].tolist())
    ]
    assert torch.stack(picked).mean() >= 0.7


def test_greedy_decoding_takes_the_argmax_and_stops_at_eos(reverser):
    model, seen = reverser
    src, lengths, _ = held_out(seen, 8, seed=2)
    generated = model.generate(src, lengths, max_new_tokens=12, output_attentions=True)
    with torch.no_grad():
        logits = model(src, generated.tokens, lengths)
    log_probs = logits.log_softmax(-1)
    for row in range(len(src)):
        ended = (generated.tokens[row] == EOS).nonzero()
        assert len(ended), "a trained reverser ends every row"
        stop = int(ended[0]) + 1
        assert torch.equal(logits[row, :stop].argmax(-1), generated.tokens[row, :stop])
        assert torch.all(generated.tokens[row, stop:] == PAD)
        assert all(torch.all(w[row, :, stop:] == 0) for w in generated.cross_attentions)
        chosen = log_probs[row, :stop].gather(1, generated.tokens[row, :stop, None]).sum()
        torch.testing.assert_close(generated.scores[row], chosen / stop, atol=1e-5, rtol=1e-4)


def test_a_beam_of_one_is_greedy_decoding(reverser):
    model, seen = reverser
    src, lengths, _ = held_out(seen, 8, seed=3)
    memory, mask = model.encode(src, lengths)

    def search():
        return Search(
            model, memory, mask, beams=1, bos_id=BOS, eos_id=EOS, length_penalty=1.0,
            output_attentions=True, use_cache=True,
        )  # fmt: skip

    greedy, beam = search().greedy(12), search().beam(12)
    assert torch.equal(beam.tokens, greedy.tokens)
    torch.testing.assert_close(beam.scores, greedy.scores)
    for ours, theirs in zip(beam.cross_attentions, greedy.cross_attentions, strict=True):
        torch.testing.assert_close(ours, theirs)
    assert torch.equal(model.generate(src, lengths, max_new_tokens=12).tokens, greedy.tokens)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_wide_enough_to_prune_nothing_finds_the_best_sequence(length_penalty):
    """Three steps over 13 tokens: every hypothesis fits in 169 beams, so beam search is
    exhaustive and must return the best of all 1885 possible outputs."""
    model = tiny()
    src = torch.tensor([[4, 7, 5, 9, 3]])
    found = model.generate(src, max_new_tokens=3, num_beams=169, length_penalty=length_penalty)
    tokens = [t for t in range(13) if t != EOS]
    outputs = (
        [(EOS,)] + [(a, EOS) for a in tokens] + [(a, b, EOS) for a, b in itertools.product(tokens, repeat=2)]
    )
    outputs += list(itertools.product(tokens, repeat=3))  # unfinished at max_new_tokens
    best, best_score = None, float("-inf")
    with torch.no_grad():
        for length in (1, 2, 3):
            group = torch.tensor([o for o in outputs if len(o) == length])
            log_probs = model(src.expand(len(group), -1), group).log_softmax(-1)
            scores = log_probs.gather(2, group[..., None])[..., 0].sum(1) / length**length_penalty
            if scores.max() > best_score:
                best_score, best = float(scores.max()), group[scores.argmax()]
    assert found.tokens[0, : len(best)].tolist() == best.tolist()
    assert torch.all(found.tokens[0, len(best) :] == PAD)
    torch.testing.assert_close(found.scores[0].item(), best_score, atol=1e-5, rtol=1e-4)
