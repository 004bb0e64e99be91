"""`zoo embed`: one embedding per image, in a safetensors or .npy file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

import zoo
from zoo.cli import cli

VIT = "vit_tiny_patch16_224"
VIT_SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
VIT_ARGS = [arg for key, value in VIT_SHAPE.items() for arg in ("-a", f"{key}={value}")]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def save_model(path, num_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = zoo.create(VIT, **VIT_SHAPE, num_classes=num_classes).eval()
    save_file(model.state_dict(), path)
    return model


def embed(images, checkpoint, output, *extra: str, num_classes: int = 0):
    files = [str(image) for image in images]
    common = ["--checkpoint", str(checkpoint), "--num-classes", str(num_classes), *VIT_ARGS]
    return run("embed", VIT, *files, "-o", str(output), *common, *extra)


def expected_embeddings(model: torch.nn.Module, paths) -> torch.Tensor:
    """The model's pooled pre-logits features (its output, for a model without head)."""
    transform = zoo.transforms(VIT, model_args=VIT_SHAPE)
    x = torch.stack([transform(zoo.load_image(p)) for p in paths])
    with torch.no_grad():
        return model.forward_head(model.forward_features(x), pre_logits=True)


@pytest.fixture
def headless(tmp_path):
    path = tmp_path / "ck.safetensors"
    return path, save_model(path, num_classes=0)


class TestEmbed:
    def test_a_model_without_head_writes_its_output_with_the_files_and_the_model(
        self, tmp_path, images, headless
    ):
        checkpoint, model = headless
        out = tmp_path / "emb.safetensors"
        result = embed([images["cat"], images["dog"]], checkpoint, out)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"wrote {out}: 2 embedding(s) of size 48\n"
        with safe_open(out, framework="pt") as handle:
            torch.testing.assert_close(
                handle.get_tensor("embeddings"), expected_embeddings(model, [images["cat"], images["dog"]])
            )
            assert json.loads(handle.metadata()["files"]) == [str(images["cat"]), str(images["dog"])]
            assert handle.metadata()["model"] == VIT

    def test_a_model_with_head_gives_its_pre_logits_features(self, tmp_path, images):
        model = save_model(tmp_path / "ck.safetensors", num_classes=10)
        out = tmp_path / "emb.safetensors"
        result = embed([images["dog"]], tmp_path / "ck.safetensors", out, num_classes=10)
        assert result.exit_code == 0, result.output
        with safe_open(out, framework="pt") as handle:
            torch.testing.assert_close(
                handle.get_tensor("embeddings"), expected_embeddings(model, [images["dog"]])
            )

    def test_npy_holds_the_array_alone(self, tmp_path, images, headless):
        checkpoint, model = headless
        out = tmp_path / "emb.npy"
        assert embed([images["cat"], images["dog"]], checkpoint, out).exit_code == 0
        array = np.load(out, allow_pickle=False)
        assert array.dtype == np.float32
        expected = expected_embeddings(model, [images["cat"], images["dog"]])
        torch.testing.assert_close(torch.from_numpy(array), expected)

    def test_batches_give_the_same_rows_in_the_order_given(self, tmp_path, images, headless):
        checkpoint, _ = headless
        order = [images["dog"], images["cat"], images["dog"]]
        one, all_at_once = tmp_path / "one.npy", tmp_path / "all.npy"
        assert embed(order, checkpoint, one, "--batch-size", "1").exit_code == 0
        assert embed(order, checkpoint, all_at_once).exit_code == 0
        np.testing.assert_allclose(np.load(one), np.load(all_at_once), atol=1e-5)
        np.testing.assert_allclose(np.load(one)[0], np.load(one)[2], atol=1e-6)

    def test_unreadable_files_are_one_line_each_and_the_others_are_embedded(self, tmp_path, images, headless):
        checkpoint, _ = headless
        out = tmp_path / "emb.safetensors"
        files = [images["cat"], images["text"], images["dog"]]
        result = embed(files, checkpoint, out, "--json")
        assert result.exit_code == 1
        [line] = result.stderr.splitlines()
        assert line.startswith(f"zoo: error: {images['text']}: ")
        assert json.loads(result.stdout) == {
            "model": VIT,
            "output": str(out),
            "files": [str(images["cat"]), str(images["dog"])],
            "embedding_size": 48,
            "failed": [
                {"file": str(images["text"]), "error": json.loads(result.stdout)["failed"][0]["error"]}
            ],
        }
        assert "not an image" in json.loads(result.stdout)["failed"][0]["error"]

    def test_nothing_is_written_when_no_image_could_be_read(self, tmp_path, images, headless):
        checkpoint, _ = headless
        out = tmp_path / "emb.safetensors"
        result = embed([images["text"]], checkpoint, out, "--json")
        assert result.exit_code == 1
        assert json.loads(result.stdout)["output"] is None
        assert not out.exists()


