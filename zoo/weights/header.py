"""Reading and checking a safetensors header before a single tensor is allocated.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then the
data section. The JSON maps each tensor name to its `dtype`, `shape` and `data_offsets`
(begin and end, relative to the data section); `__metadata__` holds free-form strings.

`read_header` trusts none of it: the length must be sane and inside the file, every dtype
known, every tensor's byte range inside the data section, exactly as long as its shape and
dtype say, and no two ranges may overlap. Anything else is a `CheckpointError` in one line,
so a malformed, truncated or lying file is refused before memory is mapped or allocated.
A PyTorch pickle (`torch.save`'s zip archive or a legacy pickle stream) is recognised by its
first bytes and refused with the command that converts it; nothing here unpickles.

A sharded checkpoint (`model.safetensors.index.json`, whose `weight_map` names the shard of
each tensor) is read by `read_checkpoint`: the index and every shard's header are checked,
and the shards against the index, before any tensor data is read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from ..errors import CheckpointError, MissingFileError

__all__ = [
    "DTYPES",
    "INDEX_SUFFIX",
    "MAX_HEADER_BYTES",
    "Checkpoint",
    "Header",
    "TensorInfo",
    "check_state_names",
    "pickle_kind",
    "foreign_global",
    "read_checkpoint",
    "read_header",
    "read_index",
    "state_mismatch",
]

INDEX_SUFFIX = ".safetensors.index.json"
"""How the index of a sharded checkpoint is named (`model.safetensors.index.json`)."""

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
        CheckpointError: the file is missing, a PyTorch pickle (the message names the
            conversion), not safetensors, truncated, or its header is inconsistent (unknown
            dtype, bad shape, byte ranges out of bounds, of the wrong length or overlapping).
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            file_size = os.fstat(file.fileno()).st_size
            prefix = file.read(9)
            kind = pickle_kind(prefix)
            if kind is not None:
                raise _bad(path, _pickle_advice(path, kind))
            prefix = prefix[:8]
            file.seek(8)
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
        raise MissingFileError(f"checkpoint '{path}' does not exist") from None
    except IsADirectoryError:
        raise MissingFileError(f"checkpoint '{path}' is a folder, not a safetensors file") from None
    except PermissionError:
        raise MissingFileError(f"checkpoint '{path}' cannot be read: permission denied") from None
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


def pickle_kind(prefix: bytes) -> str | None:
    """`"zip"` for `torch.save`'s zip archive, `"pickle"` for a pickle stream (protocol 2 to
    5, as legacy `torch.save` writes), None otherwise, from a file's first 9 bytes.

    A safetensors header always starts with `{` at byte 8, which tells a safetensors file
    whose header length happens to begin with the same bytes from a pickle.
    """
    if prefix[8:9] == b"{":
        return None
    if prefix[:4] == b"PK\x03\x04":
        return "zip"
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "pickle"
    return None


# What torch.save writes itself; any other global is code a pickle would import and run.
_TORCH_SAVE_MODULES = ("torch", "collections", "builtins", "_codecs", "copyreg")


def foreign_global(path: Path) -> str | None:
    """The first global of a legacy pickle or a zip archive's `data.pkl` that is not torch's
    own (`argparse.Namespace`), read from the opcodes without executing anything."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pickled = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if pickled is None:
                    return None
                with archive.open(pickled) as file:
                    return _first_foreign(file)
        with open(path, "rb") as file:
            return _first_foreign(file)
    except (OSError, zipfile.BadZipFile):
        return None


def _first_foreign(file) -> str | None:
    """Scans the pickles one after another (legacy torch.save writes several), up to the
    raw storage bytes that follow them."""
    import pickletools

    while True:
        strings: list[str] = []
        memo: dict[int, object] = {}
        try:
            for opcode, argument, _ in pickletools.genops(file):
                name = _global_name(opcode.name, argument, strings)
                if name is not None and name.partition(".")[0] not in _TORCH_SAVE_MODULES:
                    return name
                _track(opcode.name, argument, strings, memo)
        except Exception:  # the storage bytes after the last pickle, or a damaged stream
            return None


def _global_name(opcode: str, argument: object, strings: list[str]) -> str | None:
    if opcode in ("GLOBAL", "INST"):
        return str(argument).replace(" ", ".", 1)
    if opcode == "STACK_GLOBAL" and len(strings) >= 2:
        return f"{strings[-2]}.{strings[-1]}"
    return None


def _track(opcode: str, argument: object, strings: list[str], memo: dict[int, object]) -> None:
    """The strings pushed, memoized and fetched again: the operands of STACK_GLOBAL."""
    if isinstance(argument, str) and ("UNICODE" in opcode or "STRING" in opcode):
        strings.append(str(argument))
    elif opcode == "MEMOIZE" and strings:
        memo[len(memo)] = strings[-1]
    elif opcode in ("BINGET", "LONG_BINGET", "GET") and isinstance(memo.get(argument), str):
        strings.append(memo[argument])


