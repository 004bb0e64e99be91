"""Converting a PyTorch pickle checkpoint to safetensors, once and on purpose.

Loading never unpickles (see `zoo.weights.header`). A `pytorch_model.bin`, `.pt` or `.pth`
file is converted in this separate, explicit step, `zoo convert FILE -o OUT.safetensors`,
which reads it with `torch.load(FILE, weights_only=True, map_location="cpu")`: tensors and
plain containers only, no code run, no class built.

What is written is the state dict, as a model's `load_state_dict` takes it:

- the usual wrappers are unwrapped: `state_dict`, `model`, `state_dict_ema`, `model_ema`,
  nested once (`{"model": {"state_dict": ...}}`), or the one `key` names;
- a prefix every name carries (`module.` from DistributedDataParallel, `_orig_mod.` from
  torch.compile, `model.` from a wrapper) is stripped;
- tensors that share memory (tied weights), which safetensors refuses, are cloned: every
  name stays in the file, so it loads strictly into the model that saved it, and the
  metadata's `aliases` (JSON: clone -> the name it shared memory with) records the ties;
- any value that is not a tensor is refused.

The file is written whole or not at all (`zoo.files.atomic_path`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Argument, ArgumentError, CheckpointError, MissingFileError
from ..files import atomic_path, sha256_of, unwritable
from .header import foreign_global, pickle_kind, read_header

if TYPE_CHECKING:
    import torch

__all__ = ["WRAPPER_KEYS", "Converted", "convert_checkpoint", "state_dict_of"]

WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
"""Keys under which training scripts save the state dict, the first one present is taken."""

PREFIXES = ("module.", "_orig_mod.", "model.")
"""Prefixes stripped when every name carries one (repeatedly: `module._orig_mod.`)."""


@dataclass(frozen=True)
class Converted:
    """What `convert_checkpoint` wrote."""

    source: Path
    output: Path
    tensors: int
    key: str | None
    """Where the state dict was in the file (`state_dict`, `model.state_dict`), None at the top."""
    prefix: str
    """The prefix stripped from every name, "" if none."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Tensors cloned because they shared memory: clone -> the name it shared memory with."""
    sha256: str = ""
    size: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "input": str(self.source),
            "output": str(self.output),
            "tensors": self.tensors,
            "key": self.key,
            "prefix": self.prefix or None,
            "aliases": self.aliases,
            "sha256": self.sha256,
            "size": self.size,
        }


def convert_checkpoint(
    source: str | Path, output: str | Path, *, key: str | None = None, force: bool = False
) -> Converted:
    """Write the state dict of a PyTorch pickle checkpoint as a safetensors file.

    Args:
        source: A file `torch.save` wrote (zip archive or legacy pickle).
        output: The safetensors file to write.
        key: Where the state dict is in the file (`state_dict_ema`, `model.state_dict`);
            default: the first of `WRAPPER_KEYS` present, nested once.
        force: Replace `output` if it exists.

    Raises:
        ArgumentError: `output` exists (without `force`) or is `source`.
        CheckpointError: `source` is not a PyTorch pickle, holds objects `weights_only`
            loading refuses, or holds values other than tensors.
    """
    source, output = Path(source), Path(output)
    _check_paths(source, output, force)
    loaded = _load(source)
    where, state = state_dict_of(loaded, key, source)
    state, prefix = _strip_prefix(state)
    tensors, aliases = _untied(state)
    metadata = {"format": "pt", "converted_from": source.name}
    if aliases:
        metadata["aliases"] = json.dumps(aliases, sort_keys=True)
    _write(tensors, metadata, output)
    size = output.stat().st_size
    return Converted(source, output, len(tensors), where, prefix, aliases, sha256_of(output), size)


def _check_paths(source: Path, output: Path, force: bool) -> None:
    if not source.is_file():
        raise MissingFileError(f"checkpoint '{source}' does not exist or is not a file")
    if output.exists() and (output.resolve() == source.resolve() or output.samefile(source)):
        raise ArgumentError(f"output '{output}' is the input; write the safetensors file elsewhere")
    if output.exists() and not force:
        raise ArgumentError(
            f"output '{output}' already exists; pass {{force}} to replace it",
            arguments=[Argument("force", "True")],
        )
    if output.is_dir():
        raise ArgumentError(f"output '{output}' is a folder; name the safetensors file to write")
    problem = unwritable(output.parent)
    if problem is not None:
        raise ArgumentError(f"output '{output}': {problem}")
    with open(source, "rb") as file:
        prefix = file.read(9)
    if pickle_kind(prefix) is None:
        try:
            read_header(source)
        except CheckpointError:
            raise CheckpointError(
                f"checkpoint '{source}' is not a PyTorch pickle (neither torch.save's zip archive "
                "nor a pickle stream)"
            ) from None
        raise CheckpointError(f"checkpoint '{source}' is already safetensors; nothing to convert")


