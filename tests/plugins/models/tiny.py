"""The tiny reference cases (`tests/data/reference/tiny/`): a timm checkpoint of a shrunken
architecture, with its input and timm's outputs."""

from __future__ import annotations

import json
from collections.abc import Iterable

import torch
from safetensors.torch import load_file

import zoo

from ...conftest import REFERENCE


def case_args(case: str, keys: Iterable[str]) -> dict:
    """The builder arguments of a case, from its description."""
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return {key: description[key] for key in keys}


def assert_reproduces_timm(name: str, case: str, keys: Iterable[str]) -> None:
    """`name` built at the case's sizes with the case's checkpoint gives timm's features
    (`forward_features`) and outputs within 1e-5."""
    checkpoint = REFERENCE / "tiny" / f"{case}.safetensors"
    model = zoo.create(name, checkpoint=checkpoint, **case_args(case, keys)).eval()
    io = load_file(REFERENCE / "tiny" / f"{case}.io.safetensors")
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model.forward_head(features)
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)
