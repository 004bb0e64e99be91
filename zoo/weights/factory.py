"""`zoo.create`: a resolved name built on the requested device and dtype, with or without weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import resolve_device, resolve_dtype
from ..errors import ArgumentError
from ..registry import Registry, Resolved, default_registry
from . import hub
from .loading import LoadReport, load_checkpoint
from .resolve import pretrained_weights, resolve, with_default_tag

if TYPE_CHECKING:
    import torch

__all__ = ["create", "download", "get", "pretrained_cfg"]


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
    if registry is not None and not isinstance(registry, Registry):
        raise ArgumentError(f"registry= takes a zoo.Registry, not {registry!r}")
    registry = registry if registry is not None else default_registry()
    if pretrained and checkpoint is not None:
        raise ArgumentError("pass either pretrained=True or checkpoint=..., not both")
    if out_indices is not None and not features_only:
        raise ArgumentError("out_indices chooses the feature maps of features_only=True: pass it too")
    if fresh_modules and not (pretrained or checkpoint is not None):
        raise ArgumentError(
            "fresh_modules=True (--fresh-modules) loads a checkpoint as a backbone: "
            "pass checkpoint=FILE (--checkpoint FILE) too"
        )
    resolved = resolve(name, registry)
    weights = pretrained_weights(resolved, registry) if pretrained else None
    borrowed = weights is not None and weights.source is not resolved.source
    if weights is not None and not borrowed:
        resolved = weights  # its own default tag, whose head the config takes
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    head = weights.weights.builder_args() if borrowed else {}  # the borrowed checkpoint's head
    config = registry.build_config(resolved, {**head, **overrides})
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype)
    build = registry.builder(resolved.entry.builder).build

    features = (features_only, out_indices)
    if checkpoint is None and not pretrained:
        model = build(config, device=target_device, dtype=target_dtype)
        return _finished(model, resolved if resolved.tag else None, None, features)

    if pretrained:
        checkpoint = _fetch(weights).path
    tag = weights if pretrained else resolved
    key_adapter = None
    if tag.weights is not None and tag.weights.adapter:  # the tag's file, fetched or local
        key_adapter = registry.adapter(tag.weights.adapter)
    model = build(config, device="meta", dtype=target_dtype)
    report = load_checkpoint(
        model,
        checkpoint,
        device=target_device,
        dtype=target_dtype,
        key_adapter=key_adapter,
        changed=set(overrides),
        fresh_modules=fresh_modules or borrowed or (pretrained and bool(overrides)),
        name=str(tag),
    )
    return _finished(model, tag if tag.tag else None, report, features)


def pretrained_cfg(resolved: Resolved, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """The data config of a weight tag, in timm's `pretrained_cfg` keys: `architecture`,
    `tag`, `hf_hub_id`, `license`, `num_classes` (of the checkpoint's head, 0 for none) and,
    for image weights, `input_size`, `test_input_size`, `mean`, `std`, `crop_pct` and
    `interpolation`; with `model`, its `first_conv` and `classifier` where it names them."""
    weights = resolved.weights
    cfg: dict[str, Any] = {
        "architecture": resolved.name,
        "tag": resolved.tag,
        "hf_hub_id": weights.hf_hub_id,
        "license": weights.license,
        "num_classes": weights.builder_args().get("num_classes", 0),
    }
    preprocessing = weights.preprocessing_or_none
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
    tag: Resolved | None,
    report: LoadReport | None,
    features: tuple[bool, int | Sequence[int] | None],
) -> torch.nn.Module:
    """The model as asked for: its feature extractor with `features_only`, carrying the data
    config of its tag (`pretrained_cfg`) and what loading did (`load_report`)."""
    cfg = pretrained_cfg(tag, model) if tag is not None else None
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
    resolved = with_default_tag(resolve(name, registry, revision=revision))
    return _fetch(resolved, revision=revision, force=force)


def _fetch(resolved: Resolved, *, revision: str | None = None, force: bool = False) -> hub.Download:
    if hub.is_sharded(resolved):
        return hub.fetch_sharded(resolved, revision=revision, force=force)
    return hub.fetch(resolved, revision=revision, force=force)


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
