"""The public timm checkpoints in `tests/data/reference/hub/` fit the registry's models.

Each reference lists every tensor of a published file (name, shape, dtype). A sparse file
with exactly that safetensors header (and no data written) goes through the same checks as
a download: the header's own consistency, then every name and shape against the model
built on `meta` for the weight tag. Nothing may be missing and nothing left unused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import zoo
from zoo.weights.header import DTYPES
from zoo.weights.loading import load_checkpoint

REFERENCE = Path(__file__).parents[2] / "data" / "reference" / "hub"
REFERENCES = sorted(REFERENCE.glob("*.json"))
TORCH_TO_CODE = {torch_name: code for code, (torch_name, _) in DTYPES.items()}


def weight_tag_of(hf_hub_id: str) -> str:
    registry = zoo.default_registry()
    for full in registry.pretrained_names():
        if registry.resolve(full).weights.hf_hub_id == hf_hub_id:
            return full
    raise AssertionError(f"no weight tag publishes {hf_hub_id}")


def sparse_checkpoint(path: Path, state_dict: list) -> Path:
    """A safetensors file with the reference's header and a hole where the data would be."""
    header, offset = {}, 0
    for name, shape, dtype in state_dict:
        code = TORCH_TO_CODE[dtype]
        size = DTYPES[code][1]
        for n in shape:
            size *= n
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(len(text).to_bytes(8, "little") + text)
        file.truncate(8 + len(text) + offset)
    return path


@pytest.mark.parametrize("reference", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_published_checkpoint_loads_with_nothing_missing_or_unused(reference, tmp_path):
    facts = json.loads(reference.read_text())
    name = weight_tag_of(facts["hf_hub_id"])
    path = sparse_checkpoint(tmp_path / "model.safetensors", facts["state_dict"])
    model = zoo.create(name, device="meta")
    report = load_checkpoint(model, path, device=torch.device("meta"))
    assert report.messages == () and report.fresh == ()  # strict: no adaptation was needed
    assert set(model.state_dict()) == {tensor[0] for tensor in facts["state_dict"]}


@pytest.mark.parametrize("reference", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_models_name_their_head_and_first_conv_as_the_checkpoint_does(reference):
    facts = json.loads(reference.read_text())
    model = zoo.create(weight_tag_of(facts["hf_hub_id"]), device="meta")
    cfg = facts["pretrained_cfg"]
    assert model.first_conv == cfg["first_conv"]
    classifier = cfg["classifier"] if isinstance(cfg["classifier"], list) else [cfg["classifier"]]
    assert list(model.classifier_names) == classifier
