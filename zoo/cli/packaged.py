"""`zoo predict F.pt2` and `zoo embed F.pt2`: an AOTInductor package in place of a model name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, MissingFileError

if TYPE_CHECKING:
    from ..tasks.predict import Predictor

__all__ = ["package_or_none"]


def package_or_none(name: str, *, labels: Path | None = None, **given: Any) -> Predictor | None:
    """The package's predictor when NAME is a `.pt2` file, else None (NAME is a model name).

    A package is compiled with its weights, head, dtype and device: the options that choose
    them (`given`, by keyword: checkpoint, num_classes, device, dtype, model_args) are refused.
    """
    if not name.lower().endswith(".pt2"):
        return None
    from ..tasks.packaged import is_package, package_predictor

    if not is_package(name):
        raise MissingFileError(f"{name}: no such package file")
    chosen = [key for key, value in given.items() if value not in (None, {}) and not _is_cpu(key, value)]
    if chosen:
        flags = ", ".join("-a" if key == "model_args" else "--" + key.replace("_", "-") for key in chosen)
        raise ArgumentError(
            f"{flags}: {name} is a compiled package, its weights, head, dtype and device fixed when "
            "it was exported; it runs on the CPU"
        )
    return package_predictor(name, labels=labels)


def _is_cpu(key: str, value: Any) -> bool:
    return key == "device" and str(value).lower() == "cpu"
