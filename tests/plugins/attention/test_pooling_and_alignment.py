"""Soft and hard attention pooling (`soft`, `hard`) and additive attention (`additive`)."""

import torch

from zoo_plugins.attention.additive import AdditiveAttention
from zoo_plugins.attention.functional import padding_mask
from zoo_plugins.attention.hard import HardAttentionPooling
from zoo_plugins.attention.soft import SoftAttentionPooling

LENGTHS = torch.tensor([6, 3, 0])


def sequences(batch=3, length=6, dim=8, seed=0):
    return torch.randn(batch, length, dim, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ soft


def test_soft_pooling_is_a_softmax_weighted_sum_over_the_real_elements():
    torch.manual_seed(0)
    pool = SoftAttentionPooling(8, hidden=5)
    x = sequences()
    output, weights, log_prob = pool(x, padding_mask(LENGTHS, 6))
    assert output.shape == (3, 8) and weights.shape == (3, 6) and log_prob is None
    scores = pool.score.context(torch.tanh(pool.score.proj(x))).squeeze(-1)
    torch.testing.assert_close(weights[0], scores[0].softmax(-1))
    torch.testing.assert_close(weights[1, :3], scores[1, :3].softmax(-1))
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(output, (weights.unsqueeze(-1) * x).sum(1))


def test_soft_pooling_ignores_padding_and_pools_an_empty_sequence_to_zeros():
    pool = SoftAttentionPooling(8)
    x = sequences().requires_grad_()
    mask = padding_mask(LENGTHS, 6)
    output = pool(x, mask).output
    noisy = x.detach().clone()
    noisy[1, 3:] = 50.0
    torch.testing.assert_close(pool(noisy, mask).output[1], output[1])
    assert torch.all(output[2] == 0) and not output.isnan().any()
    output.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad[1, 3:] == 0)
    for name, parameter in pool.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_soft_pooling_without_a_mask_weighs_every_element():
    weights = SoftAttentionPooling(8)(sequences()).weights
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights > 0)


# ------------------------------------------------------------------ hard


def test_hard_attention_in_eval_picks_the_most_likely_real_element():
    torch.manual_seed(1)
    pool = HardAttentionPooling(8).eval()
    x, mask = sequences(), padding_mask(LENGTHS, 6)
    output, weights, log_prob = pool(x, mask)
    probabilities = pool.distribution(x, mask)
    for b in (0, 1):
        index = int(probabilities[b].argmax())
        assert weights[b].tolist() == [1.0 if i == index else 0.0 for i in range(6)]
        torch.testing.assert_close(output[b], x[b, index])
        torch.testing.assert_close(log_prob[b], probabilities[b, index].log())
    assert torch.all(probabilities[1, 3:] == 0)
    assert torch.all(output[2] == 0) and torch.all(weights[2] == 0) and log_prob[2] == 0


def test_hard_attention_in_training_samples_from_its_distribution():
    torch.manual_seed(2)
    pool = HardAttentionPooling(4)
    x = sequences(batch=1, length=3, dim=4).expand(4000, -1, -1)
    mask = torch.tensor([[True, True, False]]).expand(4000, -1)
    output, weights, log_prob = pool(x, mask)
    probabilities = pool.distribution(x[:1], mask[:1])[0]
    frequencies = weights.mean(0)
    assert frequencies[2] == 0, "a padded element was picked"
    torch.testing.assert_close(frequencies, probabilities, atol=0.03, rtol=0)
    picked = weights.argmax(-1)
    torch.testing.assert_close(
        log_prob, probabilities.log()[picked].detach(), check_dtype=False, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(output, x[torch.arange(4000), picked])


def test_hard_attention_gives_gradients_to_the_scorer_through_the_log_probability_only():
    pool = HardAttentionPooling(8)
    x = sequences().requires_grad_()
    output, _, log_prob = pool(x, padding_mask(LENGTHS, 6))
    output.sum().backward(retain_graph=True)
    assert all(p.grad is None for p in pool.parameters()), "the pick itself is not differentiable"
    assert x.grad.abs().sum() > 0, "the picked elements receive the task's gradient"
    log_prob.sum().backward()
    for name, parameter in pool.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_reinforce_teaches_hard_attention_to_find_the_marked_element():
    """Each sequence has one marked element (feature 0 set); the reward is 1 for picking it."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def batch(n, length=10):
        x = torch.randn(n, length, 8, generator=generator)
        lengths = torch.randint(3, length + 1, (n,), generator=generator)
        target = (torch.rand(n, generator=generator) * lengths).long()
        x[:, :, 0] = 0.0
        x[torch.arange(n), target, 0] = 1.0
        x[:, :, 0] += (torch.arange(length) >= lengths[:, None]) * 1.0  # decoys in the padding
        return x, padding_mask(lengths, length), target

    pool = HardAttentionPooling(8, hidden=16)
    optimiser = torch.optim.Adam(pool.parameters(), lr=1e-2)
    baseline = 0.0
    for _ in range(200):
        x, mask, target = batch(64)
        _, weights, log_prob = pool(x, mask)
        reward = (weights.argmax(-1) == target).float()
        loss = -((reward - baseline) * log_prob).mean()
        baseline = 0.9 * baseline + 0.1 * reward.mean().item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    pool.eval()
    x, mask, target = batch(1000)
    accuracy = (pool(x, mask).weights.argmax(-1) == target).float().mean()
    assert accuracy >= 0.95


# ------------------------------------------------------------------ additive


def test_additive_attention_scores_with_v_tanh_of_projected_query_and_keys():
    torch.manual_seed(3)
    attention = AdditiveAttention(5, 8, attn_dim=7)
    query, memory, mask = torch.randn(3, 5), sequences(), padding_mask(LENGTHS, 6)
    context, weights = attention(query, memory, mask)
    assert context.shape == (3, 8) and weights.shape == (3, 6)
    W, U, b, v = (
        attention.query_proj.weight,
        attention.key_proj.weight,
        attention.key_proj.bias,
        attention.v.weight,
    )
    energies = (torch.tanh((query @ W.T)[:, None] + memory @ U.T + b) @ v.T).squeeze(-1)
    torch.testing.assert_close(weights[0], energies[0].softmax(-1))
    torch.testing.assert_close(weights[1, :3], energies[1, :3].softmax(-1))
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(context, (weights.unsqueeze(-1) * memory).sum(1))
    assert torch.all(context[2] == 0) and torch.all(weights[2] == 0)


def test_additive_attention_passes_gradients_to_all_its_parts():
    attention = AdditiveAttention(5, 8)
    query, memory = torch.randn(3, 5, requires_grad=True), sequences().requires_grad_()
    context, _ = attention(query, memory, padding_mask(LENGTHS, 6))
    context.square().sum().backward()
    for name, parameter in attention.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert query.grad.abs().sum() > 0 and torch.isfinite(memory.grad).all()
