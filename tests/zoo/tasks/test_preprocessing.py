"""Eval preprocessing: `zoo.data_config`, `zoo.transforms` and `zoo.load_image`.

The expected tensors are computed here independently: sizes and offsets from the rule
(shorter side to floor(input / crop_pct), centre crop), pixels with PIL's own resize and
plain Python arithmetic for the scaling and normalisation.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.errors import ArgumentError, ImageError, UnknownModelError
from zoo.registry.schema import Preprocessing
from zoo.tasks.preprocessing import BACKGROUND, IMAGENET_MEAN, IMAGENET_STD, ImageTransform, bounded_size


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
        cfg = zoo.data_config("regnety_002")
        assert cfg.input_size == (3, 224, 224)
        assert cfg.mean == IMAGENET_MEAN and cfg.std == IMAGENET_STD
        assert cfg.crop_pct == 0.875 and cfg.interpolation == "bicubic"

    def test_a_name_borrowing_weights_gets_their_preprocessing(self):
        assert zoo.data_config("resnet50_cbam") == zoo.data_config("resnet50.a1_in1k")
        assert zoo.data_config("resnet50_cbam", use_test_size=True).input_size == (3, 288, 288)

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


def gradient16(width: int = 10, height: int = 8) -> np.ndarray:
    """A 16-bit ramp over the full range 0..65535, most values far above 255."""
    return np.linspace(0, 65535, width * height).round().astype(np.uint16).reshape(height, width)


def unit_config(size: int = 4, crop_pct: float = 0.5, interpolation: str = "bicubic") -> Preprocessing:
    """No normalisation: the tensor is the pixels in [0, 1]."""
    return config(size, crop_pct, interpolation, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def save_16_bit(path, values: np.ndarray, mode: str) -> None:
    height, width = values.shape
    dtype = ">u2" if mode == "I;16B" else "<u2"
    Image.frombytes(mode, (width, height), values.astype(dtype).tobytes()).save(path)


class TestHighPrecisionImages:
    @pytest.mark.parametrize(("mode", "suffix"), [("I;16", "png"), ("I;16", "tiff"), ("I;16B", "tiff")])
    def test_16_bit_grey_is_scaled_by_its_full_range(self, tmp_path, mode, suffix):
        values = gradient16()
        path = tmp_path / f"grey16.{suffix}"
        save_16_bit(path, values, mode)
        with Image.open(path) as opened:
            assert opened.mode == mode
        image = zoo.load_image(path)
        assert image.mode == "F"
        np.testing.assert_allclose(np.asarray(image), values / 65535, rtol=0, atol=1e-7)
        # 10x8 at input 4, crop 0.5: no resize, crop (3, 2); each channel is the grey value.
        x = zoo.transforms(unit_config())(image)
        expected = torch.from_numpy(values[2:6, 3:7] / 65535).float().expand(3, 4, 4)
        torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)

    def test_16_bit_values_are_not_clipped_to_white(self, tmp_path):
        path = tmp_path / "grey16.png"
        save_16_bit(path, gradient16(64, 64), "I;16")
        x = zoo.transforms(unit_config(16, 1.0))(zoo.load_image(path))
        assert float((x >= 1.0).float().mean()) < 0.01
        assert 0.4 < float(x.mean()) < 0.6

    def test_the_transform_opens_a_16_bit_pil_image_the_same_way(self, tmp_path):
        path = tmp_path / "grey16.png"
        save_16_bit(path, gradient16(), "I;16")
        transform = zoo.transforms(unit_config())
        with Image.open(path) as opened:
            torch.testing.assert_close(transform(opened), transform(zoo.load_image(path)))

    def test_resizing_keeps_more_than_8_bits(self, tmp_path):
        # Two images that are the same once reduced to 8 bits (1000 // 257 == 1100 // 257)
        # stay different through the resize.
        transform = zoo.transforms(unit_config(4, 0.875))
        low, high = (np.full((20, 30), v, dtype=np.uint16) for v in (1000, 1100))
        for name, values in (("low", low), ("high", high)):
            save_16_bit(tmp_path / f"{name}.png", values, "I;16")
        x_low = transform(zoo.load_image(tmp_path / "low.png"))
        x_high = transform(zoo.load_image(tmp_path / "high.png"))
        torch.testing.assert_close(x_low, torch.full((3, 4, 4), 1000 / 65535), rtol=0, atol=1e-6)
        torch.testing.assert_close(x_high, torch.full((3, 4, 4), 1100 / 65535), rtol=0, atol=1e-6)

    @pytest.mark.parametrize("interpolation", ["bicubic", "bilinear", "nearest"])
    def test_high_precision_images_are_resized_in_floats(self, tmp_path, interpolation):
        # 30x20 at input 8, crop 0.875 -> 13x9, crop (2, 0) (see the 8-bit test above).
        values = gradient16(30, 20)
        path = tmp_path / "grey16.png"
        save_16_bit(path, values, "I;16")
        resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
        floats = Image.fromarray((values / 65535).astype(np.float32))
        resized = np.asarray(floats.resize((13, 9), resample[interpolation]))[0:8, 2:10]
        x = zoo.transforms(unit_config(8, 0.875, interpolation))(zoo.load_image(path))
        torch.testing.assert_close(x, torch.from_numpy(resized.copy()).expand(3, 8, 8), rtol=0, atol=1e-6)

    def test_a_one_channel_model_gets_the_grey_floats(self, tmp_path):
        path = tmp_path / "grey16.png"
        save_16_bit(path, gradient16(), "I;16")
        grey = Preprocessing(
            input_size=(1, 4, 4), mean=(0.0,), std=(1.0,), crop_pct=0.5, interpolation="bicubic"
        )
        x = zoo.transforms(grey)(zoo.load_image(path))
        expected = torch.from_numpy(gradient16()[2:6, 3:7] / 65535).float()[None]
        torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)

    def test_32_bit_integers_within_16_bits_are_scaled_like_16_bit(self, tmp_path):
        path = tmp_path / "int32.tiff"
        Image.fromarray(gradient16().astype(np.int32)).save(path)
        with Image.open(path) as opened:
            assert opened.mode == "I"
        np.testing.assert_allclose(np.asarray(zoo.load_image(path)), gradient16() / 65535, atol=1e-7)

    @pytest.mark.parametrize("value", [70000, -1])
    def test_32_bit_integers_beyond_16_bits_are_refused(self, tmp_path, value):
        path = tmp_path / "int32.tiff"
        Image.fromarray(np.full((4, 4), value, dtype=np.int32)).save(path)
        with pytest.raises(ImageError, match=r"32-bit integer pixels .* 0\.\.65535") as caught:
            zoo.load_image(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)

    def test_floats_in_0_1_are_used_as_they_are(self, tmp_path):
        values = np.random.default_rng(0).random((8, 10), dtype=np.float32)
        path = tmp_path / "float.tiff"
        Image.fromarray(values).save(path)
        x = zoo.transforms(unit_config())(zoo.load_image(path))
        torch.testing.assert_close(x, torch.from_numpy(values[2:6, 3:7]).expand(3, 4, 4), rtol=0, atol=0)

    @pytest.mark.parametrize("value", [1.5, -0.25, float("nan"), float("inf")])
    def test_floats_outside_0_1_are_refused(self, tmp_path, value):
        values = np.full((8, 10), 0.5, dtype=np.float32)
        values[3, 4] = value
        path = tmp_path / "float.tiff"
        Image.fromarray(values).save(path)
        with pytest.raises(ImageError, match=r"float pixels .* \[0, 1\]") as caught:
            zoo.load_image(path)
        assert "\n" not in str(caught.value)
        with pytest.raises(ImageError, match="float pixels"):
            zoo.transforms(unit_config())(Image.fromarray(values))


class TestTransparency:
    def test_transparent_pixels_are_composited_on_white(self, tmp_path):
        pixels = np.zeros((8, 10, 4), dtype=np.uint8)  # transparent black
        pixels[:, 5:] = (200, 0, 0, 255)  # an opaque red right half
        pixels[:, 4] = (0, 0, 255, 128)  # a half transparent blue column
        path = tmp_path / "logo.png"
        Image.fromarray(pixels).save(path)
        image = zoo.load_image(path)
        assert image.mode == "RGB"
        assert image.getpixel((0, 0)) == BACKGROUND == (255, 255, 255)
        assert image.getpixel((7, 0)) == (200, 0, 0)
        assert image.getpixel((4, 0)) == (127, 127, 255)
        x = zoo.transforms(unit_config())(image)
        assert x[:, 0, 0].tolist() == [1.0, 1.0, 1.0]

    @pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "P"])
    def test_every_kind_of_transparency_gives_the_same_picture(self, mode):
        rgba = Image.new("RGBA", (10, 8), (0, 0, 0, 0))
        rgba.paste((0, 0, 0, 255), (5, 0, 10, 8))  # the right half opaque black
        image = rgba.convert(mode) if mode != "P" else rgba.convert("P")
        if mode == "P":
            image.info["transparency"] = image.getpixel((0, 0))
        x = zoo.transforms(unit_config())(image)
        # crop (3, 2): columns 3, 4 transparent (white), 5, 6 black.
        assert x[0, 0].tolist() == [1.0, 1.0, 0.0, 0.0]

    @pytest.mark.parametrize("mode", ["1", "YCbCr", "LAB", "HSV", "RGBX"])
    def test_other_modes_become_rgb_as_pil_converts_them(self, mode):
        image = synthetic(10, 8, seed=5, mode=mode)
        cfg = config(4, 0.5)
        expected = torch.tensor(by_hand(image.convert("RGB"), 3, 2, 4, cfg.mean, cfg.std))
        torch.testing.assert_close(zoo.transforms(cfg)(image), expected, rtol=0, atol=1e-6)


class TestLargeImages:
    @pytest.fixture
    def zoo_log(self):
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("zoo")
        logger.addHandler(handler)
        yield records
        logger.removeHandler(handler)

    def test_an_image_above_pils_warning_limit_is_one_line_of_ours(self, tmp_path, monkeypatch, zoo_log):
        path = tmp_path / "photo.jpg"
        synthetic(40, 30).save(path)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # PIL's own warning would be an exception here
            image = zoo.load_image(path)
        assert image.size == (40, 30)
        [record] = zoo_log
        assert record.levelno == logging.WARNING
        assert record.getMessage() == (
            f"{path} is 0.0012 MP (40x30), above PIL's 0.001 MP limit for images it trusts; reading it anyway"
        )

    def test_an_image_above_pils_hard_limit_is_refused_in_one_line(self, tmp_path, monkeypatch):
        path = tmp_path / "huge.png"
        synthetic(50, 50).save(path)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with pytest.raises(ImageError) as caught:
            zoo.load_image(path)
        assert str(caught.value) == (
            f"{path}: is 0.0025 MP, more than PIL's limit of 0.002 MP (it could be a decompression "
            "bomb); raise PIL.Image.MAX_IMAGE_PIXELS to read it"
        )


class TestReducedCopies:
    def test_the_longer_side_is_bounded(self):
        assert bounded_size((8000, 6000), 2048) == (2048, 1536)
        assert bounded_size((600, 8000), 2048) == (154, 2048)
        assert bounded_size((300, 200), 2048) == (300, 200)
        assert bounded_size((5000, 1), 100) == (100, 1)

    def test_a_jpeg_is_decoded_at_a_reduced_scale(self, tmp_path, monkeypatch):
        from PIL import JpegImagePlugin

        path = tmp_path / "photo.jpg"
        synthetic(800, 600).save(path)
        decoded = []
        load = JpegImagePlugin.JpegImageFile.load

        def recording_load(self):
            decoded.append(self.size)
            return load(self)

        monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", recording_load)
        image = zoo.load_image(path, max_size=100)
        assert image.size == (100, 75) and image.mode == "RGB"
        assert decoded and max(decoded[0]) <= 200  # 1/4 or 1/8 of the full scale

    def test_a_turned_photo_is_bounded_upright(self, tmp_path):
        path = tmp_path / "rotated.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6
        synthetic(400, 100).save(path, exif=exif.tobytes())
        assert zoo.load_image(path, max_size=200).size == (50, 200)

    def test_other_formats_are_reduced_after_decoding(self, tmp_path):
        path = tmp_path / "grey16.png"
        save_16_bit(path, gradient16(300, 200), "I;16")
        image = zoo.load_image(path, max_size=60)
        assert image.size == (60, 40) and image.mode == "F"

    def test_a_small_image_keeps_its_size(self, tmp_path):
        path = tmp_path / "small.png"
        synthetic(30, 20).save(path)
        image = zoo.load_image(path, max_size=2048)
        assert image.size == (30, 20)
        assert np.array_equal(np.asarray(image), np.asarray(synthetic(30, 20)))


def test_squash_crop_mode_resizes_each_side_to_its_own_size_then_crops_the_centre():
    """timm's `crop_mode: squash`: the aspect ratio is not kept, so nothing is cropped away at
    crop_pct 1.0, and the centre crop of the squashed image otherwise."""
    squash = Preprocessing(
        input_size=(3, 32, 32), mean=(0.0,) * 3, std=(1.0,) * 3, crop_pct=0.8, crop_mode="squash"
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 90, 3), dtype=np.uint8))
    transform = ImageTransform(squash)
    assert transform.resized_size(image.size) == (40, 40)
    expected = np.asarray(image.resize((40, 40), Image.BICUBIC).crop((4, 4, 36, 36)), dtype=np.float32) / 255
    torch.testing.assert_close(transform(image), torch.from_numpy(expected).permute(2, 0, 1))
    centred = ImageTransform(squash.model_copy(update={"crop_mode": "center"}))
    assert centred.resized_size(image.size) == (120, 40)
