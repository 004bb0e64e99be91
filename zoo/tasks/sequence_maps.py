"""Attention over sequences: the weights a model puts between tokens or frames, as tensors
and as labelled heatmaps; and the masks that shape them, as pictures.

The core knows no model. A sequence model offers its weights by implementing two methods,
the *sequence-map protocol* (`zoo.registry.family.HasSequenceMaps`):

    def sequence_inputs(self) -> tuple[SequenceInput, ...]
    def sequence_maps(self, inputs: Mapping[str, Tensor], lengths: Mapping[str, Tensor])
        -> dict[str, SequenceMap]

`sequence_inputs` names the inputs, in the order the command line takes them, with their
kind (token ids or feature frames) and size; `sequence_maps` runs the model on them (each
`(B, L)` ids or `(B, T, F)` frames; `lengths` holds `(B,)` lengths for the padded ones) and
returns named maps, the one shown by default first. A `SequenceMap` holds the weights,
`(B, heads, Q, K)`, and says which input runs along each axis, after any positions the
model adds (a class token). The built-in families:

- `text_transformer`: `"layerN"`, ..., `"layer1"`, each block's self-attention over the
  tokens (after the class token, when the model pools it), last block first.
- `seq2seq_lstm`: `"alignment"`, the decoder's attention over the source at each target
  step (Bahdanau et al.'s alignment figure).
- `speech_lstm`: `"pooling"`, the pooling attention's weights over the frames.

`sequence_maps(model, inputs)` checks the inputs against what the model declares (token ids
below the vocabulary, frames of the right width) and the maps against the protocol (shapes,
rows summing to 1 or 0, nothing on padded keys), so a picture never shows weights that are
not attention weights. `draw_sequence_map` draws one map, averaged over heads, one head or
every head, labelled with the tokens (from a vocabulary) or positions; a map whose every
row is uniform is drawn with a one-line warning, since untrained weights give one.
`mask_picture` draws a causal or padding mask as the tutorials do.

    >>> maps = zoo.maps.sequence_maps(model, {"tokens": ids})  # {"layer4": SequenceMap, ...}
    >>> zoo.maps.draw_sequence_map(maps["layer4"], {"tokens": ids}).save("layer4.png")
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ArgumentError, AttentionMapError
from ..memory import format_bytes
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, HasSequenceMaps, SequenceInput, SequenceMap, model_of
from ..weights.header import pickle_kind, read_header
from ..weights.resolve import resolve
from .heatmaps import Heatmap, attention_heatmap, mask_heatmap
from .inference import inference_model, refuse_non_finite
from .maps import FLAT_SPREAD, flat_map_warning

if TYPE_CHECKING:
    import torch

__all__ = [
    "FEATURE_FORMATS",
    "MASK_KINDS",
    "HasSequenceMaps",
    "SequenceInput",
    "SequenceMap",
    "axis_labels",
    "draw_sequence_map",
    "map_matrix",
    "mask_picture",
    "masks",
    "parse_token_ids",
    "read_features",
    "read_vocabulary",
    "sequence_inputs",
    "sequence_maps",
    "sequence_model",
    "uniformity",
]

logger = logging.getLogger("zoo")

Head = int | Literal["all"] | None
"""Which heads a picture shows: None, their mean; a number, that head (from 0); "all", each."""

FEATURE_FORMATS = (".npy", ".safetensors")
"""The files feature frames are read from, by suffix."""

MASK_KINDS = ("causal", "padding")
MAX_MASK_POSITIONS = 1024
"""The most positions a mask picture has per side, and the most sequences it has."""
MAX_MASK_CELLS = MAX_MASK_POSITIONS**2
"""The most cells a mask picture has in all: one causal mask of the longest length."""
DRAWN_BYTES_PER_CELL = 24
"""What drawing a cell holds at once: its RGB colour, as 64-bit integers while colouring."""


# ---------------------------------------------------------------------- the protocol


def sequence_model(
    name: str | Resolved,
    *,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    registry: Registry | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """A sequence model with weights, in eval mode, to show its attention: the published
    weights of `name`, or a local `checkpoint` (builder arguments it was trained with in
    `model_args`).

    Raises:
        ArgumentError: `name` is a model of images (`zoo.tasks.maps` draws those).
        NoWeightsError: no checkpoint, and none published.
    """
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    task = registry.task(resolved)
    if task in IMAGE_TASKS:
        raise ArgumentError(f"'{resolved}' is {model_of(task)}: its attention is drawn over an image")
    ready = inference_model(
        resolved, registry, checkpoint=checkpoint, device=device, dtype=dtype, model_args=model_args
    )
    return ready.model


def sequence_inputs(model: torch.nn.Module) -> tuple[SequenceInput, ...]:
    """The inputs `model` shows its attention for, in order.

    Raises:
        AttentionMapError: the model's family does not implement the sequence-map protocol.
    """
    if not isinstance(model, HasSequenceMaps):
        raise AttentionMapError(
            f"{type(model).__name__} offers no sequence attention maps (its family implements "
            "no sequence_inputs() and sequence_maps() methods; see zoo.tasks.sequence_maps)"
        )
    return tuple(model.sequence_inputs())


def sequence_maps(
    model: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor] | torch.Tensor,
    lengths: Mapping[str, torch.Tensor] | torch.Tensor | None = None,
    *,
    name: str | None = None,
) -> dict[str, SequenceMap]:
    """The named attention maps of a sequence model for a batch, weights float32 on the CPU.

    Args:
        model: A model whose family implements `HasSequenceMaps`.
        inputs: Each input the model declares, by name: token ids (B, L), integers, or
            frames (B, T, F); a lone tensor for a model of one input.
        lengths: The real length of each padded input's rows, (B,), by name (a lone tensor
            for a model of one input); inputs not named are not padded.
        name: What messages call the model and its weights (default: its class).

    The model runs in eval mode without gradients; its training flags are restored after.

    Raises:
        ArgumentError: inputs the model does not take, or that do not fit what it declares
            (ids outside the vocabulary, frames of another width, a sequence too long).
        AttentionMapError: the model offers no maps, or returns maps that break the protocol.
        CheckpointError: the maps hold NaN or infinite values, as broken weights give.
    """
    import torch

    declared = sequence_inputs(model)
    inputs, lengths = _named(inputs, declared, "inputs"), _named(lengths, declared, "lengths")
    _check_inputs(inputs, lengths, declared)
    parameter = next(model.parameters(), None)
    placed = {
        name: value.to(device=parameter.device if parameter is not None else None)
        for name, value in inputs.items()
    }
    for spec in declared:
        if spec.kind == "frames" and parameter is not None:
            placed[spec.name] = placed[spec.name].to(dtype=parameter.dtype)
    placed_lengths = {
        name: torch.as_tensor(value, device=placed[name].device) for name, value in lengths.items()
    }
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            maps = model.sequence_maps(placed, placed_lengths)
    finally:
        for module, training in modes.items():
            module.training = training
    if not maps:
        raise AttentionMapError(f"{type(model).__name__} returned no sequence attention maps")
    return {
        key: _checked_map(type(model).__name__, key, value, inputs, lengths, name)
        for key, value in maps.items()
    }


def _named(
    values: Mapping[str, torch.Tensor] | torch.Tensor | None, declared: Sequence[SequenceInput], what: str
) -> dict[str, torch.Tensor]:
    import torch

    if values is None:
        return {}
    if isinstance(values, torch.Tensor):
        if len(declared) != 1:
            names = ", ".join(spec.name for spec in declared)
            raise ArgumentError(f"give the {what} by name: this model takes {names}")
        return {declared[0].name: values}
    return dict(values)


def _check_inputs(
    inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor], declared: Sequence[SequenceInput]
) -> None:
    import torch

    names = [spec.name for spec in declared]
    missing = [name for name in names if name not in inputs]
    unknown = [name for name in (*inputs, *lengths) if name not in names]
    if missing or unknown:
        problem = f"missing {', '.join(missing)}" if missing else f"no input called {', '.join(unknown)}"
        raise ArgumentError(f"{problem}; the model takes {', '.join(names)}")
    batch = {name: value.shape[0] if value.ndim else 0 for name, value in inputs.items()}
    if len(set(batch.values())) > 1:
        raise ArgumentError(f"the inputs' batch sizes differ: {batch}")
    for spec in declared:
        value = inputs[spec.name]
        if spec.kind == "tokens":
            if value.ndim != 2 or value.dtype.is_floating_point or value.dtype == torch.bool:
                raise ArgumentError(
                    f"{spec.name}: expected token ids (B, L) of an integer dtype, "
                    f"got {tuple(value.shape)} {value.dtype}"
                )
            check_token_ids(value, spec)
        else:
            if value.ndim != 3 or value.shape[-1] != spec.size:
                raise ArgumentError(
                    f"{spec.name}: expected frames (B, T, {spec.size}), got {tuple(value.shape)}"
                )
            if not bool(torch.isfinite(value).all()):
                raise ArgumentError(f"{spec.name}: the frames hold NaN or infinite values")
        _check_length(spec, value.shape[1])
        if spec.name in lengths:
            given = torch.as_tensor(lengths[spec.name])
            if given.shape != (value.shape[0],) or bool((given < 0).any() | (given > value.shape[1]).any()):
                raise ArgumentError(
                    f"lengths of {spec.name}: expected ({value.shape[0]},) values from 0 to "
                    f"{value.shape[1]}, got {given.tolist()}"
                )


def check_token_ids(ids: torch.Tensor, spec: SequenceInput) -> None:
    """Refuse an id outside the vocabulary, naming the first one and where it is."""
    bad = ((ids < 0) | (ids >= spec.size)).nonzero()
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        position = f"position {where[-1]}" + (
            f" of row {where[0]}" if ids.ndim == 2 and ids.shape[0] > 1 else ""
        )
        raise ArgumentError(
            f"{spec.name}: token id {int(ids[where])} at {position} is outside the vocabulary "
            f"(ids 0 to {spec.size - 1})"
        )


def _check_length(spec: SequenceInput, length: int) -> None:
    if length == 0:
        raise ArgumentError(f"{spec.name}: an empty sequence has no attention to show")
    if spec.max_length is not None and length > spec.max_length:
        raise ArgumentError(f"{spec.name}: {length} positions; the model takes at most {spec.max_length}")


def _checked_map(
    model: str,
    name: str,
    value: SequenceMap,
    inputs: Mapping[str, torch.Tensor],
    lengths: Mapping[str, torch.Tensor],
    described: str | None,
) -> SequenceMap:
    import torch

    def broken(problem: str) -> AttentionMapError:
        return AttentionMapError(f"{model}.sequence_maps: map '{name}' {problem}")

    if not isinstance(value, SequenceMap):
        raise broken(f"is a {type(value).__name__}, not a SequenceMap")
    for axis in (value.queries, value.keys):
        if axis is not None and axis not in inputs:
            raise broken(f"names the input '{axis}', which the model does not take")
    weights = value.weights.detach().float().cpu()
    batch = next(iter(inputs.values())).shape[0]
    rows = len(value.query_prefix) + (inputs[value.queries].shape[1] if value.queries else 0)
    columns = len(value.key_prefix) + inputs[value.keys].shape[1]
    if weights.ndim != 4 or (weights.shape[0], weights.shape[2], weights.shape[3]) != (batch, rows, columns):
        raise broken(f"is {tuple(weights.shape)}, expected (B={batch}, heads, {rows}, {columns})")
    refuse_non_finite(weights, described or model)
    if bool((weights < 0).any()):
        raise broken("has negative weights")
    sums = weights.sum(dim=-1)
    if not bool(((sums - 1).abs() < 1e-2).logical_or(sums < 1e-6).all()):
        raise broken("has rows that do not sum to 1 (nor to 0)")
    if value.keys in lengths:
        prefix = len(value.key_prefix)
        beyond = (
            torch.arange(columns) >= prefix + torch.as_tensor(lengths[value.keys]).cpu()[:, None]
        )  # (B, K)
        if bool(weights.masked_select(beyond[:, None, None, :]).ne(0).any()):
            raise broken(f"puts weight on padded positions of {value.keys}")
    return SequenceMap(weights, value.queries, value.keys, tuple(value.query_prefix), tuple(value.key_prefix))


# ---------------------------------------------------------------------- reading inputs


def parse_token_ids(text: str, spec: SequenceInput) -> torch.Tensor:
    """Token ids written as integers separated by spaces or commas -> (1, L) int64.

    Raises:
        ArgumentError: something that is not an integer, an id outside the vocabulary, no
            ids, or more than the model takes.
    """
    import torch

    words = [word for word in re.split(r"[\s,]+", text.strip()) if word]
    for word in words:
        if not re.fullmatch(r"[+-]?\d+", word):
            raise ArgumentError(
                f"{spec.name}: '{word}' is not a token id (give integers separated by spaces or commas)"
            )
    ids = torch.tensor([[int(word) for word in words]], dtype=torch.int64)
    _check_length(spec, ids.shape[1])
    check_token_ids(ids, spec)
    return ids


def read_vocabulary(path: str | Path) -> tuple[str, ...]:
    """The tokens of a vocabulary file: UTF-8 text, the token of id i on line i + 1.

    Lines are kept as they are (a token may be a space); a last empty line is dropped.

    Raises:
        ArgumentError: a file that cannot be read as UTF-8 text, or that is empty.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise ArgumentError(f"cannot read vocabulary '{path}': {reason}") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [token.removesuffix("\r") for token in tokens]
    if not tokens:
        raise ArgumentError(f"vocabulary '{path}' has no tokens")
    return tuple(tokens)


