"""Every registered attention variant plugs into every slot of its kind.

Parametrised over the installed registry, naming no family and no variant: a model has a
slot of a kind when its builder's config has a field annotated with that kind's
`AttentionSpec` subclass. Each variant is built into every slot of its kind (a builder's
field, in the first entry of that builder), at the entry's configuration, on the `meta`
device, and passes its kind's probe. A sequence variant with a key-value cache
(`IncrementalAttention`) attends through its cache as through its forward.
And each runs forward in every family with a slot of its kind, at the family's small test
size (each family gives its slot the shapes, and the reduced width, its own blocks fix).
"""

from __future__ import annotations

import typing
from functools import cache

import pytest
import torch

import zoo
import zoo.attention
from zoo.attention import ATTENTION_KINDS, AttentionSpec, IncrementalAttention
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
    """(entry, field) for every slot of `kind`: each builder's field of that kind, in the
    builder's plainest registry entry (the fewest builder arguments)."""
    plainest: dict[str, str] = {}
    for name in sorted(REGISTRY.model_names()):
        builder = REGISTRY.source(name).entry.builder
        if builder not in plainest or arguments(name) < arguments(plainest[builder]):
            plainest[builder] = name
    found = []
    for builder, name in plainest.items():
        for field, info in REGISTRY.builder(builder).config_type.model_fields.items():
            if SPECS[kind] in annotated_types(info.annotation):
                found.append((name, field))
    return found


def arguments(name: str) -> int:
    return len(REGISTRY.source(name).entry.args)


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
def test_a_variant_follows_its_kind(variant):
    probe_attention_class(variant.module_class(), variant.kind, name=variant.name)


@pytest.mark.parametrize(
    ("variant", "entry", "field"),
    [(v, entry, field) for v in VARIANTS for entry, field in slots(v.kind.name)],
    ids=lambda x: f"{x.kind.name}-{x.name}" if isinstance(x, AttentionVariant) else x,
)
def test_a_variant_builds_into_every_slot_of_its_kind_on_meta(variant, entry, field):
    family = REGISTRY.builder(REGISTRY.source(entry).entry.builder).family
    where = getattr(family, "slot_args", {}).get(field, {})  # a slot some architectures have
    model = zoo.create(entry, device="meta", **where, **{field: variant.name})
    built = [m for m in model.modules() if type(m) is variant.module_class()]
    assert built, f"{entry}: no {variant.name} module in the model"
    assert {p.device.type for p in model.parameters()} == {"meta"}


CACHED = [
    v for v in VARIANTS if v.kind.name == "sequence" and issubclass(v.module_class(), IncrementalAttention)
]


@pytest.mark.parametrize("variant", CACHED, ids=lambda v: v.name)
def test_a_variant_with_a_key_value_cache_attends_through_it_as_through_forward(variant):
    torch.manual_seed(0)
    module = variant.module_class()(
        16, num_heads=2, kdim=12, vdim=10, out_dim=8, dropout=0.0, bias=True, device=None, dtype=None
    ).eval()
    query, key, value = torch.randn(2, 3, 16), torch.randn(2, 7, 12), torch.randn(2, 7, 10)
    mask = torch.arange(7) < torch.tensor([7, 4])[:, None, None, None]  # (B, 1, 1, Lk)
    with torch.no_grad():
        out, weights = module(query, key, value, mask, need_weights=True)
        keys, values = module.project_kv(key, value)
        cached, cached_weights = module.attend(query, keys, values, mask, need_weights=True)
        torch.testing.assert_close(cached, out)
        torch.testing.assert_close(cached_weights, weights)
        # projected step by step and appended along dim -2, the cache holds the same
        parts = [module.project_kv(key[:, i : i + 1], value[:, i : i + 1]) for i in range(7)]
        torch.testing.assert_close(torch.cat([k for k, _ in parts], dim=-2), keys)
        torch.testing.assert_close(torch.cat([v for _, v in parts], dim=-2), values)


@pytest.mark.parametrize(
    ("variant", "builder", "field"),
    [(v, builder, field) for v in VARIANTS for builder, field in family_slots(v.kind.name)],
    ids=lambda value: value.name if isinstance(value, AttentionVariant) else value,
)
def test_a_variant_runs_in_every_family_with_a_slot_of_its_kind(variant, builder, field):
    family = REGISTRY.builder(builder).family
    args = {**family.test_args, **getattr(family, "slot_args", {}).get(field, {}), field: variant.name}
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
