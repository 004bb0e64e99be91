"""Labelled heatmaps, drawn with PIL: attention weights between two sequences, and masks.

A heatmap is one or more *panels* of the same shape (one per attention head, or one per
sequence of a batch), each a grid of square cells, rows labelled on the left and columns
above, read bottom to top as in the figures of Bahdanau et al. and The Annotated
Transformer. Weights are coloured on the ramp of `zoo.tasks.maps.colorize`, from 0 (dark
violet) to the largest value drawn (red), shown on a colour bar at the right; masks in two
colours, kept and masked. Where cells are smaller than a line of text, every n-th label is
drawn.

`Heatmap.grids` says where each panel's cells lie, so that a cell's pixels can be found:
`heatmap.grids[0].centre(row, column)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArgumentError
from .maps import colorize, save_picture

if TYPE_CHECKING:
    import torch
    from PIL import Image, ImageFont

__all__ = [
    "BACKGROUND",
    "KEPT",
    "MASKED",
    "TEXT",
    "Grid",
    "Heatmap",
    "attention_heatmap",
    "cell_size",
    "font",
    "framed",
    "mask_heatmap",
    "ramp_legend",
]

BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
KEPT = (245, 210, 50)
"""The colour of a position a mask keeps (the ramp's yellow)."""
MASKED = (40, 16, 70)
"""The colour of a masked position (the ramp's dark violet: no weight)."""

FONT_SIZE = 13
MAX_LABEL = 14  # characters; longer labels are cut with an ellipsis
PAD = 6  # pixels between labels, cells and panels
GRID_SPAN = 480  # pixels the longer side of a panel's grid aims at


@lru_cache(maxsize=4)
def font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at `size` pixels (its fixed bitmap font before Pillow 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow 10.0: no size
        return ImageFont.load_default()


@dataclass(frozen=True)
class Grid:
    """Where one panel's cells lie in the picture."""

    box: tuple[int, int, int, int]
    """(left, top, right, bottom) of the cells, in pixels (right and bottom excluded)."""
    rows: int
    columns: int

    @property
    def cell(self) -> tuple[int, int]:
        """(width, height) of a cell."""
        left, top, right, bottom = self.box
        return (right - left) // self.columns, (bottom - top) // self.rows

    def centre(self, row: int, column: int) -> tuple[int, int]:
        """The pixel at the centre of cell (row, column)."""
        width, height = self.cell
        return self.box[0] + column * width + width // 2, self.box[1] + row * height + height // 2


@dataclass(frozen=True)
class Heatmap:
    """A drawn heatmap and where its panels lie."""

    image: Image.Image
    grids: tuple[Grid, ...]

    def save(self, path: str | Path) -> None:
        """Write the picture in the format its suffix names, whole or not at all."""
        save_picture(self.image, path)


def cell_size(rows: int, columns: int) -> tuple[int, int]:
    """(width, height) of the cells of a rows x columns panel: square, from 32 pixels down to
    2 so that the longer side stays near `GRID_SPAN`; a single row is 32 pixels high."""
    width = max(2, min(32, GRID_SPAN // max(columns, 1)))
    height = max(2, min(32, GRID_SPAN // max(rows, 1)))
    if rows == 1:
        return width, 32
    side = min(width, height)
    return side, side


def attention_heatmap(
    values: torch.Tensor,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    panel_titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Heatmap:
    """Draw weights (Q, K), or panels of them (P, Q, K), with labelled rows and columns.

    Colours run from 0 to the largest value drawn (all panels share the scale); negative
    values are drawn as 0.
    """
    import torch

    panels = _as_panels(values.detach().float().cpu())
    if not bool(torch.isfinite(panels).all()):
        raise ArgumentError("the weights to draw hold NaN or infinite values")
    high = float(panels.max()) if panels.numel() and float(panels.max()) > 0 else 1.0
    colours = colorize(panels.clamp_min(0) / high)
    rows = panels.shape[1]
    legend = ramp_legend(high, height=max(48, min(160, rows * cell_size(rows, panels.shape[2])[1])))
    return _draw(colours.round().to(torch.uint8), row_labels, column_labels, panel_titles, title, legend)


def mask_heatmap(
    mask: torch.Tensor,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    panel_titles: Sequence[str] | None = None,
    title: str | None = None,
) -> Heatmap:
    """Draw a boolean mask (Q, K), or panels of them (P, Q, K): True (kept) in `KEPT`,
    False (masked) in `MASKED`."""
    import torch

    panels = _as_panels(mask.detach().cpu().bool())
    colours = torch.where(panels[..., None], torch.tensor(KEPT), torch.tensor(MASKED)).to(torch.uint8)
    legend = [(_swatch(KEPT), "keep"), (_swatch(MASKED), "masked")]
    return _draw(colours, row_labels, column_labels, panel_titles, title, legend)


def _as_panels(values: torch.Tensor) -> torch.Tensor:
    if values.ndim == 2:
        return values[None]
    if values.ndim != 3:
        raise ValueError(f"expected (Q, K) or (panels, Q, K), got shape {tuple(values.shape)}")
    return values


# ---------------------------------------------------------------------- drawing


def _draw(
    colours: torch.Tensor,  # (P, Q, K, 3) uint8
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    panel_titles: Sequence[str] | None,
    title: str | None,
    legend: list[tuple[Image.Image, str]],
) -> Heatmap:
    from PIL import Image, ImageDraw

    count, rows, columns = colours.shape[:3]
    if len(row_labels) != rows or len(column_labels) != columns:
        raise ValueError(
            f"{len(row_labels)} row and {len(column_labels)} column labels for {rows}x{columns} cells"
        )
    if panel_titles is not None and len(panel_titles) != count:
        raise ValueError(f"{len(panel_titles)} panel titles for {count} panels")
    cell_w, cell_h = cell_size(rows, columns)
    text = font()
    line = _line_height(text)

    row_strip = _row_labels(_thinned(row_labels, cell_h, line), cell_h, text)
    column_strip = _column_labels(_thinned(column_labels, cell_w, line), cell_w, text)
    grid_w, grid_h = columns * cell_w, rows * cell_h
    caption_h = line + PAD if panel_titles is not None else 0
    grid_left = row_strip.width + (PAD if row_strip.width else 0)
    grid_top = caption_h + column_strip.height + (PAD if column_strip.height else 0)
    panel_w = max([grid_left + grid_w, *(_text_width(text, t) for t in panel_titles or ())])
    panel_h = grid_top + grid_h

    across = math.ceil(math.sqrt(count))
    down = math.ceil(count / across)
    body = Image.new(
        "RGB", (across * panel_w + (across - 1) * 2 * PAD, down * panel_h + (down - 1) * 2 * PAD), BACKGROUND
    )
    draw = ImageDraw.Draw(body)
    grids = []
    for index in range(count):
        x0 = (index % across) * (panel_w + 2 * PAD)
        y0 = (index // across) * (panel_h + 2 * PAD)
        if panel_titles is not None:
            draw.text((x0 + grid_left, y0), panel_titles[index], fill=TEXT, font=text)
        _paste_text(body, row_strip, (x0, y0 + grid_top))
        _paste_text(body, column_strip, (x0 + grid_left, y0 + caption_h))
        cells = Image.fromarray(colours[index].numpy(), "RGB").resize(
            (grid_w, grid_h), Image.Resampling.NEAREST
        )
        body.paste(cells, (x0 + grid_left, y0 + grid_top))
        grids.append((x0 + grid_left, y0 + grid_top, x0 + grid_left + grid_w, y0 + grid_top + grid_h))
    image, (left, top) = framed(body, title=title, legend=legend)
    grids = [Grid((x0 + left, y0 + top, x1 + left, y1 + top), rows, columns) for x0, y0, x1, y1 in grids]
    return Heatmap(image, tuple(grids))


def framed(
    body: Image.Image,
    *,
    title: str | None,
    legend: list[tuple[Image.Image, str]],
    text_size: int = FONT_SIZE,
) -> tuple[Image.Image, tuple[int, int]]:
    """`body` with `title` above it and `legend` (swatches or a colour bar, see `ramp_legend`)
    at its right, on a background wide and tall enough for every text as the font measures it.

    Returns:
        The picture, and where `body`'s top-left corner lies in it.
    """
    from PIL import Image, ImageDraw

    text = font(text_size)
    line = _line_height(text)
    legend_image = _legend(legend, text, line)
    title_h = line + PAD if title else 0
    width = max(
        PAD + body.width + 2 * PAD + legend_image.width + PAD, PAD + _text_width(text, title or "") + PAD
    )
    height = PAD + title_h + max(body.height, legend_image.height) + PAD
    image = Image.new("RGB", (width, height), BACKGROUND)
    if title:
        ImageDraw.Draw(image).text((PAD, PAD), title, fill=TEXT, font=text)
    corner = (PAD, PAD + title_h)
    image.paste(body, corner)
    image.paste(legend_image, (PAD + body.width + 2 * PAD, PAD + title_h))
    return image, corner


def _thinned(labels: Sequence[str], cell: int, line: int) -> list[str]:
    """Every n-th label, the others blank, so that labels do not overlap."""
    step = max(1, math.ceil(line / cell))
    return [_short(label) if index % step == 0 else "" for index, label in enumerate(labels)]


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _line_height(text: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    return text.getbbox("Ag[|")[3] + 2


def _text_width(text: ImageFont.ImageFont | ImageFont.FreeTypeFont, label: str) -> int:
    return math.ceil(text.getlength(label)) if label else 0


def _label_strip(labels: Sequence[str], cell: int, text, *, right: bool) -> Image.Image:
    """Labels one per cell height, aligned right or left, as a mask (white text on black)."""
    from PIL import Image, ImageDraw

    width = max((_text_width(text, label) for label in labels), default=0)
    strip = Image.new("L", (width, len(labels) * cell), 0)
    draw = ImageDraw.Draw(strip)
    line = _line_height(text)
    for index, label in enumerate(labels):
        if label:
            x = width - _text_width(text, label) if right else 0
            draw.text((x, index * cell + (cell - line) // 2), label, fill=255, font=text)
    return strip


def _row_labels(labels: Sequence[str], cell: int, text) -> Image.Image:
    """The row labels, right-aligned against the grid."""
    return _label_strip(labels, cell, text, right=True)


def _column_labels(labels: Sequence[str], cell: int, text) -> Image.Image:
    """The column labels, rotated to read bottom to top, each starting at the grid."""
    return _label_strip(labels, cell, text, right=False).rotate(90, expand=True)


def _paste_text(image: Image.Image, mask: Image.Image, where: tuple[int, int]) -> None:
    if mask.width and mask.height:
        image.paste(TEXT, (*where, where[0] + mask.width, where[1] + mask.height), mask)


def _swatch(colour: tuple[int, int, int]) -> Image.Image:
    from PIL import Image

    return Image.new("RGB", (14, 14), colour)


def ramp_legend(
    high: float, *, low: float = 0.0, height: int, width: int = 14
) -> list[tuple[Image.Image, str]]:
    """A colour bar of the ramp of `colorize`, from `high` (top) to `low` (bottom), labelled
    at both ends: the legend `framed` draws."""
    import torch
    from PIL import Image

    steps = torch.linspace(1, 0, height)[:, None].expand(height, width)
    bar = Image.fromarray(colorize(steps).round().to(torch.uint8).numpy(), "RGB")
    return [(bar, f"{high:.3g}\n\n{low:.3g}")]


def _legend(entries: list[tuple[Image.Image, str]], text, line: int) -> Image.Image:
    """Swatches or a colour bar, each with its text beside it (a bar's text: top ... bottom)."""
    from PIL import Image, ImageDraw

    widths = [
        swatch.width + PAD + max(_text_width(text, part) for part in label.split("\n"))
        for swatch, label in entries
    ]
    heights = [max(swatch.height, line) for swatch, _ in entries]
    legend = Image.new("RGB", (max(widths), sum(heights) + PAD * (len(entries) - 1)), BACKGROUND)
    draw = ImageDraw.Draw(legend)
    y = 0
    for (swatch, label), height in zip(entries, heights, strict=True):
        legend.paste(swatch, (0, y))
        parts = label.split("\n")
        if len(parts) == 1:
            draw.text((swatch.width + PAD, y + (swatch.height - line) // 2), label, fill=TEXT, font=text)
        else:  # top and bottom of a colour bar
            draw.text((swatch.width + PAD, y), parts[0], fill=TEXT, font=text)
            draw.text((swatch.width + PAD, y + swatch.height - line), parts[-1], fill=TEXT, font=text)
        y += height + PAD
    return legend
