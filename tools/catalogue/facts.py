"""The catalogue facts: one row per published timm weight, and the checkpoint layouts."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_FACTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "catalogue"
BATCHNORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def facts_dir() -> Path:
    """`$ZOO_CATALOGUE_FACTS`, else `../shared/reference/catalogue` beside the repository."""
    return Path(os.environ.get("ZOO_CATALOGUE_FACTS", DEFAULT_FACTS))


class Unsupported(Exception):
    """An architecture (or weight) the zoo does not build yet; the message says why."""


@dataclass
class Architecture:
    """How the zoo builds one timm architecture: a builder and its arguments.

    `args` leaves out the head's width: each weight fixes it (`num_classes`). `tag_args`, when
    given, returns the further arguments one weight fixes (a CLIP tower's projection width, the
    activation a checkpoint was trained with).
    """

    builder: str
    args: dict[str, Any]
    description: str | None = None
    paper: str | None = None
    adapter: str | None = None
    tag_args: Any = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Weight:
    """One published weight: its row of `tags.jsonl`."""

    row: dict[str, Any]

    @property
    def tag(self) -> str:
        return self.row["tag"].split(".", 1)[1]

    @property
    def arch(self) -> str:
        return self.row["arch"]

    @property
    def module(self) -> str:
        return self.row["module"]

    @property
    def model_args(self) -> dict[str, Any]:
        return self.row["model_args"]

    @property
    def cfg(self) -> dict[str, Any]:
        return self.row["pretrained_cfg"]

    @property
    def num_classes(self) -> int:
        return self.cfg.get("num_classes", 1000)

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        return layout(self.row["layout"])


@cache
def rows() -> list[Weight]:
    text = (facts_dir() / "tags.jsonl").read_text()
    return [Weight(json.loads(line)) for line in text.splitlines() if line.strip()]


def by_architecture(modules: tuple[str, ...] | None = None) -> dict[str, list[Weight]]:
    """Weights grouped by architecture, in the catalogue's order (the first tag is timm's default)."""
    grouped: dict[str, list[Weight]] = defaultdict(list)
    for weight in rows():
        if modules is None or weight.module in modules:
            grouped[weight.arch].append(weight)
    return dict(grouped)


@cache
def layout(filename: str) -> list[tuple[str, tuple[int, ...]]]:
    data = json.loads((facts_dir() / "layouts" / filename).read_text())
    return [(name, tuple(shape)) for name, shape, *_ in data["state_dict"]]


def layout_differences(expected: list[tuple[str, tuple[int, ...]]], state: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint layout and a model's state dict, most telling first."""
    built = {name: tuple(tensor.shape) for name, tensor in state.items()}
    wanted = dict(expected)
    missing = [name for name in wanted if name not in built]
    unexpected = [name for name in built if name not in wanted]
    shapes = [
        f"{name}: checkpoint {list(wanted[name])}, model {list(built[name])}"
        for name in wanted
        if name in built and wanted[name] != built[name]
    ]
    lines = []
    if missing:
        lines.append(f"{len(missing)} missing from the model, e.g. {', '.join(missing[:6])}")
    if unexpected:
        lines.append(f"{len(unexpected)} not in the checkpoint, e.g. {', '.join(unexpected[:6])}")
    if shapes:
        lines.append(f"{len(shapes)} shapes differ, e.g. {'; '.join(shapes[:4])}")
    return lines
