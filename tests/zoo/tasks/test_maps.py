"""Attention maps: the protocol, rollout and class-token attention, and the pictures."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import zoo
from zoo.errors import ArgumentError, AttentionMapError
from zoo.tasks.maps import (
    _RAMP,
    attention_rollout,
    class_token_attention,
    colorize,
    flatness,
    overlay,
    picture_format,
    save_picture,
)

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "num_classes": 10}
TINY_RESNET = {
    "layers": [1, 1, 1, 1],
    "channels": [8, 16, 32, 64],
    "num_classes": 10,
    "zero_init_last": False,
}


def random_attention(batch: int, heads: int, tokens: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, heads, tokens, tokens, generator=generator).softmax(dim=-1)


def rollout_by_hand(weights: list[torch.Tensor], prefix: int) -> np.ndarray:
    """Abnar and Zuidema's rollout, one sample at a time in float64 numpy."""
    batch, _, tokens, _ = weights[0].shape
    maps = []
    for b in range(batch):
        rollout = np.eye(tokens)
        for block in weights:
            a = block[b].double().numpy().mean(axis=0)
            a = 0.5 * a + 0.5 * np.eye(tokens)
            a = a / a.sum(axis=1, keepdims=True)
            rollout = a @ rollout
        maps.append(rollout[0, prefix:])
    return np.stack(maps)


