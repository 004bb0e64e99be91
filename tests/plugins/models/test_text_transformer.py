"""The `text_transformer` family: `text_transformer_small` and `text_transformer_base`."""

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from safetensors.torch import save_file

import zoo
from zoo_plugins.attention.mha import MultiHeadAttention
from zoo_plugins.layers import sinusoidal_positions
from zoo_plugins.models.text_transformer import TextTransformerConfig

TINY = {"vocab_size": 40, "max_len": 12, "embed_dim": 16, "depth": 2, "num_heads": 4}


def tiny(**overrides):
    torch.manual_seed(0)
    return zoo.create("text_transformer_small", **{**TINY, **overrides})


def batch(seed=0, size=3, length=8, vocab=40):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (size, length), generator=g), torch.tensor([8, 5, 1][:size])


def expected_parameters(vocab, dim, depth, classes, positions=0, mlp_ratio=4):
    hidden = mlp_ratio * dim
    block = 2 * 2 * dim + 4 * (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)
    return vocab * dim + dim + positions * dim + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize(
    "name,expected",
    [
        ("text_transformer_small", expected_parameters(30522, 256, 4, 2)),
        ("text_transformer_base", expected_parameters(30522, 768, 12, 2, positions=513)),
    ],
)
def test_registry_entries_build_on_meta_with_the_expected_parameter_count(name, expected):
    model = zoo.create(name, device="meta")
    assert sum(p.numel() for p in model.parameters()) == expected
    assert zoo.model_info(name).num_params == expected
    assert isinstance(model.blocks[0].attn, MultiHeadAttention)
    assert "blocks.0.attn.q_proj.weight" in model.state_dict()


def test_small_registry_entry_classifies_a_padded_batch():
    model = zoo.create("text_transformer_small").eval()
    tokens, lengths = batch(length=8, vocab=30522)
    with torch.no_grad():
        assert model(tokens, lengths).shape == (3, 2)


@pytest.mark.parametrize("pos_embed", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pool", ["cls", "mean", "last"])
@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_padding_content_never_changes_the_result(pos_embed, pool, norm_first):
    model = tiny(pos_embed=pos_embed, pool=pool, norm_first=norm_first).eval()
    tokens, lengths = batch()
    noisy = tokens.clone()
    noisy[1, 5:] = 7
    noisy[2, 1:] = 9
    with torch.no_grad():
        logits = model(tokens, lengths)
        torch.testing.assert_close(model(noisy, lengths), logits, atol=1e-5, rtol=0)
        # a sequence gives the same logits alone, unpadded
        torch.testing.assert_close(model(tokens[1:2, :5]), logits[1:2], atol=1e-5, rtol=0)
        assert not torch.allclose(model(noisy), model(tokens)), "without lengths every token counts"


def test_a_hugging_face_attention_mask_means_what_lengths_mean():
    model = tiny(pool="mean").eval()
    tokens, lengths = batch()
    attention_mask = (torch.arange(8) < lengths[:, None]).long()  # 1 = real token
    with torch.no_grad():
        expected = model(tokens, lengths)
        torch.testing.assert_close(model(tokens, attention_mask=attention_mask), expected)
        torch.testing.assert_close(model(tokens, attention_mask=attention_mask.bool()), expected)
        features = model.forward_features(tokens, attention_mask=attention_mask)
        torch.testing.assert_close(model.forward_head(features, attention_mask=attention_mask), expected)
    with pytest.raises(ValueError, match="not both"):
        model(tokens, lengths, attention_mask)


@pytest.mark.parametrize("pool", ["cls", "mean", "last"])
def test_left_padding_is_honoured_through_the_attention_mask(pool):
    model = tiny(pool=pool).eval()
    tokens = torch.randint(1, 40, (2, 8), generator=torch.Generator().manual_seed(1))
    attention_mask = torch.tensor([[1] * 8, [0, 0, 0, 1, 1, 1, 1, 1]])
    noisy = tokens.clone()
    noisy[1, :3] = 11
    with torch.no_grad():
        logits = model(tokens, attention_mask=attention_mask)
        torch.testing.assert_close(model(noisy, attention_mask=attention_mask), logits, atol=1e-5, rtol=0)
        assert not torch.allclose(model(noisy), model(tokens))


def test_last_pooling_reads_the_last_real_token():
    model = tiny(pool="last", num_classes=0).eval()
    tokens, lengths = batch()
    assert model.num_prefix_tokens == 0 and model.cls_token is None
    with torch.no_grad():
        features = model.forward_features(tokens, lengths)
        pooled = model(tokens, lengths)
        left = model.forward_head(
            features, attention_mask=torch.tensor([[1] * 8, [0, 1, 1, 0, 0, 0, 0, 0], [0] * 8])
        )
    torch.testing.assert_close(pooled, features[torch.arange(3), lengths - 1])
    torch.testing.assert_close(left[:2], features[[0, 1], [7, 2]])
    assert torch.all(left[2] == 0), "a sequence with no real token pools to zeros"


def test_post_norm_blocks_norm_after_each_residual_and_have_no_final_norm():
    model = tiny(norm_first=False, drop_rate=0.0).eval()
    assert isinstance(model.norm, torch.nn.Identity)
    block, x = model.blocks[0], torch.randn(2, 5, 16)
    attended = block.attn(x, x, x)
    after_attention = block.norm1(x + attended)
    torch.testing.assert_close(block(x), block.norm2(after_attention + block.mlp(after_attention)))
    pre_norm = tiny().blocks[0]
    h = pre_norm.norm1(x)
    after_attention = x + pre_norm.attn(h, h, h)
    torch.testing.assert_close(
        pre_norm.eval()(x), after_attention + pre_norm.mlp(pre_norm.norm2(after_attention))
    )


def test_attention_weights_come_back_per_block_with_padded_keys_at_zero():
    model = tiny().eval()
    tokens, lengths = batch()
    with torch.no_grad():
        features, weights = model.forward_attention(tokens, lengths)
        torch.testing.assert_close(features, model.forward_features(tokens, lengths), atol=1e-5, rtol=0)
    assert features.shape == (3, 9, 16)  # class token + 8
    assert len(weights) == 2 and all(w.shape == (3, 4, 9, 9) for w in weights)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 9))
        assert torch.all(w[1, :, :, 6:] == 0) and torch.all(w[2, :, :, 2:] == 0)


