"""Vision Transformer and DeiT: tokens, heads, attention weights, training signals."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo_plugins.attention.mhsa import MultiHeadSelfAttention

TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 3, "num_heads": 3}


def tiny_vit(**overrides):
    return zoo.create("vit_tiny_patch16_224", **{**TINY, "num_classes": 10, **overrides})


def test_tokens_are_the_class_token_then_one_per_patch():
    model = tiny_vit().eval()
    images = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(images)
    assert tokens.shape == (2, 1 + 16, 48)
    torch.testing.assert_close(model(images), model.head(tokens[:, 0]))


def test_blocks_are_pre_norm_with_timm_layer_norm():
    block = tiny_vit().blocks[0]
    assert block.norm1.eps == 1e-6 and block.norm2.eps == 1e-6
    assert isinstance(block.attn, MultiHeadSelfAttention)
    assert block.mlp.fc1.out_features == 4 * 48


def test_without_head_the_model_returns_the_normed_class_token():
    model = tiny_vit(num_classes=0).eval()
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(images), model.forward_features(images)[:, 0])


def test_the_representation_layer_is_linear_then_tanh():
    model = tiny_vit(representation_size=24).eval()
    assert model.num_features == 24 and model.head.in_features == 24
    images = torch.randn(1, 3, 32, 32)
    pooled = model.forward_head(model.forward_features(images), pre_logits=True)
    assert pooled.abs().max() <= 1.0
    assert list(dict(model.named_parameters()))[-4:] == [
        "pre_logits.fc.weight",
        "pre_logits.fc.bias",
        "head.weight",
        "head.bias",
    ]


def test_deit_averages_class_and_distillation_heads_and_trains_them_apart():
    model = zoo.create("deit_base_distilled_patch16_224", **TINY, num_classes=10).eval()
    images = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(images)
    assert tokens.shape == (2, 2 + 16, 48)
    cls_logits, dist_logits = model.forward_distillation(images)
    torch.testing.assert_close(cls_logits, model.head(tokens[:, 0]))
    torch.testing.assert_close(dist_logits, model.head_dist(tokens[:, 1]))
    torch.testing.assert_close(model(images), (cls_logits + dist_logits) / 2)
    with pytest.raises(ValueError, match="no distillation token"):
        tiny_vit().forward_distillation(images)


def test_deit_distilled_training_returns_both_logits_and_evaluation_their_mean():
    model = zoo.create("deit_base_distilled_patch16_224", **TINY, num_classes=10)
    assert not model.distilled_training
    images = torch.randn(2, 3, 32, 32)
    model.set_distilled_training()
    cls_logits, dist_logits = model(images)  # training mode: the pair, for labels and teacher
    assert cls_logits.shape == dist_logits.shape == (2, 10)
    model.eval()
    expected = sum(model.forward_distillation(images)) / 2
    torch.testing.assert_close(model(images), expected)  # evaluation: their mean
    model.train().set_distilled_training(False)
    assert model(images).shape == (2, 10), "plain training (fine-tuning) averages the heads too"
    with pytest.raises(ValueError, match="no distillation token"):
        tiny_vit().set_distilled_training()


def test_qk_scale_reaches_every_block_and_changes_the_output():
    images = torch.randn(2, 3, 32, 32)
    torch.manual_seed(0)
    scaled = tiny_vit(qk_scale=0.05).eval()
    assert all(block.attn.scale == 0.05 for block in scaled.blocks)
    torch.manual_seed(0)
    default = tiny_vit().eval()
    assert default.blocks[0].attn.scale == 16**-0.5
    assert scaled.state_dict().keys() == default.state_dict().keys()
    default.load_state_dict(scaled.state_dict())
    assert not torch.allclose(scaled(images), default(images))
    tokens, _ = scaled.forward_attention(images)  # the eager path scales alike
    torch.testing.assert_close(tokens, scaled.forward_features(images), atol=1e-5, rtol=1e-5)


def test_qk_scale_needs_an_attention_that_takes_it():
    with pytest.raises(zoo.ArgumentError, match="attention 'talking_heads' has no qk_scale option"):
        tiny_vit(qk_scale=0.1, attn="talking_heads")
    with pytest.raises(zoo.ArgumentError, match="given twice"):
        tiny_vit(qk_scale=0.1, attn={"name": "mhsa", "qk_scale": 0.2})


def test_attention_weights_of_every_block_come_from_the_eager_path():
    model = tiny_vit().eval()
    images = torch.randn(2, 3, 32, 32)
    tokens, weights = model.forward_attention(images)
    assert len(weights) == 3 and all(w.shape == (2, 3, 17, 17) for w in weights)
    torch.testing.assert_close(tokens, model.forward_features(images), atol=1e-5, rtol=1e-5)


def test_stochastic_depth_rises_linearly_and_is_off_in_eval():
    model = tiny_vit(drop_path_rate=0.2)
    assert [block.drop_path.drop_prob for block in model.blocks] == pytest.approx([0.0, 0.1, 0.2])
    model.eval()
    images = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(images), model(images))


def test_gradients_reach_every_parameter():
    model = zoo.create("deit_base_distilled_patch16_224", **TINY, num_classes=10, representation_size=16)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()] == []


def test_inputs_of_the_wrong_size_are_refused():
    with pytest.raises(ValueError, match="this model takes 32x32"):
        tiny_vit()(torch.randn(1, 3, 64, 64))


def test_sizes_must_fit_together():
    with pytest.raises(zoo.ArgumentError, match="img_size 30 is not a multiple of patch_size 8"):
        tiny_vit(img_size=30)
    with pytest.raises(zoo.ArgumentError, match="embed_dim 48 is not divisible by num_heads 5"):
        tiny_vit(num_heads=5)


def test_avg_pooling_reads_the_mean_patch_token_normed_after_pooling():
    model = tiny_vit(global_pool="avg", num_classes=0).eval()
    assert isinstance(model.norm, torch.nn.Identity) and isinstance(model.fc_norm, torch.nn.LayerNorm)
    images = torch.randn(2, 3, 32, 32)
    tokens = model.forward_features(images)
    torch.testing.assert_close(model(images), model.fc_norm(tokens[:, 1:].mean(dim=1)))


def test_fc_norm_can_be_chosen_apart_from_the_pooling():
    token_fc_norm = tiny_vit(fc_norm=True).eval()
    assert isinstance(token_fc_norm.norm, torch.nn.Identity)
    images = torch.randn(2, 3, 32, 32)
    tokens = token_fc_norm.forward_features(images)
    torch.testing.assert_close(token_fc_norm(images), token_fc_norm.head(token_fc_norm.fc_norm(tokens[:, 0])))
    avg_final_norm = tiny_vit(global_pool="avg", fc_norm=False).eval()
    assert isinstance(avg_final_norm.fc_norm, torch.nn.Identity)
    tokens = avg_final_norm.forward_features(images)
    torch.testing.assert_close(avg_final_norm(images), avg_final_norm.head(tokens[:, 1:].mean(dim=1)))


def test_no_pooling_gives_the_head_every_token():
    model = tiny_vit(global_pool="").eval()
    images = torch.randn(2, 3, 32, 32)
    assert model(images).shape == (2, 1 + 16, 10)
    torch.testing.assert_close(model(images), model.head(model.forward_features(images)))


def test_the_default_pooling_keeps_the_checkpoint_layout():
    names = set(tiny_vit().state_dict())
    assert {"norm.weight", "norm.bias"} <= names and not any(n.startswith("fc_norm") for n in names)
    assert {"fc_norm.weight", "fc_norm.bias"} <= set(tiny_vit(global_pool="avg").state_dict())


def test_distillation_reads_its_tokens_only():
    with pytest.raises(
        zoo.errors.ArgumentError, match="distilled reads its two tokens, not global_pool 'avg'"
    ):
        tiny_vit(distilled=True, global_pool="avg")


class TestForwardIntermediates:
    def outputs(self, model, images):
        """Every block's output, by hand."""
        x, found = model._embed(images), []
        for block in model.blocks:
            x = block(x)
            found.append(x)
        return found

    def test_every_block_as_a_grid_without_prefix_tokens_and_the_final_features(self):
        model = tiny_vit(reg_tokens=2).eval()
        images = torch.randn(2, 3, 32, 32)
        final, grids = model.forward_intermediates(images)
        torch.testing.assert_close(final, model.forward_features(images))
        assert [g.shape for g in grids] == [(2, 48, 4, 4)] * 3
        for grid, tokens in zip(grids, self.outputs(model, images), strict=True):
            patches = tokens[:, 3:]  # class and two register tokens left out
            torch.testing.assert_close(grid, patches.transpose(1, 2).reshape(2, 48, 4, 4))

    def test_nlc_keeps_the_tokens_in_rows(self):
        model = tiny_vit().eval()
        images = torch.randn(2, 3, 32, 32)
        tokens = model.forward_intermediates(images, output_fmt="NLC", intermediates_only=True)
        torch.testing.assert_close(tokens, [t[:, 1:] for t in self.outputs(model, images)])

    @pytest.mark.parametrize(("indices", "blocks"), [(None, [0, 1, 2]), (2, [1, 2]), ([0, -1], [0, 2])])
    def test_indices_are_all_the_last_n_or_the_ones_named(self, indices, blocks):
        model = tiny_vit().eval()
        images = torch.randn(1, 3, 32, 32)
        taken = model.forward_intermediates(images, indices, output_fmt="NLC", intermediates_only=True)
        expected = self.outputs(model, images)
        assert len(taken) == len(blocks)
        for tokens, block in zip(taken, blocks, strict=True):
            torch.testing.assert_close(tokens, expected[block][:, 1:])

    def test_norm_passes_each_output_through_the_final_norm(self):
        model = tiny_vit().eval()
        images = torch.randn(1, 3, 32, 32)
        [last] = model.forward_intermediates(images, 1, norm=True, output_fmt="NLC", intermediates_only=True)
        torch.testing.assert_close(last, model.forward_features(images)[:, 1:])

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [({"indices": 4}, "last 4"), ({"indices": [3]}, "out of range"), ({"output_fmt": "NHWC"}, "NHWC")],
    )
    def test_what_it_cannot_give_is_refused(self, arguments, message):
        with pytest.raises(ValueError, match=message):
            tiny_vit().forward_intermediates(torch.randn(1, 3, 32, 32), **arguments)


