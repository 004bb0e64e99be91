"""Swin as timm's catalogue builds it: a window size per stage (Swin S3), and a checkpoint
loaded into a model of other windows, its relative position bias tables resampled as timm's
checkpoint filter resamples them."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.errors import ArgumentError
from zoo_plugins.layers import resample_relative_position_table

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm

NAME = "swin_tiny_patch4_window7_224"
CASE = "swin_s3_tiny_cls10"
SIZES = ("img_size", "patch_size", "window_size", "embed_dim", "depths", "num_heads", "num_classes")


def test_a_window_size_per_stage_reproduces_timm():
    assert_reproduces_timm(NAME, CASE, SIZES)


def test_a_checkpoint_of_smaller_windows_reproduces_timm_with_its_tables_resampled(caplog):
    description = json.loads((REFERENCE / "tiny" / f"{CASE}.json").read_text())
    args = {key: description[key] for key in SIZES} | description["resized128"]
    with caplog.at_level("INFO", logger="zoo"):
        model = zoo.create(NAME, checkpoint=REFERENCE / "tiny" / f"{CASE}.safetensors", **args).eval()
    assert "relative position bias resampled from 4x4 to 8x8 windows" in caplog.text
    io = load_file(REFERENCE / "tiny" / f"{CASE}.resized128.io.safetensors")
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model.forward_head(features)
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)


def test_each_stage_takes_its_own_window_and_shifts_only_where_the_grid_exceeds_it():
    model = zoo.create(NAME, device="meta", window_size=[7, 7, 14, 7])
    windows = [(block.window_size, block.shift_size) for block in model.blocks_in_order()]
    assert windows[:4] == [(7, 0), (7, 3), (7, 0), (7, 3)]  # grids 56 and 28
    assert set(windows[4:]) == {(14, 0)} | {(7, 0)}  # grids 14 and 7: one window each
    table = model.layers[2].blocks[0].attn.relative_position_bias_table
    assert table.shape == (27 * 27, 12)


@pytest.mark.parametrize(
    "window_size", [[7, 7, 7], [7, 7, 8, 7]], ids=["a window too few", "a window that does not tile"]
)
def test_per_stage_windows_that_do_not_fit_are_refused(window_size):
    with pytest.raises(ArgumentError):
        zoo.create(NAME, device="meta", window_size=window_size)


def test_resampling_keeps_the_zero_offset_and_spreads_the_far_ones():
    table = torch.arange(9.0).reshape(9, 1)  # offsets of a 2x2 window, (dy, dx) in -1..1
    resampled = resample_relative_position_table(table, (3, 3)).reshape(5, 5)
    assert resampled[2, 2] == table[4, 0]  # offset (0, 0)
    assert resampled[0, 0] == table[0, 0] and resampled[4, 4] == table[8, 0]  # the far corners
    assert resample_relative_position_table(table, (2, 2)) is table
