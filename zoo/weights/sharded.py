"""Models larger than one device: built on `meta`, sharded with FSDP2, each rank loading only
its own slices of the checkpoint.

Under `torchrun`, once `torch.distributed.init_process_group()` has run:

    >>> model = zoo.create_sharded("vit_large_patch16_224", pretrained=True, device="cuda")
    >>> model(x)   # FSDP2 gathers each block's parameters for its forward, then frees them

`create_sharded` takes what `zoo.create` takes and builds the same model, in four steps:

1. The model is built with its parameters on `meta` (no memory) and its buffers on the CPU,
   where the family computes them, as `zoo.create` builds it (`parameters_on_meta`): the
   buffers a checkpoint does not hold (non-persistent ones) keep the values the family
   gives them.
2. The checkpoint is checked against the model and memory-mapped, as `zoo.create` does
   (`zoo.weights.loading.fit_checkpoint`): names, shapes, key adapter, a new head.
3. `shard_model`: `fully_shard` on each block the family lists (`blocks_in_order()`, the
   `HasBlocks` hook), then on the whole model. Each rank then allocates its own shard of
   every parameter only (`to_empty`).
4. Each rank copies into its shards the slices of the mapped tensors they hold (for FSDP2,
   a range of rows): it reads those bytes of the file and no others, and gives the pages
   back to the kernel once copied, so that at any time a rank holds its shards and one
   slice being copied. A full tensor is made only where the checkpoint is adapted (a
   resized position embedding) or freshly initialised (a new head).

The result is exactly the model `zoo.create` builds from the same checkpoint: gathered
(`DTensor.full_tensor()`), its tensors are equal, and so are its outputs.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import rank_device
from ..errors import ArgumentError
from ..registry import Registry, Resolved
from ..registry.family import HasBlocks
from .factory import plan, pretrained_cfg
from .loading import fit_checkpoint, initialise_fresh, parameters_on_meta

if TYPE_CHECKING:
    import torch
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.fsdp import MixedPrecisionPolicy

__all__ = ["create_sharded", "shard_model"]


def create_sharded(
    name: str | Resolved,
    *,
    pretrained: bool = False,
    checkpoint: str | Path | None = None,
    fresh_modules: bool = False,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    mesh: DeviceMesh | None = None,
    reshard_after_forward: bool = True,
    mp_policy: MixedPrecisionPolicy | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> torch.nn.Module:
    """Build a registered model sharded over the ranks with FSDP2, loading each rank's shard
    straight from the memory-mapped checkpoint (see the module docstring).

    Every rank of the process group calls it with the same arguments.

    Args:
        name, pretrained, checkpoint, fresh_modules, num_classes, dtype, registry, **overrides:
            As for `zoo.create`; one of `pretrained` and `checkpoint` is required. Modules the
            weights lack (a new head, new attention in a backbone) are initialised whole on
            the CPU, as `zoo.create` initialises them, then sliced.
        device: This rank's device; a bare `"cuda"` is this rank's GPU (`cuda:LOCAL_RANK`).
            Default: this rank's GPU where there is one, else the CPU.
        mesh: The device mesh to shard over (default: every rank, in one dimension).
        reshard_after_forward, mp_policy: Passed to `fully_shard` (see `shard_model`).

    Returns:
        The model, each parameter a `DTensor` sharded over `mesh`; like `zoo.create`'s, it
        carries `load_report` and, built from a weight tag, `pretrained_cfg`.

    Raises:
        ArgumentError: no process group, or no weights to load.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        raise ArgumentError(
            "create_sharded shards over a process group: launch with torchrun and call "
            "torch.distributed.init_process_group() first"
        )
    if not pretrained and checkpoint is None:
        raise ArgumentError("create_sharded loads weights: pass pretrained=True or checkpoint=FILE")
    planned = plan(
        name,
        pretrained=pretrained,
        checkpoint=checkpoint,
        fresh_modules=fresh_modules,
        num_classes=num_classes,
        device=rank_device(device) or _default_device(),
        dtype=dtype,
        registry=registry,
        **overrides,
    )
    with parameters_on_meta():
        model = planned.build(planned.config, device=None, dtype=planned.dtype)
    fitted = fit_checkpoint(
        model,
        planned.checkpoint,
        key_adapter=planned.key_adapter,
        changed=planned.changed,
        fresh_modules=planned.fresh_modules,
        name=planned.label,
    )
    sources = dict(model.named_buffers())  # as built: the file's replace those it holds
    sources.update(fitted.state)
    if fitted.planned.fresh:
        initialise_fresh(model, fitted.planned, torch.device("cpu"), planned.checkpoint)
        state = model.state_dict()
        sources.update({key: state[key] for key in fitted.planned.fresh})

    if planned.device.type == "cuda":
        torch.cuda.set_device(planned.device)
    mesh = mesh if mesh is not None else _one_dimension(planned.device.type)
    shard_model(model, mesh=mesh, reshard_after_forward=reshard_after_forward, mp_policy=mp_policy)
    model.to_empty(device=planned.device)
    _copy_shards(model, sources, fitted.mappings)
    model.load_report = fitted.report
    if planned.weights is not None:
        model.pretrained_cfg = pretrained_cfg(planned.weights, model)
    return model


