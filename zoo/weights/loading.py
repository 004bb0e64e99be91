"""Loading a safetensors checkpoint into a model built on `meta`, strictly and without copies.

The safetensors header is checked on its own (bounds,
dtypes, byte ranges; see `zoo.weights.header`) and then against the model, name by
name and shape by shape, before a byte of tensor data is read. The file is then mapped
copy-on-write, its tensors are made over the mapping without copying, assigned to the
model, and moved or cast only where `device` or `dtype` ask for it. Loading a checkpoint
takes no second copy of it in memory.

How a model that differs from its checkpoint on purpose is made to fit it is
`zoo.weights.adaptation`'s job. Without changed arguments, loading is strict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, ZooError
from ..registry.family import HasClassifier
from .adaptation import Adapted, adapt_state, within
from .header import Header, check_state_names, read_header

if TYPE_CHECKING:
    import torch

__all__ = ["load_checkpoint", "map_tensors"]

logger = logging.getLogger("zoo")


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    changed: bool | Collection[str] = False,
    name: str | None = None,
) -> list[str]:
    """Load a safetensors file into `model` (best built on `meta`), assigning its tensors.

    The header is checked on its own and against the model before any tensor is read;
    with `device="meta"` only that check is done. Tensors are made over a copy-on-write
    mapping of the file and assigned as they are, unless `device` or the model's dtype
    ask for a move or a cast.

    Args:
        model: The model to fill.
        path: A safetensors file.
        device: Where the tensors go (default: stay on the CPU, over the mapping).
        dtype: The floating-point dtype to cast to (default: the model's own, as built).
        key_adapter: Maps the file's tensor names to the model's (a registered key adapter).
        changed: The builder arguments the caller changed from the checkpoint's (True: any),
            whose tensors may be adapted: `num_classes` the head, `in_chans` the first conv,
            others through the model's `adapt_pretrained`. Everything else must match.
        name: What to call the checkpoint in messages (default: its path).

    Returns:
        One message per adaptation made (also logged on the `zoo` logger).
    """
    import torch

    path = Path(path)
    header = read_header(path)
    label = name or str(path)
    reference = model.state_dict(keep_vars=False)
    expected = {key: tuple(t.shape) for key, t in reference.items()}

    rehearsal = {
        key: torch.empty(info.shape, dtype=getattr(torch, info.torch_dtype), device="meta")
        for key, info in header.tensors.items()
    }
    planned = _prepare(model, rehearsal, expected, key_adapter, changed, path)
    check_state_names(
        {key: shape for key, shape in expected.items() if key not in planned.fresh},
        {key: tuple(t.shape) for key, t in planned.state.items()},
        path,
    )
    for message in planned.messages:
        logger.info("%s: %s", label, message)
    if device is not None and device.type == "meta":
        return planned.messages

    prepared = _prepare(model, map_tensors(header), expected, key_adapter, changed, path)
    state = {
        key: _placed(t, device, _wanted_dtype(reference[key], dtype)) for key, t in prepared.state.items()
    }
    del prepared
    result = model.load_state_dict(state, strict=not planned.fresh, assign=True)
    del state
    if planned.fresh:
        if set(result.missing_keys) != planned.fresh or result.unexpected_keys:
            raise CheckpointError(f"checkpoint '{path}' does not fit the model after adapting its head")
        _initialise_fresh(model, planned.fresh, device)
    left_on_meta = [key for key, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise CheckpointError(
            f"checkpoint '{path}' left tensors uninitialised: {', '.join(left_on_meta[:5])}"
        )
    return planned.messages


def map_tensors(header: Header) -> dict[str, torch.Tensor]:
    """The tensors of a checked safetensors file, over a copy-on-write mapping of it.

    Nothing is read until a tensor is used, nothing is copied (but a tensor whose offset is
    not a multiple of its element size), and writing to a tensor never changes the file.
    """
    import mmap

    import torch

    with open(header.path, "rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    if len(mapping) != header.file_size:
        raise CheckpointError(f"checkpoint '{header.path}' changed while it was being read")
    tensors = {}
    for key, info in header.tensors.items():
        dtype = getattr(torch, info.torch_dtype)
        if info.numel == 0:
            tensors[key] = torch.empty(info.shape, dtype=dtype)
            continue
        tensor = torch.frombuffer(mapping, dtype=dtype, count=info.numel, offset=info.start).view(info.shape)
        tensors[key] = tensor.clone() if info.start % info.itemsize else tensor
    return tensors


def _prepare(
    model: torch.nn.Module,
    state: dict[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    changed: bool | Collection[str],
    path: Path,
) -> Adapted:
    if key_adapter is not None:
        try:
            state = dict(key_adapter(state))
        except ZooError:
            raise
        except Exception as error:
            raise CheckpointError(
                f"key adapter failed on '{path}': {type(error).__name__}: {error}"
            ) from None
    return adapt_state(model, state, expected, changed=changed) if changed else Adapted(state)


def _initialise_fresh(model: HasClassifier, fresh: set[str], device: torch.device | None) -> None:
    """Give the heads left out of loading memory, and initialise them as the family does."""
    import torch

    target = device if device is not None else torch.device("cpu")
    for prefix in model.classifier_names:
        if any(within(key, prefix) for key in fresh):
            model.get_submodule(prefix).to_empty(device=target)
    model.init_classifier()


def _wanted_dtype(reference: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if dtype is not None and reference.is_floating_point() else reference.dtype


def _placed(tensor: torch.Tensor, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    if tensor.dtype == dtype or not (tensor.is_floating_point() and dtype.is_floating_point):
        return tensor.to(device=device) if device is not None else tensor
    return tensor.to(device=device, dtype=dtype)
