"""`zoo predict`, `zoo attn` and `zoo bench`, through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

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
CBAM_SHAPE = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "zero_init_last": False}
CBAM_ARGS = ["-a", "layers=[1, 1, 1, 1]", "-a", "channels=[8, 16, 32, 64]", "-a", "zero_init_last=false"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def save_model(path, name: str, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    model = zoo.create(name, **args).eval()
    save_file(model.state_dict(), path)
    return model


def probabilities(model: torch.nn.Module, paths, **model_args) -> torch.Tensor:
    transform = zoo.transforms(VIT, model_args=model_args)
    x = torch.stack([transform(zoo.load_image(p)) for p in paths])
    with torch.no_grad():
        return model(x).softmax(dim=-1)


class TestPredict:
    def test_top_k_for_each_image_and_one_line_for_each_unreadable_file(self, tmp_path, images):
        model = save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=10)
        files = [images["cat"], images["text"], images["dog"]]
        result = run(
            "predict",
            VIT,
            *map(str, files),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "10",
            *VIT_ARGS,
            "--topk",
            "3",
            "--json",
        )
        assert result.exit_code == 1
        [error] = result.stderr.splitlines()
        assert error.startswith("zoo: error: ") and str(images["text"]) in error
        assert "not an image" in error

        report = json.loads(result.stdout)
        assert [r["file"] for r in report["results"]] == [str(images["cat"]), str(images["dog"])]
        assert [f["file"] for f in report["failed"]] == [str(images["text"])]
        expected = probabilities(model, [images["cat"], images["dog"]], **VIT_SHAPE)
        for entry, row in zip(report["results"], expected, strict=True):
            values, indices = row.topk(3)
            assert [p["index"] for p in entry["predictions"]] == indices.tolist()
            assert [p["probability"] for p in entry["predictions"]] == pytest.approx(
                values.tolist(), abs=1e-6
            )

    def test_imagenet_names_for_a_head_of_1000_classes(self, tmp_path, images):
        model = save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=1000)
        result = run(
            "predict",
            VIT,
            str(images["cat"]),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            *VIT_ARGS,
            "--topk",
            "1",
        )
        assert result.exit_code == 0, result.output
        top = int(probabilities(model, [images["cat"]], **VIT_SHAPE)[0].argmax())
        rows = (files("zoo") / "data" / "imagenet-1k.tsv").read_text().splitlines()
        name = rows[top].split("\t")[2]
        lines = result.stdout.splitlines()
        assert lines[0] == str(images["cat"])
        assert name in lines[1] and f"[{top}]" in lines[1] and "%" in lines[1]

    def test_class_names_from_a_labels_file(self, tmp_path, images):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=3)
        (tmp_path / "classes.txt").write_text("apple\nbanana\ncherry\n")
        result = run(
            "predict",
            VIT,
            str(images["dog"]),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "3",
            "--labels",
            str(tmp_path / "classes.txt"),
            *VIT_ARGS,
            "--json",
        )
        assert result.exit_code == 0, result.output
        [entry] = json.loads(result.stdout)["results"]
        assert sorted(p["label"] for p in entry["predictions"]) == ["apple", "banana", "cherry"]

    def test_headless_checkpoint_prints_its_embedding_size_and_writes_embeddings(self, tmp_path, images):
        model = save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=0)
        out = tmp_path / "emb.safetensors"
        result = run(
            "predict",
            VIT,
            str(images["cat"]),
            str(images["text"]),
            str(images["dog"]),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "0",
            *VIT_ARGS,
            "--embeddings",
            str(out),
        )
        assert result.exit_code == 1  # the text file
        assert "embedding size: 48" in result.stdout
        assert f"wrote {out}: 2 embedding(s) of size 48" in result.stdout
        transform = zoo.transforms(VIT, model_args=VIT_SHAPE)
        x = torch.stack([transform(zoo.load_image(images[k])) for k in ("cat", "dog")])
        with torch.no_grad():
            expected = model(x)
        with safe_open(out, framework="pt") as handle:
            torch.testing.assert_close(handle.get_tensor("embeddings"), expected)
            assert json.loads(handle.metadata()["files"]) == [str(images["cat"]), str(images["dog"])]

    def test_nothing_is_written_when_no_image_could_be_read(self, tmp_path, images):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=0)
        out = tmp_path / "emb.safetensors"
        result = run(
            "predict",
            VIT,
            str(images["text"]),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "0",
            *VIT_ARGS,
            "--embeddings",
            str(out),
        )
        assert result.exit_code == 1
        assert not out.exists()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--embeddings", "no/such/dir/e.safetensors"], "does not exist"),
            (["--topk", "0"], "--topk"),
            (["--checkpoint", "missing.safetensors"], "missing.safetensors"),
            (["-a", "depht=2"], "depht"),
        ],
    )
    def test_bad_arguments_end_in_one_line(self, tmp_path, images, args, message):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=10)
        base = ["--checkpoint", str(tmp_path / "ck.safetensors"), "--num-classes", "10", *VIT_ARGS]
        result = run("predict", VIT, str(images["cat"]), *base, *args)
        assert result.exit_code in (1, 2)
        assert message in result.stderr
        assert "Traceback" not in result.output
        assert not (tmp_path / "no").exists()


class TestAttn:
    @pytest.mark.parametrize("method", [None, "rollout", "last"])
    def test_vit_map_is_a_png_of_the_images_size(self, tmp_path, images, method):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=10)
        out = tmp_path / "map.png"
        extra = ["--method", method] if method else []
        result = run(
            "attn",
            VIT,
            str(images["dog"]),
            "-o",
            str(out),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "10",
            *VIT_ARGS,
            *extra,
        )
        assert result.exit_code == 0, result.output
        assert f"{method or 'rollout'} attention" in result.stdout
        with Image.open(out) as picture:
            assert picture.format == "PNG"
            width, height = Image.open(images["dog"]).size
            assert picture.width > width and picture.height > height  # titled, with a colour bar
            assert picture.mode == "RGB"

    def test_cbam_stage_map(self, tmp_path, images):
        save_model(tmp_path / "ck.safetensors", "resnet18_cbam", **CBAM_SHAPE, num_classes=10)
        out = tmp_path / "stage2.png"
        result = run(
            "attn",
            "resnet18_cbam",
            str(images["cat"]),
            "-o",
            str(out),
            "--stage",
            "2",
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "10",
            *CBAM_ARGS,
        )
        assert result.exit_code == 0, result.output
        assert "stage2 attention" in result.stdout and "28x28 map" in result.stdout
        with Image.open(out) as picture:
            # The map is drawn: inside the centre crop the picture is not the dimmed image.
            original = np.asarray(Image.open(images["cat"]).convert("RGB"), dtype=float)
            drawn = np.asarray(picture, dtype=float)
            assert not any(
                np.allclose(drawn[y + 20, x + 28], np.round(original[20, 28] * 0.35))
                for x in range(picture.width - 57)
                for y in range(picture.height - 41)
            )

    def test_a_map_the_model_does_not_have(self, tmp_path, images):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=10)
        out = tmp_path / "map.png"
        out.write_bytes(b"previous")
        result = run(
            "attn",
            VIT,
            str(images["cat"]),
            "-o",
            str(out),
            "--stage",
            "2",
            "--force",
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "10",
            *VIT_ARGS,
        )
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "zoo: error: --stage 2: vit_tiny_patch16_224 has no such map; it offers "
            "rollout (--method rollout), last (--method last)"
        )
        assert out.read_bytes() == b"previous"

    def test_unreadable_image_writes_nothing(self, tmp_path, images):
        save_model(tmp_path / "ck.safetensors", VIT, **VIT_SHAPE, num_classes=10)
        out = tmp_path / "map.png"
        result = run(
            "attn",
            VIT,
            str(images["text"]),
            "-o",
            str(out),
            "--checkpoint",
            str(tmp_path / "ck.safetensors"),
            "--num-classes",
            "10",
            *VIT_ARGS,
        )
        assert result.exit_code == 1
        assert len(result.stderr.splitlines()) == 1 and "not an image" in result.stderr
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "cat.png",
            "ck.safetensors",
            "dog.jpg",
            "notes.txt",
        ]

    def test_method_and_stage_exclude_each_other(self, images, tmp_path):
        result = run(
            "attn", VIT, str(images["cat"]), "-o", str(tmp_path / "m.png"), "--method", "last", "--stage", "1"
        )
        assert result.exit_code == 2 and "exclude each other" in result.stderr


class TestBench:
    def test_json_fields(self):
        result = run(
            "bench",
            VIT,
            *VIT_ARGS,
            "-a",
            "num_classes=10",
            "--batch",
            "2",
            "--runs",
            "2",
            "--warmup",
            "1",
            "--min-time",
            "0",
            "--json",
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert {
            "name",
            "mode",
            "device",
            "device_name",
            "dtype",
            "batch",
            "input_size",
            "compiled",
            "channels_last",
            "params",
            "gflops_per_sample",
            "samples_per_s",
            "step_ms",
            "runs_samples_per_s",
            "steps_per_run",
            "timed_s",
            "warmup_s",
            "achieved_tflops",
            "peak_tflops",
            "peak_fraction",
            "peak_memory_mb",
            "cpu_threads",
            "torch_version",
        } <= set(report)
        assert report["name"] == VIT and report["mode"] == "inference"
        assert report["batch"] == 2 and report["input_size"] == [3, 32, 32]
        assert report["params"] == sum(
            p.numel() for p in zoo.create(VIT, **VIT_SHAPE, num_classes=10).parameters()
        )
        assert report["samples_per_s"] > 0 and len(report["runs_samples_per_s"]) == 2
        assert report["gflops_per_sample"] > 0
        assert report["peak_fraction"] is None  # no known peak for a CPU

    def test_text_report_for_a_train_step(self):
        result = run(
            "bench",
            VIT,
            *VIT_ARGS,
            "--batch",
            "2",
            "--runs",
            "1",
            "--warmup",
            "1",
            "--min-time",
            "0",
            "--train",
        )
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"{VIT} train on cpu") and "batch 2 of 3x32x32" in lines[0]
        assert "samples/s" in lines[1] and "GFLOPs per sample" in lines[2]

    def test_unknown_dtype_is_one_line(self):
        result = run("bench", VIT, "--dtype", "float8")
        assert result.exit_code == 2
        assert result.stderr.startswith("zoo: error: unknown dtype 'float8'")


def test_help_of_the_commands_imports_neither_torch_nor_pil():
    code = (
        "import sys; from click.testing import CliRunner; from zoo.cli import cli\n"
        "for command in ('predict', 'attn', 'bench', 'attention', 'export', 'create', 'cache'):\n"
        "    assert CliRunner().invoke(cli, [command, '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'PIL') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
