"""Every registered attention variant plugs into a model with a slot of its kind.

Parametrised over the installed registry, naming no family and no variant: a model has a
slot of a kind when its builder's config has a field annotated with that kind's
`AttentionSpec` subclass. Each variant is built into the first such entry, at the entry's
configuration, on the `meta` device, and passes its kind's probe; and it runs forward in
every family with a slot of its kind, at the family's small test size (each family gives
its slot the shapes, and the reduced width, its own blocks fix).
"""

from __future__ import annotations

import typing
from functools import cache

import pytest
import torch

import zoo
import zoo.attention
from zoo.attention import ATTENTION_KINDS, AttentionSpec
from zoo.registry import AttentionVariant
from zoo.registry.attention import probe_attention_class
from zoo.registry.family import FunctionFamily

# Every typed slot the stable path exports, by kind.
SPECS: dict[str, type[AttentionSpec]] = {
    spec.kind: spec
    for spec in (getattr(zoo.attention, name) for name in zoo.attention.__all__)
    if isinstance(spec, type) and issubclass(spec, AttentionSpec) and spec is not AttentionSpec
}
REGISTRY = zoo.default_registry()
VARIANTS: list[AttentionVariant] = REGISTRY.components("attention")


def annotated_types(annotation: typing.Any) -> set[typing.Any]:
    """`annotation` and every type inside it (`X | None`, `Annotated[X, ...]`, ...)."""
    return {annotation, *(t for arg in typing.get_args(annotation) for t in annotated_types(arg))}


@cache
def slots(kind: str) -> list[tuple[str, str]]:
    """(entry, field) for every registry entry whose builder has a slot of `kind`."""
    found = []
    for name in REGISTRY.model_names():
        config_type = REGISTRY.builder(REGISTRY.source(name).entry.builder).config_type
        for field, info in config_type.model_fields.items():
            if SPECS[kind] in annotated_types(info.annotation):
                found.append((name, field))
    return found


def family_slots(kind: str) -> list[tuple[str, str]]:
    """(builder, field) for every family (with an example input) that has a slot of `kind`."""
    found = []
    for builder in REGISTRY.components("builder"):
        if isinstance(builder.family, FunctionFamily):
            continue
        for field, info in builder.config_type.model_fields.items():
            if SPECS[kind] in annotated_types(info.annotation):
                found.append((builder.name, field))
    return found


def test_every_kind_has_a_spec_type():
    assert set(SPECS) == set(ATTENTION_KINDS)


@pytest.mark.parametrize("kind", sorted({v.kind.name for v in VARIANTS}))
def test_every_kind_with_variants_has_a_model_to_plug_them_into(kind):
    assert slots(kind), f"no registry entry has a {SPECS[kind].__name__} field"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.kind.name}-{v.name}")
def test_a_variant_follows_its_kind_and_builds_into_a_model_on_meta(variant):
    probe_attention_class(variant.module_class(), variant.kind, name=variant.name)
    entry, field = slots(variant.kind.name)[0]
    model = zoo.create(entry, device="meta", **{field: variant.name})
    built = [m for m in model.modules() if type(m) is variant.module_class()]
    assert built, f"{entry}: no {variant.name} module in the model"
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize(
    ("variant", "builder", "field"),
    [(v, builder, field) for v in VARIANTS for builder, field in family_slots(v.kind.name)],
    ids=lambda value: value.name if isinstance(value, AttentionVariant) else value,
)
def test_a_variant_runs_in_every_family_with_a_slot_of_its_kind(variant, builder, field):
    family = REGISTRY.builder(builder).family
    args = {**family.test_args, field: variant.name}
    config = family.config.model_validate(args, context={"registry": REGISTRY})
    torch.manual_seed(0)
    model = family.build(config).eval()
    assert any(type(m) is variant.module_class() for m in model.modules()), f"{builder}: no {variant.name}"
    with torch.no_grad():
        output = model(*family.example_input(config, batch=2))
        default = family.config.model_validate(family.test_args, context={"registry": REGISTRY})
        shapes_only = family.build(default, device="meta").eval()
        assert output.shape == shapes_only(*family.example_input(default, batch=2, device="meta")).shape
    assert torch.isfinite(output).all()
