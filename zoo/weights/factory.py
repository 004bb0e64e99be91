"""`zoo.create`: a resolved name built on the requested device and dtype, with or without weights."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import resolve_device, resolve_dtype
from ..errors import Argument, ArgumentError
from ..memory import build_limits
from ..registry import Registry, Resolved, SelectedWeight, default_registry
from ..registry.attention_spec import attention_in
from .loading import LoadReport, load_checkpoint, parameters_on_meta
from .resolve import ConfigResolved, published_weights, resolve
from .timm_config import check_weights_fit_config

if TYPE_CHECKING:
    import torch

    from . import hub

__all__ = ["Planned", "build_planned", "create", "download", "get", "plan", "pretrained_cfg"]


def create(
    name: str | Resolved,
    *,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    fresh_modules: bool = False,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> torch.nn.Module:
    """Build a registered model.

    Args:
        name: A registry name, optionally with a weight tag (`"vit_base_patch16_224.augreg_in21k"`),
            `"hf-hub:ORG/REPO[@REVISION]"` for a repository exported with `zoo export`, or the
            path of a folder it wrote (`"./my-model"`); see `zoo.weights.resolve`. A tag
            selects the head (and vocabularies) that tag's checkpoint has.
        pretrained: Load the published weights of the tag (the entry's default tag if none),
            from the cache or downloaded and checked first. An entry without weights of its
            own loads the ones it borrows (its `backbone` in the registry, e.g.
            `resnet18_cbam` those of `resnet18.a1_in1k`), and so do changed `overrides`
            (`attn="eca"` on `resnet50`): the modules the weights lack are initialised as
            the family initialises them and listed in `model.load_report`.
        checkpoint: Load this local safetensors file instead (through the key adapter of the
            tag, if `name` carries one); or a sharded checkpoint, as its
            `model.safetensors.index.json` or the folder holding it and its shards.
        fresh_modules: Load `checkpoint` as the backbone of a model that extends it: the
            modules it has no tensor of are initialised fresh and reported; everything it has
            is still loaded strictly (names, shapes, dtypes). Implied by `pretrained=True`
            for borrowed weights and changed arguments.
        features_only: Return the model's per-stage feature maps instead of its output: a
            `zoo.weights.features.FeatureExtractor`, whose `feature_info` has `channels()`,
            `reduction()` and `module_name()` of each map, as timm's `features_only`.
            For a model that declares `feature_info` (every image family).
        out_indices: With `features_only`, which feature maps: all (None), the last n (an
            int), or their indices in `feature_info` (negative ones count from the end).
        num_classes: Size of the classifier head (0 for none). With weights whose head differs,
            a fresh head is initialised and everything else is loaded.
        device: Where to build (`"cpu"`, `"cuda"`, `"cuda:1"`, `"meta"`, ...).
        dtype: Floating-point dtype of parameters and buffers (`"bfloat16"`, `torch.float16`, ...).
        registry: The registry to use instead of the installed plugins' one.
        **overrides: Builder arguments replacing the registry's (`attn="cbam"`, `drop_path_rate=0.1`).
            With weights, `img_size` and `in_chans` adapt the checkpoint's position embeddings
            and first conv.

    Returns:
        The model, in training mode like any freshly built `nn.Module`. Built from a weight
        tag (named, or loaded with `pretrained=True`), it carries that tag's data config as
        `model.pretrained_cfg` (see `pretrained_cfg`); loaded with weights, what loading did
        as `model.load_report` (a `zoo.weights.loading.LoadReport`). With `features_only`,
        its feature extractor, carrying both.
    """
    if out_indices is not None and not features_only:
        raise ArgumentError("out_indices chooses the feature maps of features_only=True: pass it too")
    _check_out_indices(out_indices)
    planned = plan(
        name,
        pretrained=pretrained,
        checkpoint=checkpoint,
        fresh_modules=fresh_modules,
        num_classes=num_classes,
        device=device,
        dtype=dtype,
        registry=registry,
        **overrides,
    )
    return build_planned(planned, features_only=features_only, out_indices=out_indices)


def _check_out_indices(out_indices: Any) -> None:
    whole = lambda value: isinstance(value, int) and not isinstance(value, bool)  # noqa: E731
    if out_indices is None or whole(out_indices):
        return
    if (
        isinstance(out_indices, Sequence)
        and not isinstance(out_indices, str)
        and all(map(whole, out_indices))
    ):
        return
    raise ArgumentError(
        "{out_indices} must be an int (the last n maps) or a sequence of ints (their indices)",
        arguments=[Argument("out_indices", repr(out_indices))],
    )


def build_planned(
    planned: Planned, *, features_only: bool = False, out_indices: int | Sequence[int] | None = None
) -> torch.nn.Module:
    """Build and load what `plan` decided: the second half of `create`, for callers that
    read the plan too (its config, its weights)."""
    features = (features_only, out_indices)
    if planned.checkpoint is None:
        with build_limits(planned.label, planned.device):
            model = planned.build(planned.config, device=planned.device, dtype=planned.dtype)
        return _finished(model, planned.weights, None, features)
    with parameters_on_meta(), build_limits(planned.label, "meta"):  # the file is mapped, not copied
        model = planned.build(planned.config, device=None, dtype=planned.dtype)
    report = load_checkpoint(
        model,
        planned.checkpoint,
        device=planned.device,
        dtype=planned.dtype,
        key_adapter=planned.key_adapter,
        changed=planned.changed,
        fresh_modules=planned.fresh_modules,
        name=planned.label,
    )
    return _finished(model, planned.weights, report, features)


@dataclass(frozen=True)
class Planned:
    """What `create` builds and loads, decided before anything is built: shared with the
    builders that place a model otherwise (`zoo.weights.sharded`)."""

    config: Any
    """The builder's config, checked once here."""
    build: Callable[..., torch.nn.Module]
    """The family's `build(config, *, device, dtype)`."""
    checkpoint: Path | None
    """The file to load (fetched and checked for `pretrained`); None for fresh weights."""
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None
    changed: set[str]
    """The builder arguments the caller changed from the checkpoint's."""
    fresh_modules: bool
    """Whether the checkpoint is a backbone, whose missing modules start fresh."""
    weights: SelectedWeight | None
    """The published weights whose head the config takes and whose data config the model
    carries (`pretrained_cfg`): those loaded, or those the name names; None for neither."""
    label: str
    """What messages call the weights."""
    device: torch.device | None
    dtype: torch.dtype | None


def plan(
    name: str | Resolved,
    *,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    fresh_modules: bool = False,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> Planned:
    """Resolve `create`'s arguments (the same ones): the config, the builder and the file."""
    if registry is not None and not isinstance(registry, Registry):
        raise ArgumentError(f"registry= takes a zoo.Registry, not {registry!r}")
    registry = registry if registry is not None else default_registry()
    if pretrained and checkpoint is not None:
        raise ArgumentError("pass either pretrained=True or checkpoint=..., not both")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise ArgumentError(
            "{checkpoint} must be the path of a safetensors file (str or pathlib.Path)",
            arguments=[Argument("checkpoint", repr(checkpoint))],
        )
    if fresh_modules and not (pretrained or checkpoint is not None):
        raise ArgumentError(
            "{fresh_modules} loads a checkpoint as a backbone: pass {checkpoint} too",
            arguments=[Argument("fresh_modules", "True"), Argument("checkpoint", "FILE")],
        )
    resolved = resolve(name, registry)
    weights = published_weights(resolved, borrowed=True) if pretrained else resolved.named_weights
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    config = registry.build_config(resolved, overrides, weights=weights)
    for variant in attention_in(config):  # probed here, not inside the meta context of a load
        variant.check()
    target_device = resolve_device(device)  # before any download: a bad device is refused at once
    target_dtype = resolve_dtype(dtype)
    build = registry.builder(resolved.entry.builder).build
    if pretrained:
        checkpoint = _fetch(weights).path
    key_adapter = None
    if checkpoint is not None and weights is not None and weights.weights.adapter:  # fetched or local
        key_adapter = registry.adapter(weights.weights.adapter)
    if pretrained and isinstance(resolved, ConfigResolved):  # the config must describe its own weights
        check_weights_fit_config(
            resolved, registry, Path(checkpoint), config_file=resolved.config_file, key_adapter=key_adapter
        )
    return Planned(
        config,
        build,
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        key_adapter=key_adapter,
        changed=set(overrides),
        fresh_modules=fresh_modules or (pretrained and (weights.borrowed or bool(overrides))),
        weights=weights,
        label=str(weights if weights is not None else resolved),
        device=target_device,
        dtype=target_dtype,
    )


def pretrained_cfg(weights: SelectedWeight, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """The data config of published weights, in timm's `pretrained_cfg` keys: `architecture`,
    `tag`, `hf_hub_id`, `license`, `num_classes` (of the checkpoint's head, 0 for none) and,
    for image weights, `input_size`, `test_input_size`, `mean`, `std`, `crop_pct` and
    `interpolation`; with `model`, its `first_conv` and `classifier` where it names them."""
    cfg: dict[str, Any] = {
        "architecture": weights.name,
        "tag": weights.tag,
        "hf_hub_id": weights.weights.hf_hub_id,
        "license": weights.weights.license,
        "num_classes": weights.builder_args().get("num_classes", 0),
    }
    preprocessing = weights.preprocessing
    if preprocessing is not None:
        cfg.update({key: value for key, value in preprocessing.model_dump().items() if value is not None})
    first_conv = getattr(model, "first_conv", None)
    classifier = getattr(model, "classifier_names", None)
    if isinstance(first_conv, str):
        cfg["first_conv"] = first_conv
    if isinstance(classifier, tuple) and classifier:
        cfg["classifier"] = classifier[0] if len(classifier) == 1 else list(classifier)
    return cfg


def _finished(
    model: torch.nn.Module,
    weights: SelectedWeight | None,
    report: LoadReport | None,
    features: tuple[bool, int | Sequence[int] | None],
) -> torch.nn.Module:
    """The model as asked for: its feature extractor with `features_only`, carrying the data
    config of its weights (`pretrained_cfg`) and what loading did (`load_report`)."""
    cfg = pretrained_cfg(weights, model) if weights is not None else None
    features_only, out_indices = features
    if features_only:
        from .features import FeatureExtractor  # torch, only when asked for

        model = FeatureExtractor(model, out_indices)
    if cfg is not None:
        model.pretrained_cfg = cfg
    if report is not None:
        model.load_report = report
    return model


def download(
    name: str | Resolved,
    *,
    revision: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> hub.Download:
    """Fetch (or find in the cache) and check the weight file of `name[.tag]` or `hf-hub:...`."""
    weights = published_weights(resolve(name, registry, revision=revision))
    return _fetch(weights, revision=revision, force=force)


def _fetch(weights: SelectedWeight, *, revision: str | None = None, force: bool = False) -> hub.Download:
    from . import hub  # the network's modules, only for weights that are fetched

    if hub.is_sharded(weights):
        return hub.fetch_sharded(weights, revision=revision, force=force)
    return hub.fetch(weights, revision=revision, force=force)


def get(
    name: str | Resolved,
    *,
    revision: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
) -> Path:
    """The local path of a weight tag's checked safetensors file, downloaded if needed.

    For a sharded checkpoint, the path of its index; every shard is fetched beside it.

    Args:
        name: `name[.tag]` (the entry's default tag if none), `hf-hub:ORG/REPO[@REV]`, or an
            exported folder (its file is checked, not copied).
        revision: A branch, tag or commit of the Hub repository, instead of the registry's.
        force: Download again even if the file is cached, and re-check its sha256.
        registry: The registry to use instead of the installed plugins' one.
    """
    return download(name, revision=revision, force=force, registry=registry).path