class TestEmbedRefuses:
    def test_an_existing_output_unless_forced(self, tmp_path, images, headless):
        checkpoint, _ = headless
        out = tmp_path / "emb.npy"
        out.write_bytes(b"previous")
        result = embed([images["cat"]], checkpoint, out)
        assert result.exit_code == 2
        assert result.stderr == f"zoo: error: --output {out}: exists; pass --force to overwrite it\n"
        assert out.read_bytes() == b"previous"
        assert embed([images["cat"]], checkpoint, out, "--force").exit_code == 0
        assert np.load(out).shape == (1, 48)

    @pytest.mark.parametrize("which", ["image", "checkpoint"])
    def test_writing_over_an_input_even_forced(self, tmp_path, images, headless, which):
        checkpoint, _ = headless
        target = images["cat"] if which == "image" else checkpoint
        link = tmp_path / "out.safetensors"
        link.symlink_to(target)
        before = target.read_bytes()
        result = embed([images["cat"]], checkpoint, link, "--force")
        assert result.exit_code == 2
        assert f"is the input {target}" in result.stderr and len(result.stderr.splitlines()) == 1
        assert target.read_bytes() == before

    @pytest.mark.parametrize(
        ("output", "message"),
        [
            ("emb.pt", "'.pt'; embeddings are written as .safetensors or .npy"),
            ("no/such/dir/e.npy", "does not exist"),
        ],
    )
    def test_an_output_it_cannot_write_before_loading_the_model(self, tmp_path, images, output, message):
        not_a_checkpoint = images["text"]
        result = embed([images["cat"]], not_a_checkpoint, tmp_path / output)
        assert result.exit_code == 2
        assert message in result.stderr and len(result.stderr.splitlines()) == 1
        assert "notes.txt" not in result.stderr

    def test_device_meta(self, tmp_path, images, headless):
        checkpoint, _ = headless
        result = embed([images["cat"]], checkpoint, tmp_path / "e.npy", "--device", "meta")
        assert result.exit_code == 2 and "meta" in result.stderr


class TestPredictPointsToEmbed:
    def test_a_model_without_head_is_refused_in_one_line(self, images, headless):
        checkpoint, _ = headless
        result = run(
            "predict",
            VIT,
            str(images["cat"]),
            "--checkpoint",
            str(checkpoint),
            "--num-classes",
            "0",
            *VIT_ARGS,
        )
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"zoo: error: {VIT} has no classifier head: it gives embeddings; "
            f"write them with 'zoo embed {VIT} IMAGE... -o OUT.safetensors'\n"
        )

    def test_predict_embeddings_writes_what_embed_writes(self, tmp_path, images, headless):
        checkpoint, _ = headless
        common = ["--checkpoint", str(checkpoint), "--num-classes", "0", *VIT_ARGS]
        by_predict, by_embed = tmp_path / "p.safetensors", tmp_path / "e.safetensors"
        files = [str(images["cat"]), str(images["dog"])]
        assert run("predict", VIT, *files, *common, "--embeddings", str(by_predict)).exit_code == 0
        assert run("embed", VIT, *files, *common, "-o", str(by_embed)).exit_code == 0
        with safe_open(by_predict, framework="pt") as p, safe_open(by_embed, framework="pt") as e:
            torch.testing.assert_close(p.get_tensor("embeddings"), e.get_tensor("embeddings"))
            assert p.metadata()["files"] == e.metadata()["files"]
