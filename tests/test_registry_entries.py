"""Contracts over the registry: every entry, every weight tag and every family keeps its word.

No test here names a family: what an entry must do follows from its task and its family's
declarations (`zoo.registry.family`). What is cheap (a tag's arguments, its stated facts) is
checked for every tag; what builds and runs a model, for a few entries of each kind
(tests/kinds.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo.errors import AttentionMapError
from zoo.registry import default_registry
from zoo.registry.family import (
    IMAGE_TASKS,
    TASKS,
    FunctionFamily,
    HasAttentionMaps,
    HasBlocks,
    HasClassifier,
    HasFirstConv,
)

from .kinds import entries_of_each_kind, tags_of_each_kind

NAMES = zoo.list_models()
TAGS = zoo.list_pretrained()


KINDS = entries_of_each_kind()
KIND_TAGS = tags_of_each_kind()
REFERENCE = Path(__file__).parent / "data" / "reference" / "hub"
REFERENCE_PARAMS = {
    data["hf_hub_id"]: data["num_params"]
    for data in (json.loads(path.read_text()) for path in sorted(REFERENCE.glob("*.json")))
}
FAMILIES = [  # bare builder functions have no example input
    builder
    for builder in default_registry().components("builder")
    if not isinstance(builder.family, FunctionFamily)
]


def expected_output_shape(task: str, config, weights, inputs: tuple[torch.Tensor, ...]) -> tuple[int, ...]:
    """What a model of `task` maps a batch of `inputs` to (the task contract)."""
    batch = inputs[0].shape[0]
    if task == "image-embedding":
        return (batch, weights.output_dim) if weights is not None else (batch, -1)  # -1: any width
    if task == "sequence-to-sequence":
        return (batch, inputs[1].shape[1], config.tgt_vocab_size)
    return (batch, config.num_classes)


def example_input(resolved, config, *, batch: int = 2, device: str = "meta") -> tuple[torch.Tensor, ...]:
    family = default_registry().builder(resolved.entry.builder).family
    return family.example_input(config, batch=batch, device=device)


@pytest.mark.parametrize("name", KINDS)
def test_each_kind_of_entry_builds_on_meta_with_the_parameters_info_reports(name):
    info = zoo.model_info(name)
    model = zoo.create(name, device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == info.num_params


@pytest.mark.parametrize("name", KINDS + KIND_TAGS)
def test_each_kind_of_name_maps_its_family_example_input_to_what_its_task_promises(name):
    registry = default_registry()
    resolved = registry.resolve(name)
    config = registry.build_config(resolved)
    task = registry.task(resolved)
    assert task in registry.builder(resolved.entry.builder).tasks
    inputs = example_input(resolved, config)
    with torch.no_grad():
        output = zoo.create(name, device="meta").eval()(*inputs)
    expected = expected_output_shape(task, config, resolved.weights, inputs)
    assert len(output.shape) == len(expected)
    assert all(want in (-1, got) for want, got in zip(expected, output.shape, strict=True))


@pytest.mark.parametrize("name", TAGS)
def test_every_weight_tag_fixes_the_builder_arguments_its_checkpoint_has(name):
    registry = default_registry()
    resolved = registry.resolve(name)
    config = registry.build_config(resolved)
    assert resolved.weights.builder_args().items() <= config.model_dump().items()
    assert resolved.weights.task in registry.builder(resolved.entry.builder).tasks


@pytest.mark.parametrize(
    "name", [t for t in TAGS if default_registry().resolve(t).weights.hf_hub_id in REFERENCE_PARAMS]
)
def test_every_weight_tag_has_the_tensor_count_of_its_published_checkpoint(name):
    """The reference's `num_params` counts every tensor but BatchNorm's step counters."""
    weights = default_registry().resolve(name).weights
    state = zoo.create(name, device="meta").state_dict()
    counted = sum(t.numel() for key, t in state.items() if not key.endswith("num_batches_tracked"))
    assert counted == REFERENCE_PARAMS[weights.hf_hub_id]


@pytest.mark.parametrize("name", TAGS)
def test_every_weight_tag_states_its_parameters_and_gmacs(name):
    weights = default_registry().resolve(name).weights
    assert weights.num_params is not None and weights.gmacs is not None


STATING_COSTS = [t for t in KIND_TAGS if default_registry().resolve(t).weights.num_params is not None]


@pytest.mark.parametrize("name", STATING_COSTS)
def test_each_kind_of_stated_parameter_count_and_gmacs_is_what_the_counter_gives(name):
    """Counted on meta at the input size of the tag's preprocessing; parameters only, as
    timm's `param_count` (BatchNorm's running statistics are buffers)."""
    weights = default_registry().resolve(name).weights
    report = zoo.flops(name)
    assert weights.num_params == report.params
    assert weights.gmacs == pytest.approx(report.macs / 1e9, rel=0.005)


WITH_IMAGENET = [t for t in TAGS if getattr(default_registry().resolve(t).weights, "imagenet", None)]


@pytest.mark.parametrize("name", WITH_IMAGENET)
def test_every_imagenet_result_is_a_sane_accuracy_of_an_imagenet_head(name):
    weights = default_registry().resolve(name).weights
    result = weights.imagenet
    assert 0 < result.top1 <= result.top5 <= 100
    assert (weights.num_classes, weights.labels) == (1000, "imagenet-1k")


@pytest.mark.parametrize("name", WITH_IMAGENET)
def test_every_imagenet_result_holds_at_a_size_the_weights_are_fed(name):
    weights = default_registry().resolve(name).weights
    size = weights.imagenet.img_size
    preprocessing = weights.preprocessing
    assert size in {preprocessing.input_size[-1], (preprocessing.test_input_size or [None])[-1]}


@pytest.mark.parametrize("name", [tag for tag in WITH_IMAGENET if tag in KIND_TAGS])
def test_each_kind_of_imagenet_result_holds_at_a_size_the_model_takes(name):
    size = default_registry().resolve(name).weights.imagenet.img_size
    with torch.no_grad():
        output = zoo.create(name, device="meta").eval()(torch.empty(1, 3, size, size, device="meta"))
    assert output.shape == (1, 1000)


BORROWING = [name for name in NAMES if default_registry().source(name).entry.backbone]


@pytest.mark.parametrize("name", BORROWING)
def test_every_borrowed_backbone_fits_its_entry_but_for_whole_modules_it_lacks(name):
    """Rehearsed on `meta` with the layout of the model the weights were published for."""
    info = zoo.model_info(name)
    model = zoo.create(name, device="meta")
    new = info.backbone.new_modules
    assert new and set(new) <= {module for module, _ in model.named_modules()}
    assert all(any(key.startswith(module + ".") for module in new) for key in info.backbone.new_tensors)
    assert info.backbone.message.endswith(" are new: fine-tune before use")


@pytest.mark.parametrize("builder", FAMILIES, ids=lambda builder: builder.name)
def test_every_family_runs_forward_and_backward_on_its_example_input_at_its_test_size(builder):
    family = builder.family
    config = family.config.model_validate(family.test_args, context={"registry": default_registry()})
    model = family.build(config)
    torch.manual_seed(0)
    inputs = family.example_input(config, batch=2)
    output = model(*inputs)
    output.float().logsumexp(dim=-1).mean().backward()
    assert torch.isfinite(output).all()
    unreached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unreached == []


@pytest.mark.parametrize("builder", FAMILIES, ids=lambda builder: builder.name)
def test_every_family_declares_known_tasks_and_a_strict_config(builder):
    assert builder.tasks and set(builder.tasks) <= set(TASKS)
    assert builder.config_type.model_config.get("extra") == "forbid"


def test_the_catalogue_holds_the_promised_names():
    promised = {
        "vit_base_patch16_224", "vit_base_patch16_224_in21k", "vit_base_patch32_224", "vit_base_patch32_224_in21k",
        "vit_large_patch16_224", "vit_large_patch16_224_in21k", "vit_large_patch32_224_in21k",
        "vit_huge_patch14_224_in21k", "vit_tiny_patch16_224", "vit_small_patch16_224",
        "deit_base_distilled_patch16_224", "seresnet50", "ecaresnet50d",
    }  # fmt: skip
    promised |= {f"resnet{d}{a}" for d in (18, 34, 50, 101) for a in ("", "_se", "_cbam", "_eca")}
    promised |= {f"efficientnet_b{b}" for b in range(4)} | {"mobilenetv3_large_100", "regnety_032"}
    promised |= {f"regnety_{gf:03d}" for gf in (2, 4, 6, 8, 16, 40, 64, 80, 120, 160, 320)}
    assert promised <= set(NAMES)


@pytest.mark.parametrize("builder", FAMILIES, ids=lambda builder: builder.name)
def test_every_hook_a_model_offers_fits_the_protocol_and_names_real_modules(builder):
    family = builder.family
    config = family.config.model_validate(family.test_args, context={"registry": default_registry()})
    model = family.build(config, device="meta")
    modules = dict(model.named_modules())
    if isinstance(model, HasClassifier):
        assert set(model.classifier_names) <= set(modules)
    if isinstance(model, HasFirstConv):
        assert isinstance(modules[model.first_conv], torch.nn.Conv2d)
    if isinstance(model, HasBlocks):
        blocks = model.blocks_in_order()
        assert blocks and all(any(block is m for m in modules.values()) for block in blocks)


@pytest.mark.parametrize("builder", FAMILIES, ids=lambda builder: builder.name)
def test_every_family_offering_attention_maps_lays_them_over_its_input(builder):
    """The attention-map protocol (`zoo.maps`): named maps, each (B, h, w), non-negative.

    A family whose test-size model has no map to show (a ResNet whose attention gates no
    space, say) refuses in one `AttentionMapError`, which is not a failure of the contract.
    """
    family = builder.family
    if not set(family.tasks) & set(IMAGE_TASKS):
        pytest.skip("maps over images only")
    config = family.config.model_validate(family.test_args, context={"registry": default_registry()})
    model = family.build(config)
    if not isinstance(model, HasAttentionMaps):
        pytest.skip(f"{builder.name} offers no attention maps")
    (images,) = family.example_input(config, batch=2)
    try:
        maps = zoo.attention_maps(model, images)
    except AttentionMapError as error:
        assert "\n" not in str(error)
        return
    assert maps
    for name, values in maps.items():
        assert values.ndim == 3 and values.shape[0] == 2, name
        assert values.shape[1] <= images.shape[2] and values.shape[2] <= images.shape[3], name
        assert torch.isfinite(values).all() and (values >= 0).all(), name
