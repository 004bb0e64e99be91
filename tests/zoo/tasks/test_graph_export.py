"""`zoo.tasks.graph_export` to ONNX: every family exports, verified, or is refused in one line.

Each family's smallest registry entry is exported at its family's test size (`test_args`)
from a checkpoint made here, and the file is run again by onnxruntime, apart from the
export's own check, against the model `zoo.create` loads from the same checkpoint.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors.torch import save_file

import zoo
from tests.kinds import smallest_of_each_builder
from zoo.tasks import export_onnx
from zoo.tasks.graph_export import METADATA_KEY, TOLERANCES, VERIFY_BATCHES, export_graph

ENTRIES = smallest_of_each_builder()

# Families whose forward cannot be one graph with dynamic lengths, and why.
REFUSED = {
    "seq2seq_lstm": "cannot be exported with a dynamic length of 'target': its forward fixes it at 12 "
    "(a Python loop over its steps, or a size it branches on)",
}


def family_of(builder: str):
    return zoo.default_registry().builder(builder).family


def make_checkpoint(path, name: str, **args) -> torch.nn.Module:
    torch.manual_seed(0)
    model = zoo.create(name, **args)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    return model.eval()


@pytest.mark.parametrize("builder", sorted(ENTRIES), ids=str)
def test_every_family_exports_to_onnx_verified_or_is_refused_in_one_line(builder, tmp_path):
    name, args = ENTRIES[builder], dict(family_of(builder).test_args)
    checkpoint = tmp_path / "model.safetensors"
    model = make_checkpoint(checkpoint, name, **args)
    output = tmp_path / "model.onnx"
    if builder in REFUSED:
        with pytest.raises(zoo.ArgumentError) as refused:
            export_graph(name, output, format="onnx", checkpoint=checkpoint, model_args=args)
        assert str(refused.value) == f"{name} {REFUSED[builder]}"
        assert sorted(path.name for path in tmp_path.iterdir()) == ["model.safetensors"]
        return

    report = export_graph(name, output, format="onnx", checkpoint=checkpoint, model_args=args)
    assert report.files == [output] and report.size_bytes == output.stat().st_size
    assert 0 <= report.max_abs_diff <= TOLERANCES["float32"] == report.tolerance
    assert report.batch_sizes == VERIFY_BATCHES and report.export_s > 0 and report.verify_s > 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx", "model.safetensors"]

    # Run again here, at a batch size and length of its own, against the model as zoo.create loads it.
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    config = zoo.default_registry().build_config(zoo.default_registry().resolve(name), args)
    torch.manual_seed(1)
    inputs = family_of(builder).example_input(config, batch=4, seq_len=5)
    feeds = {
        declared.name: tensor.numpy() for declared, tensor in zip(session.get_inputs(), inputs, strict=True)
    }
    got = session.run(None, feeds)
    with torch.no_grad():
        expected = model(*inputs)
    np.testing.assert_allclose(got[0], expected.numpy(), atol=1e-4, rtol=0)
    if len(got) == 2:  # an image model with a head: its pooled pre-logits features beside its logits
        with torch.no_grad():
            pooled = model.forward_head(model.forward_features(*inputs), pre_logits=True)
        np.testing.assert_allclose(got[1], pooled.numpy(), atol=1e-4, rtol=0)
    recorded = json.loads(export_onnx.read_metadata(output)[METADATA_KEY])
    assert recorded["name"] == name and recorded["weights"] == str(checkpoint)
    assert recorded["inputs"] == [declared.name for declared in session.get_inputs()]
    assert recorded["outputs"] == [declared.name for declared in session.get_outputs()]
    task = zoo.default_registry().task(zoo.default_registry().resolve(name))
    image = task in ("image-classification", "image-embedding")
    assert recorded["outputs"] == (["logits", "embeddings"] if image else ["logits"])
    if image:
        assert recorded["preprocessing"]["input_size"][0] == inputs[0].shape[1]


def test_a_file_that_does_not_match_the_model_is_not_written_and_an_old_one_is_kept(tmp_path):
    name, args = ENTRIES["vit"], dict(family_of("vit").test_args)
    model = zoo.create(name, **args)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))  # broken weights
    checkpoint = tmp_path / "broken.safetensors"
    save_file(state, str(checkpoint))
    output = tmp_path / "model.onnx"
    output.write_bytes(b"the previous export")
    with pytest.raises(zoo.ZooError) as failed:
        export_graph(name, output, format="onnx", checkpoint=checkpoint, model_args=args)
    assert str(failed.value) == (
        f"{name}: the exported onnx file and the model give values that are not finite or not of the "
        "same shapes at batch sizes 1 and 3 (broken weights?): not written"
    )
    assert "\n" not in str(failed.value)
    assert output.read_bytes() == b"the previous export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.safetensors", "model.onnx"]


def test_a_difference_above_the_tolerance_fails_in_one_line_naming_it(tmp_path):
    name, args = ENTRIES["vit"], dict(family_of("vit").test_args)
    checkpoint = tmp_path / "model.safetensors"
    make_checkpoint(checkpoint, name, **args)
    output = tmp_path / "model.onnx"
    with pytest.raises(zoo.ZooError, match=r"differs from the model by [0-9.e-]+ \(largest absolute "
                       r"difference at batch sizes 1 and 3; float32 tolerance 1e-30\): not written$"):  # fmt: skip
        export_graph(name, output, format="onnx", checkpoint=checkpoint, model_args=args, tolerance=1e-30)
    assert not output.exists()


@pytest.mark.parametrize(
    ("output", "options", "message"),
    [
        ("m.pt2", {"format": "onnx"}, "output '{tmp}/m.pt2': an ONNX file is named *.onnx"),
        ("m.onnx", {"format": "tflite"}, "unknown export format 'tflite' (formats: onnx, pt2)"),
        ("m.onnx", {"format": "onnx", "dtype": "bfloat16"},
         "dtype 'bfloat16': ONNX files are written in float32, float16"),
        ("m.onnx", {"format": "onnx", "dtype": "float64"},
         "dtype 'float64': exports are float32, float16, bfloat16"),
        ("m.onnx", {"format": "onnx", "tolerance": -1}, "tolerance=-1.0 must be a number, at least 0"),
        ("no/such/folder/m.onnx", {"format": "onnx"}, "output '{tmp}/no/such/folder/m.onnx': folder '{tmp}/no/such/folder' does not exist"),
    ],
)  # fmt: skip
def test_what_cannot_be_written_is_refused_before_the_model_is_built(tmp_path, output, options, message):
    with pytest.raises(zoo.ArgumentError) as refused:
        export_graph("no_such_model", tmp_path / output, **options)  # the name is never resolved
    assert str(refused.value) == message.format(tmp=tmp_path)


def test_without_the_onnx_extra_the_export_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    with pytest.raises(zoo.ZooError) as missing:
        export_graph("no_such_model", tmp_path / "m.onnx", format="onnx")
    assert str(missing.value) == (
        "exporting to ONNX needs the onnx extra (onnxscript not installed): pip install 'zoo[onnx]'"
    )