def test_gradients_reach_every_parameter():
    model = tiny(pos_embed="learned", drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.1)
    tokens, lengths = batch()
    F.cross_entropy(model(tokens, lengths), torch.tensor([0, 1, 0])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_sinusoidal_positions_follow_the_paper():
    table = sinusoidal_positions(50, 6)
    p, i = 37, 2
    assert table[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / 6)), abs=1e-5)
    assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / 6)), abs=1e-5)
    assert sinusoidal_positions(4, 5).shape == (4, 5)


def test_a_checkpoint_round_trips_through_the_meta_build(tmp_path):
    model = tiny(pos_embed="learned").eval()
    save_file(model.state_dict(), tmp_path / "text.safetensors")
    loaded = zoo.create(
        "text_transformer_small", checkpoint=tmp_path / "text.safetensors", **TINY, pos_embed="learned"
    ).eval()
    tokens, lengths = batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, lengths), model(tokens, lengths))


def test_builds_in_the_requested_dtype():
    model = tiny(dtype="float64").eval()
    assert model(*batch()).dtype == torch.float64


def test_bad_arguments_and_inputs_say_what_is_wrong():
    with pytest.raises(ValidationError, match="not divisible"):
        TextTransformerConfig(embed_dim=10, num_heads=4)
    with pytest.raises(ValidationError, match="padding_idx"):
        TextTransformerConfig(vocab_size=10, padding_idx=10)
    with pytest.raises(zoo.ArgumentError, match="pos_embed"):
        zoo.create("text_transformer_small", pos_embed="rotary", device="meta")
    with pytest.raises(ValueError, match="at most 12"):
        tiny()(torch.ones(1, 13, dtype=torch.long))


def test_learns_to_tell_whether_a_keyword_occurs_and_ignores_it_in_the_padding(single_thread):
    """Label 1 iff token 3 occurs among the real tokens. The padding holds junk that would
    give the opposite answer, so only a model that honours the padding mask can score high."""
    vocab, keyword, length = 20, 3, 16
    generator = torch.Generator().manual_seed(0)

    def sample(n):
        lengths = torch.randint(4, length + 1, (n,), generator=generator)
        tokens = torch.randint(4, vocab, (n, length), generator=generator)
        labels = torch.randint(0, 2, (n,), generator=generator)
        where = (torch.rand(n, generator=generator) * lengths).long()
        tokens[labels == 1, where[labels == 1]] = keyword
        padded = torch.arange(length) >= lengths[:, None]
        tokens = torch.where(padded, torch.randint(4, vocab, (n, length), generator=generator), tokens)
        decoy = torch.where(labels == 0, keyword, 4)  # the opposite answer, where there is padding
        tokens[:, -1] = torch.where(lengths < length, decoy, tokens[:, -1])
        return tokens, lengths, labels

    torch.manual_seed(0)
    model = zoo.create(
        "text_transformer_small",
        vocab_size=vocab,
        max_len=length,
        embed_dim=32,
        depth=2,
        num_heads=4,
        padding_idx=None,
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(300):
        tokens, lengths, labels = sample(64)
        loss = F.cross_entropy(model(tokens, lengths), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    tokens, lengths, labels = sample(1000)
    with torch.no_grad():
        accuracy = (model(tokens, lengths).argmax(-1) == labels).float().mean()
        unmasked = (model(tokens).argmax(-1) == labels).float().mean()
    assert accuracy >= 0.95
    assert unmasked < 0.8, "the padding junk should mislead a model that sees it"
