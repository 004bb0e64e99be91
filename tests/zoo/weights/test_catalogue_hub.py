"""Catalogue weights by their timm names, through a real Hub-protocol server (olah on loopback).

For each family, its smallest catalogue weight is published at the test hub under the weight's
own repository (`timm/NAME.TAG`), with random values in exactly the layout the zoo builds for
it: `zoo.create(NAME.TAG, pretrained=True)` downloads and loads it online, then again from the
cache with `HF_HUB_OFFLINE` set, and `zoo get` names the same file both times.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save

import zoo
from zoo.cli import cli


def smallest_catalogue_weight_per_family() -> list[str]:
    registry = zoo.default_registry()
    smallest: dict[str, tuple[int, str]] = {}
    for full in registry.pretrained_names():
        resolved = registry.resolve(full)
        weights = resolved.selected.weights
        if not (weights.hf_hub_id or "").startswith("timm/") or weights.num_params is None:
            continue
        builder = resolved.entry.builder
        if builder not in smallest or weights.num_params < smallest[builder][0]:
            smallest[builder] = (weights.num_params, full)
    return sorted(full for _, full in smallest.values())


def published_at_random(hub, full: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """A random model of `full`, published where the registry looks for it; and an input."""
    torch.manual_seed(0)
    model = zoo.create(full).eval()
    weights = zoo.default_registry().resolve(full).selected.weights
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    hub.publish(weights.hf_hub_id, {"model.safetensors": save(state)})
    return model, torch.randn(1, *weights.preprocessing.input_size)


@pytest.mark.parametrize("full", smallest_catalogue_weight_per_family())
def test_a_catalogue_weight_loads_by_its_timm_name_online_then_offline(full, hub, monkeypatch):
    model, image = published_at_random(hub, full)
    with torch.no_grad():
        expected = model(image)
        torch.testing.assert_close(
            zoo.create(full, pretrained=True).eval()(image), expected, rtol=0, atol=1e-6
        )
        got = CliRunner().invoke(cli, ["get", full])
        assert got.exit_code == 0, got.output
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        offline = zoo.create(full, pretrained=True).eval()
        torch.testing.assert_close(offline(image), expected, rtol=0, atol=1e-6)
        assert CliRunner().invoke(cli, ["get", full]).stdout == got.stdout
