"""The SE CNN families (EfficientNet, MobileNetV3, RegNet) follow timm's training interface:
feature_info, classifier reset, global pooling, gradient checkpointing, weight-decay names."""

from __future__ import annotations

import pytest
import torch

from zoo.registry import default_registry

BUILDERS = ["efficientnet", "mobilenetv3", "regnet"]


def build(builder: str, **overrides):
    family = default_registry().builder(builder).family
    config = family.config.model_validate(
        {**family.test_args, **overrides}, context={"registry": default_registry()}
    )
    return family.build(config)


@pytest.mark.parametrize("builder", BUILDERS)
def test_feature_info_names_each_stage_output_with_its_width_and_stride(builder):
    model = build(builder).eval()
    modules = dict(model.named_modules())
    shapes = {}
    hooks = [
        modules[info["module"]].register_forward_hook(
            lambda m, a, out, key=info["module"]: shapes.update({key: out.shape})
        )
        for info in model.feature_info
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert [info["reduction"] for info in model.feature_info] == [2, 4, 8, 16, 32]
    for info in model.feature_info:
        side = 64 // info["reduction"]
        assert tuple(shapes[info["module"]]) == (1, info["num_chs"], side, side)


@pytest.mark.parametrize("builder", BUILDERS)
def test_reset_classifier_gives_a_fresh_head_where_the_model_is(builder):
    model = build(builder, num_classes=5).to(torch.bfloat16).eval()
    name = model.classifier_names[0]
    assert model.get_classifier() is dict(model.named_modules())[name]
    x = torch.randn(2, 3, 64, 64, dtype=torch.bfloat16)
    model.reset_classifier(3)
    assert model.get_classifier().weight.dtype == torch.bfloat16 and model(x).shape == (2, 3)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.head_hidden_size)


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("pool", ["avg", "max", "avgmax", "catavgmax"])
def test_every_global_pooling_of_timm_feeds_the_head(builder, pool):
    model = build(builder, global_pool=pool).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize("builder", BUILDERS)
def test_without_pooling_or_classifier_the_head_keeps_the_map(builder):
    model = build(builder, global_pool="", num_classes=0).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 3, 64, 64))
    assert output.shape[:1] + output.shape[2:] == (2, 2, 2)


@pytest.mark.parametrize("builder", BUILDERS)
def test_gradient_checkpointing_changes_memory_not_results(builder):
    torch.manual_seed(0)
    model, x = build(builder).eval(), torch.randn(2, 3, 64, 64)
    gradients = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        model(x).logsumexp(-1).sum().backward()
        gradients.append([p.grad.clone() for p in model.parameters()])
    for plain, checkpointed in zip(*gradients, strict=True):
        torch.testing.assert_close(plain, checkpointed)


@pytest.mark.parametrize("builder", BUILDERS)
def test_weight_decay_exemptions_and_blocks_name_real_parts(builder):
    model = build(builder)
    assert model.no_weight_decay() <= {name for name, _ in model.named_parameters()}
    blocks = model.blocks_in_order()
    assert len(blocks) > 4 and all(any(b is m for m in model.modules()) for b in blocks)
    assert dict(model.named_modules())[model.first_conv].in_channels == 3
