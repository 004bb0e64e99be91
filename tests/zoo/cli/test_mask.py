"""`zoo mask`: causal and padding masks drawn as pictures, kept positions yellow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli
from zoo.tasks.heatmaps import KEPT, MASKED
from zoo.tasks.sequence_maps import mask_picture


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(
    ("kind", "lengths", "shape"),
    [("causal", "6", [6, 6]), ("padding", "6,4,2", [3, 6]), ("causal", "6,3", [2, 6, 6])],
)
def test_the_picture_written_is_the_mask_drawn(tmp_path, kind, lengths, shape):
    output = tmp_path / "mask.png"
    result = run("mask", kind, "--lengths", lengths, "-o", str(output), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["shape"] == shape and report["kind"] == kind
    expected = mask_picture(kind, [int(n) for n in lengths.split(",")])
    with Image.open(output) as written:
        pixels = np.asarray(written.convert("RGB"))
    assert np.array_equal(pixels, np.asarray(expected.image))
    assert report["size"] == [pixels.shape[1], pixels.shape[0]]


def test_a_causal_mask_keeps_the_lower_triangle(tmp_path):
    output = tmp_path / "causal.jpg"
    result = run("mask", "causal", "--length", "4", "-o", str(output))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {output} (" + result.stdout.split("(", 1)[1]
    assert "causal mask of shape 4 x 4" in result.stdout
    [grid] = mask_picture("causal", [4]).grids
    with Image.open(output) as written:
        pixels = np.asarray(written.convert("RGB")).astype(int)
    for row in range(4):
        for column in range(4):
            colour = KEPT if column <= row else MASKED
            x, y = grid.centre(row, column)
            assert np.abs(pixels[y, x] - colour).max() < 12  # JPEG: close, not exact


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("causal", "--lengths", "6,x"), "--lengths 6,x: give positive integers separated by commas (6,4,2)"),
        (
            ("causal", "--lengths", "1,,2"),
            "--lengths 1,,2: give positive integers separated by commas (6,4,2)",
        ),
        (("causal", "--lengths", "3,"), "--lengths 3,: give positive integers separated by commas (6,4,2)"),
        (("causal", "--lengths", "0"), "lengths must be positive, got [0]"),
        (("padding", "--lengths", "5", "--max-len", "3"), "max length 3 is shorter than the length 5"),
        (("causal", "--lengths", "4096"), "a mask of 4096 positions and 1 sequences: at most 1024 of each"),
        (("causal", "--lengths", "4", "-o", "mask.gif"), "--output mask.gif: cannot tell which image format"),
    ],
)
def test_bad_input_is_one_line_and_nothing_written(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    if "-o" not in args:
        args = (*args, "-o", "mask.png")
    result = run("mask", *args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"zoo: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_picture_is_kept_unless_force(tmp_path):
    output = tmp_path / "mask.png"
    output.write_bytes(b"mine")
    result = run("mask", "causal", "--length", "3", "-o", str(output))
    assert result.exit_code == 2 and output.read_bytes() == b"mine"
    assert run("mask", "causal", "--length", "3", "-o", str(output), "--force").exit_code == 0
    with Image.open(output) as written:
        assert written.format == "PNG"
