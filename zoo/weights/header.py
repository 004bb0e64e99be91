"""Reading and checking a safetensors header before a single tensor is allocated.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then the
data section. The JSON maps each tensor name to its `dtype`, `shape` and `data_offsets`
(begin and end, relative to the data section); `__metadata__` holds free-form strings.

`read_header` trusts none of it: the length must be sane and inside the file, every dtype
known, every tensor's byte range inside the data section, exactly as long as its shape and
dtype say, and no two ranges may overlap. Anything else is a `CheckpointError` in one line,
so a malformed, truncated or lying file is refused before memory is mapped or allocated.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["DTYPES", "MAX_HEADER_BYTES", "Header", "TensorInfo", "check_state_names", "read_header"]

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The largest header accepted (the limit of the reference implementation)."""

DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U64": ("uint64", 8),
    "U32": ("uint32", 4),
    "U16": ("uint16", 2),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
"""safetensors dtype code -> (torch dtype name, bytes per element)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checked header; `start` and `end` are absolute file offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def torch_dtype(self) -> str:
        return DTYPES[self.dtype][0]

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][1]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Header:
    """A checked safetensors header."""

    path: Path
    file_size: int
    data_start: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: info.shape for name, info in self.tensors.items()}


def read_header(path: str | Path) -> Header:
    """Read and check the header of a safetensors file (reads only the header bytes).

    Raises:
        CheckpointError: the file is missing, not safetensors, truncated, or its header is
            inconsistent (unknown dtype, bad shape, byte ranges out of bounds, of the wrong
            length or overlapping).
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            file_size = os.fstat(file.fileno()).st_size
            prefix = file.read(8)
            if len(prefix) < 8:
                raise _bad(path, f"is truncated: {file_size} bytes, too short for a safetensors header")
            length = int.from_bytes(prefix, "little")
            if length < 2 or length > MAX_HEADER_BYTES:
                raise _bad(path, f"is not a safetensors file: it declares a {length}-byte header")
            if 8 + length > file_size:
                raise _bad(
                    path,
                    f"is truncated: it declares a {length}-byte header but has "
                    f"{file_size - 8} bytes after the length",
                )
            raw = file.read(length)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint '{path}' does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint '{path}' is a folder, not a safetensors file") from None
    except PermissionError:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: permission denied") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad(path, f"is not a safetensors file: its header is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise _bad(path, "is not a safetensors file: its header is not a JSON object")

    metadata = document.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "has a malformed header: '__metadata__' must map names to strings")
    data_start = 8 + length
    data_size = file_size - data_start
    tensors = {name: _tensor(path, name, entry, data_start, data_size) for name, entry in document.items()}
    _check_no_overlap(path, tensors)
    return Header(path, file_size, data_start, tensors, dict(metadata))


def _tensor(path: Path, name: str, entry: object, data_start: int, data_size: int) -> TensorInfo:
    if not name:
        raise _bad(path, "has a malformed header: a tensor with an empty name")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _bad(
            path, f"has a malformed header: tensor '{name}' needs exactly dtype, shape and data_offsets"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise _bad(path, f"has tensor '{name}' of unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise _bad(path, f"has tensor '{name}' with a malformed shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
        raise _bad(path, f"has tensor '{name}' with malformed data_offsets {offsets!r}")
    begin, end = offsets
    if begin > end:
        raise _bad(path, f"has tensor '{name}' whose data_offsets run backwards ({begin} > {end})")
    if end > data_size:
        raise _bad(
            path,
            f"is truncated or lies about its size: tensor '{name}' ends at byte {end} of the data "
            f"section, which holds {data_size} bytes",
        )
    needed = math.prod(shape) * DTYPES[dtype][1]
    if end - begin != needed:
        raise _bad(
            path,
            f"lies about tensor '{name}': shape {list(shape)} of {dtype} takes {needed} bytes but its "
            f"data_offsets span {end - begin}",
        )
    return TensorInfo(name, dtype, tuple(shape), data_start + begin, data_start + end)


def _check_no_overlap(path: Path, tensors: dict[str, TensorInfo]) -> None:
    ordered = sorted((t for t in tensors.values() if t.nbytes), key=lambda t: t.start)
    for previous, current in pairwise(ordered):
        if current.start < previous.end:
            raise _bad(path, f"has overlapping tensors '{previous.name}' and '{current.name}'")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bad(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint '{path}' {what}")


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
