"""`zoo export --format onnx|pt2`: the published weights by default, the report, and the options
of one format refused by the other."""

from __future__ import annotations

import json

import onnxruntime
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from zoo.cli import cli
from zoo.tasks import export_onnx
from zoo.tasks.graph_export import METADATA_KEY

SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 1, "num_heads": 3}
PREPROCESSING = {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop_pct": 0.9}


def run(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_onnx_of_the_published_weights_of_a_tag_served_by_the_test_hub(
    hub, make_registry, use_registry, tmp_path
):
    torch.manual_seed(0)
    model = zoo.create("vit_tiny_patch16_224", **SHAPE, num_classes=1000).eval()
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    hub.publish("test/tiny_vit.in1k", {"model.safetensors": tmp_path / "model.safetensors"})
    tag = {"hf_hub_id": "test/tiny_vit.in1k", "num_classes": 1000, "labels": "imagenet-1k",
           "license": "apache-2.0", "preprocessing": PREPROCESSING}  # fmt: skip
    entry = {"builder": "vit", "args": SHAPE, "weights": {"in1k": tag}}
    use_registry(make_registry(json.dumps({"models": {"tiny_vit": entry}})))
    output = tmp_path / "tiny.onnx"

    result = run("export", "tiny_vit.in1k", "--format", "onnx", "-o", output, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"output", "format", "model", "weights", "dtype", "files", "size_bytes", "max_abs_diff",
                           "tolerance", "batch_sizes", "export_s", "verify_s", "metadata"}  # fmt: skip
    assert (
        report["weights"] == "tiny_vit.in1k" and report["format"] == "onnx" and report["dtype"] == "float32"
    )
    assert report["files"] == [str(output)] and report["size_bytes"] == output.stat().st_size
    assert report["max_abs_diff"] <= 1e-4 and report["batch_sizes"] == [1, 3]
    recorded = json.loads(export_onnx.read_metadata(output)[METADATA_KEY])
    assert recorded == report["metadata"]
    assert recorded["weight_tag"] == "tiny_vit.in1k" and recorded["labels"] == {
        "set": "imagenet-1k",
        "names": None,
    }
    assert recorded["preprocessing"]["mean"] == [0.5, 0.5, 0.5]

    images = torch.randn(2, 3, 32, 32)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    [logits, _] = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(images), atol=1e-4, rtol=0)

    again = run("export", "tiny_vit.in1k", "--format", "onnx", "-o", output)
    assert again.exit_code == 2
    assert again.stderr == f"zoo: error: --output {output}: exists; pass --force to overwrite it\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "onnx", "-o", "m.onnx", "--license", "mit"],
         "--license: only for --format folder, the folder to publish on the Hub"),
        (["--format", "pt2", "-o", "m.pt2", "-p", "crop_pct=1.0", "--repo-id", "me/m"],
         "--preprocessing, --repo-id: only for --format folder, the folder to publish on the Hub"),
        (["--checkpoint", "{checkpoint}", "-o", "out", "--tolerance", "0.1", "--force"],
         "--tolerance, --force: only for --format onnx or pt2; a folder holds the checkpoint as it is"),
        (["--checkpoint", "{checkpoint}", "-o", "out", "--dtype", "bfloat16"],
         "--dtype: only for --format onnx or pt2; a folder holds the checkpoint as it is"),
        (["--format", "onnx", "-o", "m.pt2"], "output 'm.pt2': an ONNX file is named *.onnx"),
        (["--format", "onnx", "-o", "m.onnx", "--dtype", "bfloat16"],
         "dtype 'bfloat16': ONNX files are written in float32, float16"),
        (["--format", "onnx", "-o", "m.onnx", "-a", "dtype=float16", "--dtype", "float32"],
         "-a dtype=float16 and --dtype float32 disagree: give one of them"),
    ],
)  # fmt: skip
def test_the_options_of_one_format_are_refused_by_the_other_before_any_work(
    args, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck.safetensors").write_bytes(b"never read")
    args = [arg.format(checkpoint=tmp_path / "ck.safetensors") for arg in args]
    result = run("export", "resnet18", *args)
    assert result.exit_code == 2
    assert result.stderr == f"zoo: error: {message}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ck.safetensors"]


def test_a_folder_still_needs_its_checkpoint(tmp_path):
    result = run("export", "resnet18", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "Missing option '--checkpoint': a folder to publish holds a trained checkpoint." in result.stderr
