"""byob (BoTNet): timm's numerics and names, the fixed map sizes of self-attention, its maps."""

from __future__ import annotations

import json

import pytest
import torch

from zoo.registry.attention import ATTENTION_KINDS, check_attention_class, probe_attention_class
from zoo.weights.features import FeatureExtractor
from zoo_plugins.attention.bot import BottleneckAttention, BottleneckSelfAttention, RelPosEmbedding
from zoo_plugins.layers import reconfigured
from zoo_plugins.models.byob import ByobConfig, SelfAttnBlock, build, family

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm, case_args

CASE = "botnet_tiny_cls10"
SIZES = ("img_size", "stem_type", "stem_chs", "num_classes", "blocks")


def tiny(**changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(ByobConfig(**{**case_args(CASE, SIZES), **changes})).eval()


def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features():
    assert_reproduces_timm("botnet26t_256", CASE, SIZES)


def test_botnet26t_has_the_names_shapes_and_dtypes_of_timm_s_checkpoint():
    reference = json.loads((REFERENCE / "hub" / "timm__botnet26t_256.c1_in1k.json").read_text())
    model = build(ByobConfig(), device="meta")  # the defaults are BoTNet-26T at 256
    tensors = [
        [name, list(t.shape), str(t.dtype).removeprefix("torch.")] for name, t in model.state_dict().items()
    ]
    assert tensors == reference["state_dict"]
    assert model.first_conv == reference["pretrained_cfg"]["first_conv"]
    assert model.classifier_names == (reference["pretrained_cfg"]["classifier"],)


def test_each_self_attention_is_built_for_its_block_s_input_size():
    model = build(ByobConfig(), device="meta")
    sizes = {
        name: module.feat_size for name, module in model.named_modules() if isinstance(module, SelfAttnBlock)
    }
    # the third stage is a bottleneck, then self-attention on the map the strided bottleneck left
    assert sizes == {"stages.2.1": (16, 16), "stages.3.0": (16, 16), "stages.3.1": (8, 8)}
    assert model.stages[3][0].self_attn.pos_embed.height_rel.shape == (31, 128)
    assert isinstance(model.stages[3][0].self_attn.pool, torch.nn.AvgPool2d)


def test_an_image_of_another_size_is_refused_in_one_line():
    model = tiny()
    with pytest.raises(ValueError, match="takes 64x64 images \\(img_size\\), not 96x96") as error:
        model(torch.randn(1, 3, 96, 96))
    assert "\n" not in str(error.value)


def test_an_img_size_the_network_s_stride_does_not_divide_is_refused_in_one_line():
    with pytest.raises(ValueError, match="img_size 250x250 must be a multiple of 32") as error:
        reconfigured(ByobConfig(), img_size=250)
    assert "\n" not in str(error.value)
    assert reconfigured(ByobConfig(), img_size=224).img_size == 224  # any multiple of 32 builds


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([{"type": "bottle", "d": 1, "c": 64, "num_heads": 2}], "num_heads apply to self_attn blocks"),
        (
            [[{"type": "bottle", "d": 1, "c": 64, "s": 2}, {"type": "self_attn", "d": 1, "c": 64, "s": 1}]],
            "share its stride",
        ),
        ([{"type": "self_attn", "d": 1, "c": 64, "br": 0.25, "num_heads": 3}], "into 3 heads"),
    ],
)
def test_blocks_that_cannot_be_built_are_refused(blocks, message):
    with pytest.raises(ValueError, match=message):
        reconfigured(ByobConfig(), blocks=blocks)


def test_attention_maps_give_where_each_attention_stage_looks_deepest_first():
    model, x = tiny(), torch.randn(2, 3, 64, 64)
    maps = model.attention_maps(x)
    assert list(maps) == ["stage4", "stage3"]
    assert maps["stage4"].shape == (2, 4, 4) and maps["stage3"].shape == (2, 8, 8)
    for values in maps.values():  # the mean of rows that sum to 1: a distribution over positions
        assert (values >= 0).all()
        torch.testing.assert_close(values.sum((1, 2)), torch.ones(2))


