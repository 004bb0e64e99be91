"""Swin Transformer: timm's numerics, windows and their shift, patch merging, loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo.errors import ArgumentError
from zoo_plugins.attention.window import WindowSelfAttention, relative_position_index
from zoo_plugins.models.swin import MASKED, shifted_window_mask, window_partition, window_reverse

from ...conftest import REFERENCE

NAME = "swin_tiny_patch4_window7_224"
CASE = "swin_tiny_w4_cls10"
SIZES = ("img_size", "patch_size", "window_size", "embed_dim", "depths", "num_heads", "num_classes")
SMALL = {"img_size": 32, "patch_size": 2, "window_size": 4, "embed_dim": 16, "depths": [2, 2],
         "num_heads": [2, 4], "num_classes": 5}  # fmt: skip


def tiny_args() -> dict:
    description = json.loads((REFERENCE / "tiny" / f"{CASE}.json").read_text())
    return {key: description[key] for key in SIZES}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "eager"])
def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features(fused):
    checkpoint = REFERENCE / "tiny" / f"{CASE}.safetensors"
    attn = {"name": "wmsa", "fused": fused}
    model = zoo.create(NAME, checkpoint=checkpoint, attn=attn, **tiny_args()).eval()
    io = load_file(REFERENCE / "tiny" / f"{CASE}.io.safetensors")
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model.forward_head(features)
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)


def test_a_stage_no_larger_than_the_window_takes_one_unshifted_window():
    model = zoo.create(NAME, device="meta", **tiny_args())
    shapes = [(b.window_size, b.shift_size) for b in model.blocks_in_order()]
    assert shapes == [(4, 0), (4, 0), (4, 0), (4, 0), (2, 0)]  # grids 16, 8, 4, 4, 2
    full = zoo.create(NAME, device="meta")
    assert [(b.window_size, b.shift_size) for b in full.layers[0].blocks] == [(7, 0), (7, 3)]
    assert all(b.shift_size == 0 for b in full.layers[3].blocks)  # 7x7 grid, one window


def test_window_partition_and_reverse_are_inverse_and_windows_are_row_major():
    x = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).reshape(2, 4, 6, 3)
    windows = window_partition(x, 2)
    assert windows.shape == (2 * 2 * 3, 4, 3)
    torch.testing.assert_close(windows[1], x[0, 0:2, 2:4].reshape(4, 3))
    torch.testing.assert_close(window_reverse(windows, 2, 4, 6), x)


def test_the_shift_mask_separates_only_tokens_rolled_in_from_the_far_edge():
    mask = shifted_window_mask(8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window holds one region
    assert set(mask.unique().tolist()) == {0.0, MASKED}
    assert (mask == mask.transpose(1, 2)).all()


def test_the_relative_position_index_covers_every_offset_once_per_diagonal():
    index = relative_position_index(3, 2)
    assert index.shape == (6, 6)
    assert set(index.unique().tolist()) == set(range(5 * 3))
    assert (index.diagonal() == index[0, 0]).all()  # offset (0, 0) everywhere on the diagonal


def test_fused_and_eager_window_attention_agree_with_a_mask():
    attention = WindowSelfAttention(16, num_heads=2, window_size=(2, 2)).eval()
    x, mask = torch.randn(6, 4, 16), shifted_window_mask(4, 2, 1)[:3]
    fused = attention(x, mask)
    eager, weights = attention(x, mask, need_weights=True)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)
    assert weights.shape == (6, 2, 4, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 2, 4))


def test_patch_merging_halves_the_grid_and_doubles_the_width():
    model = zoo.create(NAME, **SMALL).eval()
    x = model.patch_embed(torch.randn(2, 3, 32, 32))
    assert x.shape == (2, 16, 16, 16)
    assert model.layers[1].downsample(x).shape == (2, 8, 8, 32)
    features = model.forward_features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 8, 8, 32)
    assert model.forward_head(features, pre_logits=True).shape == (2, 32)


@pytest.mark.parametrize(
    "args",
    [{"img_size": 200}, {"img_size": 64, "window_size": 3}, {"depths": [2, 2], "num_heads": [3, 6, 12]}],
)
def test_sizes_that_do_not_fit_are_refused_in_one_line(args):
    with pytest.raises(ArgumentError) as error:
        zoo.create(NAME, device="meta", **args)
    assert "\n" not in str(error.value)


def test_an_input_of_another_size_is_refused():
    model = zoo.create(NAME, **SMALL).eval()
    with pytest.raises(ValueError, match="this model takes 32x32"):
        model(torch.randn(1, 3, 64, 64))


def test_the_bias_tables_are_resampled_for_another_window_size(tmp_path, caplog):
    source = zoo.create(NAME, **SMALL)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    for key in [k for k in state if k.endswith("relative_position_bias_table")]:
        heads = state[key].shape[1]
        state[key] = torch.arange(1.0, heads + 1).expand_as(state[key]).contiguous()  # one value per head
    save_file(state, tmp_path / "w4.safetensors")
    with caplog.at_level("INFO", logger="zoo"):
        model = zoo.create(
            NAME, checkpoint=tmp_path / "w4.safetensors", **{**SMALL, "img_size": 64, "window_size": 8}
        )
    table = model.layers[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == (15 * 15, 2)
    torch.testing.assert_close(table.detach(), torch.tensor([1.0, 2.0]).expand(225, 2))
    assert "relative position bias resampled from 4x4 to 8x8 windows" in caplog.text


def test_attention_maps_cover_the_last_stage_grid():
    model = zoo.create(NAME, **SMALL)
    maps = zoo.attention_maps(model, torch.randn(2, 3, 32, 32))
    assert list(maps) == ["last"]
    assert maps["last"].shape == (2, 8, 8)
    assert (maps["last"] >= 0).all()
    # Each window's queries spread one unit of attention over its tokens, so the map
    # averages to one token's share of a window.
    torch.testing.assert_close(maps["last"].mean((1, 2)), torch.full((2,), 1 / 16))


def test_gradients_reach_every_parameter(single_thread):
    model = zoo.create(NAME, **SMALL)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_every_relative_position_bias_table_is_kept_from_weight_decay():
    model = zoo.create(NAME, **SMALL)
    tables = {n for n, _ in model.named_parameters() if n.endswith("attn.relative_position_bias_table")}
    assert model.no_weight_decay() == tables and len(tables) == sum(SMALL["depths"])


def test_without_pooling_the_head_gives_logits_per_token():
    model = zoo.create(NAME, **SMALL).eval()
    tokens = model.forward_features(torch.randn(2, 3, 32, 32))
    model.reset_classifier(3, global_pool="")
    assert model.forward_head(tokens).shape == (*tokens.shape[:3], 3)
