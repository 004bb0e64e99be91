"""The command line: thin, fast, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from zoo.cli import cli


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_list_shows_names_attention_and_weights(run):
    result = run("list", "resnet50")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "BUILDER", "ATTENTION", "WEIGHTS"]
    rows = {line.split()[0]: line.split(maxsplit=3)[1:] for line in lines[1:]}
    assert rows["resnet50_cbam"] == ["resnet", "cbam", "-"]
    assert rows["seresnet50"][:2] == ["resnet", "se"]
    assert "a1_in1k" in rows["seresnet50"][2].split(", ")


def test_list_pretrained_as_json(run):
    result = run("list", "--pretrained", "vit_base_patch16_224_in21k*", "--json")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [
        "vit_base_patch16_224_in21k.augreg_in21k",
        "vit_base_patch16_224_in21k.orig_in21k",
    ]
    assert rows[1] == {
        "name": "vit_base_patch16_224_in21k.orig_in21k",
        "builder": "vit",
        "hf_hub_id": "timm/vit_base_patch16_224.orig_in21k",
        "task": "image-embedding",
        "num_classes": None,
        "license": "apache-2.0",
        "paper": "https://arxiv.org/abs/2010.11929",
        "num_params": 85_798_656,
        "gmacs": 17.56,
        "imagenet": None,
    }


def test_list_with_no_match_says_so_and_fails(run):
    result = run("list", "transformerxl")
    assert result.exit_code == 1
    assert result.stderr == "zoo: no model match '*transformerxl*'\n"


def test_list_as_json_with_no_match_prints_an_empty_list(run):
    for args in (["list", "transformerxl", "--json"], ["list", "--pretrained", "transformerxl", "--json"]):
        result = run(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", "")


@pytest.mark.parametrize(
    "pattern", ["cbam", "resnet50", "resnet50*", "*_eca", "vit_?ase*", "in21k", "nomatch"]
)
def test_zoo_list_and_the_python_api_pick_the_same_names(run, pattern):
    models = json.loads(run("list", pattern, "--json").stdout)
    weights = json.loads(run("list", "--pretrained", pattern, "--json").stdout)
    assert [row["name"] for row in models] == zoo.list_models(pattern)
    assert [row["name"] for row in weights] == zoo.list_pretrained(pattern)


def test_without_wildcards_the_python_api_matches_names_containing_the_pattern():
    assert zoo.list_models("cbam") == ["resnet101_cbam", "resnet18_cbam", "resnet34_cbam", "resnet50_cbam"]
    assert zoo.list_models("cbam") == zoo.list_models("*cbam*")
    assert zoo.list_pretrained("augreg_in21k") == zoo.list_pretrained("*augreg_in21k*") != []


def test_info_prints_architecture_parameters_and_weights(run):
    result = run("info", "ecaresnet50d")
    assert result.exit_code == 0
    assert "  parameters:  25,576,350" in result.stdout
    assert "    stem_type = deep" in result.stdout
    assert (
        "    miil_in1k (default): timm/ecaresnet50d.miil_in1k, image-classification, 1000 classes (imagenet-1k), apache-2.0"
        in result.stdout
    )
    assert "input 3x224x224, crop 0.875 bicubic" in result.stdout
    assert (
        "  task:        image-classification\n  tasks:       image-classification, image-embedding\n"
        in result.stdout
    )
    assert "weights:     none published" in run("info", "text_transformer_small").stdout
    assert (
        "weights:     none of its own; pretrained=True loads resnet34.a1_in1k"
        in run("info", "resnet34_eca").stdout
    )


def test_info_shows_each_tags_published_accuracy_parameters_and_gmacs(run):
    weights = {w.tag: w for w in zoo.model_info("vit_base_patch16_224_in21k").weights}
    stdout = run("info", "vit_base_patch16_224_in21k").stdout
    for tag in weights:
        stated = f"{weights[tag].num_params / 1e6:.1f} M parameters, {weights[tag].gmacs:.4g} GMACs"
        assert f"      {stated}\n" in stdout  # no ImageNet-1k result: the cost alone
    [result] = [w.imagenet for w in zoo.model_info("ecaresnet50d").weights]
    accuracy = f"ImageNet-1k top-1 {result.top1:.2f}, top-5 {result.top5:.2f} at {result.img_size}"
    assert (
        f"      {accuracy} (crop {result.crop_pct} {result.interpolation}); "
        in run("info", "ecaresnet50d").stdout
    )


def test_info_json_matches_model_info(run):
    result = run("info", "resnet18", "--json")
    assert json.loads(result.stdout) == zoo.model_info("resnet18").model_dump(mode="json")


def test_create_builds_with_overrides_and_summarises(run):
    result = run(
        "create", "resnet18", "-a", "attn={name: cbam, kernel_size: 3}", "--num-classes", "7", "--json"
    )
    summary = json.loads(result.stdout)
    expected = zoo.create("resnet18", attn={"name": "cbam", "kernel_size": 3}, num_classes=7)
    assert summary["parameters"] == sum(p.numel() for p in expected.parameters())
    assert (summary["class"], summary["device"], summary["dtype"]) == ("ResNet", "cpu", "float32")


def test_create_on_meta_in_bfloat16(run):
    result = run("create", "vit_large_patch16_224", "--device", "meta", "--dtype", "bf16")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "vit_large_patch16_224: VisionTransformer with 304,326,632 parameters on meta (bfloat16)"
    )


def test_create_loads_a_local_checkpoint(run, tmp_path):
    model = zoo.create("resnet18", num_classes=3, layers=[1, 1, 1, 1])
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    result = run(
        "create",
        "resnet18",
        "--checkpoint",
        str(tmp_path / "model.safetensors"),
        "-a",
        "layers=[1,1,1,1]",
        "--num-classes",
        "3",
    )
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (("info", "resnet5"), 2, "zoo: error: unknown model 'resnet5'; did you mean 'resnet50', "),
    (("create", "vit_base_patch16_224.foo"), 2, "zoo: error: unknown weight tag 'foo' for 'vit_base_patch16_224'"),
    (("create", "resnet18", "-a", "depth=3"), 2, "zoo: error: resnet18: unknown argument 'depth' for builder 'resnet'"),
    (("create", "resnet18", "-a", "attn={name: cbam, kernel_size: 5}"), 2, "option 'kernel_size': Input should be 3 or 7"),
    (("create", "resnet18", "--device", "npu:0"), 2, "zoo: error: "),
    (("create", "resnet18", "--dtype", "int4"), 2, "zoo: error: unknown dtype 'int4'"),
    (("create", "text_transformer_small", "--pretrained"), 2, "zoo: error: 'text_transformer_small' has no published weights"),
    (("create", "resnet18", "--checkpoint", "absent.safetensors"), 2, "zoo: error: Invalid value for '--checkpoint': Path 'absent.safetensors' does not exist."),
    (("create", "resnet18", "-a", "noequals"), 2, "zoo: error: Invalid value for '-a/--arg': 'noequals' is not KEY=VALUE (see 'cli create --help')"),
    (("create",), 2, "zoo: error: Missing argument 'NAME'."),
    (("lsit",), 2, "zoo: error: No such command 'lsit'. Did you mean 'list'?"),
])  # fmt: skip
def test_bad_input_is_one_line_and_a_nonzero_exit(run, args, code, message):
    result = run(*args)
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_validate_reports_every_problem_and_exits_1(run, write_registry):
    good = write_registry("models:\n  net:\n    builder: resnet\n    args: {layers: [1, 1, 1, 1]}\n")
    assert run("validate", str(good)).stdout == "ok: 1 file(s) valid\n"
    bad = write_registry(
        "models:\n  a:\n    builder: nope\n  b:\n    builder: vit\n    args: {depth: deep}\n"
    )
    result = run("validate", str(good), str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:3: entry 'a': field 'builder': builder 'nope' is not registered: "
        "install the plugin that provides it, then validate",
        f"{bad}:6: entry 'b': field 'args.depth': Input should be a valid integer, unable to parse string as an integer",
        "zoo: 2 problem(s) in 2 file(s)",
    ]


def test_validate_without_files_checks_the_installed_registry(run):
    import zoo_plugins

    registry_files = list((Path(zoo_plugins.__file__).parent / "registry").glob("*.yaml"))
    result = run("validate")
    assert (result.exit_code, result.stdout) == (0, f"ok: {len(registry_files)} file(s) valid\n")


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--pretrained", "--json"]])
def test_help_and_list_do_not_import_torch(args):
    script = "import sys; from zoo.cli import cli; cli.main(sys.argv[1:], standalone_mode=False); " \
             "assert 'torch' not in sys.modules, 'torch was imported'"  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout


def test_a_reader_that_stops_early_ends_the_listing_quietly():
    """`zoo list --pretrained | head -1`: no error line about the closed pipe."""
    listing = subprocess.Popen(
        [sys.executable, "-m", "zoo", "list", "--pretrained"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    first_line = listing.stdout.readline()
    listing.stdout.close()  # as `head -1` exits
    stderr = listing.stderr.read()
    listing.wait()
    assert first_line.startswith(b"NAME")
    assert stderr == b""
    assert listing.returncode != 0
