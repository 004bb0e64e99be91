"""What the zoo holds: names, published weights and a description of each model."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ..errors import ZooError
from ..registry import Registry, Resolved, default_plugin_manager, default_registry
from ..registry.schema import ImageNetResult, Preprocessing
from ..registry.snapshot import Listing
from ..weights.loading import rehearse_load
from ..weights.resolve import resolve
from .flops import count_flops, example_inputs

if TYPE_CHECKING:
    import torch

__all__ = ["list_models", "list_pretrained", "model_info", "BackboneInfo", "ModelInfo", "WeightInfo"]


def list_models(pattern: str = "*", *, registry: Registry | None = None) -> list[str]:
    """Registered model names matching `pattern`, sorted.

    The rule `zoo list PATTERN` follows too (`zoo.registry.names`): a pattern with a shell
    wildcard (`*`, `?`, `[...]`) matches whole names, one without matches any name containing
    it: `list_models("cbam")` is `list_models("*cbam*")`.
    """
    return (registry or default_registry()).model_names(pattern)


def list_pretrained(
    pattern: str = "*",
    *,
    family: str | None = None,
    min_top1: float | None = None,
    sort: str = "name",
    registry: Registry | None = None,
) -> list[str]:
    """`name.tag` for every published checkpoint whose `name.tag` or `name` matches `pattern`.

    Patterns follow the rule of `list_models` (`zoo.registry.names`): `list_pretrained("in21k")`
    lists every checkpoint with `in21k` in its `name.tag`. As `zoo list --pretrained` does,
    `family` keeps the models of one builder, `min_top1` the checkpoints whose ImageNet-1k
    top-1 accuracy is at least that, and `sort` orders them (`zoo.registry.snapshot.SORT_KEYS`:
    `name`, else `top1`, `top5`, `params` or `gmacs`, largest first, those without it last).

    Raises:
        UnknownModelError: a `family` no model is built by.
        ArgumentError: an unknown `sort` key, a `min_top1` that is not a finite number.
    """
    listing = Listing.of(registry or default_registry())
    rows = listing.matching_weights(pattern, family=family, min_top1=min_top1, sort=sort)
    return [f"{row.name}.{weights.tag}" for row, weights in rows]


class WeightInfo(BaseModel):
    """One published checkpoint of a model."""

    model_config = ConfigDict(frozen=True)

    name: str
    tag: str
    default: bool
    task: str
    hf_hub_id: str | None = None
    path: str | None = None
    filename: str
    revision: str | None = None
    sha256: str | None = None
    license: str
    paper: str | None = None
    """The paper the checkpoint was published with, where it names one."""
    args: dict[str, Any] = {}
    """Builder arguments the checkpoint fixes beyond its head."""
    adapter: str | None = None
    num_classes: int | None = None
    """Classes of the head (classification tasks)."""
    output_dim: int | None = None
    """Width of the embeddings (image-embedding)."""
    vocab_size: int | None = None
    src_vocab_size: int | None = None
    tgt_vocab_size: int | None = None
    preprocessing: Preprocessing | None = None
    """Image preprocessing (image tasks)."""
    labels: str | None = None
    num_params: int | None = None
    """Parameters of the model the checkpoint loads into, as the registry states them (a
    test holds them to the count of `zoo.flops`)."""
    gmacs: float | None = None
    """Billions of multiply-adds of one sample at the preprocessing's input size, likewise."""
    imagenet: ImageNetResult | None = None
    """The published ImageNet-1k validation result (classifiers that have one)."""


class BackboneInfo(BaseModel):
    """The published weights an entry borrows (its `backbone`), and what they lack."""

    model_config = ConfigDict(frozen=True)

    name: str
    """`name.tag` of the weights `pretrained=True` loads."""
    new_modules: dict[str, str]
    """The modules the weights have no tensor of (name -> class name), initialised fresh."""
    new_tensors: list[str]
    """Their tensors, in the model's order."""
    message: str | None
    """What loading says of them (`80 tensors of 8 CBAM modules are new: ...`); None if none."""


