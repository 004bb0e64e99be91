"""Exporting a model as one file that runs without the zoo: ONNX, or an AOTInductor package.

`export_graph` builds the model with its weights (published, or a local checkpoint, as
`zoo.create` takes them), traces it once with `torch.export` (the batch dimension dynamic,
and the length of every sequence input), and hands the program to a format
(`zoo.tasks.export_onnx`, `zoo.tasks.export_pt2`). Before the file is kept, it is run
outside eager PyTorch (onnxruntime, the AOTInductor loader) on a fixed input at two batch
sizes and compared with the model: where the largest absolute difference exceeds the
dtype's tolerance (`TOLERANCES`) nothing is written and the export fails in one line with
the difference. The file is written in a temporary folder beside the destination and moved
into place once verified, so it is whole or absent.

What the graph computes:

- an image model with a head: `images` (B, C, H, W) -> `logits` (B, classes) and
  `embeddings` (B, D), its pooled pre-logits features, so that one file classifies and
  embeds; without head: `images` -> `embeddings`, its output;
- a sequence model: its teacher-forced `forward` on the family's example inputs, named as
  the model names them (`tokens`, `source` and `target`, `features`), each (B, L) or
  (B, L, F) with B and L dynamic -> `logits`. A `generate` loop is not a graph; a
  `forward` that fixes a length (a Python loop over the steps) is refused in one line.

Each file records the model as metadata (`metadata`): its name, weights, task, inputs and
outputs, and for images the preprocessing and the class names, so that `zoo predict` and
`zoo embed` run an AOTInductor package with no model code (`zoo.tasks.packaged`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Argument, ArgumentError, ZooError
from ..files import raise_on_sigterm, unwritable
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, HasSequenceMaps, HasTrainingInterface
from ..weights.resolve import resolve
from . import export_onnx, export_pt2
from .inference import inference_model, weights_label
from .labels import labels_for
from .preprocessing import fitted_data_config

if TYPE_CHECKING:
    import torch

__all__ = [
    "EXPORT_BATCH",
    "GRAPH_FORMATS",
    "METADATA_KEY",
    "TOLERANCES",
    "VERIFY_BATCHES",
    "ExportReport",
    "export_graph",
]

GRAPH_FORMATS = {"onnx": export_onnx, "pt2": export_pt2}
"""The file formats, by name; each module writes, loads and runs its files."""

TOLERANCES = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
"""The largest absolute difference from the model an exported file may show, per dtype."""

EXPORT_BATCH = 2
"""The batch size of the example the graph is traced on (1 would fix the batch size)."""

VERIFY_BATCHES = (1, 3)
"""The batch sizes a written file is run at and compared with the model."""

METADATA_KEY = "zoo"
"""The key under which a file's metadata holds the model it was exported from (JSON)."""

