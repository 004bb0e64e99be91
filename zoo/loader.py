"""Building models by name, on the requested device and dtype, with or without weights.

With weights (`pretrained=True` or `checkpoint=`), the model is built on the `meta` device:
no memory, no random initialisation. The safetensors header is checked on its own (bounds,
dtypes, byte ranges; see `zoo.safetensors_header`) and then against the model, name by
name and shape by shape, before a byte of tensor data is read. The file is then mapped
copy-on-write, its tensors are made over the mapping without copying, assigned to the
model, and moved or cast only where `device` or `dtype` ask for it. Loading a checkpoint
takes no second copy of it in memory.

Adapting a checkpoint to a model that differs from it on purpose (the caller passed
`num_classes`, `img_size`, `in_chans`, ... ) is asked of the model itself, which keeps this
module free of model-specific names. A model family may provide:

- `classifier_names: tuple[str, ...]`: the modules of its classifier head(s). A head whose
  tensors do not fit is left out of loading and freshly initialised; the rest is loaded.
- `init_classifier()`: initialise those modules once they hold memory (otherwise each
  submodule's `reset_parameters()` is called).
- `first_conv: str`: the module that reads the image. A different number of input channels
  is adapted: summed for one channel, tiled and rescaled for more.
- `adapt_pretrained(name, tensor) -> (tensor, message) | None`: any other tensor whose shape
  differs (e.g. ViT position embeddings resampled to a new grid). It must also accept
  `meta` tensors, on which loading is rehearsed before the file is read.

Each adaptation is logged on the `zoo` logger, one line each, and returned by
`load_checkpoint`. Without overrides, loading is strict.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import hub
from .errors import ArgumentError, CheckpointError, DeviceError, ZooError
from .registry import Registry, default_registry
from .safetensors_header import Header, read_header

if TYPE_CHECKING:
    import torch

__all__ = [
    "Adapted",
    "adapt_input_conv",
    "adapt_state",
    "check_state_names",
    "create",
    "load_checkpoint",
    "map_tensors",
    "resolve_device",
    "resolve_dtype",
]

logger = logging.getLogger("zoo")

DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
}


def create(
    name: str,
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
            or `"hf-hub:ORG/REPO[@REVISION]"` for a repository exported with `zoo export`.
            A tag selects the head that tag's checkpoint has.
        pretrained: Load the published weights of the tag (the entry's default tag if none),
            from the cache or downloaded and checked first.
        checkpoint: Load this local safetensors file instead (through the key adapter of the
            tag, if `name` carries one).
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
    registry = registry if registry is not None else default_registry()
    if pretrained and checkpoint is not None:
        raise ArgumentError("pass either pretrained=True or checkpoint=..., not both")
    resolved = hub.resolve(name, registry)
    if pretrained:
        resolved = hub.with_default_tag(resolved)
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    config = registry.build_config(resolved, overrides)
    target_device = resolve_device(device)
    target_dtype = resolve_dtype(dtype)
    build = registry.builder(resolved.entry.builder).function

    if checkpoint is None and not pretrained:
        return build(config, device=target_device, dtype=target_dtype)

    if pretrained:
        checkpoint = hub.fetch(resolved).path
    adapter = None
    if resolved.weights is not None and resolved.weights.adapter:  # the tag's file, fetched or local
        adapter = registry.adapter(resolved.weights.adapter)
    model = build(config, device="meta", dtype=target_dtype)
    load_checkpoint(
        model,
        checkpoint,
        device=target_device,
        dtype=target_dtype,
        adapter=adapter,
        adapt=set(overrides),
        name=str(resolved),
    )
    return model


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """A `torch.device` that exists on this machine, or `DeviceError` saying why not."""
    if device is None:
        return None
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device '{device}' (expected cpu, cuda, cuda:N, mps, meta, ...)") from None
    if resolved.type in ("cpu", "meta"):
        return resolved
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(
                f"device '{device}' is not available: torch {torch.__version__} sees no CUDA GPU here"
            )
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"device '{device}' is not available: this machine has {count} CUDA GPU(s)")
        return resolved
    backend = getattr(torch, resolved.type, None) or getattr(torch.backends, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None or not is_available():
        raise DeviceError(f"device '{device}' is not available on this machine")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """A floating-point `torch.dtype` from a name such as `"bf16"`, or `DeviceError`."""
    if dtype is None:
        return None
    import torch

    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        canonical = DTYPE_NAMES.get(str(dtype).removeprefix("torch.").lower())
        if canonical is None:
            choices = ", ".join(sorted(DTYPE_NAMES))
            raise DeviceError(f"unknown dtype '{dtype}' (expected one of: {choices})")
        resolved = getattr(torch, canonical)
    if not resolved.is_floating_point:
        raise DeviceError(f"dtype '{dtype}' is not a floating-point type")
    return resolved


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    adapt: bool | Collection[str] = False,
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
        adapter: A key adapter mapping the file's tensors to the model's names.
        adapt: The builder arguments the caller changed from the checkpoint's (True: any),
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
    planned = _prepare(model, rehearsal, expected, adapter, adapt, path)
    check_state_names(
        {key: shape for key, shape in expected.items() if key not in planned.fresh},
        {key: tuple(t.shape) for key, t in planned.state.items()},
        path,
    )
    for message in planned.messages:
        logger.info("%s: %s", label, message)
    if device is not None and device.type == "meta":
        return planned.messages

    prepared = _prepare(model, map_tensors(header), expected, adapter, adapt, path)
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


@dataclass
class Adapted:
    """A checkpoint's tensors made to fit a model, and what was changed."""

    state: dict[str, Any]
    fresh: set[str] = field(default_factory=set)
    """Model tensors left out of loading, to be freshly initialised."""
    messages: list[str] = field(default_factory=list)


