"""Contracts over every image family: timm's training interface, at each family's test size.

No test here names a family: each builds the family's `test_args` model and checks what
`zoo.registry.family` promises (`HasTrainingInterface`, `HasFeatureInfo`,
`HasIntermediates`), with timm's meanings.
"""

from __future__ import annotations

import copy
import typing

import pytest
import torch

import zoo
from zoo.registry import default_registry
from zoo.registry.family import (
    IMAGE_TASKS,
    FeatureInfo,
    FunctionFamily,
    HasBlocks,
    HasFeatureInfo,
    HasIntermediates,
    HasTrainingInterface,
)
from zoo.weights.features import FeatureExtractor

from .kinds import entries_of_each_kind, tags_of_each_kind

IMAGE_FAMILIES = [
    builder
    for builder in default_registry().components("builder")
    if not isinstance(builder.family, FunctionFamily) and set(builder.tasks) <= set(IMAGE_TASKS)
]
IMAGE_TAGS = [  # a few of each kind (tests/kinds.py)
    name
    for name in tags_of_each_kind()
    if default_registry().resolve(name).weights.preprocessing_or_none is not None
]


def config_of(builder, **changes):
    family = builder.family
    return family.config.model_validate(
        {**family.test_args, **changes}, context={"registry": default_registry()}
    )


def built(builder, **changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return builder.family.build(config_of(builder, **changes)).eval()


def images(builder, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return builder.family.example_input(config_of(builder), batch=batch)[0]


def pools(builder) -> tuple[str, ...]:
    """The `global_pool` values the family's config accepts (a `Literal`)."""
    return typing.get_args(builder.family.config.model_fields["global_pool"].annotation)


families = pytest.mark.parametrize("builder", IMAGE_FAMILIES, ids=lambda builder: builder.name)


@families
def test_every_image_model_offers_timm_s_training_interface_and_describes_its_features(builder):
    model = built(builder)
    assert isinstance(model, HasTrainingInterface) and isinstance(model, HasFeatureInfo)
    info = FeatureInfo(model.feature_info)  # checks the dicts
    assert set(info.module_name()) <= {name for name, _ in model.named_modules()}
    assert pools(builder), "global_pool is a builder argument, typed as a Literal of timm's values"


@families
def test_forward_is_forward_head_of_forward_features_and_the_classifier_reads_the_pooled_features(builder):
    model, x = built(builder), images(builder)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(model.forward_head(features), model(x))
    classifier = model.get_classifier()
    assert isinstance(classifier, torch.nn.Linear)
    assert pooled.shape == (x.shape[0], classifier.in_features)
    assert classifier.out_features == config_of(builder).num_classes


@families
def test_reset_classifier_gives_a_fresh_head_of_any_size_where_the_model_lives(builder):
    model, x = built(builder).to(torch.float64), images(builder).to(torch.float64)

    model.reset_classifier(3)
    assert model(x).shape == (x.shape[0], 3)
    assert model.get_classifier().weight.dtype == torch.float64

    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x), pre_logits=True))


@families
def test_every_global_pool_keeps_timm_s_meaning_at_build_and_on_reset(builder):
    x = images(builder)
    for pool in pools(builder):
        classes = 0 if pool == "" else 5
        model = built(builder, global_pool=pool, num_classes=classes)
        reset = built(builder)
        try:
            reset.reset_classifier(classes, global_pool=pool)
        except ValueError as error:  # a pool by a module the model has not built: refused, as timm does
            assert "\n" not in str(error)
            reset = built(builder, global_pool=pool)
            reset.reset_classifier(classes, global_pool=pool)
        with torch.no_grad():
            features = model.forward_features(x)
            pooled = model.forward_head(features, pre_logits=True)
            pooled_on_reset = reset.forward_head(reset.forward_features(x), pre_logits=True)
        if pool == "":  # no pooling: every position kept, as forward_features gives them...
            assert pooled.shape[0] == features.shape[0] and pooled.ndim == features.ndim
            if pooled.shape == features.shape:  # ...unchanged, unless a head conv maps each (MobileNetV3)
                torch.testing.assert_close(pooled, features)
        else:
            assert pooled.ndim == 2 and model(x).shape == (x.shape[0], classes)
            assert reset(x).shape == (x.shape[0], classes)
        assert pooled_on_reset.shape == pooled.shape, pool


