"""Layers shared by the families: stochastic depth (DropPath)."""

import pytest
import torch

from zoo_plugins.layers import DropPath, drop_path_rates


def test_drop_path_drops_whole_samples_and_scales_the_survivors_by_one_over_keep():
    torch.manual_seed(0)
    drop = DropPath(0.25).train()
    x = torch.randn(4000, 3, 5).abs() + 0.1  # no zeros of its own
    out = drop(x)
    dropped = (out == 0).flatten(1).all(dim=1)
    kept = (out != 0).flatten(1).all(dim=1)
    assert torch.all(dropped | kept), "a sample is dropped whole or kept whole"
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    assert dropped.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert out.mean().item() == pytest.approx(x.mean().item(), rel=0.05), "unbiased in expectation"


def test_drop_path_draws_a_new_choice_each_call_and_passes_gradients_to_survivors():
    torch.manual_seed(1)
    drop = DropPath(0.5).train()
    x = torch.ones(64, 8, requires_grad=True)
    first, second = drop(x), drop(x)
    assert not torch.equal(first, second)
    first.sum().backward()
    kept = first[:, 0] != 0
    assert torch.all(x.grad[kept] == 2.0) and torch.all(x.grad[~kept] == 0)


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_drop_path_is_the_identity_in_evaluation_and_at_rate_zero(rate):
    x = torch.randn(16, 4)
    assert DropPath(rate).eval()(x) is x
    assert DropPath(0.0).train()(x) is x
    assert "drop_prob=0.5" in repr(DropPath(0.5))


def test_drop_path_rates_rise_linearly_from_zero_over_the_blocks():
    assert drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert drop_path_rates(0.3, 1) == [0.0]