def shard_model(
    model: torch.nn.Module,
    *,
    mesh: DeviceMesh | None = None,
    reshard_after_forward: bool = True,
    mp_policy: MixedPrecisionPolicy | None = None,
) -> torch.nn.Module:
    """Apply FSDP2 to `model` in place: `fully_shard` on each of its blocks
    (`blocks_in_order()`, for a model with the `HasBlocks` hook), then on the model itself,
    so that one block's parameters at a time are gathered in forward and backward.

    Args:
        model: A model of the zoo, on `meta` or with its weights.
        mesh: The device mesh to shard over (default: every rank of the process group).
        reshard_after_forward: Free each block's gathered parameters after its forward
            (less memory, one more all-gather in backward).
        mp_policy: FSDP2's mixed precision (`MixedPrecisionPolicy(param_dtype=torch.bfloat16)`).

    Returns:
        `model`, now an `FSDPModule`.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    options = {
        "mesh": mesh,
        "reshard_after_forward": reshard_after_forward,
        "mp_policy": mp_policy if mp_policy is not None else MixedPrecisionPolicy(),
    }
    for block in model.blocks_in_order() if isinstance(model, HasBlocks) else ():
        fully_shard(block, **options)
    fully_shard(model, **options)
    return model


def _default_device() -> torch.device:
    import torch

    return rank_device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _one_dimension(device_type: str) -> DeviceMesh:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device_type, (dist.get_world_size(),))


def _copy_shards(
    model: torch.nn.Module, sources: Mapping[str, torch.Tensor], mappings: list[mmap.mmap]
) -> None:
    """Copy into each parameter's and buffer's local shard its slice of `sources`, reading
    only the pages of that slice and giving them back as soon as they are copied."""
    import torch

    pages = _MappedPages(mappings)
    with torch.no_grad():
        for key, tensor in (*model.named_parameters(), *model.named_buffers()):
            local, index = _local_part(tensor)
            part = sources[key][index]
            pages.wanted(part)
            local.copy_(part)
            pages.copied(part)


def _local_part(tensor: torch.Tensor) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """This rank's part of `tensor` and where it lies in the full tensor (all of a tensor
    that is not a `DTensor`)."""
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    if not isinstance(tensor, DTensor):
        return tensor, ()
    shape, offset = compute_local_shape_and_global_offset(tensor.shape, tensor.device_mesh, tensor.placements)
    index = tuple(slice(start, start + size) for start, size in zip(offset, shape, strict=True))
    return tensor.to_local(), index


class _MappedPages:
    """What a rank tells the kernel about the pages of the mapped files, so that it reads
    the bytes of its own slices and no others, and holds them no longer than it copies them:

    - no read-ahead on faults (`MADV_RANDOM`): a kernel reads ahead up to its block device's
      `read_ahead_kb` (8 MB on some machines, as much as half a ViT-L weight), which would
      read the other ranks' rows;
    - each slice asked for in full before it is copied (`MADV_WILLNEED`), in pieces of
      `READ_PIECE`: the kernel caps one request at its read-ahead window, and a piece past
      the cap would be faulted in page by page;
    - each slice given back once copied (`MADV_DONTNEED`): its pages leave the rank's
      resident memory, and would come from the page cache if used again.

    Tensors not over a mapping are left alone.
    """

    READ_PIECE = 128 << 10  # the smallest read-ahead window kernels use by default

    def __init__(self, mappings: list[mmap.mmap]) -> None:
        import torch

        self.spans = [(torch.frombuffer(m, dtype=torch.uint8).data_ptr(), m) for m in mappings if len(m)]
        for _, mapping in self.spans:
            mapping.madvise(mmap.MADV_RANDOM)

    def wanted(self, part: torch.Tensor) -> None:
        found = self._pages(part)
        if found is not None:
            mapping, start, end = found
            for piece in range(start, end, self.READ_PIECE):
                mapping.madvise(mmap.MADV_WILLNEED, piece, min(self.READ_PIECE, end - piece))

    def copied(self, part: torch.Tensor) -> None:
        found = self._pages(part)
        if found is not None:
            mapping, start, end = found
            mapping.madvise(mmap.MADV_DONTNEED, start, end - start)

    def _pages(self, part: torch.Tensor) -> tuple[mmap.mmap, int, int] | None:
        """The mapping `part` lies in and the byte range of its pages there, if it does."""
        if not part.numel():
            return None
        start = part.data_ptr()
        reach = sum((size - 1) * stride for size, stride in zip(part.shape, part.stride(), strict=True))
        end = start + (reach + 1) * part.element_size()
        for base, mapping in self.spans:
            if base <= start and end <= base + len(mapping):
                offset = start - base
                return mapping, offset - offset % mmap.PAGESIZE, end - base
        return None