def gradients(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    output = model(x)
    output.float().square().mean().backward()
    return output.detach(), {
        name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None
    }


def counted(forward, calls: list):
    def run(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    return run


@families
def test_gradient_checkpointing_recomputes_blocks_and_changes_no_number(builder):
    model, x = built(builder), images(builder)
    assert isinstance(model, HasBlocks)
    calls = []
    for block in model.blocks_in_order():  # count runs of forward (recomputation runs no hooks)
        block.forward = counted(block.forward, calls)

    output, grads = gradients(model, x)
    plain_calls, calls[:] = len(calls), []
    model.set_grad_checkpointing(True)
    checkpointed_output, checkpointed_grads = gradients(model, x)

    assert len(calls) > plain_calls  # blocks ran again in the backward pass
    torch.testing.assert_close(checkpointed_output, output)
    assert checkpointed_grads.keys() == grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, msg=name)
    model.set_grad_checkpointing(False)
    calls[:] = []
    gradients(model, x)
    assert len(calls) == plain_calls


@families
def test_no_weight_decay_names_parameters_of_the_model(builder):
    model = built(builder)
    names = model.no_weight_decay()
    assert isinstance(names, set) and names <= {name for name, _ in model.named_parameters()}


def expected_map(info: FeatureInfo, index: int, x: torch.Tensor) -> tuple[int, ...]:
    height, width = x.shape[-2:]
    reduction = info.reduction(index)
    return (x.shape[0], info.channels(index), -(-height // reduction), -(-width // reduction))


@families
@pytest.mark.parametrize("out_indices", [None, (0,), (-1,), 2])
def test_features_only_gives_the_maps_feature_info_describes_and_trains_every_parameter_left(
    builder, out_indices
):
    model, x = built(builder), images(builder)
    count = len(model.feature_info)
    if isinstance(out_indices, int) and out_indices > count:
        pytest.skip(f"{count} feature maps")

    extractor = FeatureExtractor(model, out_indices)
    maps = extractor(x)

    info = extractor.feature_info
    assert len(maps) == len(info.out_indices) == len(info.channels()) == len(info.reduction())
    for index, feature in zip(info.out_indices, maps, strict=True):
        assert tuple(feature.shape) == expected_map(info, index, x), info.module_name(index)
    sum(feature.float().square().mean() for feature in maps).backward()
    unused = [name for name, p in extractor.named_parameters() if p.grad is None]
    assert unused == []


@families
def test_forward_intermediates_gives_the_features_and_the_maps_of_feature_info(builder):
    model, x = built(builder), images(builder)
    if not isinstance(model, HasIntermediates):
        pytest.skip("features through hooks on the modules of feature_info")
    info = FeatureInfo(model.feature_info)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        normed = model.forward_intermediates(x, indices=[-1], norm=True, intermediates_only=True)
        torch.testing.assert_close(final, model.forward_features(x))
    assert [tuple(m.shape) for m in maps] == [expected_map(info, i, x) for i in range(len(info))]
    torch.testing.assert_close(last_two, maps[-2:])
    assert normed[0].shape == maps[-1].shape
    with pytest.raises(ValueError, match="out of range"):
        model.forward_intermediates(x, indices=[len(info)])


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in entries_of_each_kind()
        if default_registry().task(default_registry().resolve(n)) in IMAGE_TASKS
    ],
)
def test_each_kind_of_image_entry_has_a_features_only_form(name):
    extractor = zoo.create(name, features_only=True, device="meta")
    assert len(extractor.feature_info.channels()) == len(extractor.feature_info)
    assert all(p.is_meta for p in extractor.parameters())


@pytest.mark.parametrize("name", IMAGE_TAGS)
def test_a_model_built_from_a_tag_carries_its_data_config(name):
    weights = default_registry().resolve(name).weights
    cfg = zoo.create(name, device="meta").pretrained_cfg
    preprocessing = weights.preprocessing
    assert (cfg["architecture"], cfg["tag"]) == tuple(name.split("."))
    assert cfg["hf_hub_id"] == weights.hf_hub_id
    assert cfg["num_classes"] == weights.builder_args()["num_classes"]
    assert cfg["input_size"] == preprocessing.input_size
    assert (cfg["mean"], cfg["std"]) == (preprocessing.mean, preprocessing.std)
    assert (cfg["crop_pct"], cfg["interpolation"]) == (preprocessing.crop_pct, preprocessing.interpolation)


def test_a_model_built_without_a_tag_has_no_data_config_to_carry():
    assert not hasattr(zoo.create("resnet18", device="meta"), "pretrained_cfg")


def test_copies_keep_the_interface():
    model = copy.deepcopy(zoo.create("resnet18", layers=[1, 1, 1, 1], num_classes=4))
    model.reset_classifier(2, global_pool="catavgmax")
    assert model.get_classifier().in_features == 2 * model.num_features
