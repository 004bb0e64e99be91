"""The `speech_lstm` family (`speech_lstm_attn`): LSTM over frames, attention pooling, classifier."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import zoo
from zoo_plugins.attention.additive import AdditiveAttention
from zoo_plugins.attention.hard import HardAttentionPooling
from zoo_plugins.attention.soft import SoftAttentionPooling

TINY = {"in_features": 6, "hidden_size": 10, "num_layers": 2, "num_classes": 3}
LENGTHS = torch.tensor([9, 5, 1])


def tiny(**overrides):
    torch.manual_seed(0)
    return zoo.create("speech_lstm_attn", **{**TINY, **overrides})


def frames(batch=3, length=9, features=6, seed=0):
    return torch.randn(batch, length, features, generator=torch.Generator().manual_seed(seed))


def test_registry_entry_builds_on_meta_with_the_expected_parameter_count():
    model = zoo.create("speech_lstm_attn", device="meta")
    hidden, mels, classes = 256, 80, 35

    def lstm_layer(inputs):  # both directions
        return 2 * (4 * hidden * (inputs + hidden) + 8 * hidden)

    pooling = 2 * hidden * 2 * hidden + 2 * hidden + 2 * hidden
    expected = lstm_layer(mels) + lstm_layer(2 * hidden) + pooling + 2 * hidden * classes + classes
    assert (
        sum(p.numel() for p in model.parameters())
        == expected
        == zoo.model_info("speech_lstm_attn").num_params
    )
    assert isinstance(model.pool, SoftAttentionPooling)


def test_registry_entry_classifies_80_bin_log_mel_frames():
    model = zoo.create("speech_lstm_attn").eval()
    with torch.no_grad():
        logits, weights = model.forward_attention(frames(2, 20, 80), torch.tensor([20, 12]))
    assert logits.shape == (2, 35) and weights.shape == (2, 20)
    assert torch.all(weights[1, 12:] == 0)


@pytest.mark.parametrize("attn", ["soft", "hard", "additive"])
def test_padded_frames_get_no_attention_and_change_nothing(attn):
    model = tiny(attn=attn).eval()
    x = frames()
    noisy = x.clone()
    noisy[1, 5:] = 100.0
    noisy[2, 1:] = -100.0
    with torch.no_grad():
        logits, weights = model.forward_attention(x, LENGTHS)
        torch.testing.assert_close(model(noisy, LENGTHS), logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(model(x[1:2, :5]), logits[1:2], atol=1e-5, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[1, 5:] == 0) and torch.all(weights[2, 1:] == 0)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_additive_attention_is_queried_with_the_last_hidden_state(bidirectional):
    model = tiny(attn={"name": "additive", "attn_dim": 7}, bidirectional=bidirectional).eval()
    assert isinstance(model.pool, AdditiveAttention) and model.queried
    assert model.pool.query_proj.weight.shape == (7, model.num_features)
    x = frames()
    with torch.no_grad():
        pooled = model.forward_pool(x, LENGTHS)
        outputs, (h_n, _) = model.encoder(x, LENGTHS)
        top = h_n[-2:] if bidirectional else h_n[-1:]
        query = torch.cat(list(top), dim=-1)  # (B, num_features)
        context, weights = model.pool(query, outputs, torch.arange(9) < LENGTHS[:, None])
    torch.testing.assert_close(pooled.output, context)
    torch.testing.assert_close(pooled.weights, weights)
    assert pooled.log_prob is None
    if not bidirectional:  # one direction: the last hidden state is the output at the last real frame
        torch.testing.assert_close(query, outputs[torch.arange(3), LENGTHS - 1])


def test_a_slot_of_either_kind_says_what_fits_it():
    with pytest.raises(
        zoo.ArgumentError, match=r"'mha' is a sequence attention.*alignment attention: additive"
    ):
        tiny(attn="mha")
    with pytest.raises(zoo.ArgumentError, match="attention 'additive': unknown option 'hidden'"):
        tiny(attn={"name": "additive", "hidden": 3})
    assert str(tiny(attn={"name": "soft", "hidden": 4}).config.attn) == "soft(hidden=4)"


def test_an_attention_mask_means_what_lengths_mean_and_must_be_right_padded():
    model = tiny().eval()
    x = frames()
    attention_mask = (torch.arange(9) < LENGTHS[:, None]).long()  # 1 = real frame
    with torch.no_grad():
        expected, expected_weights = model.forward_attention(x, LENGTHS)
        logits, weights = model.forward_attention(x, attention_mask=attention_mask)
        torch.testing.assert_close(model(x, attention_mask=attention_mask), expected)
        torch.testing.assert_close(
            model.forward_features(x, attention_mask=attention_mask), model.forward_features(x, LENGTHS)
        )
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(weights, expected_weights)
    with pytest.raises(ValueError, match="right-padded"):
        model(x, attention_mask=attention_mask.flip(1))


def test_hard_attention_gives_the_log_probability_for_reinforce():
    model = tiny(attn="hard")
    assert isinstance(model.pool, HardAttentionPooling)
    pooled = model.forward_pool(frames(), LENGTHS)
    assert pooled.log_prob.shape == (3,) and torch.all(pooled.weights.sum(-1) == 1)
    logits = model.forward_head(pooled.output)
    reward = (logits.argmax(-1) == torch.tensor([0, 1, 2])).float()
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 2])) - ((reward - 0.5) * pooled.log_prob).mean()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("attn", ["soft", "additive"])
def test_gradients_reach_every_parameter(attn):
    model = tiny(dropout=0.1, drop_rate=0.1, attn=attn)
    F.cross_entropy(model(frames(), LENGTHS), torch.tensor([0, 1, 2])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_without_a_head_it_returns_the_pooled_features():
    model = tiny(num_classes=0, bidirectional=False).eval()
    assert model(frames(), LENGTHS).shape == (3, 10)


def test_a_checkpoint_round_trips_through_the_meta_build(tmp_path):
    model = tiny().eval()
    save_file(model.state_dict(), tmp_path / "speech.safetensors")
    loaded = zoo.create("speech_lstm_attn", checkpoint=tmp_path / "speech.safetensors", **TINY).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames(), LENGTHS), model(frames(), LENGTHS))


def test_learns_which_frame_pattern_an_utterance_holds(single_thread):
    """Each utterance is noise with one short burst of one of three spectral patterns, at a
    random place; padding holds the wrong pattern. The model must find the burst."""
    generator = torch.Generator().manual_seed(0)
    patterns = torch.randn(3, 6, generator=generator) * 2

    def sample(n, length=24):
        lengths = torch.randint(8, length + 1, (n,), generator=generator)
        labels = torch.randint(0, 3, (n,), generator=generator)
        x = torch.randn(n, length, 6, generator=generator)
        start = (torch.rand(n, generator=generator) * (lengths - 3)).long()
        for row in range(n):
            x[row, start[row] : start[row] + 3] += patterns[labels[row]]
            if lengths[row] < length:
                x[row, lengths[row] :] += patterns[(labels[row] + 1) % 3]
        return x, lengths, labels, start

    torch.manual_seed(0)
    model = zoo.create("speech_lstm_attn", in_features=6, hidden_size=16, num_layers=1, num_classes=3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        x, lengths, labels, _ = sample(32)
        loss = F.cross_entropy(model(x, lengths), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    x, lengths, labels, start = sample(500)
    with torch.no_grad():
        logits, weights = model.forward_attention(x, lengths)
    assert (logits.argmax(-1) == labels).float().mean() >= 0.95
    on_burst = torch.stack([weights[row, start[row] : start[row] + 3].sum() for row in range(500)])
    assert on_burst.mean() >= 0.8, "the attention should rest on the burst"