def check_vocabulary(tokens: Sequence[str], spec: SequenceInput, where: str) -> None:
    """Refuse a vocabulary with more tokens than the model's (it is another model's)."""
    if len(tokens) > spec.size:
        raise ArgumentError(
            f"{where} has {len(tokens)} tokens; the vocabulary of {spec.name} has {spec.size}: "
            "it is another model's"
        )


def read_features(path: str | Path, spec: SequenceInput) -> torch.Tensor:
    """Feature frames from a `.npy` file or a `.safetensors` file of one tensor -> (1, T, F)
    float32, for an input of `spec.size` features per frame.

    The array is (T, F) or (1, T, F); integer arrays are converted, anything else refused.
    Nothing is unpickled: a pickle, or a `.npy` of Python objects, is refused.

    Raises:
        ArgumentError: another suffix, a file that cannot be read, a pickle, the wrong
            shape or dtype, NaN or infinite values, or more frames than the model takes.
    """
    import numpy as np
    import torch

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FEATURE_FORMATS:
        raise ArgumentError(
            f"{path}: features are read from {' or '.join(FEATURE_FORMATS)} files, not '{path.suffix}'"
        )
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as error:
        raise ArgumentError(f"cannot read features '{path}': {error.strerror or error}") from None
    kind = pickle_kind(head)
    if kind is not None:
        what = "PyTorch zip archive (torch.save)" if kind == "zip" else "pickle"
        raise ArgumentError(f"{path}: is a {what}; features are read from {suffix} data, never unpickled")
    if suffix == ".npy":
        if not head.startswith(b"\x93NUMPY"):
            raise ArgumentError(f"{path}: not a .npy file")
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            reason = "holds Python objects (a pickle)" if "pickle" in str(error) else str(error)
            raise ArgumentError(f"{path}: {reason}; features must be numbers") from None
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ArgumentError(f"{path}: features of dtype {array.dtype}; expected floats or integers")
        tensor = torch.from_numpy(np.asarray(array, dtype=np.float32))
    else:
        tensor = _one_tensor(path, spec)
    return _as_frames(path, tensor, spec)