_SEED = 0
_VERIFY_LENGTHS = (None, 7)
"""The sequence lengths of the two checks: the family's default, and another."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote, and how close the file came to the model."""

    output: Path
    format: str
    model: str
    weights: str
    dtype: str
    files: list[Path]
    """Every file written: the destination, and the ONNX external data beside it if any."""
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    batch_sizes: tuple[int, ...]
    export_s: float
    """Tracing and writing (compiling, for a package)."""
    verify_s: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: paths as strings."""
        values = asdict(self)
        values["output"] = str(self.output)
        values["files"] = [str(path) for path in self.files]
        values["batch_sizes"] = list(self.batch_sizes)
        return values


@dataclass(frozen=True)
class _Graph:
    """The module traced and what it takes and gives."""

    module: torch.nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    sequence: bool


def export_graph(
    name: str | Resolved,
    output: str | Path,
    *,
    format: str,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    labels: Sequence[str] | None = None,
    dtype: str | None = None,
    tolerance: float | None = None,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> ExportReport:
    """Export a model to `output` as `format` (`GRAPH_FORMATS`), verified before it is kept.

    Args:
        name: Any name form `zoo.create` takes (`name.tag`, `hf-hub:ORG/REPO`, a folder).
        output: The file to write: `.onnx` or `.pt2`, as `format` says. An existing file is
            replaced (once the new one is verified).
        format: `"onnx"` or `"pt2"`.
        checkpoint: A local safetensors file; default: the name's published weights.
        num_classes: The head the checkpoint has, when it differs from the tag's.
        labels: Class names to record for that head (default: the tag's, where they fit).
        dtype: `"float32"` (default), `"float16"` or `"bfloat16"`.
        tolerance: The largest absolute difference allowed; default: `TOLERANCES[dtype]`.
        model_args: Builder arguments on top of the registry's.
        registry: The registry to use instead of the installed plugins' one.

    Raises:
        ArgumentError: A format, file name or dtype that does not fit; a model that cannot be
            exported (why, in one line).
        ZooError: A missing dependency (the `onnx` extra, a C++ compiler), or a file that
            does not match the model within the tolerance (nothing is written).
    """
    writer = _format(format)
    output = Path(output)
    _check_output(output, writer)
    dtype_name = _dtype_name(dtype)
    tolerance = TOLERANCES[dtype_name] if tolerance is None else float(tolerance)
    if not tolerance >= 0:
        raise ArgumentError(
            "{tolerance} must be a number, at least 0", arguments=[Argument("tolerance", str(tolerance))]
        )
    if dtype_name not in writer.DTYPES:
        raise ArgumentError(
            f"dtype '{dtype_name}': {writer.NAME} files are written in {', '.join(writer.DTYPES)}"
        )
    writer.require()

    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    args = {**(model_args or {}), **({"num_classes": num_classes} if num_classes is not None else {})}
    ready = inference_model(
        resolved, registry, checkpoint=checkpoint, device="cpu", dtype=dtype_name, model_args=args
    )
    task = registry.task(resolved)
    family = registry.builder(resolved.entry.builder).family
    graph = _graph(ready.model, task)
    metadata = _metadata(
        resolved, registry, ready.config, model_args, task, graph, checkpoint, labels, dtype_name
    )

    started = time.perf_counter()
    example = _example(family, ready.config, EXPORT_BATCH, None, dtype_name)
    if len(example) != len(graph.inputs):  # a model that does not name its inputs
        graph = replace(graph, inputs=tuple(f"input{index}" for index in range(len(example))))
    program = _trace(graph, example, writer, str(resolved))
    with raise_on_sigterm(), _staged(output) as staged:
        try:
            files = writer.write(
                program, staged, graph.inputs, graph.outputs, {METADATA_KEY: json.dumps(metadata)}
            )
        except ArgumentError as error:
            raise ArgumentError(f"{resolved} {error}") from None
        exported = time.perf_counter()
        runner = writer.load(staged)
        checks = [(batch, _example(family, ready.config, batch, length, dtype_name))
                  for batch, length in zip(VERIFY_BATCHES, _VERIFY_LENGTHS, strict=True)]  # fmt: skip
        differences = [_difference(graph.module, runner, inputs) for _, inputs in checks]
        difference = math.nan if any(map(math.isnan, differences)) else max(differences)
        verified = time.perf_counter()
        if not difference <= tolerance:
            raise ZooError(_mismatch(str(resolved), format, difference, tolerance, dtype_name))
        size = sum(path.stat().st_size for path in files)
    return ExportReport(
        output=output,
        format=format,
        model=str(resolved),
        weights=weights_label(resolved, checkpoint),
        dtype=dtype_name,
        files=[output.parent / path.name for path in files],
        size_bytes=size,
        max_abs_diff=float(difference),
        tolerance=tolerance,
        batch_sizes=VERIFY_BATCHES,
        export_s=exported - started,
        verify_s=verified - exported,
        metadata=metadata,
    )


def _format(format: str):
    if format not in GRAPH_FORMATS:
        raise ArgumentError(f"unknown export format '{format}' (formats: {', '.join(GRAPH_FORMATS)})")
    return GRAPH_FORMATS[format]


def _check_output(output: Path, writer: Any) -> None:
    if output.suffix.lower() != writer.SUFFIX:
        raise ArgumentError(f"output '{output}': an {writer.NAME} file is named *{writer.SUFFIX}")
    if output.is_dir():
        raise ArgumentError(f"output '{output}' is a folder; name the {writer.SUFFIX} file to write")
    problem = unwritable(output.parent)
    if problem is not None:
        raise ArgumentError(f"output '{output}': {problem}")


def _dtype_name(dtype: str | None) -> str:
    from ..devices import resolve_dtype

    resolved = resolve_dtype(dtype)
    name = "float32" if resolved is None else str(resolved).removeprefix("torch.")
    if name not in TOLERANCES:
        raise ArgumentError(f"dtype '{dtype}': exports are {', '.join(TOLERANCES)}")
    return name


def _graph(model: torch.nn.Module, task: str | None) -> _Graph:
    """The module to trace: the model, or for an image model with a head, the model giving its
    pre-logits features beside its logits."""
    if task in IMAGE_TASKS:
        if getattr(model, "num_classes", None) != 0 and isinstance(model, HasTrainingInterface):
            return _Graph(_with_embeddings(model), ("images",), ("logits", "embeddings"), sequence=False)
        return _Graph(model, ("images",), ("embeddings",), sequence=False)
    if isinstance(model, HasSequenceMaps):
        names = tuple(declared.name for declared in model.sequence_inputs())
    else:
        names = ("input",)
    return _Graph(model, names, ("logits",), sequence=True)


def _with_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    import torch

    class LogitsAndEmbeddings(torch.nn.Module):
        """images -> (logits, pooled pre-logits features), from one pass of the features."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.model.forward_features(images)
            return self.model.forward_head(features), self.model.forward_head(features, pre_logits=True)

    return LogitsAndEmbeddings(model).eval()


def _example(
    family: Any, config: Any, batch: int, length: int | None, dtype: str
) -> tuple[torch.Tensor, ...]:
    """The family's example inputs, the same for the same arguments."""
    import torch

    with _seeded(_SEED):
        return tuple(family.example_input(config, batch=batch, seq_len=length, dtype=getattr(torch, dtype)))


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _trace(graph: _Graph, example: tuple[torch.Tensor, ...], writer: Any, name: str) -> Any:
    """`torch.export` of the graph, batch and sequence lengths dynamic; refused in one line
    where it fails or fixes one of them."""
    import torch
    from torch.export import Dim

    shapes = tuple(
        {0: Dim.AUTO, **({1: Dim.AUTO} if graph.sequence and tensor.ndim >= 2 else {})} for tensor in example
    )
    try:
        with torch.no_grad(), writer.tracing(), _recurrent_loops(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.export's advice on the model's code
            program = torch.export.export(graph.module, example, dynamic_shapes=shapes)
    except Exception as error:  # torch.export's errors have no common base
        raise ArgumentError(f"{name} cannot be exported: torch.export failed: {_first_line(error)}") from None
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    user_inputs = [placeholders[name] for name in program.graph_signature.user_inputs]
    for input_name, node, wanted in zip(graph.inputs, user_inputs, shapes, strict=True):
        for axis in wanted:
            size = node.meta["val"].shape[axis]
            if is_concrete_int(size):
                what = "batch size" if axis == 0 else "length"
                raise ArgumentError(
                    f"{name} cannot be exported with a dynamic {what} of '{input_name}': its forward "
                    f"fixes it at {size} (a Python loop over its steps, or a size it branches on)"
                )
    return program


@contextlib.contextmanager
def _recurrent_loops() -> Iterator[None]:
    """LSTM and GRU layers traced as a loop over the steps (`while_loop`), as PyTorch's ONNX
    exporter traces them, rather than unrolled at the example's length."""
    from torch.export._patches import (
        register_gru_while_loop_decomposition,
        register_lstm_while_loop_decomposition,
    )

    with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
        yield


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    summary = next((line for line in lines if not line.startswith(("-", "Failed to export"))), "")
    return summary or type(error).__name__


def _difference(module: torch.nn.Module, runner: Any, inputs: tuple[torch.Tensor, ...]) -> float:
    """The largest absolute difference between what the file and the model give."""
    import torch

    with torch.no_grad():
        expected = module(*inputs)
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    got = runner(inputs)
    if len(got) != len(expected):
        return float("nan")
    worst = 0.0
    for mine, theirs in zip(got, expected, strict=True):
        if tuple(mine.shape) != tuple(theirs.shape):
            return float("nan")
        difference = float((mine.float() - theirs.float()).abs().max())
        if math.isnan(difference):  # `max` would pass over it
            return difference
        worst = max(worst, difference)
    return worst


def _mismatch(name: str, format: str, difference: float, tolerance: float, dtype: str) -> str:
    batches = " and ".join(map(str, VERIFY_BATCHES))
    if math.isnan(difference):
        return (
            f"{name}: the exported {format} file and the model give values that are not finite or "
            f"not of the same shapes at batch sizes {batches} (broken weights?): not written"
        )
    return (
        f"{name}: the exported {format} file differs from the model by {difference:.3g} (largest "
        f"absolute difference at batch sizes {batches}; {dtype} tolerance {tolerance:g}): not written"
    )


@contextlib.contextmanager
def _staged(output: Path) -> Iterator[Path]:
    """`output`'s name in a temporary folder beside it, whose files are moved beside `output`
    if the block succeeds (the main file last); the folder is removed in any case."""
    folder = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        yield folder / output.name
        written = sorted(folder.iterdir(), key=lambda path: path.name == output.name)
        for path in written:
            os.replace(path, output.parent / path.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _metadata(
    resolved: Resolved,
    registry: Registry,
    config: Any,
    model_args: Mapping[str, Any] | None,
    task: str | None,
    graph: _Graph,
    checkpoint: str | Path | None,
    labels: Sequence[str] | None,
    dtype: str,
) -> dict[str, Any]:
    """What a file records of the model: enough to run it on images with no model code."""
    selected = resolved.selected
    metadata: dict[str, Any] = {
        "name": str(resolved),
        "architecture": resolved.name,
        "weight_tag": selected.label if selected is not None and checkpoint is None else None,
        "weights": weights_label(resolved, checkpoint),
        "task": task,
        "dtype": dtype,
        "inputs": list(graph.inputs),
        "outputs": list(graph.outputs),
    }
    if task in IMAGE_TASKS:
        preprocessing = fitted_data_config(resolved, registry, model_args=model_args, config=config)
        metadata["preprocessing"] = preprocessing.model_dump(mode="json")
        metadata["num_classes"] = getattr(config, "num_classes", None)
        metadata["labels"] = _labels(resolved, labels, metadata["num_classes"])
    return metadata


def _labels(resolved: Resolved, given: Sequence[str] | None, classes: int | None) -> dict[str, Any] | None:
    """The class names: a shipped label set by name, or the names given."""
    if given is not None:
        if classes is not None and len(given) != classes:
            raise ArgumentError(f"{len(given)} class names for a model with {classes} classes")
        return {"set": None, "names": list(given)}
    known = labels_for(resolved)
    if known is None or len(known) != classes:
        return None
    return {"set": known.name, "names": None}
