"""The AOTInductor format of `zoo.tasks.graph_export`: a `.pt2` package of compiled code.

The program `torch.export` traced is compiled ahead of time by AOTInductor into a shared
library holding the weights, packaged as `F.pt2`, with the zoo's metadata compiled in
(`aot_inductor.metadata`). Compiling needs a C++ compiler (`$CXX`, else `g++`); running the
package does not, nor the model's code, nor a build of the model.

A package is native code for the machine it was compiled on (its CPU's instruction sets:
the package records them as `AOTI_CPU_ISA`): load only packages you trust, on a machine
like the one that made them. It is loaded by the loader `torch._inductor.aoti_load_package`
uses (`AOTIModelPackageLoader`) and nothing else in the archive is read: an exported
program stored there would be unpickled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ZooError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DTYPES",
    "MODEL_NAME",
    "NAME",
    "SUFFIX",
    "compiler",
    "load",
    "read_metadata",
    "require",
    "tracing",
    "write",
]

NAME = "AOTInductor package"
SUFFIX = ".pt2"
DTYPES = ("float32", "float16", "bfloat16")
MODEL_NAME = "model"
"""The name of the model inside the package (AOTInductor's default)."""


def compiler() -> str | None:
    """The C++ compiler AOTInductor calls (`$CXX`, else `g++`), if it is on the PATH."""
    return shutil.which(os.environ.get("CXX") or "g++")


def require() -> None:
    """Refuse in one line where there is no C++ compiler to compile the package with."""
    if compiler() is None:
        wanted = os.environ.get("CXX") or "g++"
        raise ZooError(
            f"exporting an AOTInductor package needs a C++ compiler, and '{wanted}' is not on the "
            "PATH: install one (g++ or clang++; $CXX names another)"
        )


def tracing() -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def write(
    program: Any, path: Path, inputs: Sequence[str], outputs: Sequence[str], metadata: Mapping[str, str]
) -> list[Path]:
    """Compile an exported program into a package at `path`; returns the files written."""
    import torch

    with _quiet():
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(path), inductor_configs={"aot_inductor.metadata": dict(metadata)}
        )
    return [path]


def load(path: str | Path) -> Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]:
    """The compiled model of a package, as a function of the inputs in order."""
    import torch
    from torch.export.pt2_archive._package import AOTICompiledModel

    try:
        loader = torch._C._aoti.AOTIModelPackageLoader(str(path), MODEL_NAME, False, 1, -1)
    except RuntimeError as error:
        raise ZooError(
            f"{path}: not an AOTInductor package this machine can run ({_first_line(error)})"
        ) from None
    compiled = AOTICompiledModel(loader)

    def run(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        with torch.inference_mode():
            result = compiled(*tensors)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    return run


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata compiled into a package, read without loading it."""
    import torch

    try:
        return dict(torch._C._aoti.AOTIModelPackageLoader.load_metadata_from_package(str(path), MODEL_NAME))
    except RuntimeError as error:
        raise ZooError(f"{path}: not an AOTInductor package ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
