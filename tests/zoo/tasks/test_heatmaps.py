"""Labelled heatmaps: cells coloured by value, rows and columns labelled, panels, masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import ArgumentError
from zoo.tasks.heatmaps import (
    KEPT,
    MASKED,
    TEXT,
    attention_heatmap,
    cell_size,
    mask_heatmap,
)
from zoo.tasks.maps import colorize


def pixels(heatmap) -> np.ndarray:
    return np.asarray(heatmap.image)


def text_mask(region: np.ndarray) -> np.ndarray:
    """Where a region holds text: pixels darker than mid grey (text is drawn black on white)."""
    return region.max(axis=-1) < 128


def runs(flags: np.ndarray) -> int:
    """How many separate runs of True a 1-D array holds."""
    flags = flags.astype(int)
    return int(flags[0] + np.count_nonzero(np.diff(flags) == 1))


class TestCells:
    def test_each_cell_has_the_colour_of_its_value_on_a_scale_from_0_to_the_largest(self):
        values = torch.tensor([[0.0, 0.1, 0.2, 0.7], [0.25, 0.25, 0.25, 0.25], [0.5, 0.0, 0.5, 0.0]])
        heatmap = attention_heatmap(values, ["a", "b", "c"], ["w", "x", "y", "z"])
        [grid] = heatmap.grids
        width, height = cell_size(3, 4)
        left, top, right, bottom = grid.box
        assert (right - left, bottom - top) == (4 * width, 3 * height)
        expected = colorize(values / 0.7).round().to(torch.uint8).numpy()
        image = pixels(heatmap)
        for row in range(3):
            for column in range(4):
                x, y = grid.centre(row, column)
                assert tuple(image[y, x]) == tuple(expected[row, column])
        assert tuple(image[grid.centre(0, 3)[::-1]]) == tuple(
            int(c) for c in colorize(torch.tensor(1.0)).round()
        )

    def test_cells_are_square_and_shrink_for_long_sequences(self):
        assert cell_size(6, 6) == (32, 32)
        assert cell_size(200, 120) == (2, 2)
        width, height = cell_size(100, 100)
        assert width == height and 100 * width <= 480
        assert cell_size(1, 300) == (2, 32)  # one query over many frames: a strip

    def test_panels_share_one_scale_and_do_not_overlap(self):
        values = torch.stack([torch.eye(3) * 0.5, torch.full((3, 3), 1 / 3)])
        heatmap = attention_heatmap(values, list("abc"), list("xyz"), panel_titles=["head 0", "head 1"])
        first, second = heatmap.grids
        assert first.box[2] <= second.box[0]
        image = pixels(heatmap)
        top = tuple(colorize(torch.tensor(1.0)).round().to(torch.uint8).tolist())
        assert tuple(image[first.centre(1, 1)[::-1]]) == top
        third = tuple(colorize(torch.tensor((1 / 3) / 0.5)).round().to(torch.uint8).tolist())
        assert tuple(image[second.centre(0, 2)[::-1]]) == third

    def test_shapes_and_label_counts_must_agree(self):
        with pytest.raises(ValueError, match="2 row and 3 column labels for 3x3 cells"):
            attention_heatmap(torch.zeros(3, 3), ["a", "b"], ["x", "y", "z"])


class TestLabels:
    def test_each_row_label_is_drawn_left_of_its_row_and_each_column_label_above_its_column(self):
        heatmap = attention_heatmap(torch.rand(3, 4), ["the", "", "dog"], ["un", "deux", "trois", "quatre"])
        [grid] = heatmap.grids
        image = pixels(heatmap)
        left, top, _, bottom = grid.box
        width, height = grid.cell
        for row, labelled in enumerate([True, False, True]):
            band = image[top + row * height : top + (row + 1) * height, :left]
            assert text_mask(band).any() == labelled
        for column in range(4):
            band = image[:top, left + column * width : left + (column + 1) * width]
            ys = np.nonzero(text_mask(band).any(axis=1))[0]
            assert len(ys), f"column {column} has no label"
            assert ys.max() < top  # above the grid, ending next to it
        grey = image[top:bottom, :left].reshape(-1, 3)
        assert (grey.max(axis=1) == grey.min(axis=1)).all()  # text in black and grey on white

    def test_column_labels_read_bottom_to_top(self):
        heatmap = attention_heatmap(torch.rand(2, 2), ["a", "b"], ["a_long_token", "x"])
        [grid] = heatmap.grids
        width, _ = grid.cell
        band = text_mask(pixels(heatmap)[: grid.box[1], grid.box[0] : grid.box[0] + width])
        ys, xs = np.nonzero(band)
        assert ys.max() - ys.min() > 3 * (xs.max() - xs.min())  # a long label stands upright

    def test_labels_are_black_text(self):
        heatmap = attention_heatmap(torch.rand(2, 2), ["word", "b"], ["x", "y"])
        [grid] = heatmap.grids
        region = pixels(heatmap)[grid.box[1] : grid.box[3], : grid.box[0]]
        assert (region.reshape(-1, 3) == TEXT).all(axis=1).any()

    def test_where_cells_are_smaller_than_a_line_every_nth_label_is_drawn(self):
        columns = [f"t{i}" for i in range(120)]
        heatmap = attention_heatmap(torch.rand(1, 120), ["pool"], columns)
        [grid] = heatmap.grids
        strip = text_mask(pixels(heatmap)[: grid.box[1], grid.box[0] : grid.box[2]])
        width, _ = grid.cell
        step = -(-15 // width)  # a line of the default font is about 15 pixels
        labelled = runs(strip.any(axis=0))
        assert 120 // (2 * step) <= labelled <= 120 // step + 1 < 120

    def test_a_title_is_drawn_above_everything(self):
        plain = attention_heatmap(torch.rand(2, 2), ["a", "b"], ["x", "y"])
        titled = attention_heatmap(torch.rand(2, 2), ["a", "b"], ["x", "y"], title="layer 2, heads averaged")
        assert titled.grids[0].box[1] > plain.grids[0].box[1]
        assert text_mask(pixels(titled)[: titled.grids[0].box[1] - plain.grids[0].box[1]]).any()


class TestMasks:
    def test_kept_and_masked_cells_have_their_colours(self):
        mask = torch.ones(4, 4, dtype=torch.bool).tril()
        heatmap = mask_heatmap(mask, list("0123"), list("0123"))
        [grid] = heatmap.grids
        image = pixels(heatmap)
        for row in range(4):
            for column in range(4):
                colour = KEPT if column <= row else MASKED
                assert tuple(image[grid.centre(row, column)[::-1]]) == colour

    def test_a_legend_names_both_colours(self):
        heatmap = mask_heatmap(torch.ones(2, 2, dtype=torch.bool), ["a", "b"], ["x", "y"])
        image = pixels(heatmap)
        right = image[:, heatmap.grids[0].box[2] :]
        colours = {tuple(c) for c in right.reshape(-1, 3)}
        assert KEPT in colours and MASKED in colours
        assert text_mask(right).any()


def test_save_writes_the_picture_in_the_format_of_the_suffix(tmp_path):
    from PIL import Image

    heatmap = attention_heatmap(torch.rand(2, 3), ["a", "b"], ["x", "y", "z"])
    heatmap.save(tmp_path / "map.png")
    with Image.open(tmp_path / "map.png") as written:
        assert written.format == "PNG" and written.size == heatmap.image.size
        assert np.array_equal(np.asarray(written.convert("RGB")), pixels(heatmap))


def test_a_framed_picture_widens_for_a_long_title_and_keeps_its_body_whole():
    from PIL import Image

    from zoo.tasks.heatmaps import font, framed, ramp_legend

    body = Image.new("RGB", (20, 60), (1, 2, 3))
    title = "a title far wider than the twenty pixels of the body it stands above"
    picture, (left, top) = framed(body, title=title, legend=ramp_legend(0.5, low=0.1, height=48))
    assert picture.width >= font().getlength(title) + left  # measured with the font, not clipped
    assert picture.crop((left, top, left + 20, top + 60)).getcolors() == [(1200, (1, 2, 3))]


def test_weights_that_are_not_finite_are_refused_not_drawn():
    with pytest.raises(ArgumentError, match="NaN or infinite"):
        attention_heatmap(torch.tensor([[0.5, float("nan")]]), ["q"], ["a", "b"])
