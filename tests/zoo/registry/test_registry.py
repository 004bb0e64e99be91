"""The registry: names with owners, conflicts, lookups and validation against builders."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from zoo.errors import ArgumentError, NameConflictError, UnknownModelError
from zoo.registry import Registry, validate_files

WEIGHTS = (
    "hf_hub_id: org/{repo}, num_classes: {classes}, license: mit,"
    " preprocessing: {{input_size: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}"
)


def weights(repo: str, classes: int) -> str:
    return "{" + WEIGHTS.format(repo=repo, classes=classes) + "}"


def test_a_taken_name_is_an_error_naming_both_owners():
    registry = Registry()
    registry.add_builder("net", "pkg:build", owner="first")
    with pytest.raises(NameConflictError) as raised:
        registry.add_builder("net", "other:build", owner="second")
    assert raised.value.plugin == "second" and raised.value.existing_owner == "first"
    assert "builder 'net' is already provided by 'first'" in str(raised.value)
    assert registry.builder("net").owner == "first"


def test_an_explicit_override_replaces_and_is_recorded():
    registry = Registry()
    registry.add_attention("se", "pkg:SE", kind="channel", owner="builtin")
    registry.add_attention("se", "mine:SE", kind="channel", owner="mine", override=True)
    variant = registry.attention("se")
    assert (variant.owner, variant.overrides, variant.target) == ("mine", "builtin", "mine:SE")


def test_components_are_added_all_or_nothing():
    registry = Registry()
    registry.add_builder("taken", "pkg:build", owner="first")
    from zoo.registry import Builder

    with pytest.raises(NameConflictError):
        registry.add([Builder("fresh", "second", target="x:y"), Builder("taken", "second", target="x:z")])
    assert [b.name for b in registry.components("builder")] == ["taken"]


def test_unknown_names_suggest_close_matches(builtin_registry):
    with pytest.raises(UnknownModelError) as raised:
        builtin_registry.resolve("resnet5")
    assert raised.value.suggestions[0] == "resnet50"
    assert isinstance(raised.value, KeyError)
    with pytest.raises(UnknownModelError, match=r"unknown weight tag 'augreg' for 'vit_base_patch16_224'"):
        builtin_registry.resolve("vit_base_patch16_224.augreg")


def test_a_name_may_carry_a_weight_tag(builtin_registry):
    resolved = builtin_registry.resolve("vit_base_patch16_224_in21k.orig_in21k")
    assert (resolved.name, resolved.tag) == ("vit_base_patch16_224_in21k", "orig_in21k")
    assert resolved.weights.hf_hub_id == "timm/vit_base_patch16_224.orig_in21k"
    assert builtin_registry.resolve("resnet18").tag is None


def test_the_weights_a_name_stands_for_are_the_tag_named_else_the_default_else_the_borrowed(
    builtin_registry,
):
    def selected(name: str) -> tuple:
        weights = builtin_registry.resolve(name).selected
        return weights and (weights.name, weights.tag, weights.how, str(weights))

    in21k = "vit_base_patch16_224_in21k"
    assert selected(f"{in21k}.orig_in21k") == (in21k, "orig_in21k", "named", f"{in21k}.orig_in21k")
    assert selected(in21k) == (in21k, "augreg_in21k", "default", f"{in21k}.augreg_in21k")
    assert selected("resnet50_cbam") == ("resnet50", "a1_in1k", "borrowed", "resnet50.a1_in1k")
    assert selected("text_transformer_small") is None  # no weights, none borrowed


def test_what_a_name_is_for_and_its_own_weights_follow_the_selected_weights(builtin_registry):
    in21k = builtin_registry.resolve("vit_base_patch16_224_in21k.orig_in21k")
    assert builtin_registry.task(in21k) == in21k.selected.task == "image-embedding"
    assert in21k.selected.labels is None and in21k.selected.preprocessing.input_size == (3, 224, 224)
    cbam = builtin_registry.resolve("resnet50_cbam")
    assert cbam.published is None and cbam.named_weights is None  # borrowed, and no tag named
    assert builtin_registry.task(cbam) == "image-classification"
    text = builtin_registry.resolve("text_transformer_small")
    assert text.selected is None and builtin_registry.task(text) == "sequence-classification"


def test_a_config_takes_the_head_of_the_weights_it_is_given(builtin_registry):
    bare = builtin_registry.resolve("vit_base_patch16_224_in21k")
    assert builtin_registry.build_config(bare).num_classes == 21843  # the entry's own arguments
    with_head = builtin_registry.build_config(bare, weights=bare.selected)
    assert with_head.num_classes == 21843 == bare.selected.builder_args()["num_classes"]
    embedding = builtin_registry.resolve("vit_base_patch16_224_in21k.orig_in21k").selected
    assert builtin_registry.build_config(bare, weights=embedding).num_classes == 0
    with pytest.raises(ArgumentError, match=r"^vit_base_patch16_224_in21k.augreg_in21k: unknown argument"):
        builtin_registry.build_config(bare, {"depth_": 1}, weights=bare.selected)


def test_listing_filters_with_shell_patterns(builtin_registry):
    assert builtin_registry.model_names("resnet18*") == [
        "resnet18",
        "resnet18_cbam",
        "resnet18_eca",
        "resnet18_se",
        "resnet18d",
    ]
    assert builtin_registry.pretrained_names("vit_base_patch16_224_in21k*") == [
        "vit_base_patch16_224_in21k.augreg_in21k",
        "vit_base_patch16_224_in21k.orig_in21k",
    ]
    assert builtin_registry.pretrained_names("ecaresnet*.miil_in1k") == [
        "ecaresnet101d.miil_in1k",
        "ecaresnet101d_pruned.miil_in1k",
        "ecaresnet50d.miil_in1k",
        "ecaresnet50d_pruned.miil_in1k",
        "ecaresnetlight.miil_in1k",
    ]


def test_a_config_takes_the_head_of_the_tag_and_the_overrides(builtin_registry):
    resolve = builtin_registry.resolve
    assert builtin_registry.build_config(resolve("vit_base_patch16_224_in21k")).num_classes == 21843
    assert builtin_registry.build_config(resolve("vit_base_patch16_224_in21k.orig_in21k")).num_classes == 0
    config = builtin_registry.build_config(resolve("resnet50"), {"attn": {"name": "cbam", "kernel_size": 3}})
    assert (config.attn.name, config.attn.options) == ("cbam", {"kernel_size": 3})


def test_bad_overrides_name_the_argument(builtin_registry):
    resolved = builtin_registry.resolve("resnet18")
    with pytest.raises(ArgumentError, match="unknown argument 'depth' for builder 'resnet'"):
        builtin_registry.build_config(resolved, {"depth": 3})
    with pytest.raises(ArgumentError, match=r"argument 'layers\.0': Input should be a valid integer"):
        builtin_registry.build_config(resolved, {"layers": ["x", 2, 2, 2]})
    with pytest.raises(ArgumentError, match="unknown channel attention 'mhsa'"):
        builtin_registry.build_config(resolved, {"attn": "mhsa"})


def test_the_builtin_registry_is_valid(builtin_registry):
    assert builtin_registry.validate() == []


def test_validation_checks_entries_against_their_builders(builtin_registry, write_registry):
    path = write_registry(
        "defaults:\n  small: &small {block: basic, layers: [1, 1, 1, 1]}\n"
        "models:\n"
        "  ok_net:\n    builder: resnet\n    args: *small\n"
        "  unknown_builder:\n    builder: resnetx\n"
        "  unknown_argument:\n    builder: resnet\n    args: {<<: *small, depth: 3}\n"
        "  ill_typed:\n    builder: resnet\n    args: {layers: many}\n"
        "  bad_attention:\n    builder: resnet\n    args: {attn: {name: cbam, kernel_size: 5}}\n"
        "  wrong_kind:\n    builder: vit\n    args: {attn: se}\n"
        f"  unknown_adapter:\n    builder: vit\n    weights:\n      t: {weights('r', 10)[:-1]}, adapter: nope}}\n"
    )
    problems = {(p.entry, p.field): (p.message, p.line) for p in validate_files([path], builtin_registry)}
    assert set(problems) == {
        ("unknown_builder", "builder"),
        ("unknown_argument", "args.depth"),
        ("ill_typed", "args.layers"),
        ("bad_attention", "args.attn"),
        ("wrong_kind", "args.attn"),
        ("unknown_adapter", "weights.t.adapter"),
    }
    assert problems[("unknown_builder", "builder")] == (
        "builder 'resnetx' is not registered (did you mean 'resnet', 'regnet'?): "
        "install the plugin that provides it, then validate",
        8,
    )
    assert problems[("unknown_argument", "args.depth")][0] == "unknown field"
    assert "option 'kernel_size': Input should be 3 or 7" in problems[("bad_attention", "args.attn")][0]
    assert "unknown token attention 'se'" in problems[("wrong_kind", "args.attn")][0]


def test_a_weight_tag_head_is_checked_too(builtin_registry, write_registry):
    path = write_registry(f"models:\n  net:\n    builder: vit\n    weights:\n      t: {weights('r', -1)}\n")
    [problem] = validate_files([path], builtin_registry)
    assert (problem.entry, problem.field) == ("net", "weights.t.num_classes")


def test_an_imagenet_result_whose_top1_passes_its_top5_is_a_problem_of_that_field(
    builtin_registry, write_registry
):
    result = "imagenet: {top1: 90.0, top5: 80.0, img_size: 32, crop_pct: 0.9}"
    tag = weights("r", 1000).removesuffix("}") + f", {result}}}"
    path = write_registry(f"models:\n  net:\n    builder: vit\n    weights:\n      t: {tag}\n")
    [problem] = validate_files([path], builtin_registry)
    assert (problem.entry, problem.field) == ("net", "weights.t.imagenet")
    assert "top1 90.0 is above top5 80.0" in problem.message


def test_stated_costs_are_numbers_no_smaller_than_zero(builtin_registry, write_registry):
    tag = weights("r", 1000).removesuffix("}") + ", num_params: -1, gmacs: -0.5}"
    path = write_registry(f"models:\n  net:\n    builder: vit\n    weights:\n      t: {tag}\n")
    problems = validate_files([path], builtin_registry)
    assert sorted(problem.field for problem in problems) == ["weights.t.gmacs", "weights.t.num_params"]


def test_a_name_defined_in_two_files_is_reported(builtin_registry, write_registry):
    first = write_registry("models:\n  net:\n    builder: vit\n")
    second = write_registry("models:\n  other:\n    builder: vit\n  net:\n    builder: resnet\n")
    [problem] = validate_files([first, second], builtin_registry)
    assert (problem.file, problem.entry, problem.line) == (str(second), "net", 4)
    assert problem.message == f"duplicate name, also defined at {first}:2"


class BinaryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_classes: Literal[2] = 2


def binary_classifier(config: BinaryConfig, *, device=None, dtype=None):
    """A builder whose schema accepts only two-class heads."""
    return torch.nn.Linear(4, config.num_classes, device=device, dtype=dtype)


def test_a_weight_tag_head_is_checked_against_the_builder(write_registry):
    registry = Registry()
    registry.add_builder("binary", binary_classifier, owner="tests")
    path = write_registry(
        f"models:\n  net:\n    builder: binary\n    weights:\n      two: {weights('a', 2)}\n      ten: {weights('b', 10)}\n"
    )
    [problem] = validate_files([path], registry)
    assert (problem.entry, problem.field, problem.line) == ("net", "weights.ten.num_classes", 6)
    assert problem.message == "Input should be 2"
