"""How each operator's cost grows with the input: a log-log chart drawn with PIL.

    >>> axis, reports = zoo.tasks.flops.growth("vit_base_patch16_224")
    >>> growth_chart(axis, reports).save("growth.png")

On log-log axes a cost that grows as size^k is a straight line of slope k: with the image
side S, a ViT's linear layers grow as S^2 (the tokens) and its attention terms as S^4 (the
tokens squared); with the sequence length L, as L and L^2. Each line is labelled with the
slope fitted to its points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .flops import FlopReport, report_size

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["exponent", "growth_chart", "series"]

WIDTH, HEIGHT = 1000, 600
LEFT, RIGHT, TOP, BOTTOM = 80, 330, 56, 64  # margins around the plot area
COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
TOTAL = "total"


def series(reports: Sequence[FlopReport]) -> dict[str, list[int]]:
    """FLOPs of each operator row at each report's size (0 where it was not counted), and
    the total of them all (`"total"`), in the order the rows first appear."""
    labels = list(dict.fromkeys(row.label for report in reports for row in report.operators))
    values = {label: [] for label in labels}
    for report in reports:
        flops = {row.label: row.flops for row in report.operators}
        for label in labels:
            values[label].append(flops.get(label, 0))
    values[TOTAL] = [sum(row.flops for row in report.operators) for report in reports]
    return values


def exponent(sizes: Sequence[int], values: Sequence[int]) -> float | None:
    """The k of `value ~ size^k`, fitted by least squares in log-log (None without two
    positive points)."""
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def growth_chart(axis: str, reports: Sequence[FlopReport]) -> Image.Image:
    """The chart of `zoo.tasks.flops.growth(...)`'s reports: one line per operator row."""
    from PIL import Image, ImageDraw, ImageFont

    sizes = [report_size(report, axis) for report in reports]
    lines = series(reports)
    positive = [v for values in lines.values() for v in values if v > 0]
    low, high = 10 ** math.floor(math.log10(min(positive))), 10 ** math.ceil(math.log10(max(positive)))
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=13)
    chart = _Chart(min(sizes), max(sizes), low, high)

    for decade in range(round(math.log10(low)), round(math.log10(high)) + 1):
        y = chart.y(10.0**decade)
        draw.line([(LEFT, y), (WIDTH - RIGHT, y)], fill=(225, 225, 225))
        draw.text((LEFT - 8, y), _si(10**decade), fill="black", font=small, anchor="rm")
    for size in sizes:
        x = chart.x(size)
        draw.line([(x, TOP), (x, HEIGHT - BOTTOM)], fill=(235, 235, 235))
        draw.text((x, HEIGHT - BOTTOM + 8), str(size), fill="black", font=small, anchor="mt")
    draw.rectangle([(LEFT, TOP), (WIDTH - RIGHT, HEIGHT - BOTTOM)], outline="black")

    symbol = "S" if axis == "image size" else "L"
    legend_y = TOP
    all_values = list(lines.values())
    for index, (label, values) in enumerate(lines.items()):
        colour = (0, 0, 0) if label == TOTAL else COLOURS[index % len(COLOURS)]
        points = [(chart.x(s), chart.y(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
        hidden_by = all_values[index + 1 :].count(values)  # equal lines drawn later: show a rim
        if len(points) > 1:
            draw.line(points, fill=colour, width=(3 if label == TOTAL else 2) + 4 * hidden_by, joint="curve")
        for x, y in points:
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=colour)
        k = exponent(sizes, values)
        text = f"{label}  ~ {symbol}^{k:.1f}" if k is not None else label
        draw.line(
            [(WIDTH - RIGHT + 16, legend_y + 8), (WIDTH - RIGHT + 40, legend_y + 8)], fill=colour, width=3
        )
        draw.text((WIDTH - RIGHT + 48, legend_y + 8), text, fill="black", font=small, anchor="lm")
        legend_y += 22

    name, batch = reports[0].name, reports[0].batch
    unit = "pixels" if axis == "image size" else "steps"
    draw.text(
        (LEFT, 10), f"{name}: FLOPs of a forward pass by operator, batch {batch}", fill="black", font=font
    )
    draw.text(((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 24), f"{axis} {symbol} ({unit}, log scale)", fill="black",
              font=font, anchor="mm")  # fmt: skip
    draw.text((12, TOP - 20), "FLOPs (2 per multiply-add; log scale)", fill="black", font=small)
    return image


class _Chart:
    """Data to pixels, both axes logarithmic."""

    def __init__(self, x_low: float, x_high: float, y_low: float, y_high: float) -> None:
        self.x_low, self.x_span = math.log(x_low), math.log(x_high) - math.log(x_low) or 1.0
        self.y_low, self.y_span = math.log(y_low), math.log(y_high) - math.log(y_low) or 1.0

    def x(self, value: float) -> float:
        inner = WIDTH - RIGHT - LEFT - 40
        return LEFT + 20 + inner * (math.log(value) - self.x_low) / self.x_span

    def y(self, value: float) -> float:
        inner = HEIGHT - BOTTOM - TOP
        return HEIGHT - BOTTOM - inner * (math.log(value) - self.y_low) / self.y_span


def _si(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value:g}"