class TestRolloutAndClassTokenAttention:
    def test_class_token_attention_is_row_zero_averaged_over_heads(self):
        weights = random_attention(2, 3, 1 + 6, seed=0)
        result = class_token_attention(weights, grid=(2, 3))
        assert result.shape == (2, 2, 3)
        for b in range(2):
            for patch in range(6):
                expected = sum(float(weights[b, h, 0, 1 + patch]) for h in range(3)) / 3
                assert float(result[b, patch // 3, patch % 3]) == pytest.approx(expected, abs=1e-6)

    @pytest.mark.parametrize("prefix", [1, 2])
    def test_rollout_matches_a_computation_by_hand(self, prefix):
        weights = [random_attention(2, 4, prefix + 9, seed=s) for s in range(3)]
        result = attention_rollout(weights, num_prefix_tokens=prefix, grid=(3, 3))
        expected = rollout_by_hand(weights, prefix).reshape(2, 3, 3)
        np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5, atol=1e-7)

    def test_one_block_rollout_is_half_the_class_token_attention(self):
        # With the identity added and rows renormalised, the class token's row over the
        # patches is (A[0, patches] + 0) / 2.
        weights = random_attention(1, 2, 1 + 4, seed=5)
        rollout = attention_rollout([weights], grid=(2, 2))
        torch.testing.assert_close(rollout, class_token_attention(weights, grid=(2, 2)) / 2)

    def test_the_grid_must_fit_the_tokens(self):
        with pytest.raises(ValueError, match="2x2 grid"):
            class_token_attention(random_attention(1, 1, 6, seed=0), grid=(2, 2))


class TestVitImplementsTheProtocol:
    def test_rollout_first_then_last_block_over_the_patch_grid(self):
        model = zoo.create("vit_tiny_patch16_224", **TINY_VIT)
        x = torch.randn(2, 3, 32, 32)
        maps = zoo.attention_maps(model, x)
        assert list(maps) == ["rollout", "last"]
        for value in maps.values():
            assert value.shape == (2, 4, 4) and value.dtype == torch.float32
            assert (value >= 0).all()

    def test_maps_are_the_class_tokens_attention_in_every_block(self):
        model = zoo.create("vit_tiny_patch16_224", **TINY_VIT).eval()
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            _, weights = model.forward_attention(x)
        maps = zoo.attention_maps(model, x)
        expected = rollout_by_hand([w.float() for w in weights], 1).reshape(1, 4, 4)
        np.testing.assert_allclose(maps["rollout"].numpy(), expected, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(maps["last"], weights[-1].mean(dim=1)[:, 0, 1:].reshape(1, 4, 4))

    def test_distilled_vit_skips_both_prefix_tokens(self):
        model = zoo.create("deit_base_distilled_patch16_224", **TINY_VIT)
        maps = zoo.attention_maps(model, torch.randn(1, 3, 32, 32))
        assert maps["last"].shape == (1, 4, 4)

    def test_the_models_training_mode_is_left_as_it_was(self):
        model = zoo.create("vit_tiny_patch16_224", **TINY_VIT)
        assert model.training
        zoo.attention_maps(model, torch.randn(1, 3, 32, 32))
        assert model.training and all(m.training for m in model.modules())


class TestResNetWithCbamImplementsTheProtocol:
    def test_one_map_per_stage_deepest_first(self):
        model = zoo.create("resnet18_cbam", **TINY_RESNET)
        maps = zoo.attention_maps(model, torch.randn(2, 3, 64, 64))
        assert list(maps) == ["stage4", "stage3", "stage2", "stage1"]
        assert [tuple(v.shape) for v in maps.values()] == [(2, 2, 2), (2, 4, 4), (2, 8, 8), (2, 16, 16)]
        for value in maps.values():
            assert ((value > 0) & (value < 1)).all()

    def test_a_stage_map_is_the_spatial_gate_of_its_last_block(self):
        model = zoo.create("resnet18_cbam", **TINY_RESNET).eval()
        x = torch.randn(1, 3, 64, 64)
        block = model.layer2[-1]
        seen = {}

        def keep_input(module, args, output) -> None:
            seen["input"] = args[0]

        hook = block.register_forward_hook(keep_input)
        with torch.no_grad():
            model(x)
            hook.remove()
            # The block's residual branch, then CBAM written out: channel gate, then the
            # k x k conv over the channel-wise mean and max, BatchNorm and a sigmoid.
            branch = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(seen["input"])))))
            cbam = block.se

            def mlp(d):
                return cbam.channel.fc2(F.relu(cbam.channel.fc1(d)))

            channel = torch.sigmoid(
                mlp(branch.mean(dim=(2, 3), keepdim=True)) + mlp(branch.amax(dim=(2, 3), keepdim=True))
            )
            gated = branch * channel
            pooled = torch.cat([gated.mean(dim=1, keepdim=True), gated.amax(dim=1, keepdim=True)], dim=1)
            expected = torch.sigmoid(cbam.spatial.bn(cbam.spatial.conv(pooled)))[:, 0]
        torch.testing.assert_close(zoo.attention_maps(model, x)["stage2"], expected)

    def test_channel_only_attention_has_no_map(self):
        model = zoo.create("resnet18_se", layers=[1, 1, 1, 1], channels=[8, 16, 32, 64])
        with pytest.raises(AttentionMapError, match=r"\(se\) has no spatial map"):
            zoo.attention_maps(model, torch.randn(1, 3, 32, 32))

    def test_a_model_without_the_protocol_is_refused_clearly(self):
        with pytest.raises(AttentionMapError, match="Sequential offers no attention maps"):
            zoo.attention_maps(nn.Sequential(nn.Flatten()), torch.randn(1, 3, 8, 8))


class TestOverlay:
    def test_colour_ramp_ends(self):
        ends = colorize(torch.tensor([0.0, 1.0]))
        assert ends[0].tolist() == list(map(float, _RAMP[0][1]))
        assert ends[1].tolist() == list(map(float, _RAMP[-1][1]))

    def test_picture_has_the_images_size_and_the_map_lies_on_the_box(self):
        image = Image.new("RGB", (40, 30), (200, 100, 50))
        attention = torch.zeros(2, 2)
        attention[1, 1] = 1.0  # the bottom-right cell is the hottest
        picture = overlay(image, attention, box=(10, 5, 30, 25), alpha=0.5, outside=0.5)
        assert picture.size == (40, 30) and picture.mode == "RGB"
        # Outside the box: the image at half brightness.
        assert picture.getpixel((2, 2)) == (100, 50, 25)

        # Inside, far in the hot corner: half image, half the top colour of the ramp.
        def half_and_half(colour):
            return tuple(round((p + c) / 2) for p, c in zip((200, 100, 50), colour, strict=True))

        assert picture.getpixel((29, 24)) == half_and_half(_RAMP[-1][1])
        assert picture.getpixel((10, 5)) == half_and_half(_RAMP[0][1])

    def test_a_flat_map_is_drawn_as_the_low_colour(self):
        picture = overlay(Image.new("RGB", (8, 8)), torch.full((2, 2), 0.3), alpha=1.0)
        assert picture.getpixel((4, 4)) == _RAMP[0][1]

    def test_a_16_bit_image_is_shown_in_8_bits_not_clipped(self):
        grey = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))  # mode I;16, mid grey
        picture = overlay(grey, torch.zeros(2, 2), box=(0, 0, 4, 4), outside=1.0)
        assert picture.getpixel((6, 6)) == (128, 128, 128)


