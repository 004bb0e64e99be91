"""`-a KEY=VALUE` for keys that are flags of their own, or that no builder takes; and
`--device meta` where a command needs real tensors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from safetensors.torch import save_file

import zoo
from zoo.cli import cli

from .test_use import VIT, VIT_ARGS, VIT_SHAPE, save_model


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ")
    return line


# Each command with what it needs to get as far as reading its -a (nothing there is read).
NOT_READ = __file__  # a file that exists: the flags are refused before any file is read
COMMANDS = {
    "create": ["create", "resnet18"],
    "predict": ["predict", "resnet18", NOT_READ],
    "attn": ["attn", "resnet18", NOT_READ, "-o", "absent.png"],
    "bench": ["bench", "resnet18"],
    "export": ["export", "resnet18", "--checkpoint", NOT_READ, "-o", "absent"],
}


class TestFlagsGivenWithA:
    def test_num_classes_device_and_dtype_act_as_their_flags_in_create(self):
        by_flags = run(
            "create", "resnet18", "--num-classes", "10", "--device", "meta", "--dtype", "bf16", "--json"
        )
        by_a = run(
            "create", "resnet18", "-a", "num_classes=10", "-a", "device=meta", "-a", "dtype=bf16", "--json"
        )
        assert by_a.exit_code == 0, by_a.output
        summary = json.loads(by_a.stdout)
        assert {k: v for k, v in summary.items() if k != "seconds"} == {
            k: v for k, v in json.loads(by_flags.stdout).items() if k != "seconds"
        }
        assert (summary["device"], summary["dtype"]) == ("meta", "bfloat16")
        expected = zoo.create("resnet18", num_classes=10, device="meta")
        assert summary["parameters"] == sum(p.numel() for p in expected.parameters())

    def test_the_same_value_both_ways_is_fine(self):
        result = run("create", "resnet18", "--dtype", "bfloat16", "-a", "dtype=bf16", "--device", "meta")
        assert result.exit_code == 0, result.output
        assert "on meta (bfloat16)" in result.stdout

    @pytest.mark.parametrize(
        ("flag", "assignment", "message"),
        [
            (["--num-classes", "7"], "num_classes=10", "-a num_classes=10 and --num-classes 7 disagree"),
            (["--device", "cpu"], "device=meta", "-a device=meta and --device cpu disagree"),
            (["--dtype", "float16"], "dtype=bfloat16", "-a dtype=bfloat16 and --dtype float16 disagree"),
        ],
    )
    @pytest.mark.parametrize("command", ["create", "predict", "attn"])
    def test_a_flag_and_an_a_that_disagree_are_one_line(self, command, flag, assignment, message):
        line = error_line(run(*COMMANDS[command], *flag, "-a", assignment))
        assert line == f"zoo: error: {message}: give one of them"

    def test_a_num_classes_that_is_not_an_integer(self):
        line = error_line(run("create", "resnet18", "-a", "num_classes=ten"))
        assert line == "zoo: error: -a num_classes=ten: 'ten' is not an integer"

    def test_predict_takes_num_classes_from_a(self, tmp_path, images):
        checkpoint = tmp_path / "ck.safetensors"
        save_model(checkpoint, VIT, **VIT_SHAPE, num_classes=10)
        base = ["predict", VIT, str(images["cat"]), "--checkpoint", str(checkpoint), *VIT_ARGS, "--json"]
        by_flag = run(*base, "--num-classes", "10")
        by_a = run(*base, "-a", "num_classes=10")
        assert by_a.exit_code == 0, by_a.output
        assert json.loads(by_a.stdout) == json.loads(by_flag.stdout)
        assert len(json.loads(by_a.stdout)["results"][0]["predictions"]) == 5

    def test_attn_takes_num_classes_from_a(self, tmp_path, images):
        checkpoint = tmp_path / "ck.safetensors"
        save_model(checkpoint, VIT, **VIT_SHAPE, num_classes=10)
        out = tmp_path / "map.png"
        result = run("attn", VIT, str(images["cat"]), "-o", str(out), "--checkpoint", str(checkpoint),
                     *VIT_ARGS, "-a", "num_classes=10")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert out.is_file()

    def test_export_takes_num_classes_from_a(self, tmp_path):
        model = zoo.create("resnet18", num_classes=3, layers=[1, 1, 1, 1])
        save_file(model.state_dict(), tmp_path / "ck.safetensors")
        base = ["export", "resnet18", "--checkpoint", str(tmp_path / "ck.safetensors"), "--license", "mit",
                "-a", "layers=[1, 1, 1, 1]", "--json"]  # fmt: skip
        by_flag = json.loads(run(*base, "--num-classes", "3", "-o", str(tmp_path / "a")).stdout)
        by_a = json.loads(run(*base, "-a", "num_classes=3", "-o", str(tmp_path / "b")).stdout)
        assert by_a["config"] == by_flag["config"]
        assert by_a["config"]["args"]["num_classes"] == 3

    def test_bench_has_no_num_classes_flag_so_it_is_the_builder_argument(self):
        quick = ["--batch", "1", "--runs", "1", "--warmup", "1", "--min-time", "0", "--json"]
        params = [
            json.loads(run("bench", VIT, *VIT_ARGS, "-a", f"num_classes={n}", *quick).stdout)["params"]
            for n in (0, 10)
        ]
        assert params[1] - params[0] == 48 * 10 + 10

    def test_export_has_no_device_and_a_dtype_for_its_file_formats_only(self):
        line = error_line(run(*COMMANDS["export"], "-a", "device=cpu"))
        assert line == "zoo: error: -a device=cpu: not a builder argument, and zoo export has no --device"
        line = error_line(run(*COMMANDS["export"], "-a", "dtype=bfloat16"))
        assert (
            line
            == "zoo: error: --dtype: only for --format onnx or pt2; a folder holds the checkpoint as it is"
        )


class TestRefusedKeys:
    @pytest.mark.parametrize("command", list(COMMANDS))
    @pytest.mark.parametrize(
        ("key", "hint"),
        [("name=resnet50", "give the model as the NAME argument"),
         ("registry=x", "models come from the installed plugins (see zoo plugins)")],
    )  # fmt: skip
    def test_name_and_registry(self, command, key, hint):
        line = error_line(run(*COMMANDS[command], "-a", key))
        assert line == f"zoo: error: -a {key}: not a builder argument; {hint}"

    @pytest.mark.parametrize(
        ("command", "key", "hint"),
        [
            ("create", "pretrained=true", "use --pretrained"),
            ("create", "checkpoint=x.safetensors", "use --checkpoint FILE"),
            ("predict", "checkpoint=x.safetensors", "use --checkpoint FILE"),
            ("predict", "pretrained=true",
             "zoo predict loads the published weights unless --checkpoint FILE is given"),
            ("attn", "pretrained=true", "zoo attn loads the published weights unless --checkpoint FILE is given"),
            ("bench", "pretrained=true", "zoo bench builds random weights"),
            ("bench", "checkpoint=x.safetensors", "zoo bench builds random weights"),
            ("export", "pretrained=true", "zoo export loads the published weights unless --checkpoint FILE is given"),
            ("export", "checkpoint=x.safetensors", "use --checkpoint FILE"),
        ],
    )  # fmt: skip
    def test_pretrained_and_checkpoint_name_the_flag(self, command, key, hint):
        shown = key.replace("=true", "=True")
        line = error_line(run(*COMMANDS[command], "-a", key))
        assert line == f"zoo: error: -a {shown}: not a builder argument; {hint}"


class TestMetaDevice:
    @pytest.mark.parametrize("command", ["predict", "attn", "bench"])
    @pytest.mark.parametrize("how", [["--device", "meta"], ["-a", "device=meta"]])
    def test_is_refused_before_anything_is_built_or_downloaded(self, command, how, hub_env):
        # resnet50 has published weights: predict and attn would download them.
        line = error_line(run(*COMMANDS[command][:1], "resnet50", *COMMANDS[command][2:], *how))
        assert line == (
            f"zoo: error: --device meta builds no weights: {command} needs real tensors; "
            "use zoo create --device meta to inspect shapes"
        )
        assert not hub_env.exists()

    def test_create_still_builds_on_meta(self):
        result = run("create", "resnet50", "--device", "meta")
        assert result.exit_code == 0 and "on meta (float32)" in result.stdout