def _pickle_advice(path: Path, kind: str) -> str:
    import shlex

    output = path.with_suffix(".safetensors")
    if output == path:
        output = path.with_suffix(".converted.safetensors")
    what = "zip archive (torch.save)" if kind == "zip" else "pickle (legacy torch.save)"
    imported = foreign_global(path)
    if imported is not None:
        return (
            f"is a PyTorch {what} that would import {imported}, not safetensors; the zoo never "
            "unpickles, and zoo convert refuses such a pickle too: save its state dict alone"
        )
    return (
        f"is a PyTorch {what}, not safetensors; the zoo never unpickles while loading: convert it "
        f"once with `zoo convert {shlex.quote(str(path))} -o {shlex.quote(str(output))}`"
    )


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
    problem = state_mismatch(expected, found)
    if problem is not None:
        raise CheckpointError(f"checkpoint '{path}' does not fit the model: {problem}")


def state_mismatch(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> str | None:
    """What is missing, unexpected or of the wrong shape, in words; None if nothing is."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    mismatched = [
        f"{name} (checkpoint {list(found[name])}, model {list(shape)})"
        for name, shape in expected.items()
        if name in found and tuple(found[name]) != tuple(shape)
    ]
    if not (missing or unexpected or mismatched):
        return None
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{len(names)} {label}: {shown}")
    return "; ".join(parts)


# ---------------------------------------------------------------------- sharded checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint: one safetensors file, or every shard of a sharded one."""

    path: Path
    """The safetensors file, or the index of a sharded checkpoint."""
    shards: tuple[Header, ...]
    tensors: dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: info.shape for name, info in self.tensors.items()}

    @property
    def sharded(self) -> bool:
        return self.path.name.endswith(INDEX_SUFFIX)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Check a checkpoint's headers: a safetensors file, a sharded checkpoint's index
    (`*.safetensors.index.json`), or a folder holding either (`model.safetensors.index.json`
    first, else `model.safetensors`). Reads no tensor data.

    Raises:
        CheckpointError: a bad file or index, a shard missing, a tensor in two shards, or
            an index that does not say where the shards' tensors are.
    """
    path = Path(path)
    if path.is_dir():
        path = _file_in_folder(path)
    if not path.name.endswith(INDEX_SUFFIX):
        header = read_header(path)
        return Checkpoint(path, (header,), dict(header.tensors))
    weight_map = read_index(path)
    headers = {}
    for shard in sorted(set(weight_map.values())):
        if not (path.parent / shard).is_file():
            raise _bad(path, f"names shard '{shard}', which does not exist next to it")
        headers[shard] = read_header(path.parent / shard)
    owners = _owners(path, headers)
    _check_index(path, weight_map, owners)
    tensors = {name: headers[owners[name]].tensors[name] for name in weight_map}
    return Checkpoint(path, tuple(headers.values()), tensors)


def read_index(path: str | Path) -> dict[str, str]:
    """The `weight_map` of a sharded checkpoint's index: tensor name -> shard file name.

    Shards must be plain file names beside the index (no folders, nothing outside it).
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_HEADER_BYTES:
            raise _bad(path, f"is not a checkpoint index: it is larger than {MAX_HEADER_BYTES} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(f"checkpoint '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad(path, f"is not a checkpoint index: {error}") from None
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise _bad(path, "is not a checkpoint index: it needs a non-empty 'weight_map' object")
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not _is_plain_file_name(shard):
            raise _bad(path, f"puts tensor '{name}' in {shard!r}, which is not a file name beside it")
    return dict(weight_map)


def _file_in_folder(folder: Path) -> Path:
    for name in ("model" + INDEX_SUFFIX, "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"checkpoint '{folder}' is a folder without model.safetensors or model{INDEX_SUFFIX}"
    )


def _owners(index: Path, headers: Mapping[str, Header]) -> dict[str, str]:
    """Tensor name -> the shard holding it; a tensor in two shards is refused."""
    owners: dict[str, str] = {}
    for shard, header in headers.items():
        for name in header.tensors:
            if name in owners:
                raise _bad(index, f"has tensor '{name}' in two shards: {owners[name]} and {shard}")
            owners[name] = shard
    return owners


def _check_index(index: Path, weight_map: Mapping[str, str], owners: Mapping[str, str]) -> None:
    for name, shard in weight_map.items():
        if name not in owners:
            raise _bad(index, f"puts tensor '{name}' in shard {shard}, which does not hold it")
        if owners[name] != shard:
            raise _bad(index, f"puts tensor '{name}' in shard {shard}, but it is in {owners[name]}")
    for name, shard in owners.items():
        if name not in weight_map:
            raise _bad(index, f"does not list tensor '{name}', which shard {shard} holds")


def _is_plain_file_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
