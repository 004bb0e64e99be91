"""AOTInductor packages: compiled, verified, and run by `zoo predict` and `zoo embed` with no build.

Two families are compiled (about half a minute each on two cores): an image model, run
through the command line as a user would, and a sequence model at lengths of its own.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
from tests.kinds import smallest_of_each_builder
from zoo.cli import cli
from zoo.tasks import export_pt2
from zoo.tasks.graph_export import export_graph
from zoo.tasks.packaged import package_metadata, package_predictor

ENTRIES = smallest_of_each_builder()


def run(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_an_image_package_classifies_and_embeds_as_the_model_does_with_no_build(tmp_path):
    name = ENTRIES["resnet"]
    args = {**zoo.default_registry().builder("resnet").family.test_args, "num_classes": 3}
    torch.manual_seed(0)
    model = zoo.create(name, **args)
    checkpoint = tmp_path / "model.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(checkpoint))
    (tmp_path / "classes.txt").write_text("ant\nbee\ncat\n")
    rng = np.random.default_rng(0)
    images = []
    for index, shape in enumerate([(40, 50, 3), (64, 30, 3)]):
        images.append(tmp_path / f"image{index}.png")
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(images[-1])
    flags = [
        item
        for key, value in args.items()
        if key != "num_classes"
        for item in ("-a", f"{key}={json.dumps(value)}")
    ]
    package = tmp_path / "model.pt2"

    exported = run("export", name, "--checkpoint", checkpoint, *flags, "--num-classes", 3,
                   "--labels", tmp_path / "classes.txt", "--format", "pt2", "-o", package, "--json")  # fmt: skip
    assert exported.exit_code == 0, exported.output
    report = json.loads(exported.stdout)
    assert report["files"] == [str(package)] and report["size_bytes"] == package.stat().st_size
    assert report["max_abs_diff"] <= report["tolerance"] == 1e-4
    recorded = package_metadata(package)
    assert recorded["name"] == name and recorded["labels"] == {"set": None, "names": ["ant", "bee", "cat"]}

    eager = ["predict", name, *images, "--checkpoint", checkpoint, *flags, "--num-classes", 3,
             "--labels", tmp_path / "classes.txt", "--json", "--topk", 3]  # fmt: skip
    packaged = run("predict", package, *images, "--json", "--topk", 3)
    assert packaged.exit_code == 0, packaged.output
    expected, got = json.loads(run(*eager).stdout)["results"], json.loads(packaged.stdout)["results"]
    assert [r["file"] for r in got] == [r["file"] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert [p["label"] for p in mine["predictions"]] == [p["label"] for p in theirs["predictions"]]
        probabilities = [[p["probability"] for p in r["predictions"]] for r in (mine, theirs)]
        np.testing.assert_allclose(*probabilities, atol=1e-5)

    embedded = run("embed", package, *images, "-o", tmp_path / "packaged.npy")
    assert embedded.exit_code == 0, embedded.output
    run(
        "embed",
        name,
        *images,
        "--checkpoint",
        checkpoint,
        *flags,
        "--num-classes",
        3,
        "-o",
        tmp_path / "eager.npy",
    )
    np.testing.assert_allclose(np.load(tmp_path / "packaged.npy"), np.load(tmp_path / "eager.npy"), atol=1e-5)

    refused = run("predict", package, *images, "--num-classes", 3)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"zoo: error: --num-classes: {package} is a compiled package, its weights, head, dtype and "
        "device fixed when it was exported; it runs on the CPU\n"
    )


def test_a_sequence_package_takes_other_batch_sizes_and_lengths_and_is_refused_by_predict(tmp_path):
    name = ENTRIES["text_transformer"]
    family = zoo.default_registry().builder("text_transformer").family
    args = dict(family.test_args)
    torch.manual_seed(0)
    model = zoo.create(name, **args).eval()
    checkpoint = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(checkpoint))
    package = tmp_path / "text.pt2"

    report = export_graph(name, package, format="pt2", checkpoint=checkpoint, model_args=args)
    assert report.max_abs_diff <= 1e-4 and report.metadata["inputs"] == ["tokens"]

    compiled = export_pt2.load(package)
    config = zoo.default_registry().build_config(zoo.default_registry().resolve(name), args)
    for batch, length in [(1, 3), (5, 20)]:
        (tokens,) = family.example_input(config, batch=batch, seq_len=length)
        [logits] = compiled([tokens])
        with torch.no_grad():
            torch.testing.assert_close(logits, model(tokens), atol=1e-4, rtol=0)

    with pytest.raises(zoo.ArgumentError, match=r"is a sequence-classification model; prediction serves"):
        package_predictor(package)


def test_without_a_c_plus_plus_compiler_the_export_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    result = run("export", "resnet18", "--format", "pt2", "-o", tmp_path / "m.pt2")
    assert result.exit_code == 1
    assert result.stderr == (
        f"zoo: error: exporting an AOTInductor package needs a C++ compiler, and "
        f"'{tmp_path / 'no-such-compiler'}' is not on the PATH: install one (g++ or clang++; $CXX names another)\n"
    )
    assert not (tmp_path / "m.pt2").exists()
