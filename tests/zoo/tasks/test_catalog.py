"""What the zoo holds: names, published weights and model descriptions."""

from __future__ import annotations

import json

import pytest

import zoo


def test_list_models_and_pretrained_use_shell_patterns():
    assert zoo.list_models("resnet50_*") == [
        "resnet50_cbam",
        "resnet50_clip",
        "resnet50_clip_gap",
        "resnet50_eca",
        "resnet50_gn",
        "resnet50_se",
    ]
    assert "vit_base_patch16_224.augreg2_in21k_ft_in1k" in zoo.list_pretrained("vit_base*")
    assert zoo.list_pretrained("resnet18_cbam") == []


def test_list_pretrained_filters_and_sorts_as_zoo_list_does():
    best = zoo.list_pretrained(sort="top1", min_top1=85)
    infos = {name: zoo.model_info(name).weights for name in best}
    top1 = [next(w for w in infos[name] if w.name == name).imagenet.top1 for name in best]
    assert best and top1 == sorted(top1, reverse=True) and min(top1) >= 85
    assert set(zoo.list_pretrained(family="resnet")) == {
        name
        for name in zoo.list_pretrained()
        if zoo.default_registry().resolve(name).entry.builder == "resnet"
    }


@pytest.mark.parametrize(
    ("query", "argument"),
    [({"sort": "accuracy"}, "sort='accuracy'"), ({"min_top1": float("nan")}, "min_top1=nan")],
)
def test_list_pretrained_refuses_a_sort_key_or_threshold_it_cannot_use(query, argument):
    with pytest.raises(zoo.errors.ArgumentError, match=argument):
        zoo.list_pretrained(**query)


def test_model_info_weights_carry_what_the_registry_states_of_them():
    registry = zoo.registry.default_registry()
    for weights in zoo.model_info("vit_base_patch16_224_in21k").weights:
        stated = registry.resolve(weights.name).weights
        assert (weights.num_params, weights.gmacs) == (stated.num_params, stated.gmacs)
        assert weights.imagenet == getattr(stated, "imagenet", None)
    dumped = zoo.model_info("resnet50").model_dump(mode="json")["weights"][0]
    assert set(dumped["imagenet"]) == {"top1", "top5", "img_size", "crop_pct", "interpolation"}


def test_model_info_describes_architecture_weights_and_origin():
    info = zoo.model_info("vit_base_patch16_224_in21k")
    assert (info.builder, info.plugin, info.attention, info.tag) == ("vit", "builtin", "mhsa", None)
    assert info.config["embed_dim"] == 768 and info.config["num_classes"] == 21843
    assert info.num_params == 102_595_923
    assert [w.tag for w in info.weights] == ["augreg_in21k", "orig_in21k"]
    assert info.default_tag == "augreg_in21k" and info.weights[0].default
    assert info.weights[1].hf_hub_id == "timm/vit_base_patch16_224.orig_in21k"
    assert info.source.endswith("earlier_names.yaml:" + info.source.rsplit(":", 1)[1])


def test_model_info_of_a_tag_counts_that_tags_head():
    assert zoo.model_info("vit_base_patch16_224_in21k.orig_in21k").num_params == 85_798_656


def test_model_info_dumps_to_json():
    dumped = json.loads(json.dumps(zoo.model_info("seresnet50").model_dump(mode="json")))
    assert dumped["config"]["attn"] == {"name": "se", "options": {"rd_divisor": 8}}
    assert dumped["weights"][0]["preprocessing"]["crop_pct"] == 0.95


def test_a_name_without_weights_says_so():
    info = zoo.model_info("resnet18_cbam")
    assert info.weights == [] and info.default_tag is None


def test_model_info_counts_multiply_adds_at_the_weights_input_size():
    info = zoo.model_info("resnet50.a1_in1k")  # trained at 224, tested at 288: counted at 224
    assert info.macs_input_size == [3, 224, 224]
    assert info.macs == pytest.approx(4.1e9, rel=0.01)  # what the paper and timm quote
    assert zoo.model_info("vit_base_patch16_224").macs == pytest.approx(17.6e9, rel=0.01)
    sequence = zoo.model_info("text_transformer_small")
    assert sequence.macs > 0 and sequence.macs_input_size == [16]  # the family's example input
