"""A boolean is never read as a number: `True` for an `int` field (YAML's `yes`) is refused
for every family's config and every attention variant's options, naming the argument."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import fresh_builtin_registry
from zoo.errors import ArgumentError
from zoo.registry.attention_spec import AttentionSpec

REGISTRY = fresh_builtin_registry()


def numeric_field(model) -> str | None:
    """The first field of a pydantic model typed as a plain number."""
    return next(
        (name for name, field in model.model_fields.items() if field.annotation in (int, float, int | None)),
        None,
    )


def builders_with_numbers() -> list[tuple[str, str]]:
    found = [(builder.name, numeric_field(builder.config_type)) for builder in REGISTRY.components("builder")]
    return [(name, field) for name, field in found if field is not None]


def variants_with_numbers() -> list[tuple[Any, str]]:
    found = [
        (variant, numeric_field(variant.options_model())) for variant in REGISTRY.components("attention")
    ]
    return [(variant, field) for variant, field in found if field is not None]


def test_every_family_has_a_number_to_check():
    assert len(builders_with_numbers()) == len(REGISTRY.components("builder"))


@pytest.mark.parametrize(("builder", "field"), builders_with_numbers())
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_for_a_number_of_any_family_is_refused_naming_the_argument(builder, field, value):
    with pytest.raises(ArgumentError) as refused:
        REGISTRY.checked_config(builder, {field: value}, label="model")
    assert str(refused.value).startswith(f"model: {field}={value}: argument '{field}' of builder '{builder}'")
    assert "takes no boolean" in str(refused.value)


def test_a_boolean_inside_a_list_is_refused_naming_where():
    with pytest.raises(ArgumentError, match=r"layers=\[2, True, 2, 2\]: argument 'layers.1'"):
        REGISTRY.checked_config("resnet", {"layers": [2, True, 2, 2]}, label="resnet18")


def test_a_boolean_where_the_annotation_admits_one_is_kept():
    config = REGISTRY.checked_config("resnet", {"zero_init_last": False}, label="resnet18")
    assert config.zero_init_last is False and typing.get_type_hints(type(config))


@pytest.mark.parametrize(("variant", "option"), variants_with_numbers(), ids=lambda x: getattr(x, "name", x))
def test_a_boolean_for_a_number_of_any_attention_variant_is_refused(variant, option):
    slot = next(spec for spec in AttentionSpec.__subclasses__() if spec.kind == variant.kind.name)
    with pytest.raises(
        ValidationError, match=f"attention '{variant.name}': option '{option}' takes no boolean"
    ):
        slot.model_validate({"name": variant.name, option: True}, context={"registry": REGISTRY})


@pytest.mark.parametrize(("builder", "field"), builders_with_numbers())
def test_a_registry_file_giving_a_boolean_for_a_number_is_a_problem_of_that_field(
    builder, field, write_registry
):
    from zoo.registry import validate_files

    path = write_registry(f"models:\n  bad:\n    builder: {builder}\n    args: {{{field}: yes}}\n")
    [problem] = validate_files([path], REGISTRY)
    assert (problem.entry, problem.field, problem.line) == ("bad", f"args.{field}", 4)
    assert problem.message.startswith("takes no boolean")
