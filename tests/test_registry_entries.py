"""One contract test per registry entry: it builds, runs and says what weights it has."""

from __future__ import annotations

import pytest
import torch

import zoo

NAMES = zoo.list_models()


def sample_input(builder: str, config: dict) -> tuple[torch.Tensor, ...]:
    """A batch of two for each family, on meta: shapes only, no memory."""
    meta = {"device": "meta"}
    if builder in ("vit", "resnet"):
        size = config.get("img_size", 224)
        return (torch.empty(2, config["in_chans"], size, size, **meta),)
    if builder == "text_transformer":
        return (torch.zeros(2, 16, dtype=torch.long, **meta),)
    if builder == "speech_lstm":
        return (torch.empty(2, 50, config["in_features"], **meta),)
    raise LookupError(builder)


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_builds_on_meta_with_the_parameters_info_reports(name):
    info = zoo.model_info(name)
    model = zoo.create(name, device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == info.num_params


@pytest.mark.parametrize("name", [n for n in NAMES if zoo.model_info(n).builder != "seq2seq_lstm"])
def test_every_classifier_runs_shapes_through_on_meta(name):
    info = zoo.model_info(name)
    model = zoo.create(name, device="meta").eval()
    output = model(*sample_input(info.builder, info.config))
    assert output.shape == (2, info.config["num_classes"] or model.num_features)


@pytest.mark.parametrize("name", zoo.list_pretrained())
def test_every_weight_tag_builds_the_head_its_checkpoint_has(name):
    info = zoo.model_info(name)
    [weights] = [w for w in info.weights if w.name == name]
    assert info.config["num_classes"] == weights.num_classes
    assert weights.hf_hub_id.startswith("timm/") and weights.filename == "model.safetensors"


def test_the_catalogue_holds_the_promised_names():
    promised = {
        "vit_base_patch16_224", "vit_base_patch16_224_in21k", "vit_base_patch32_224", "vit_base_patch32_224_in21k",
        "vit_large_patch16_224", "vit_large_patch16_224_in21k", "vit_large_patch32_224_in21k",
        "vit_huge_patch14_224_in21k", "vit_tiny_patch16_224", "vit_small_patch16_224",
        "deit_base_distilled_patch16_224", "seresnet50", "ecaresnet50d",
    }  # fmt: skip
    promised |= {f"resnet{d}{a}" for d in (18, 34, 50, 101) for a in ("", "_se", "_cbam", "_eca")}
    assert promised <= set(NAMES)