class ModelInfo(BaseModel):
    """Everything the zoo knows about a name; `.model_dump()` is JSON-able."""

    model_config = ConfigDict(frozen=True)

    name: str
    tag: str | None
    builder: str
    tasks: list[str]
    """What the family builds models for."""
    task: str | None
    """What this name is for: the task of the weights it stands for (its tag, else its default
    tag, else the weights it borrows), else its family's first task."""
    plugin: str
    distribution: str | None
    version: str | None
    source: str
    description: str | None
    paper: str | None
    attention: str | None
    config: dict[str, Any]
    num_params: int
    macs: int | None = None
    """Multiply-adds of a forward pass of one sample, counted on meta (`zoo.tasks.flops`):
    images at the input size of the tag's preprocessing (`input_size`, not `test_input_size`),
    other inputs the family's example input; None where the model cannot be counted."""
    macs_input_size: list[int] | None = None
    """Shape of the sample `macs` was counted on: (C, H, W) for images, (L,) for token ids."""
    default_tag: str | None
    weights: list[WeightInfo]
    backbone: BackboneInfo | None = None
    """The weights the entry borrows, for an entry without weights of its own."""


def model_info(name: str | Resolved, *, registry: Registry | None = None) -> ModelInfo:
    """Describe a model (and, for `name.tag`, the head of that tag's checkpoint).

    Takes every name form (see `zoo.weights.resolve`). Counting parameters and multiply-adds
    builds the model on the `meta` device, which takes no memory, and runs it there.
    """
    plugin_records = default_plugin_manager().records if registry is None else {}
    registry = registry or default_registry()
    resolved = resolve(name, registry)
    entry, source = resolved.entry, resolved.source
    config = registry.build_config(resolved)
    builder = registry.builder(entry.builder)
    model = builder.build(config, device="meta")
    macs, macs_input_size = _macs(model, resolved, registry)
    default_tag = entry.default_weight_tag
    weights = [
        WeightInfo(
            name=str(replace(resolved, tag=tag)),
            tag=tag,
            default=tag == default_tag,
            **weight.model_dump(exclude={"description"}),
        )
        for tag, weight in entry.weights.items()
    ]
    record = plugin_records.get(source.owner)
    return ModelInfo(
        name=resolved.name,
        tag=resolved.tag,
        builder=entry.builder,
        tasks=list(builder.tasks),
        task=registry.task(resolved),
        plugin=source.owner,
        distribution=record.distribution if record else None,
        version=record.version if record else None,
        source=f"{source.file}:{source.line}" if source.line else source.file,
        description=entry.description,
        paper=entry.paper,
        attention=entry.attention,
        config=config.model_dump(mode="json"),
        num_params=sum(p.numel() for p in model.parameters()),
        macs=macs,
        macs_input_size=macs_input_size,
        default_tag=default_tag,
        weights=weights,
        backbone=_backbone_info(resolved, registry) if entry.backbone and not entry.weights else None,
    )


def _backbone_info(resolved: Resolved, registry: Registry) -> BackboneInfo:
    """What loading the borrowed weights would do, rehearsed on `meta` with the layout of
    the model they were published for."""
    borrowed = registry.backbone(resolved.source)
    builder = registry.builder(resolved.entry.builder)
    published = builder.build(registry.build_config(borrowed), device="meta")
    model = builder.build(registry.build_config(resolved, borrowed.weights.builder_args()), device="meta")
    report = rehearse_load(model, published.state_dict(), fresh_modules=True, name=str(borrowed))
    return BackboneInfo(
        name=str(borrowed),
        new_modules=report.new_modules,
        new_tensors=list(report.fresh),
        message=report.messages[-1] if report.new_modules else None,
    )


def _macs(
    model: torch.nn.Module, resolved: Resolved, registry: Registry
) -> tuple[int | None, list[int] | None]:
    """Multiply-adds of one sample through a model built on meta, and the sample's shape."""
    try:
        _, inputs = example_inputs(resolved, registry, {}, device="meta")
        sample = inputs(1)
        return count_flops(model.eval(), sample).macs, list(sample[0].shape[1:])
    except (ZooError, NotImplementedError, ValueError, RuntimeError, TypeError, IndexError):
        return None, None  # a family with no example input, or a forward that fails on meta