class TestDynamicImageSize:
    @pytest.mark.parametrize("size", [(48, 48), (40, 56)])
    @pytest.mark.parametrize(
        "overrides", [{}, {"reg_tokens": 2, "no_embed_class": True}, {"distilled": True}]
    )
    def test_any_size_matches_a_model_built_at_it_from_the_same_weights(self, tmp_path, size, overrides):
        source = tiny_vit(dynamic_img_size=True, **overrides).eval()
        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors")
        built = tiny_vit(checkpoint=tmp_path / "w.safetensors", img_size=size, **overrides).eval()
        images = torch.randn(2, 3, *size)
        torch.testing.assert_close(source(images), built(images), atol=1e-5, rtol=1e-5)

    def test_forward_features_and_intermediates_follow_the_patch_grid(self):
        model = tiny_vit(dynamic_img_size=True, reg_tokens=2).eval()
        images = torch.randn(2, 3, 40, 56)
        assert model.forward_features(images).shape == (2, 3 + 5 * 7, 48)
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 3 + 16, 48)
        final, blocks = model.forward_intermediates(images)
        assert final.shape == (2, 3 + 35, 48) and all(b.shape == (2, 48, 5, 7) for b in blocks)

    def test_attention_maps_cover_the_input_patch_grid(self):
        model = tiny_vit(dynamic_img_size=True).eval()
        maps = model.attention_maps(torch.randn(2, 3, 40, 56))
        assert maps["rollout"].shape == (2, 5, 7) and maps["last"].shape == (2, 5, 7)

    def test_an_input_off_the_patch_grid_is_padded_right_and_bottom(self):
        model = tiny_vit(dynamic_img_size=True, dynamic_img_pad=True).eval()
        images = torch.randn(1, 3, 35, 35)
        padded = torch.nn.functional.pad(images, (0, 5, 0, 5))
        assert model.forward_features(images).shape == (1, 1 + 25, 48)
        torch.testing.assert_close(model(images), model(padded))
        assert model.attention_maps(images)["rollout"].shape == (1, 5, 5)

    def test_without_padding_an_input_off_the_patch_grid_is_refused(self):
        with pytest.raises(ValueError, match="not a multiple of patch_size 8"):
            tiny_vit(dynamic_img_size=True)(torch.randn(1, 3, 35, 35))

    def test_by_default_the_size_is_fixed_and_the_weights_unchanged(self):
        with pytest.raises(ValueError, match="this model takes 32x32"):
            tiny_vit()(torch.randn(1, 3, 48, 48))
        with pytest.raises(ValueError, match="this model takes 40x56"):
            tiny_vit(img_size=(40, 56))(torch.randn(1, 3, 32, 32))
        assert set(tiny_vit(dynamic_img_size=True).state_dict()) == set(tiny_vit().state_dict())


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({}, {"pos_embed", "cls_token"}),
        ({"distilled": True}, {"pos_embed", "cls_token", "dist_token"}),
        ({"reg_tokens": 4, "no_embed_class": True}, {"pos_embed", "cls_token", "reg_token"}),
    ],
)
def test_position_embeddings_and_tokens_are_kept_from_weight_decay(overrides, names):
    assert tiny_vit(**overrides).no_weight_decay() == names


def test_reset_classifier_replaces_both_deit_heads_and_keeps_their_token_pooling():
    model = tiny_vit(distilled=True)
    model.reset_classifier(4)
    assert model.head.out_features == model.head_dist.out_features == 4
    with pytest.raises(ValueError, match="distilled reads its two tokens, not global_pool 'avg'"):
        model.reset_classifier(4, global_pool="avg")


def test_reset_to_average_pooling_keeps_the_norm_it_was_built_with():
    model = tiny_vit().eval()
    x = torch.randn(2, 3, 32, 32)
    model.reset_classifier(0, global_pool="avg")
    tokens = model.forward_features(x)
    torch.testing.assert_close(model(x), tokens[:, 1:].mean(1))