def _load(source: Path) -> Any:
    """`torch.load` with `weights_only=True`: tensors and plain containers, nothing run."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch's doubts about a pickle protocol: the refusal says enough
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"checkpoint '{source}' holds objects that weights-only loading refuses "
            f"({_refusal(error, source)}); only tensors and plain containers are converted"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint '{source}' cannot be read: {_first_line(error)}") from None


def state_dict_of(loaded: Any, key: str | None, source: str | Path) -> tuple[str | None, dict[str, Any]]:
    """The state dict inside what `torch.load` returned, and the key path it was under."""
    if key is not None:
        return key, _checked_state(_at(loaded, key, source), source, key)
    path: list[str] = []
    for _ in range(2):  # a wrapper, nested once
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(loaded, Mapping) and k in loaded), None)
        if wrapper is None or not isinstance(loaded[wrapper], Mapping):
            break
        path.append(wrapper)
        loaded = loaded[wrapper]
    where = ".".join(path) or None
    return where, _checked_state(loaded, source, where)


def _at(loaded: Any, key: str, source: str | Path) -> Any:
    for part in key.split("."):
        if not isinstance(loaded, Mapping) or part not in loaded:
            found = ", ".join(map(str, loaded)) if isinstance(loaded, Mapping) else type(loaded).__name__
            raise ArgumentError(f"checkpoint '{source}' has no '{key}' (found: {found})")
        loaded = loaded[part]
    return loaded


def _checked_state(state: Any, source: str | Path, where: str | None) -> dict[str, Any]:
    import torch

    at = f" under '{where}'" if where else ""
    if not isinstance(state, Mapping) or not state:
        what = "an empty mapping" if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(f"checkpoint '{source}' holds {what}{at}, not a state dict of tensors")
    others = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise CheckpointError(
            f"checkpoint '{source}' holds values that are not tensors{at}: {shown}; "
            "only a state dict of tensors is converted (choose one with {key})",
            arguments=[Argument("key", "KEY")],
        )
    bad_layout = [k for k, v in state.items() if v.layout != torch.strided or v.is_quantized]
    if bad_layout:
        raise CheckpointError(
            f"checkpoint '{source}' holds sparse or quantized tensors{at}: {', '.join(bad_layout[:3])}"
        )
    return {str(k): v for k, v in state.items()}


def _strip_prefix(state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    stripped = ""
    while True:
        prefix = next((p for p in PREFIXES if all(k.startswith(p) and k != p for k in state)), None)
        if prefix is None:
            return state, stripped
        state = {k.removeprefix(prefix): v for k, v in state.items()}
        stripped += prefix


def _untied(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Contiguous tensors that share no memory; clones of those that did, and what they shared."""
    import torch

    owners: dict[tuple[str, int], str] = {}
    tensors, aliases = {}, {}
    for name, tensor in state.items():
        storage = (str(tensor.device), tensor.untyped_storage().data_ptr()) if tensor.numel() else None
        if storage is not None and storage in owners:
            aliases[name] = owners[storage]
            tensors[name] = tensor.clone(memory_format=torch.contiguous_format)
            continue
        if storage is not None:
            owners[storage] = name
        tensors[name] = tensor.contiguous()
    return tensors, aliases


def _write(tensors: dict[str, torch.Tensor], metadata: dict[str, str], output: Path) -> None:
    from safetensors.torch import save_file

    try:
        with atomic_path(output) as temporary:
            save_file(tensors, str(temporary), metadata=metadata)
    except (ValueError, TypeError, RuntimeError) as error:  # a dtype safetensors cannot store, ...
        raise CheckpointError(f"cannot write '{output}': {_first_line(error)}") from None
    except OSError as error:
        raise CheckpointError(f"cannot write '{output}': {error.strerror or error}") from None


def _refusal(error: BaseException, source: Path) -> str:
    """torch's reason; the global the pickle would import where torch does not name it."""
    found = re.search(r"WeightsUnpickler error: (.*?)(?:\. Please|\n|$)", str(error))
    reason = found.group(1).strip() if found else _first_line(error)
    imported = foreign_global(source)
    if "GLOBAL" in reason or imported is None:
        return reason or "an object it cannot rebuild"
    return f"it would import {imported}" + (f": {reason}" if reason else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
