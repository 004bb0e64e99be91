"""The safetensors header is checked on its own before anything is allocated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from zoo import CheckpointError, MissingFileError
from zoo.weights.header import read_header
from zoo.weights.loading import load_checkpoint, map_tensors


def write(path: Path, header: dict, data: bytes, *, length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text + data)
    return path


def test_a_file_written_by_safetensors_is_read_with_absolute_offsets(tmp_path):
    tensors = {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.ones(4, dtype=torch.bfloat16),
        "n": torch.tensor(3, dtype=torch.int64),
        "e": torch.empty(0, 5),
    }
    save_file(tensors, str(tmp_path / "ok.safetensors"), metadata={"format": "pt"})
    header = read_header(tmp_path / "ok.safetensors")
    assert header.shapes == {"a": (2, 3), "b": (4,), "n": (), "e": (0, 5)}
    assert header.metadata == {"format": "pt"}
    assert header.tensors["a"].nbytes == 24 and header.tensors["a"].start >= header.data_start
    mapped = map_tensors(header)
    for name, tensor in tensors.items():
        assert torch.equal(mapped[name], tensor)


GOOD = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}


@pytest.mark.parametrize(
    ("header", "data", "length", "message"),
    [
        (GOOD, b"\0" * 16, 10**12, "is not a safetensors file: it declares a 1000000000000-byte header"),
        (GOOD, b"\0" * 16, 4096, "is truncated: it declares a 4096-byte header"),
        (
            GOOD,
            b"\0" * 8,
            None,
            "is truncated or lies about its size: tensor 'w' ends at byte 16 of the data section, "
            "which holds 8",
        ),
        (
            {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}},
            b"\0" * 16,
            None,
            "lies about tensor 'w': shape [2, 3] of F32 takes 24 bytes but its data_offsets span 16",
        ),
        (
            {"w": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}},
            b"\0" * 16,
            None,
            "unknown dtype 'C64'",
        ),
        (
            {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            b"\0" * 4,
            None,
            "malformed shape [-1]",
        ),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4, None, "run backwards"),
        (
            {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}},
            b"\0" * 4,
            None,
            "malformed data_offsets",
        ),
        (
            {"w": {"dtype": "F32", "shape": [1]}},
            b"\0" * 4,
            None,
            "needs exactly dtype, shape and data_offsets",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            None,
            "overlapping tensors 'a' and 'b'",
        ),
        ({"__metadata__": {"n": 1}, **GOOD}, b"\0" * 16, None, "'__metadata__' must map names to strings"),
    ],
)
def test_a_bad_header_is_one_line_naming_the_problem(tmp_path, header, data, length, message):
    path = write(tmp_path / "bad.safetensors", header, data, length=length)
    with pytest.raises(CheckpointError) as error:
        read_header(path)
    assert message in str(error.value)
    assert str(error.value).startswith(f"checkpoint '{path}' ")
    assert "\n" not in str(error.value)


def test_files_that_are_not_safetensors_at_all(tmp_path):
    (tmp_path / "short").write_bytes(b"abc")
    (tmp_path / "json").write_bytes((4).to_bytes(8, "little") + b"nope")
    (tmp_path / "list").write_bytes((2).to_bytes(8, "little") + b"[]")
    for name, message in [
        ("short", "too short"),
        ("json", "header is not JSON"),
        ("list", "not a JSON object"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            read_header(tmp_path / name)
    with pytest.raises(MissingFileError, match="does not exist"):
        read_header(tmp_path / "missing")


def test_a_lying_header_is_refused_before_the_model_is_touched(tmp_path):
    model = torch.nn.Linear(2, 2, device="meta")
    path = write(
        tmp_path / "lie.safetensors",
        {
            "weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "bias": {"dtype": "F32", "shape": [2], "data_offsets": [16, 32]},
        },
        b"\0" * 32,
    )
    with pytest.raises(CheckpointError, match="lies about tensor 'bias'"):
        load_checkpoint(model, path)
    assert model.weight.is_meta and model.bias.is_meta


def test_a_tensor_at_an_unaligned_offset_is_copied_not_misread(tmp_path):
    values = torch.tensor([1.5, -2.0], dtype=torch.float32)
    data = b"\7" + values.numpy().tobytes()
    path = write(
        tmp_path / "odd.safetensors",
        {
            "b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
            "f": {"dtype": "F32", "shape": [2], "data_offsets": [1, 9]},
        },
        data,
    )
    mapped = map_tensors(read_header(path))
    assert torch.equal(mapped["f"], values) and mapped["b"].item() == 7