def _one_tensor(path: Path, spec: SequenceInput) -> torch.Tensor:
    import torch
    from safetensors.torch import load_file

    from ..errors import CheckpointError

    try:
        header = read_header(path)
    except CheckpointError as error:
        raise ArgumentError(str(error)) from None
    names = list(header.tensors)
    if len(names) != 1 and spec.name not in names:
        raise ArgumentError(
            f"{path}: holds {len(names)} tensors ({', '.join(names) or 'none'}); "
            f"give one, or one named '{spec.name}'"
        )
    name = names[0] if len(names) == 1 else spec.name
    tensor = load_file(str(path))[name]
    if tensor.dtype == torch.bool or tensor.dtype.is_complex:
        raise ArgumentError(f"{path}: features of dtype {tensor.dtype}; expected floats or integers")
    return tensor.float()


def _as_frames(path: Path, tensor: torch.Tensor, spec: SequenceInput) -> torch.Tensor:
    import torch

    shape = tuple(tensor.shape)
    if tensor.ndim == 3 and shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 2 or tensor.shape[1] != spec.size:
        raise ArgumentError(
            f"{path}: features of shape {shape}; {spec.name} takes (frames, {spec.size}) "
            f"or (1, frames, {spec.size})"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ArgumentError(f"{path}: the features hold NaN or infinite values")
    _check_length(spec, tensor.shape[0])
    return tensor.float()[None]


# ---------------------------------------------------------------------- pictures


def map_matrix(value: SequenceMap, *, sample: int = 0, head: Head = None) -> torch.Tensor:
    """The weights a picture of `value` shows: (Q, K), the mean over heads or one head; or
    (heads, Q, K) for `head="all"`.

    Raises:
        ArgumentError: a head or sample the map does not have.
    """
    weights = value.weights
    if not 0 <= sample < weights.shape[0]:
        raise ArgumentError(f"sample {sample}: the batch has {weights.shape[0]}")
    weights = weights[sample].float()  # (H, Q, K)
    if head is None:
        return weights.mean(dim=0)
    if head == "all":
        return weights
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < weights.shape[0]:
        raise ArgumentError(
            f"head {head}: the map has {weights.shape[0]} head(s), 0 to {weights.shape[0] - 1}"
        )
    return weights[head]


def axis_labels(
    value: SequenceMap,
    inputs: Mapping[str, torch.Tensor],
    *,
    sample: int = 0,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[str], list[str]]:
    """The labels of a map's rows and columns: the model's prefix positions, then the
    tokens (from `vocabularies[input]`, else the ids) or the frame numbers."""

    def labels(axis: str | None, prefix: Sequence[str]) -> list[str]:
        if axis is None:
            return list(prefix)
        value_ = inputs[axis]
        if value_.ndim == 2 and not value_.dtype.is_floating_point:  # token ids
            vocabulary = (vocabularies or {}).get(axis)
            ids = [int(i) for i in value_[sample]]
            return [*prefix, *(_token(vocabulary, i) for i in ids)]
        return [*prefix, *(str(t) for t in range(value_.shape[1]))]

    return labels(value.queries, value.query_prefix), labels(value.keys, value.key_prefix)


def _token(vocabulary: Sequence[str] | None, index: int) -> str:
    if vocabulary is None or index >= len(vocabulary):
        return str(index)
    token = vocabulary[index]
    return token if token.strip() else repr(token)


def uniformity(weights: torch.Tensor) -> str | None:
    """`"uniform: ..."` when every row of (..., Q, K) weights spreads evenly (within
    `FLAT_SPREAD`) over the keys it gives any weight, as attention with untrained or
    zero-initialised weights does; else None."""
    weights = weights.detach().float()
    seen = weights > 0
    if not bool(seen.any()):
        return "zero everywhere"
    high = weights.amax(dim=-1)
    low = weights.masked_fill(~seen, float("inf")).amin(dim=-1)
    rows = seen.any(dim=-1)
    even = ((high - low) <= FLAT_SPREAD * high) | ~rows
    if bool(even.all()):
        return "uniform: every query spreads its weight evenly over the keys it sees"
    return None


def draw_sequence_map(
    value: SequenceMap,
    inputs: Mapping[str, torch.Tensor],
    *,
    sample: int = 0,
    head: Head = None,
    vocabularies: Mapping[str, Sequence[str]] | None = None,
    title: str | None = None,
    what: str = "the attention map",
) -> Heatmap:
    """Draw one map as a labelled heatmap: queries down, keys across.

    Args:
        value: A map of `sequence_maps`.
        inputs: The inputs it was computed for, by name (their ids label the axes).
        sample: Which row of the batch.
        head: None: the mean over heads; a number: that head; "all": one panel per head.
        vocabularies: Tokens by input name, to label ids with (`read_vocabulary`).
        title: A line above the picture.
        what: The map's name in the warning logged when every row is uniform.

    Returns:
        The picture and where its cells lie; the values drawn are `map_matrix(value,
        sample=sample, head=head)`.
    """
    matrix = map_matrix(value, sample=sample, head=head)
    rows, columns = axis_labels(value, inputs, sample=sample, vocabularies=vocabularies)
    how = uniformity(matrix)
    if how is not None:
        logger.warning(flat_map_warning(what, how))
    titles = [f"head {index}" for index in range(matrix.shape[0])] if head == "all" else None
    return attention_heatmap(matrix, rows, columns, panel_titles=titles, title=title)


# ---------------------------------------------------------------------- masks


def masks(kind: str, lengths: Sequence[int], max_len: int | None = None) -> torch.Tensor:
    """The boolean keep-mask (True = may attend) of a kind, for sequences of `lengths`:

    - `"causal"`, one length: (L, L), query i sees keys j <= i (the subsequent mask);
    - `"causal"`, several: (B, L, L), the causal mask and each sequence's padding;
    - `"padding"`: (B, L), True at each row's first `lengths[b]` positions.

    L is `max_len`, else the longest length.
    """
    import torch

    if kind not in MASK_KINDS:
        raise ArgumentError(f"unknown mask '{kind}'; masks: {', '.join(MASK_KINDS)}")
    if not lengths or any(length < 1 for length in lengths):
        raise ArgumentError(f"lengths must be positive, got {list(lengths)}")
    size = max(lengths) if max_len is None else max_len
    if size < max(lengths):
        raise ArgumentError(f"max length {size} is shorter than the length {max(lengths)}")
    if size > MAX_MASK_POSITIONS or len(lengths) > MAX_MASK_POSITIONS:
        raise ArgumentError(
            f"a mask of {size} positions and {len(lengths)} sequences: at most {MAX_MASK_POSITIONS} of each"
        )
    _check_cells(kind, len(lengths), size)
    padding = torch.arange(size)[None, :] < torch.tensor(list(lengths))[:, None]  # (B, L)
    if kind == "padding":
        return padding
    causal = torch.ones(size, size, dtype=torch.bool).tril()
    if len(lengths) == 1 and lengths[0] == size:
        return causal
    return causal[None] & padding[:, None, :]


def _check_cells(kind: str, sequences: int, size: int) -> None:
    """Refuse a mask whose cells, counted before anything is allocated, pass `MAX_MASK_CELLS`:
    the caps on sequences and positions do not bound their product."""
    cells = sequences * size * (size if kind == "causal" else 1)
    if cells > MAX_MASK_CELLS:
        shape = f"{sequences:,} x {size:,}" + (f" x {size:,}" if kind == "causal" else "")
        raise ArgumentError(
            f"a {kind} mask of {shape} positions has {cells:,} cells: drawing it would need "
            f"{format_bytes(cells * DRAWN_BYTES_PER_CELL)}; at most {MAX_MASK_CELLS:,} cells "
            f"({MAX_MASK_POSITIONS} x {MAX_MASK_POSITIONS}) are drawn"
        )


def mask_picture(kind: str, lengths: Sequence[int], max_len: int | None = None) -> Heatmap:
    """Draw `masks(kind, lengths, max_len)`: kept positions yellow, masked ones dark.

    A causal mask has queries down and keys across (one panel per sequence when there are
    several lengths); a padding mask has the sequences down and positions across.
    """
    mask = masks(kind, lengths, max_len)
    size = mask.shape[-1]
    positions = [str(index) for index in range(size)]
    if kind == "padding":
        rows = [f"length {length}" for length in lengths]
        return mask_heatmap(mask, rows, positions, title=f"padding mask: {len(lengths)} x {size}")
    if mask.ndim == 2:
        return mask_heatmap(mask, positions, positions, title=f"causal mask: {size} x {size}")
    titles = [f"length {length}" for length in lengths]
    return mask_heatmap(
        mask, positions, positions, panel_titles=titles, title=f"causal and padding masks: {size} x {size}"
    )
