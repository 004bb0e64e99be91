"""Eval preprocessing: `zoo.data_config`, `zoo.transforms` and `zoo.load_image`.

The expected tensors are computed here independently: sizes and offsets from the rule
(shorter side to floor(input / crop_pct), centre crop), pixels with PIL's own resize and
plain Python arithmetic for the scaling and normalisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.errors import ArgumentError, ImageError, UnknownModelError
from zoo.registry.schema import Preprocessing
from zoo.tasks.preprocessing import IMAGENET_MEAN, IMAGENET_STD, ImageTransform


def synthetic(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def by_hand(image: Image.Image, left: int, top: int, size: int, mean, std) -> list[list[list[float]]]:
    """Crop `size` x `size` at (left, top), then (v / 255 - mean) / std, channel first."""
    rgb = image.convert("RGB")
    return [
        [
            [(rgb.getpixel((left + j, top + i))[c] / 255 - mean[c]) / std[c] for j in range(size)]
            for i in range(size)
        ]
        for c in range(3)
    ]


def config(
    size: int, crop_pct: float, interpolation: str = "bicubic", mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)
):
    return Preprocessing(
        input_size=(3, size, size), mean=mean, std=std, crop_pct=crop_pct, interpolation=interpolation
    )


class TestTransformMatchesAnIndependentComputation:
    def test_image_already_at_the_resize_size_is_only_cropped_and_normalised(self):
        # input 4, crop_pct 0.5: the shorter side becomes floor(4 / 0.5) = 8, which a 10x8
        # image already has; the centre 4x4 crop starts at ((10-4)/2, (8-4)/2) = (3, 2).
        image = synthetic(10, 8)
        cfg = config(4, 0.5)
        x = zoo.transforms(cfg)(image)
        assert x.dtype == torch.float32 and x.shape == (3, 4, 4)
        expected = torch.tensor(by_hand(image, 3, 2, 4, cfg.mean, cfg.std))
        torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)

    @pytest.mark.parametrize("interpolation", ["bicubic", "bilinear", "nearest"])
    def test_wide_image_is_resized_on_its_shorter_side_with_the_tags_interpolation(self, interpolation):
        # input 8, crop 0.875: shorter side floor(8 / 0.875) = floor(9.14) = 9, so 30x20
        # becomes int(9 * 30 / 20) = 13 by 9; crop offsets round(2.5) = 2 and round(0.5) = 0.
        image = synthetic(30, 20, seed=1)
        cfg = config(8, 0.875, interpolation)
        resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[
            interpolation
        ]
        resized = image.resize((13, 9), resample)
        expected = torch.tensor(by_hand(resized, 2, 0, 8, cfg.mean, cfg.std))
        torch.testing.assert_close(zoo.transforms(cfg)(image), expected, rtol=0, atol=1e-6)

    def test_tall_image_is_resized_on_its_width(self):
        # 20x31 with input 8 and crop 0.8: the width becomes floor(8 / 0.8) = 10, the height
        # int(10 * 31 / 20) = 15; offsets round(1.0) = 1 and round(3.5) = 4.
        image = synthetic(20, 31, seed=2)
        cfg = config(8, 0.8)
        assert math.floor(8 / 0.8) == 10
        resized = image.resize((10, 15), Image.BICUBIC)
        expected = torch.tensor(by_hand(resized, 1, 4, 8, cfg.mean, cfg.std))
        torch.testing.assert_close(zoo.transforms(cfg)(image), expected, rtol=0, atol=1e-6)

    def test_a_published_tag_uses_its_own_values(self):
        # resnet50.a1_in1k: 224 at crop 0.95 -> shorter side floor(235.79) = 235; 300x200
        # becomes int(235 * 1.5) = 352 by 235; offsets round(64.0) = 64 and round(5.5) = 6.
        image = synthetic(300, 200, seed=3)
        resized = image.resize((352, 235), Image.BICUBIC)
        expected = torch.tensor(by_hand(resized, 64, 6, 224, IMAGENET_MEAN, IMAGENET_STD))
        torch.testing.assert_close(zoo.transforms("resnet50.a1_in1k")(image), expected, rtol=0, atol=1e-5)

    def test_images_of_any_mode_become_rgb_first(self):
        cfg = config(4, 0.5)
        for mode in ("L", "RGBA", "P", "CMYK"):
            image = synthetic(10, 8, seed=4, mode=mode)
            expected = torch.tensor(by_hand(image.convert("RGB"), 3, 2, 4, cfg.mean, cfg.std))
            torch.testing.assert_close(zoo.transforms(cfg)(image), expected, rtol=0, atol=1e-6)

    def test_anything_but_a_pil_image_is_refused(self):
        with pytest.raises(TypeError, match="PIL image"):
            zoo.transforms(config(4, 0.5))(np.zeros((8, 8, 3), dtype=np.uint8))


class TestCropBox:
    def test_box_is_the_centre_crop_in_the_original_pixels(self):
        transform = ImageTransform(config(8, 0.875))
        # 30x20 -> 13x9, crop (2, 0) to (10, 8): scales 13/30 and 9/20.
        left, top, right, bottom = transform.crop_box((30, 20))
        assert left == pytest.approx(2 * 30 / 13)
        assert right == pytest.approx(10 * 30 / 13)
        assert top == 0
        assert bottom == pytest.approx(8 * 20 / 9)

    def test_crop_pct_of_one_keeps_the_whole_shorter_side(self):
        transform = ImageTransform(config(16, 1.0))
        left, top, right, bottom = transform.crop_box((64, 16))
        assert (top, bottom) == (0, 16)
        assert right - left == pytest.approx(16)


class TestDataConfig:
    def test_a_tag_gives_its_registry_values(self):
        tag = zoo.model_info("vit_base_patch16_224_in21k").weights[0]
        assert zoo.data_config("vit_base_patch16_224_in21k.augreg_in21k") == tag.preprocessing

    def test_a_bare_name_gives_its_default_tags_values(self):
        cfg = zoo.data_config("vit_base_patch16_224")
        assert cfg.input_size == (3, 224, 224)
        assert cfg.crop_pct == 0.9
        assert cfg.interpolation == "bicubic"
        assert cfg.mean == (0.5, 0.5, 0.5)
        assert cfg == zoo.data_config("vit_base_patch16_224.augreg2_in21k_ft_in1k")

    def test_a_name_without_weights_gets_imagenet_defaults(self):
        cfg = zoo.data_config("resnet50_cbam")
        assert cfg.input_size == (3, 224, 224)
        assert cfg.mean == IMAGENET_MEAN and cfg.std == IMAGENET_STD
        assert cfg.crop_pct == 0.875 and cfg.interpolation == "bicubic"

    def test_test_size_is_used_only_when_asked(self):
        assert zoo.data_config("resnet50").input_size == (3, 224, 224)
        assert zoo.data_config("resnet50", use_test_size=True).input_size == (3, 288, 288)
        assert zoo.data_config("vit_base_patch16_224", use_test_size=True).input_size == (3, 224, 224)

    def test_a_model_built_for_another_size_gets_that_size(self):
        cfg = zoo.data_config("vit_tiny_patch16_224", model_args={"img_size": 32, "patch_size": 8})
        assert cfg.input_size == (3, 32, 32)
        assert cfg.crop_pct == 0.9 and cfg.mean == (0.5, 0.5, 0.5)

    def test_a_channel_count_the_weights_were_not_trained_on_is_refused(self):
        with pytest.raises(ArgumentError, match="in_chans=1"):
            zoo.data_config("resnet50", model_args={"in_chans": 1})

    def test_unknown_names_and_bad_arguments_raise_zoo_errors(self):
        with pytest.raises(UnknownModelError, match="resnet50"):
            zoo.data_config("resnet5O")
        with pytest.raises(ArgumentError, match="depht"):
            zoo.data_config("vit_tiny_patch16_224", model_args={"depht": 2})

    def test_transforms_of_a_name_use_its_data_config(self):
        transform = zoo.transforms("deit_base_distilled_patch16_224")
        assert transform.config == zoo.data_config("deit_base_distilled_patch16_224")
        assert transform.resize_box == (248, 248)  # floor(224 / 0.9)
        assert transform(synthetic(500, 375)).shape == (3, 224, 224)


class TestLoadImage:
    def test_reads_common_formats(self, tmp_path):
        for suffix in ("png", "jpeg", "bmp", "webp"):
            path = tmp_path / f"image.{suffix}"
            synthetic(12, 7).save(path)
            image = zoo.load_image(path)
            assert image.size == (12, 7)

    def test_turns_photos_upright_by_their_exif_orientation(self, tmp_path):
        path = tmp_path / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotated 90 degrees clockwise
        synthetic(40, 10).save(path, exif=exif.tobytes())
        assert zoo.load_image(path).size == (10, 40)

    @pytest.mark.parametrize(
        ("make", "reason"),
        [
            (lambda p: None, "no such file"),
            (lambda p: p.mkdir(), "is a directory"),
            (lambda p: p.write_text("not an image"), "not an image"),
            (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "image"),
        ],
        ids=["missing", "directory", "text", "truncated-png"],
    )
    def test_unreadable_files_raise_image_error_naming_the_file(self, tmp_path, make, reason):
        path = tmp_path / "bad.png"
        make(path)
        with pytest.raises(ImageError, match=reason) as caught:
            zoo.load_image(path)
        assert str(path) in str(caught.value)
        assert "\n" not in str(caught.value)
