"""The ONNX format of `zoo.tasks.graph_export`: PyTorch's dynamo-based exporter, onnxruntime.

The program `torch.export` traced is translated at opset `OPSET`, its inputs and outputs
named, the zoo's metadata in the model's `metadata_props`. A model whose weights pass 2 GB
(protobuf's limit) is written with its weights as external data, in `F.onnx.data` beside
`F.onnx`. The file is run by onnxruntime on the CPU.

Scaled dot-product attention is traced through its math decomposition: the fused CPU
kernels give their outputs a memory layout that the exporter's own decomposition does not
reproduce, and the translation then fails on a view (Swin's windows show it).

Needs the `onnx` extra: `pip install 'zoo[onnx]'` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, ZooError

if TYPE_CHECKING:
    import torch

__all__ = ["DTYPES", "NAME", "OPSET", "SUFFIX", "load", "read_metadata", "require", "tracing", "write"]

NAME = "ONNX"
SUFFIX = ".onnx"
OPSET = 20
"""The ONNX opset the files are written at (ai.onnx)."""
DTYPES = ("float32", "float16")
"""The dtypes written: onnxruntime's CPU kernels and numpy have no bfloat16."""

_NEEDED = ("onnx", "onnxscript", "onnxruntime")


def require() -> None:
    """Refuse in one line where the `onnx` extra is not installed."""
    import importlib

    missing = []
    for module in _NEEDED:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ZooError(
            f"exporting to ONNX needs the onnx extra ({', '.join(missing)} not installed): "
            "pip install 'zoo[onnx]'"
        )


def tracing() -> contextlib.AbstractContextManager[None]:
    """Attention traced through its math decomposition (see the module)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def write(
    program: Any, path: Path, inputs: Sequence[str], outputs: Sequence[str], metadata: Mapping[str, str]
) -> list[Path]:
    """Translate an exported program and write it to `path`; returns the files written."""
    import torch

    with _quiet(), tracing():
        try:
            onnx_program = torch.onnx.export(
                program, (), input_names=list(inputs), output_names=list(outputs), opset_version=OPSET,
                dynamo=True, verbose=False, optimize=True,
            )  # fmt: skip
        except Exception as error:  # the exporter's errors have no common base
            raise ArgumentError(f"cannot be translated to ONNX: {_summary(error)}") from None
        onnx_program.model.metadata_props.update(metadata)
        onnx_program.save(path)
    data = path.with_name(path.name + ".data")
    return [path, data] if data.exists() else [path]


def load(path: Path) -> Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]:
    """An onnxruntime session on the CPU, as a function of the inputs in order."""
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [declared.name for declared in session.get_inputs()]

    def run(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        feeds = {name: tensor.detach().cpu().numpy() for name, tensor in zip(names, tensors, strict=True)}
        return [torch.from_numpy(array) for array in session.run(None, feeds)]

    return run


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an ONNX file, without its weights."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def _summary(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line == "## Exception summary" and index + 1 < len(lines):
            return lines[index + 1]
    return lines[0] if lines else type(error).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines and warnings (torchvision's missing operators) kept out
    of the command's output."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
