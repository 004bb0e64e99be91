"""`zoo export --format onnx|pt2`: one file that runs without the zoo, verified before it is kept."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from ..errors import ArgumentError
from .options import FiniteFloat, input_file, split_assignments
from .output import echo_json
from .overwrite import check_output

__all__ = ["FORMATS", "FILE_HELP", "export_file_options", "export_to_file", "refuse_file_options"]

FORMATS = ("folder", "onnx", "pt2")
"""What `zoo export` writes: a folder to publish (the default), an ONNX file, an AOTInductor package."""

_FILE_OPTIONS = {
    "dtype": "--dtype",
    "tolerance": "--tolerance",
    "force": "--force",
    "labels_file": "--labels",
}

FILE_HELP = """
\b
--format onnx -o F.onnx, --format pt2 -o F.pt2: one file, traced with torch.export (batch
and sequence lengths dynamic), weights from --checkpoint FILE or the published ones of
NAME (a weight tag, an hf-hub: name). onnx: opset 20, onnxruntime (pip install
'zoo[onnx]'); weights above 2 GB go to F.onnx.data beside it. pt2: compiled by
AOTInductor (needs a C++ compiler); `zoo predict F.pt2 IMAGES` and `zoo embed F.pt2 ...`
run it with no build. The file is run on a fixed input at batch sizes 1 and 3 and
compared with the model; if the largest absolute difference exceeds --tolerance
(float32: 1e-4, float16: 1e-2, bfloat16: 5e-2) nothing is written and the command fails.

\b
Examples:
  zoo export resnet50.a1_in1k --format onnx -o resnet50.onnx
  zoo export resnet18 --checkpoint ft.safetensors --num-classes 10 --labels classes.txt \\
      --format pt2 -o resnet18-ft.pt2

\b
--json, for onnx and pt2, prints one object:
  {"output": str, "format": str, "model": str, "weights": str, "dtype": str,
   "files": [str, ...], "size_bytes": int, "max_abs_diff": float, "tolerance": float,
   "batch_sizes": [int, ...], "export_s": float, "verify_s": float, "metadata": {...}}
"""


def export_file_options(command: Callable) -> Callable:
    """The options of the onnx and pt2 formats, and their help appended to the command's."""
    options = [
        click.option("--dtype", help="onnx, pt2: float32, float16, bfloat16 (pt2)  [default: float32]"),
        click.option(
            "--tolerance",
            type=FiniteFloat(min=0),
            help="onnx, pt2: the largest absolute difference allowed [default: by dtype].",
        ),
        click.option(
            "--labels", "labels_file", type=input_file, help="onnx, pt2: class names, one per line."
        ),
        click.option("--force", is_flag=True, help="onnx, pt2: replace an existing file."),
    ]
    for option in reversed(options):
        command = option(command)
    command.__doc__ = (command.__doc__ or "").rstrip() + "\n" + textwrap.indent(FILE_HELP, "    ")
    return command


def refuse_file_options(values: Mapping[str, Any]) -> None:
    """Refuse the onnx and pt2 options on a folder export, in one line."""
    given = [_FILE_OPTIONS[key] for key, value in values.items() if value not in (None, False)]
    if given:
        raise ArgumentError(
            f"{', '.join(given)}: only for --format onnx or pt2; a folder holds the checkpoint as it is"
        )


def export_to_file(
    name: str,
    checkpoint: Path | None,
    output: Path,
    format: str,
    num_classes: int | None,
    assignments: tuple[str, ...],
    as_json: bool,
    folder_options: Mapping[str, Any],
    *,
    dtype: str | None,
    tolerance: float | None,
    labels_file: Path | None,
    force: bool,
) -> None:
    """Export NAME to one file of `format` and report it."""
    given = [option for option, value in folder_options.items() if value]
    if given:
        raise ArgumentError(f"{', '.join(given)}: only for --format folder, the folder to publish on the Hub")
    flags, model_args = split_assignments(assignments, {"num_classes": num_classes, "dtype": dtype})
    check_output(output, "--output", inputs=[checkpoint, labels_file], force=force)
    from ..registry.labels import read_labels_file
    from ..tasks.graph_export import export_graph

    labels = read_labels_file(labels_file).names if labels_file is not None else None
    report = export_graph(
        name,
        output,
        format=format,
        checkpoint=checkpoint,
        labels=labels,
        tolerance=tolerance,
        model_args=model_args,
        **flags,
    )
    if as_json:
        echo_json(report.as_dict())
        return
    click.echo(
        f"wrote {report.output} ({_size(report.size_bytes)}): {report.model}, weights {report.weights}, "
        f"{report.dtype}; max |difference| {report.max_abs_diff:.2g} at batch sizes "
        f"{' and '.join(map(str, report.batch_sizes))} (tolerance {report.tolerance:g}); "
        f"exported in {report.export_s:.1f} s, verified in {report.verify_s:.1f} s"
    )


def _size(count: int) -> str:
    for unit in ("bytes", "kB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.2f} GB"