def _prepare(
    model: torch.nn.Module,
    state: dict[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    adapt: bool | Collection[str],
    path: Path,
) -> Adapted:
    if adapter is not None:
        try:
            state = dict(adapter(state))
        except ZooError:
            raise
        except Exception as error:
            raise CheckpointError(
                f"key adapter failed on '{path}': {type(error).__name__}: {error}"
            ) from None
    return adapt_state(model, state, expected, changed=adapt) if adapt else Adapted(state)


def adapt_state(
    model: torch.nn.Module,
    state: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    *,
    changed: bool | Collection[str] = True,
) -> Adapted:
    """Make a checkpoint fit a model that differs from it on purpose, as the model describes.

    `changed` names the builder arguments that differ on purpose (True: any): `num_classes`
    lets the head be replaced, `in_chans` the first conv be adapted, and any other the
    model's `adapt_pretrained` hook be asked. Works on real and on `meta` tensors alike.
    Tensors nothing may adapt are left as they are, for the strict check to report.
    """

    def allowed(argument: str | None) -> bool:
        if changed is True:
            return True
        if argument is None:
            return bool(set(changed) - {"num_classes", "in_chans"})
        return argument in changed

    adapted = Adapted(dict(state))
    state = adapted.state
    for prefix in getattr(model, "classifier_names", ()) if allowed("num_classes") else ():
        model_keys = [key for key in expected if _within(key, prefix)]
        file_keys = [key for key in state if _within(key, prefix)]
        if set(model_keys) == set(file_keys) and all(
            tuple(state[k].shape) == expected[k] for k in model_keys
        ):
            continue
        old = _classes({key: tuple(state[key].shape) for key in file_keys})
        new = _classes({key: expected[key] for key in model_keys})
        for key in file_keys:
            del state[key]
        adapted.fresh.update(model_keys)
        if not model_keys:
            adapted.messages.append(
                f"{prefix}: the checkpoint's {old}-class head is not used (no head asked for)"
            )
        else:
            had = f"the checkpoint's has {old} classes" if file_keys else "the checkpoint has none"
            adapted.messages.append(
                f"{prefix}: new {new}-class head, freshly initialised ({had}); the rest is loaded"
            )

    first_conv = getattr(model, "first_conv", None)
    key = f"{first_conv}.weight"
    if first_conv and key in state and key in expected and allowed("in_chans"):
        weight, want = state[key], expected[key]
        fits_otherwise = (
            weight.ndim == len(want) >= 3
            and weight.shape[0] == want[0]
            and tuple(weight.shape[2:]) == want[2:]
        )
        if fits_otherwise and weight.shape[1] != want[1]:
            state[key] = adapt_input_conv(weight, want[1])
            how = "summed" if want[1] == 1 else "tiled and rescaled"
            adapted.messages.append(
                f"{first_conv}: first conv adapted from {weight.shape[1]} to {want[1]} "
                f"input channel(s) ({how})"
            )

    hook = getattr(model, "adapt_pretrained", None)
    if hook is not None and allowed(None):
        for key in list(state):
            if key in expected and key not in adapted.fresh and tuple(state[key].shape) != expected[key]:
                result = hook(key, state[key])
                if result is not None:
                    state[key], message = result
                    adapted.messages.append(message)
    return adapted


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A conv weight (out, in, ...) for `in_chans` inputs: summed over inputs for one channel;
    otherwise the input channels tiled to `in_chans` and scaled by in/in_chans, so that an
    image repeated across channels gives the same activations."""
    source = weight.float()
    if in_chans == 1:
        adapted = source.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_chans / weight.shape[1])
        tiled = source.repeat(1, repeats, *([1] * (weight.ndim - 2)))[:, :in_chans]
        adapted = tiled * (weight.shape[1] / in_chans)
    return adapted.to(weight.dtype)


def _within(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def _classes(shapes: Mapping[str, tuple[int, ...]]) -> int:
    for key, shape in shapes.items():
        if key.endswith("weight") and len(shape) == 2:
            return shape[0]
    return next((shape[0] for shape in shapes.values() if shape), 0)


def _initialise_fresh(model: torch.nn.Module, fresh: set[str], device: torch.device | None) -> None:
    import torch

    target = device if device is not None else torch.device("cpu")
    prefixes = [p for p in getattr(model, "classifier_names", ()) if any(_within(k, p) for k in fresh)]
    for prefix in prefixes:
        model.get_submodule(prefix).to_empty(device=target)
    initialise = getattr(model, "init_classifier", None)
    if initialise is not None:
        initialise()
        return
    for prefix in prefixes:
        for module in model.get_submodule(prefix).modules():
            reset = getattr(module, "reset_parameters", None)
            if reset is not None:
                reset()


def _wanted_dtype(reference: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if dtype is not None and reference.is_floating_point() else reference.dtype


def _placed(tensor: torch.Tensor, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    if tensor.dtype == dtype or not (tensor.is_floating_point() and dtype.is_floating_point):
        return tensor.to(device=device) if device is not None else tensor
    return tensor.to(device=device, dtype=dtype)


def check_state_names(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]], path: str | Path
) -> None:
    """Raise `CheckpointError` naming what is missing, unexpected or of the wrong shape."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    mismatched = [
        f"{name} (checkpoint {list(found[name])}, model {list(shape)})"
        for name, shape in expected.items()
        if name in found and tuple(found[name]) != tuple(shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{len(names)} {label}: {shown}")
    raise CheckpointError(f"checkpoint '{path}' does not fit the model: " + "; ".join(parts))
