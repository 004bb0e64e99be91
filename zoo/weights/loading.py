"""Loading a safetensors checkpoint into a model built on `meta`, strictly and without copies.

The safetensors header (every shard's, for a sharded checkpoint) is checked on its own (bounds,
dtypes, byte ranges; see `zoo.weights.header`) and then against the model, name by
name and shape by shape, before a byte of tensor data is read. The file is then mapped
copy-on-write, its tensors are made over the mapping without copying, assigned to the
model, and moved or cast only where `device` or `dtype` ask for it. Loading a checkpoint
takes no second copy of it in memory.

How a model that differs from its checkpoint on purpose is made to fit it is
`zoo.weights.adaptation`'s job. Without changed arguments, loading is strict: every name,
shape and dtype fits: floating-point tensors are cast to the model's floating-point dtype
(or `dtype`'s), as timm and transformers cast them; any other must be of the model's dtype.
Loaded as the backbone of a model that extends it (`fresh_modules=True`), the modules the checkpoint has
no tensor of are initialised as the model's family initialises them and reported; all else
is as strict.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Argument, CheckpointError, ZooError
from ..registry.family import HasClassifier, InitialisesModules, reset_to_defaults
from .adaptation import Adapted, adapt_state, count_modules, head_classes, mark_new_modules, within
from .header import Checkpoint, Header, read_checkpoint, state_mismatch

if TYPE_CHECKING:
    import torch

__all__ = [
    "WRAPPER_PREFIXES",
    "Fitted",
    "LoadReport",
    "fit_checkpoint",
    "initialise_fresh",
    "load_checkpoint",
    "map_file",
    "map_tensors",
    "parameters_on_meta",
    "rehearse_load",
    "shared_prefixes",
]

logger = logging.getLogger("zoo")


@dataclass(frozen=True)
class LoadReport:
    """What loading a checkpoint into a model did (`zoo.create` keeps it as `model.load_report`)."""

    checkpoint: str
    """The checkpoint, as messages name it."""
    messages: tuple[str, ...] = ()
    """One line per prefix stripped, adaptation made or set of new modules initialised."""
    fresh: tuple[str, ...] = ()
    """The model's tensors initialised fresh rather than loaded (a new head, new modules), in
    the order of its state dict."""
    new_modules: dict[str, str] = field(default_factory=dict)
    """The modules the checkpoint has no tensor of (name -> class name), e.g.
    `{"layer1.0.se": "CBAM", ...}`: their tensors are among `fresh`."""


def load_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    changed: bool | Collection[str] = False,
    fresh_modules: bool = False,
    name: str | None = None,
) -> LoadReport:
    """Load a safetensors checkpoint into `model` (best built on `meta`, or inside
    `parameters_on_meta` to keep the buffers it computes), assigning its tensors.

    The header (every shard's, for a sharded checkpoint) is checked on its own and against
    the model before any tensor is read; with `device="meta"` only that check is done.
    Tensors are made over a copy-on-write mapping of the file and assigned as they are,
    unless `device` or the model's dtype ask for a move or a cast.

    Names saved through a wrapper (`module.` from DistributedDataParallel, `_orig_mod.` from
    torch.compile, `model.`, ...) are loaded without the prefix when every name carries it
    and the names then fit the model exactly; a message says so.

    Args:
        model: The model to fill.
        path: A safetensors file, a sharded checkpoint's `*.safetensors.index.json`, or a
            folder holding `model.safetensors.index.json` or `model.safetensors`.
        device: Where the tensors go (default: stay on the CPU, over the mapping).
        dtype: The floating-point dtype to cast to (default: the model's own, as built).
        key_adapter: Maps the file's tensor names to the model's (a registered key adapter).
        changed: The builder arguments the caller changed from the checkpoint's (True: any),
            whose tensors may be adapted: `num_classes` the head, `in_chans` the first conv,
            others through the model's `adapt_pretrained`. Everything else must match.
        fresh_modules: Load the checkpoint as the backbone of a model that extends it: the
            modules it has no tensor of (new attention modules, say) are given memory on
            `device` and initialised as the family initialises them (the model's
            `init_modules`, else PyTorch's `reset_parameters`), and one message lists them.
            A tensor of the wrong shape or (not floating-point) dtype, one the model lacks,
            or one missing beside others of its module that the checkpoint has, is still an
            error.
        name: What to call the checkpoint in messages (default: its path).

    Returns:
        What was done: one message per prefix stripped, adaptation made or set of new
        modules (each also logged on the `zoo` logger), and the tensors initialised fresh.
    """
    path = Path(path)
    reference = model.state_dict(keep_vars=False)
    if device is not None and device.type == "meta":
        checkpoint = read_checkpoint(path)
        planned, _ = _rehearsed(model, path, checkpoint, reference, key_adapter, changed, fresh_modules, name)
        return _report(name or str(path), planned, reference)

    fitted = fit_checkpoint(
        model, path, key_adapter=key_adapter, changed=changed, fresh_modules=fresh_modules, name=name
    )
    state = {key: _placed(t, device, _wanted_dtype(reference[key], dtype)) for key, t in fitted.state.items()}
    fitted.state.clear()
    result = model.load_state_dict(state, strict=not fitted.planned.fresh, assign=True)
    del state
    if fitted.planned.fresh:
        # BatchNorm fills in a missing step counter itself, so it is not reported missing.
        if set(result.missing_keys) - fitted.planned.fresh or result.unexpected_keys:
            raise CheckpointError(f"checkpoint '{path}' does not fit the model after adapting it")
        initialise_fresh(model, fitted.planned, device, path)
    _place_unsaved_buffers(model, device, dtype)
    left_on_meta = [key for key, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left_on_meta:
        raise CheckpointError(
            f"checkpoint '{path}' left tensors uninitialised: {', '.join(left_on_meta[:5])}"
        )
    return fitted.report


@dataclass
class Fitted:
    """A checkpoint's tensors under the model's names, over copy-on-write mappings of its files."""

    state: dict[str, torch.Tensor]
    """Model name -> tensor: a view over a mapping, or a new tensor where it was adapted."""
    planned: Adapted
    """The fit: `fresh`, the model's tensors the checkpoint does not give (a new head, new
    modules), to initialise with `initialise_fresh`."""
    report: LoadReport
    mappings: list[mmap.mmap]
    """One per file, in the order of the checkpoint's shards."""


def fit_checkpoint(
    model: torch.nn.Module,
    path: str | Path,
    *,
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    changed: bool | Collection[str] = False,
    fresh_modules: bool = False,
    name: str | None = None,
) -> Fitted:
    """A checkpoint's tensors fitted to `model`'s names, as `load_checkpoint` fits them, but
    not assigned: the header is checked against the model first, then the files are mapped
    and nothing is read until a tensor (or a slice of one) is used.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    reference = model.state_dict(keep_vars=False)
    planned, prefix = _rehearsed(
        model, path, checkpoint, reference, key_adapter, changed, fresh_modules, name
    )
    mappings, mapped = [], {}
    for header in checkpoint.shards:
        mapping, tensors = map_file(header)
        mappings.append(mapping)
        mapped.update(tensors)
    expected = {key: tuple(t.shape) for key, t in reference.items()}
    prepared = _prepare(model, _strip(mapped, prefix), expected, key_adapter, changed, fresh_modules, path)
    return Fitted(prepared.state, planned, _report(name or str(path), planned, reference), mappings)


def _rehearsed(
    model: torch.nn.Module,
    path: Path,
    checkpoint: Checkpoint,
    reference: Mapping[str, torch.Tensor],
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    changed: bool | Collection[str],
    fresh_modules: bool,
    name: str | None,
) -> tuple[Adapted, str]:
    """The fit of the checkpoint's names and shapes to the model, on `meta` (see `_plan`);
    its messages are logged. `path` is the checkpoint as the caller named it, for messages;
    `reference` the model's state dict."""
    import torch

    expected = {key: tuple(t.shape) for key, t in reference.items()}
    rehearsal = {
        key: torch.empty(info.shape, dtype=getattr(torch, info.torch_dtype), device="meta")
        for key, info in checkpoint.tensors.items()
    }
    planned, prefix = _plan(model, rehearsal, expected, key_adapter, changed, fresh_modules, path)
    for message in planned.messages:
        logger.info("%s: %s", name or str(path), message)
    return planned, prefix


def rehearse_load(
    model: torch.nn.Module,
    tensors: Mapping[str, torch.Tensor],
    *,
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    changed: bool | Collection[str] = False,
    fresh_modules: bool = False,
    name: str = "checkpoint",
) -> LoadReport:
    """What `load_checkpoint` would do with a checkpoint of these tensors (`meta` ones do),
    checked the same way, without loading anything; raises the same errors."""
    reference = model.state_dict(keep_vars=False)
    expected = {key: tuple(t.shape) for key, t in reference.items()}
    planned, _ = _plan(model, dict(tensors), expected, key_adapter, changed, fresh_modules, Path(name))
    return _report(name, planned, reference)


def _report(label: str, planned: Adapted, reference: Mapping[str, Any]) -> LoadReport:
    return LoadReport(
        checkpoint=label,
        messages=tuple(planned.messages),
        fresh=tuple(key for key in reference if key in planned.fresh),
        new_modules=dict(planned.new_modules),
    )


def map_tensors(header: Header) -> dict[str, torch.Tensor]:
    """The tensors of a checked safetensors file, over a copy-on-write mapping of it.

    Nothing is read until a tensor is used, nothing is copied (but a tensor whose offset is
    not a multiple of its element size), and writing to a tensor never changes the file.
    """
    return map_file(header)[1]


def map_file(header: Header) -> tuple[mmap.mmap, dict[str, torch.Tensor]]:
    """`map_tensors`, with the mapping its tensors are views of."""
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
    return mapping, tensors


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Build a model to load inside this: every parameter registered meanwhile goes to
    `meta` as it is registered (no memory, its values never kept), while buffers stay where
    they are made, so that those a checkpoint does not hold (non-persistent ones) keep the
    values the model computes for them. Build with `device=None`."""
    import torch
    from torch.nn.modules.module import register_module_parameter_registration_hook

    def on_meta(module: torch.nn.Module, name: str, parameter: torch.nn.Parameter | None):
        if parameter is None or parameter.is_meta:
            return None
        return torch.nn.Parameter(parameter.to("meta"), requires_grad=parameter.requires_grad)

    handle = register_module_parameter_registration_hook(on_meta)
    try:
        yield
    finally:
        handle.remove()


WRAPPER_PREFIXES = {
    "module.": "as DistributedDataParallel saves them",
    "_orig_mod.": "as a torch.compile'd model saves them",
    "model.": "as a wrapper module saves them",
}
"""Prefixes other tools' wrappers put before every name, and who puts them there."""


def _plan(
    model: torch.nn.Module,
    state: dict[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    changed: bool | Collection[str],
    fresh_modules: bool,
    path: Path,
) -> tuple[Adapted, str]:
    """Fit the checkpoint's names to the model, as they are or without a prefix all share.

    Returns the adapted state and the prefix stripped ("" if none); raises the mismatch,
    with what would make it load (the prefix seen, the head size to ask for).
    """
    tried: list[tuple[str, Adapted]] = []
    adapter_error = None
    for prefix in ("", *shared_prefixes(state)):
        try:
            candidate = _prepare(
                model, _strip(state, prefix), expected, key_adapter, changed, fresh_modules, path
            )
        except CheckpointError as error:  # the key adapter refused these names
            adapter_error = adapter_error or error
            continue
        if _misfits(candidate, expected) == 0:
            _check_dtypes(model, candidate, path)
            if fresh_modules and len(candidate.state) == 0:
                raise CheckpointError(f"checkpoint '{path}' has no tensor the model has: nothing to load")
            if prefix:
                message = f"tensor names start with '{prefix}'{_who(prefix)}; loaded without it"
                candidate.messages.insert(0, message)
            return candidate, prefix
        tried.append((prefix, candidate))
    if not tried:
        raise adapter_error
    problem, arguments = _explain(model, tried, expected, changed, fresh_modules)
    raise CheckpointError(f"checkpoint '{path}' does not fit the model: {problem}", arguments=arguments)


def shared_prefixes(state: Mapping[str, Any], depth: int = 3) -> list[str]:
    """The dotted prefixes every name starts with (`module.`, `module._orig_mod.`), shortest
    first, each leaving a non-empty name."""
    parts = [key.split(".") for key in state]
    if not parts:
        return []
    prefixes = []
    for level in range(1, depth + 1):
        if any(len(p) <= level for p in parts) or len({tuple(p[:level]) for p in parts}) != 1:
            break
        prefixes.append(".".join(parts[0][:level]) + ".")
    return prefixes


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    if not prefix:
        return state
    return {key.removeprefix(prefix): value for key, value in state.items()}


def _fitted(adapted: Adapted, expected: Mapping[str, tuple[int, ...]]) -> tuple[dict, dict]:
    """The model's names still to load and the checkpoint's, with their shapes."""
    wanted = {key: shape for key, shape in expected.items() if key not in adapted.fresh}
    found = {key: tuple(t.shape) for key, t in adapted.state.items()}
    return wanted, found


def _misfits(adapted: Adapted, expected: Mapping[str, tuple[int, ...]]) -> int:
    wanted, found = _fitted(adapted, expected)
    differ = sum(1 for key in wanted.keys() & found.keys() if wanted[key] != found[key])
    return len(wanted.keys() ^ found.keys()) + differ


def _explain(
    model: torch.nn.Module,
    tried: list[tuple[str, Adapted]],
    expected: Mapping[str, tuple[int, ...]],
    changed: bool | Collection[str],
    fresh_modules: bool,
) -> tuple[str, list[Argument]]:
    """The mismatch in words, of the names as they are or without the prefix, whichever fits
    better, and what would make it load (with the argument it names)."""
    prefix, best = min(tried, key=lambda item: _misfits(item[1], expected))
    problem = state_mismatch(*_fitted(best, expected))
    seen = next((stripped for stripped, _ in tried if stripped), "")
    if prefix:
        problem = f"every checkpoint name starts with '{prefix}'{_who(prefix)}; without it: {problem}"
    elif seen:
        problem += f"; every checkpoint name starts with '{seen}'{_who(seen)}, and does not fit without it"
    hint = _head_hint(model, best, expected, changed)
    if hint is None and not fresh_modules:
        hint = _new_modules_hint(model, best, expected)
    if hint is None:
        return problem, []
    text, argument = hint
    return problem + text, [argument]


def _new_modules_hint(
    model: torch.nn.Module, adapted: Adapted, expected: Mapping[str, tuple[int, ...]]
) -> tuple[str, Argument] | None:
    """`fresh_modules=True` that would load the checkpoint, when it lacks only whole modules."""
    trial = Adapted(dict(adapted.state), set(adapted.fresh))
    mark_new_modules(model, trial, expected)
    if not trial.new_modules or _misfits(trial, expected):
        return None
    return (
        f"; the missing tensors are those of {count_modules(trial.new_modules)} the checkpoint has none of: "
        "pass {fresh_modules} to initialise them fresh",
        Argument("fresh_modules", "True"),
    )


def _who(prefix: str) -> str:
    return f" ({WRAPPER_PREFIXES[prefix]})" if prefix in WRAPPER_PREFIXES else ""


def _head_hint(
    model: torch.nn.Module,
    adapted: Adapted,
    expected: Mapping[str, tuple[int, ...]],
    changed: bool | Collection[str],
) -> tuple[str, Argument] | None:
    """`num_classes=N` that would load the checkpoint, when only its head differs."""
    if (
        not isinstance(model, HasClassifier)
        or changed is True
        or {"num_classes", "global_pool"} & set(changed or ())
    ):
        return None
    heads = model.classifier_names

    def body(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        return {key: shape for key, shape in shapes.items() if not any(within(key, h) for h in heads)}

    wanted, found = _fitted(adapted, expected)
    if not heads or state_mismatch(body(wanted), body(found)) is not None:
        return None
    head = {key: shape for key, shape in found.items() if any(within(key, h) for h in heads)}
    classes = head_classes(head) if head else 0
    has = f"has a {classes}-class head" if classes else "has no head"
    return f"; the checkpoint {has}: pass {{num_classes}} to load it", Argument("num_classes", str(classes))


def _check_dtypes(model: torch.nn.Module, adapted: Adapted, path: Path) -> None:
    """Floating-point tensors are cast to the model's dtype; any other must be of the model's."""
    reference = model.state_dict(keep_vars=False)
    wrong = [
        f"{key} (checkpoint {str(tensor.dtype).removeprefix('torch.')}, "
        f"model {str(reference[key].dtype).removeprefix('torch.')})"
        for key, tensor in adapted.state.items()
        if key in reference
        and tensor.dtype != reference[key].dtype
        and not (tensor.is_floating_point() and reference[key].is_floating_point())
    ]
    if wrong:
        shown = ", ".join(wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise CheckpointError(
            f"checkpoint '{path}' does not fit the model: {len(wrong)} wrong dtype: {shown}"
        )


def _prepare(
    model: torch.nn.Module,
    state: dict[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    key_adapter: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
    changed: bool | Collection[str],
    fresh_modules: bool,
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
    adapted = adapt_state(model, state, expected, changed=changed) if changed else Adapted(state)
    if fresh_modules:
        mark_new_modules(model, adapted, expected)
    return adapted


def initialise_fresh(
    model: torch.nn.Module, planned: Adapted, device: torch.device | None, path: Path
) -> None:
    """Give what was left out of loading memory on `device`, and initialise it as the family
    does: new heads through `init_classifier`, new modules through `init_modules` (or
    PyTorch's `reset_parameters` for a model without the hook)."""
    import torch

    target = device if device is not None else torch.device("cpu")
    heads = model.classifier_names if isinstance(model, HasClassifier) else ()
    fresh_heads = [prefix for prefix in heads if any(within(key, prefix) for key in planned.fresh)]
    for name in [*fresh_heads, *planned.new_modules]:
        model.get_submodule(name).to_empty(device=target)
    if fresh_heads:
        model.init_classifier()
    if not planned.new_modules:
        return
    names = list(planned.new_modules)
    if isinstance(model, InitialisesModules):
        try:
            model.init_modules(names)
        except Exception as error:
            raise CheckpointError(
                f"checkpoint '{path}': the model could not initialise its new modules: {error}"
            ) from error
        return
    left = [f"{name}.{key}" for name in names for key in reset_to_defaults(model.get_submodule(name))]
    if left:
        raise CheckpointError(
            f"checkpoint '{path}' lacks {', '.join(left[:3])}, which the model has no way to "
            "initialise (no init_modules, and no reset_parameters in their modules)"
        )


def _place_unsaved_buffers(
    model: torch.nn.Module, device: torch.device | None, dtype: torch.dtype | None
) -> None:
    """Move the buffers no checkpoint holds (computed by the model as it was built, see
    `parameters_on_meta`) where the loaded tensors went."""
    saved = model.state_dict(keep_vars=True).keys()
    for name, buffer in list(model.named_buffers()):
        if name in saved or buffer.is_meta:
            continue
        placed = _placed(buffer, device, _wanted_dtype(buffer, dtype))
        if placed is not buffer:
            owner, _, attribute = name.rpartition(".")
            model.get_submodule(owner).register_buffer(attribute, placed, persistent=False)


def _wanted_dtype(reference: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if dtype is not None and reference.is_floating_point() else reference.dtype


def _placed(tensor: torch.Tensor, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    if tensor.dtype == dtype or not (tensor.is_floating_point() and dtype.is_floating_point):
        return tensor.to(device=device) if device is not None else tensor
    return tensor.to(device=device, dtype=dtype)
