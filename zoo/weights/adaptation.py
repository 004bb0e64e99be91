"""Making a checkpoint fit a model that differs from it on purpose, as the model describes.

A model describes its head and first conv through the hooks of the family contract
(`zoo.registry.family`): `HasClassifier` (`classifier_names`, `init_classifier()`),
`HasFirstConv` (`first_conv`) and `AdaptsPretrained` (`adapt_pretrained(name, tensor)`).
Only the builder arguments the caller changed (`num_classes`, `in_chans`, `img_size`, ...)
let their tensors be adapted. A checkpoint loaded as the backbone of a model that extends it
(`mark_new_modules`) leaves out the modules it has no tensor of, to be initialised fresh.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..registry.family import AdaptsPretrained, HasClassifier, HasFirstConv

if TYPE_CHECKING:
    import torch

__all__ = [
    "Adapted",
    "adapt_input_conv",
    "adapt_state",
    "count_modules",
    "describe_new_modules",
    "head_classes",
    "mark_new_modules",
    "within",
]


@dataclass
class Adapted:
    """A checkpoint's tensors made to fit a model, and what was changed."""

    state: dict[str, Any]
    fresh: set[str] = field(default_factory=set)
    """Model tensors left out of loading, to be freshly initialised."""
    messages: list[str] = field(default_factory=list)
    new_modules: dict[str, str] = field(default_factory=dict)
    """Modules the checkpoint has no tensor of (name -> class name), among `fresh`."""


def adapt_state(
    model: torch.nn.Module,
    state: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    *,
    changed: bool | Collection[str] = True,
) -> Adapted:
    """Make a checkpoint fit a model that differs from it on purpose, as the model describes.

    `changed` names the builder arguments that differ on purpose (True: any): `num_classes`
    (or `global_pool`, which may change the width the head reads) lets the head be
    replaced, `in_chans` the first conv be adapted, and any other the model's
    `adapt_pretrained` hook be asked. Works on real and on `meta` tensors alike. Tensors
    nothing may adapt are left as they are, for the strict check to report.
    """

    def allowed(argument: str | None) -> bool:
        if changed is True:
            return True
        if argument is None:
            return bool(set(changed) - {"num_classes", "in_chans"})
        return argument in changed

    adapted = Adapted(dict(state))
    state = adapted.state
    head_changed = allowed("num_classes") or allowed("global_pool")  # pooling may change the head's width
    heads = model.classifier_names if isinstance(model, HasClassifier) and head_changed else ()
    for prefix in heads:
        model_keys = [key for key in expected if within(key, prefix)]
        file_keys = [key for key in state if within(key, prefix)]
        if set(model_keys) == set(file_keys) and all(
            tuple(state[k].shape) == expected[k] for k in model_keys
        ):
            continue
        old = head_classes({key: tuple(state[key].shape) for key in file_keys})
        new = head_classes({key: expected[key] for key in model_keys})
        for key in file_keys:
            del state[key]
        adapted.fresh.update(model_keys)
        if not model_keys:
            adapted.messages.append(
                f"{prefix}: the checkpoint's {old}-class head is not used (no head asked for)"
            )
        else:
            had = f"the checkpoint's has {old} classes" if file_keys else "the checkpoint has none"
            if old == new:
                had = f"the checkpoint's reads features of another width ({old} classes too)"
            adapted.messages.append(
                f"{prefix}: new {new}-class head, freshly initialised ({had}); the rest is loaded"
            )

    first_conv = model.first_conv if isinstance(model, HasFirstConv) else None
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

    hook = model.adapt_pretrained if isinstance(model, AdaptsPretrained) else None
    if hook is not None and allowed(None):
        for key in list(state):
            if key in expected and key not in adapted.fresh and tuple(state[key].shape) != expected[key]:
                result = hook(key, state[key])
                if result is not None:
                    state[key], message = result
                    adapted.messages.append(message)
    return adapted


def mark_new_modules(
    model: torch.nn.Module, adapted: Adapted, expected: Mapping[str, tuple[int, ...]]
) -> None:
    """Leave out of loading the model's modules of which the checkpoint has no tensor at all.

    Each is taken whole, outermost first (a block's new attention module, not its convs);
    a tensor missing beside others of its module that the checkpoint has stays missing, for
    the strict check to report, and so do unexpected tensors and wrong shapes.
    """
    present = {prefix for key in adapted.state for prefix in _ancestors(key)}
    new: dict[str, list[str]] = {}
    for key in expected:
        if key in adapted.state or key in adapted.fresh:
            continue
        module = next((prefix for prefix in _ancestors(key) if prefix not in present), None)
        if module is not None:
            new.setdefault(module, []).append(key)
    if not new:
        return
    for module, keys in new.items():
        adapted.fresh.update(keys)
        adapted.new_modules[module] = type(model.get_submodule(module)).__name__
    count = sum(len(keys) for keys in new.values())
    adapted.messages.append(describe_new_modules(count, adapted.new_modules))


def describe_new_modules(tensors: int, modules: Mapping[str, str]) -> str:
    """`80 tensors of 8 CBAM modules are new: fine-tune before use`."""
    verb = "is" if tensors == 1 else "are"
    return f"{_counted(tensors, 'tensor')} of {count_modules(modules)} {verb} new: fine-tune before use"


def count_modules(modules: Mapping[str, str]) -> str:
    """`8 CBAM modules`, `8 CBAM modules and 1 Linear module`, from module name -> class name."""
    parts = [_counted(n, f"{kind} module") for kind, n in Counter(modules.values()).items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _ancestors(key: str) -> list[str]:
    """The modules above a tensor, outermost first: `a.b.w` -> `a`, `a.b`."""
    parts = key.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


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


def within(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def head_classes(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The number of classes of a head, from the shapes of its tensors (its 2-D weight's rows)."""
    for key, shape in shapes.items():
        if key.endswith("weight") and len(shape) == 2:
            return shape[0]
    return next((shape[0] for shape in shapes.values() if shape), 0)
