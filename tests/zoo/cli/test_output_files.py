"""The files `zoo attn` and `zoo predict --embeddings` write: the format the name says, at
a bounded size, never over an input, over an existing file only with --force."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import zoo
from zoo.cli import cli

VIT = "vit_tiny_patch16_224"
VIT_SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
VIT_ARGS = [arg for key, value in VIT_SHAPE.items() for arg in ("-a", f"{key}={value}")]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "ck.safetensors"
    save_file(zoo.create(VIT, **VIT_SHAPE, num_classes=10).state_dict(), path)
    return path


def attn(image, output, checkpoint, *extra: str):
    return run(
        "attn", VIT, str(image), "-o", str(output), "--checkpoint", str(checkpoint), "--num-classes", "10",
        *VIT_ARGS, *extra,
    )  # fmt: skip


def predict(images, checkpoint, *extra: str):
    return run(
        "predict", VIT, *map(str, images), "--checkpoint", str(checkpoint), "--num-classes", "10",
        *VIT_ARGS, *extra,
    )  # fmt: skip


def one_error_line(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ")
    return line


class TestAttnPicture:
    def test_a_large_image_is_drawn_at_most_max_size_on_its_longer_side(self, tmp_path, checkpoint):
        photo = tmp_path / "photo.jpg"
        Image.new("RGB", (300, 200), (200, 150, 100)).save(photo, quality=95)
        out = tmp_path / "map.png"
        result = attn(photo, out, checkpoint, "--max-size", "100", "--json")
        assert result.exit_code == 0, result.output
        left, top, right, bottom = json.loads(result.stdout)["box"]
        assert (right - left, bottom - top) == (100, 67)
        with Image.open(out) as picture:
            drawn = np.asarray(picture.convert("RGB"), dtype=float)[top:bottom, left:right]
        # The model's crop: 300x200 -> 52x35, 32 wide from x=10, i.e. x in [57.7, 242.3) of the
        # photo, [19.2, 80.8) of the picture. Outside it the photo is dimmed to 0.35.
        dimmed = np.round(np.array([200, 150, 100]) * 0.35)
        for x in (2, 17, 83, 97):
            assert np.abs(drawn[33, x] - dimmed).max() <= 2, x
        for x in (22, 50, 78):
            assert np.abs(drawn[33, x] - dimmed).max() > 10, x

    def test_the_default_bound_is_2048(self, tmp_path, checkpoint):
        photo = tmp_path / "wide.png"
        Image.new("RGB", (4100, 50), (90, 90, 90)).save(photo)
        result = attn(photo, tmp_path / "map.png", checkpoint, "--json")
        assert result.exit_code == 0, result.output
        left, top, right, bottom = json.loads(result.stdout)["box"]
        assert (right - left, bottom - top) == (2048, 25)

    @pytest.mark.parametrize(("name", "format"), [("m.jpg", "JPEG"), ("m.JPEG", "JPEG"), ("m.webp", "WEBP")])
    def test_the_output_suffix_names_the_format(self, tmp_path, checkpoint, images, name, format):
        result = attn(images["cat"], tmp_path / name, checkpoint, "--json")
        assert result.exit_code == 0, result.output
        with Image.open(tmp_path / name) as picture:
            assert picture.format == format and picture.mode == "RGB"
            assert picture.size == tuple(json.loads(result.stdout)["size"])

    @pytest.mark.parametrize("name", ["m.gif", "m.tiff", "map"])
    def test_an_unknown_suffix_is_refused_before_any_work(self, tmp_path, checkpoint, images, name):
        line = one_error_line(attn(images["cat"], tmp_path / name, checkpoint))
        assert line.startswith(f"zoo: error: --output {tmp_path / name}: cannot tell which image format")
        assert not (tmp_path / name).exists()


class TestAttnRefusesToOverwrite:
    def test_the_input_photo(self, tmp_path, checkpoint, images):
        before = images["cat"].read_bytes()
        line = one_error_line(attn(images["cat"], images["cat"], checkpoint, "--force"))
        assert (
            line
            == f"zoo: error: --output {images['cat']}: is the input {images['cat']}; write to another file"
        )
        assert images["cat"].read_bytes() == before

    def test_the_input_through_a_symlink(self, tmp_path, checkpoint, images):
        link = tmp_path / "link.png"
        link.symlink_to(images["cat"])
        before = images["cat"].read_bytes()
        assert "is the input" in one_error_line(attn(images["cat"], link, checkpoint, "--force"))
        assert images["cat"].read_bytes() == before and link.is_symlink()

    def test_the_input_by_another_relative_path(self, tmp_path, checkpoint, images, monkeypatch):
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        before = images["cat"].read_bytes()
        line = one_error_line(attn("../cat.png", tmp_path / "sub" / ".." / "cat.png", checkpoint, "--force"))
        assert "is the input ../cat.png" in line
        assert images["cat"].read_bytes() == before

    def test_the_input_through_a_hard_link(self, tmp_path, checkpoint, images):
        other = tmp_path / "other.png"
        os.link(images["cat"], other)
        assert "is the input" in one_error_line(attn(images["cat"], other, checkpoint, "--force"))

    def test_an_existing_file_unless_forced(self, tmp_path, checkpoint, images):
        out = tmp_path / "map.png"
        out.write_bytes(b"previous")
        line = one_error_line(attn(images["cat"], out, checkpoint))
        assert line == f"zoo: error: --output {out}: exists; pass --force to overwrite it"
        assert out.read_bytes() == b"previous"
        assert attn(images["cat"], out, checkpoint, "--force").exit_code == 0
        with Image.open(out) as picture:
            assert picture.format == "PNG"

    def test_nothing_is_left_behind_when_it_fails(self, tmp_path, checkpoint, images):
        one_error_line(attn(images["text"], tmp_path / "map.png", checkpoint), exit_code=1)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "cat.png",
            "ck.safetensors",
            "dog.jpg",
            "notes.txt",
        ]


class TestEmbeddingsFile:
    def test_an_existing_file_is_refused_unless_forced(self, tmp_path, checkpoint, images):
        out = tmp_path / "emb.safetensors"
        out.write_bytes(b"previous")
        line = one_error_line(predict([images["cat"]], checkpoint, "--embeddings", str(out)))
        assert line == f"zoo: error: --embeddings {out}: exists; pass --force to overwrite it"
        assert out.read_bytes() == b"previous"
        result = predict([images["cat"]], checkpoint, "--embeddings", str(out), "--force")
        assert result.exit_code == 0, result.output
        with safe_open(out, framework="pt") as handle:
            assert handle.get_tensor("embeddings").shape == (1, 48)

    @pytest.mark.parametrize("which", ["cat", "dog"])
    def test_an_input_image_is_refused_even_forced(self, tmp_path, checkpoint, images, which):
        before = images[which].read_bytes()
        line = one_error_line(
            predict([images["cat"], images["dog"]], checkpoint, "--embeddings", str(images[which]), "--force")
        )
        assert f"is the input {images[which]}" in line
        assert images[which].read_bytes() == before

    def test_the_checkpoint_is_an_input_too(self, tmp_path, checkpoint, images):
        link = tmp_path / "emb.safetensors"
        link.symlink_to(checkpoint)
        line = one_error_line(predict([images["cat"]], checkpoint, "--embeddings", str(link), "--force"))
        assert f"is the input {checkpoint}" in line


class TestLargeImagesOnTheCommandLine:
    def test_pils_warning_is_one_line_of_ours(self, tmp_path, checkpoint, images, monkeypatch):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # cat.png is 57x41 = 2337 pixels
        result = predict([images["cat"]], checkpoint)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [
            f"zoo: warning: {images['cat']} is 0.00234 MP (57x41), above PIL's 0.002 MP limit for "
            "images it trusts; reading it anyway"
        ]

    def test_an_image_above_the_hard_limit_is_one_error_line(self, tmp_path, checkpoint, images, monkeypatch):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        result = attn(images["cat"], tmp_path / "map.png", checkpoint)
        line = one_error_line(result, exit_code=1)
        assert f"{images['cat']}: is 0.00234 MP, more than PIL's limit" in line
        assert not (tmp_path / "map.png").exists()

    def test_attn_warns_once(self, tmp_path, checkpoint, monkeypatch):
        photo = tmp_path / "photo.png"
        Image.new("RGB", (100, 100), (90, 90, 90)).save(photo)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 9000)  # the title's text is drawn under it too
        result = attn(photo, tmp_path / "map.png", checkpoint)
        assert result.exit_code == 0, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith(f"zoo: warning: {photo} is 0.01 MP")
