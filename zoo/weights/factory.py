"""`zoo.create`: a resolved name built on the requested device and dtype, with or without weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import resolve_device, resolve_dtype
from ..errors import ArgumentError
from ..registry import Registry, Resolved, default_registry
from . import hub
from .loading import load_checkpoint
from .resolve import resolve, with_default_tag

if TYPE_CHECKING:
    import torch

__all__ = ["create", "download", "get"]


def create(
    name: str | Resolved,
    *,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
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
            from the cache or downloaded and checked first.
        checkpoint: Load this local safetensors file instead (through the key adapter of the
            tag, if `name` carries one); or a sharded checkpoint, as its
            `model.safetensors.index.json` or the folder holding it and its shards.
        num_classes: Size of the classifier head (0 for none). With weights whose head differs,
            a fresh head is initialised and everything else is loaded.
        device: Where to build (`"cpu"`, `"cuda"`, `"cuda:1"`, `"meta"`, ...).
        dtype: Floating-point dtype of parameters and buffers (`"bfloat16"`, `torch.float16`, ...).
        registry: The registry to use instead of the installed plugins' one.
        **overrides: Builder arguments replacing the registry's (`attn="cbam"`, `drop_path_rate=0.1`).
            With weights, `img_size` and `in_chans` adapt the checkpoint's position embeddings
            and first conv.

    Returns:
        The model, in training mode like any freshly built `nn.Module`.
    """
    if registry is not None and not isinstance(registry, Registry):
        raise ArgumentError(f"registry= takes a zoo.Registry, not {registry!r}")
    registry = registry if registry is not None else default_registry()
    if pretrained and checkpoint is not None:
        raise ArgumentError("pass either pretrained=True or checkpoint=..., not both")
    resolved = resolve(name, registry)
    if pretrained:
        resolved = with_default_tag(resolved)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    config = registry.build_config(resolved, overrides)
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype)
    build = registry.builder(resolved.entry.builder).build

    if checkpoint is None and not pretrained:
        return build(config, device=target_device, dtype=target_dtype)

    if pretrained:
        checkpoint = _fetch(resolved).path
    key_adapter = None
    if resolved.weights is not None and resolved.weights.adapter:  # the tag's file, fetched or local
        key_adapter = registry.adapter(resolved.weights.adapter)
    model = build(config, device="meta", dtype=target_dtype)
    load_checkpoint(
        model,
        checkpoint,
        device=target_device,
        dtype=target_dtype,
        key_adapter=key_adapter,
        changed=set(overrides),
        name=str(resolved),
    )
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