class TestSavePicture:
    @pytest.mark.parametrize(
        ("name", "format"),
        [("m.png", "PNG"), ("m.jpg", "JPEG"), ("m.jpeg", "JPEG"), ("M.JPG", "JPEG"), ("m.webp", "WEBP")],
    )
    def test_the_suffix_names_the_format(self, tmp_path, name, format):
        save_picture(Image.new("RGB", (6, 4), (10, 200, 30)), tmp_path / name)
        with Image.open(tmp_path / name) as written:
            assert written.format == format and written.size == (6, 4) and written.mode == "RGB"

    def test_jpeg_is_written_as_rgb(self, tmp_path):
        save_picture(Image.new("RGBA", (6, 4), (10, 200, 30, 128)), tmp_path / "m.jpg")
        with Image.open(tmp_path / "m.jpg") as written:
            assert written.mode == "RGB"

    @pytest.mark.parametrize("name", ["m.gif", "m.txt", "m"])
    def test_an_unknown_suffix_is_refused_and_nothing_written(self, tmp_path, name):
        with pytest.raises(ArgumentError, match="cannot tell which image format") as caught:
            save_picture(Image.new("RGB", (6, 4)), tmp_path / name)
        assert ".png, .jpg, .jpeg, .webp" in str(caught.value)
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ArgumentError):
            picture_format(name)


class TestFlatMaps:
    def test_flatness_says_how_a_map_is_flat(self):
        assert flatness(torch.full((3, 3), 0.5)) == "constant (0.5 everywhere)"
        assert flatness(torch.tensor([0.5, 0.50001])).startswith("nearly constant (0.5 to 0.50001")
        assert flatness(torch.tensor([0.5, 0.6])) is None
        assert flatness(torch.zeros(0)) is None

    def test_a_fresh_cbam_resnet_gates_every_pixel_by_one_half(self):
        # Its spatial gate ends in a BatchNorm initialised to zero, so sigmoid(0) everywhere.
        maps = zoo.attention_maps(zoo.create("resnet18_cbam", layers=[1, 1, 1, 1]), torch.randn(1, 3, 32, 32))
        assert all(flatness(value) == "constant (0.5 everywhere)" for value in maps.values())

    def test_overlay_warns_in_one_line_when_it_draws_a_flat_map(self, caplog):
        with caplog.at_level(logging.WARNING, logger="zoo"):
            overlay(Image.new("RGB", (8, 8)), torch.full((2, 2), 0.5), what="the stage4 map of resnet18_cbam")
        [record] = caplog.records
        assert record.getMessage() == (
            "the stage4 map of resnet18_cbam is constant (0.5 everywhere), as untrained or "
            "zero-initialised weights give; it is drawn as a flat tint and shows nothing about the input"
        )

    def test_a_map_that_varies_draws_without_a_word(self, caplog):
        model = zoo.create("vit_tiny_patch16_224", **TINY_VIT)  # random, yet not flat
        attention = zoo.attention_maps(model, torch.randn(1, 3, 32, 32))["rollout"][0]
        with caplog.at_level(logging.WARNING, logger="zoo"):
            overlay(Image.new("RGB", (8, 8)), attention)
        assert caplog.records == []


def test_a_map_that_is_not_finite_is_refused_not_drawn_flat():
    with pytest.raises(ArgumentError, match="the rollout map holds NaN or infinite values"):
        overlay(Image.new("RGB", (8, 8)), torch.full((2, 2), float("nan")), what="the rollout map")