def test_feature_info_describes_the_intermediates_and_features_only_prunes_the_rest():
    model, x = tiny(), torch.randn(2, 3, 64, 64)
    assert [(i["module"], i["num_chs"], i["reduction"]) for i in model.feature_info] == [
        ("stem.conv3", 16, 2),
        ("stages.0", 32, 4),
        ("stages.1", 64, 8),
        ("stages.2", 128, 16),
        ("final_conv", 256, 32),
    ]
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [m.shape[1:] for m in maps] == [
            (i["num_chs"], 64 // i["reduction"], 64 // i["reduction"]) for i in model.feature_info
        ]
        extractor = FeatureExtractor(model, out_indices=(1,))
        (early,) = extractor(x)
    torch.testing.assert_close(early, maps[1])
    assert len(model.stages()) == 1 and isinstance(model.get_classifier(), torch.nn.Identity)
    assert not any(name.startswith("stages.1") for name in model.state_dict())


def test_gradient_checkpointing_changes_no_number():
    model, x = tiny().train(), torch.randn(2, 3, 64, 64)
    results = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        output = model(x)
        output.square().mean().backward()
        results.append((output.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for plain, checkpointed in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(plain, checkpointed)


def test_initialisation_follows_timm_s_byob():
    model = tiny()
    blocks = model.blocks_in_order()
    assert all(block.last_norm.weight.abs().sum() == 0 for block in blocks)  # zero_init_last
    attention = model.stages[3][0].self_attn

    def fan_in_stds() -> torch.Tensor:  # the projection's std over fan_in**-0.5, not the convs' rule
        return attention.qkv.weight.std() * attention.qkv.in_channels**0.5

    assert 0.95 < fan_in_stds() < 1.05 and attention.pos_embed.width_rel.std() < 2 * attention.scale
    assert model.head.fc.weight.std() < 0.02
    with torch.no_grad():
        attention.qkv.weight.zero_()
    model.init_modules(["stages.3.0.self_attn"])  # the loader's hook: what building gives
    assert 0.95 < fan_in_stds() < 1.05
    assert not any(p.is_meta for p in build(ByobConfig(**case_args(CASE, SIZES))).parameters())


def test_the_family_builds_its_test_size_and_a_classifier_reset_keeps_dtype():
    config = ByobConfig.model_validate(family.test_args)
    model = family.build(config).to(torch.float64)
    (x,) = family.example_input(config, batch=2, dtype=torch.float64)
    model.reset_classifier(3, global_pool="catavgmax")
    assert model(x).shape == (2, 3) and model.get_classifier().weight.dtype == torch.float64
    model.reset_classifier(0, global_pool="")
    assert model(x).shape == (2, 256, 2, 2)
    assert model.no_weight_decay() == set()


# Bottleneck attention on its own


def naive_position_logits(embedding: RelPosEmbedding, q: torch.Tensor) -> torch.Tensor:
    """q (N, H * W, d) -> (N, HW, HW) from the definition: per key, the offsets' embeddings."""
    height, width = embedding.height, embedding.width
    logits = torch.empty(q.shape[0], height * width, height * width)
    for query in range(height * width):
        y, x = divmod(query, width)
        for key in range(height * width):
            yk, xk = divmod(key, width)
            rel = embedding.height_rel[yk - y + height - 1] + embedding.width_rel[xk - x + width - 1]
            logits[:, query, key] = q[:, query] @ rel
    return logits


def test_position_logits_score_each_key_by_its_offset_from_the_query():
    torch.manual_seed(0)
    embedding = RelPosEmbedding((3, 4), 5, scale=1.0)
    q = torch.randn(2, 12, 5)
    with torch.no_grad():
        torch.testing.assert_close(embedding(q), naive_position_logits(embedding, q))


@pytest.mark.parametrize("stride", [1, 2])
def test_forward_is_the_attention_weights_applied_to_the_values(stride):
    torch.manual_seed(0)
    attention = BottleneckAttention(8, 12, feat_size=(4, 6), stride=stride, num_heads=3).eval()
    x = torch.randn(2, 8, 4, 6)
    with torch.no_grad():
        weights = attention.attention_weights(x)  # (B, heads, HW, HW)
        values = attention.qkv(x)[:, -12:].reshape(2, 3, 4, 24)  # (B, heads, d_v, HW)
        expected = torch.einsum("bhqk,bhdk->bhdq", weights, values).reshape(2, 12, 4, 6)
        torch.testing.assert_close(attention(x), attention.pool(expected))
    assert weights.shape == (2, 3, 24, 24)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 24))


def test_bottleneck_attention_refuses_another_input_size_and_a_missing_feat_size_in_one_line():
    attention = BottleneckAttention(8, feat_size=(4, 6))
    with pytest.raises(
        ValueError, match=r"built for a 4x6 map \(feat_size, from the model.s img_size\), not 6x4"
    ) as error:
        attention(torch.randn(1, 8, 6, 4))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="needs feat_size") as error:
        BottleneckAttention(8, feat_size=None)
    assert "\n" not in str(error.value)


def test_the_conv_variant_follows_its_kind_and_shows_its_weights():
    kind = ATTENTION_KINDS["conv"]
    check_attention_class(BottleneckSelfAttention, kind, name="bot")
    probe_attention_class(BottleneckSelfAttention, kind, name="bot")
    variant = BottleneckSelfAttention(16, 12, stride=2, feat_size=(6, 10)).eval()
    x = torch.randn(2, 16, 6, 10)
    with torch.no_grad():
        torch.testing.assert_close(variant(x), variant.post_attn(variant.self_attn(x)))
        assert variant.attention_weights(x).shape == (2, 4, 60, 60)
    assert {name.split(".")[0] for name in variant.state_dict()} == {"self_attn", "post_attn"}
    with pytest.raises(ValueError, match="needs feat_size"):
        BottleneckSelfAttention(16, 12, stride=1)
