"""`zoo.tasks.inference`: one way to make a model ready for inference, for images and sequences."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import NoWeightsError
from zoo.tasks.inference import inference_model, untrained_modules
from zoo.weights.resolve import resolve

TEXT = {"vocab_size": 20, "embed_dim": 16, "depth": 2, "num_heads": 2}


def test_a_checkpoint_is_loaded_in_eval_mode_with_the_config_it_was_built_with(tmp_path, builtin_registry):
    torch.manual_seed(0)
    trained = zoo.create("text_transformer_small", num_classes=3, **TEXT, registry=builtin_registry)
    save_file(trained.state_dict(), tmp_path / "text.safetensors")
    resolved = resolve("text_transformer_small", builtin_registry)

    ready = inference_model(
        resolved,
        builtin_registry,
        checkpoint=tmp_path / "text.safetensors",
        dtype="bfloat16",
        model_args={**TEXT, "num_classes": 3},
    )

    assert not any(module.training for module in ready.model.modules())
    assert {p.dtype for p in ready.model.parameters()} == {torch.bfloat16}
    assert (ready.config.num_classes, ready.config.vocab_size) == (3, 20)
    state = ready.model.state_dict()
    assert all(torch.equal(state[k], v.to(torch.bfloat16)) for k, v in trained.state_dict().items())


def test_without_a_checkpoint_a_model_without_published_weights_is_refused(builtin_registry):
    with pytest.raises(NoWeightsError) as refused:
        inference_model(resolve("text_transformer_small", builtin_registry), builtin_registry)
    assert str(refused.value) == (
        "'text_transformer_small' has no published weights; load a checkpoint of your own (checkpoint=FILE)"
    )


@pytest.mark.parametrize(("name", "args"), [("resnet18_cbam", {}), ("resnet18", {"attn": "cbam"})])
def test_published_weights_lacking_modules_of_the_model_are_refused_by_name_or_by_argument(
    name, args, builtin_registry
):
    resolved = resolve(name, builtin_registry)
    untrained = untrained_modules(resolved, builtin_registry, resolved.selected, args)
    assert untrained == [f"layer{stage}.{block}.se" for stage in range(1, 5) for block in range(2)]
    with pytest.raises(NoWeightsError) as refused:  # before anything is fetched
        inference_model(resolved, builtin_registry, model_args=args)
    assert "holds no weights for layer1.0.se, layer1.1.se, layer2.0.se and 5 more" in str(refused.value)
    assert str(refused.value).endswith("load a checkpoint that has them (checkpoint=FILE)")
