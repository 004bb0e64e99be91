"""`zoo flops`, `zoo info` and `zoo bench` through the command line: the count they show."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from PIL import Image

from zoo.cli import cli

VIT = "vit_tiny_patch16_224"
VIT_ARGS = (
    "-a",
    "img_size=32",
    "-a",
    "patch_size=8",
    "-a",
    "embed_dim=32",
    "-a",
    "depth=2",
    "-a",
    "num_heads=2",
)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_table_labels_macs_and_flops_and_shows_the_attention_terms_apart():
    result = run("flops", "vit_base_patch16_224")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "vit_base_patch16_224: 1 image of 3x224x224, counted on meta"
    assert lines[1].split() == ["operator", "calls", "MACs", "FLOPs", "share", "activations", "Lq", "x", "Lk"]
    rows = {line[:18].strip(): line.split() for line in lines[2:]}
    assert rows["attention QK^T"][-1] == rows["attention AV"][-1] == "197x197"
    assert rows["attention softmax"][3] == "-"  # no multiply-adds: FLOPs only
    assert rows["total"][1:3] == ["17.6G", "35.2G"]
    assert "17.56 GMACs = 35.13 GFLOPs of multiply-adds, + 54.1M FLOPs outside them" in result.stdout
    assert "86,567,656 parameters; 23.9M activations, 95.6 MB in float32" in result.stdout


def test_by_module_down_to_a_depth():
    result = run("flops", "resnet50", "--by", "module", "--depth", "1")
    assert result.exit_code == 0, result.output
    names = [
        line.split()[0]
        for line in result.stdout.splitlines()[2:]
        if line.startswith(("(", "c", "b", "a", "l", "f"))
    ]
    assert names[:4] == ["(model)", "conv1", "bn1", "act1"] and "layer4" in names and "fc" in names
    assert not any(name.startswith("layer1.") for name in names)
    deeper = run("flops", "resnet50", "--by", "module", "--depth", "2").stdout
    assert "  layer1.0 " in deeper


def test_json_is_the_report_with_every_row():
    result = run("flops", VIT, *VIT_ARGS, "--batch", "2", "--dtype", "bfloat16", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["name"] == VIT and report["input_size"] == [3, 32, 32] and report["batch"] == 2
    assert report["flops"] == 2 * report["macs"] and report["activation_bytes"] == 2 * report["activations"]
    labels = [row["label"] for row in report["operators"]]
    assert {"linear", "attention QK^T", "attention softmax", "attention AV"} <= set(labels)
    qk = report["operators"][labels.index("attention QK^T")]
    assert qk["scores"] == [[17, 17]] and qk["flops"] == 2 * qk["macs"]
    assert report["modules"][0]["name"] == "" and report["modules"][0]["macs"] == report["macs"]


def test_a_sequence_model_at_a_length():
    result = run("flops", "text_transformer_small", "--seq-len", "128")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("text_transformer_small: 1 sequence of 128 steps, counted on meta")
    assert "129x129" in result.stdout  # the class token too


def test_plot_draws_the_growth_and_keeps_an_existing_picture_unless_forced(tmp_path):
    output = tmp_path / "growth.png"
    result = run("flops", VIT, *VIT_ARGS, "--plot", str(output), "--sizes", "32,64,128")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"wrote {output}: {VIT} at image sizes 32, 64, 128"
    grows = {line.rsplit(maxsplit=2)[0].strip(): line.split()[-1] for line in result.stdout.splitlines()[2:]}
    assert grows["conv"] == "S^2.0"  # the patches
    assert float(grows["attention QK^T"][2:]) > 1.9 * float(grows["linear"][2:])  # tokens squared
    with Image.open(output) as picture:
        assert picture.format == "PNG" and picture.size == (1000, 600)
    again = run("flops", VIT, *VIT_ARGS, "--plot", str(output), "--sizes", "32,64")
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    forced = run("flops", VIT, *VIT_ARGS, "--plot", str(output), "--sizes", "32,64", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    shown = json.loads(forced.stdout)
    assert shown["axis"] == "image size" and shown["sizes"] == [32, 64]
    assert set(shown["flops"]) == set(shown["exponents"]) and "total" in shown["flops"]


def test_refusals_are_one_line(tmp_path):
    cases = [
        (["vit_base_patch16_224", "--img-size", "100"], "img_size 100 is not a multiple of patch_size 16"),
        (["resnet50", "--seq-len", "8"], "'resnet50' takes images: --seq-len does not apply"),
        (["resnet50", "--depth", "1"], "--depth applies to --by module"),
        (["resnet50", "--sizes", "112,224"], "--sizes applies to --plot"),
        (
            ["resnet50", "--plot", str(tmp_path / "g.png"), "--img-size", "112"],
            "--img-size does not apply to --plot",
        ),
        (["resnet50", "--plot", str(tmp_path / "g.txt")], "cannot tell which image format"),
        (["resnet50", "--plot", str(tmp_path / "g.png"), "--sizes", "1,x"], "not a comma-separated list"),
        (["resnet50", "-a", "device=cuda"], "zoo flops has no --device"),
    ]
    for args, message in cases:
        result = run("flops", *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.splitlines()) == 1 and message in result.stderr, (args, result.stderr)


def test_info_shows_parameters_and_gmacs_at_the_weights_input_size():
    result = run("info", "vit_base_patch16_224")
    assert result.exit_code == 0, result.output
    assert "  parameters:  86,567,656" in result.stdout
    assert "  GMACs:       17.56 at 3x224x224, the input size of the weights' preprocessing" in result.stdout
    shown = json.loads(run("info", "text_transformer_small", "--json").stdout)
    assert shown["macs"] > 0 and shown["macs_input_size"] == [16]


def test_bench_shows_gmacs_beside_gflops():
    quick = ("--batch", "2", "--runs", "1", "--warmup", "1", "--min-time", "0")
    result = run("bench", VIT, *VIT_ARGS, *quick)
    assert result.exit_code == 0, result.output
    assert " GMACs = " in result.stdout and "GFLOPs per sample (2 per multiply-add)" in result.stdout
    report = json.loads(run("bench", "speech_lstm_attn", *quick, "--seq-len", "4", "--json").stdout)
    assert report["gmacs_per_sample"] > 0 and report["gflops_per_sample"] == 2 * report["gmacs_per_sample"]


def test_help_imports_no_torch():
    code = (
        "import sys; from click.testing import CliRunner; from zoo.cli import cli\n"
        "assert CliRunner().invoke(cli, ['flops', '--help']).exit_code == 0\n"
        "print('torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
