"""Hub repositories in timm's format (`config.json` beside `model.safetensors`), through a
real Hub-protocol server (olah on loopback).

The repositories are made here with the zoo's smallest timm architectures (`test_vit`,
`test_resnet`) and the fields timm writes: a fine-tune with its own classes, label names (a
list, or an `{index: name}` mapping with descriptions) and `model_args` overrides; a
repository of the `timm/` form; and the ones the zoo must refuse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save

import zoo
import zoo.labels
from zoo.cli import cli

HUB_CONFIGS = Path(__file__).parents[2] / "data" / "hub_configs"
"""config.json files as timm writes them, for the `timm/` form (the OpenAI CLIP tower's written
from the catalogue's facts: its 512-wide projection is timm's head)."""
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FER_PREPROCESSING = {
    "input_size": [3, 64, 48],
    "interpolation": "bilinear",
    "crop_pct": 0.9,
    "crop_mode": "squash",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "license": "mit",
}


def fine_tune_config(**changes) -> dict:
    """What timm writes for a 7-class fine-tune of `test_vit` at 64x48 pixels."""
    config = {
        "architecture": "test_vit",
        "num_classes": 7,
        "num_features": 64,
        "global_pool": "token",
        "label_names": EMOTIONS,
        "model_args": {"num_classes": 7, "in_chans": 3, "img_size": [64, 48], "drop_path_rate": 0.1},
        "pretrained_cfg": {"tag": "r160_in1k", "custom_load": False, **FER_PREPROCESSING, "num_classes": 7},
    }
    return {**config, **changes}


def weights_of(model: torch.nn.Module) -> bytes:
    return save({key: value.contiguous() for key, value in model.state_dict().items()})


@pytest.fixture(scope="module")
def fine_tune() -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create("test_vit", num_classes=7, img_size=(64, 48)).eval()


@pytest.fixture(scope="module")
def repos(hub_server, fine_tune) -> dict[str, str]:
    """The repositories, published once for the module: purpose -> ORG/REPO."""
    torch.manual_seed(1)
    resnet = zoo.create("test_resnet").eval()
    timm_form = json.loads((HUB_CONFIGS / "timm__test_resnet.r160_in1k.config.json").read_text())
    mapping = fine_tune_config(
        label_names={str(index): name for index, name in enumerate(EMOTIONS)},
        label_descriptions={name: f"a {name} face" for name in EMOTIONS},
    )
    published = {
        "list": ("example/vit-fer7", fine_tune_config()),
        "mapping": ("example/vit-fer7-mapping", mapping),
        "timm": ("timm-form/test_resnet.r160_in1k", timm_form),
        "uncarried": ("example/convnext-fer7", fine_tune_config(architecture="convnext_tiny")),
        "contradicting": (
            "example/vit-fer5",
            fine_tune_config(num_classes=5, label_names=EMOTIONS[:5], model_args={"img_size": [64, 48]}),
        ),
    }
    repos = {}
    for purpose, (repo, config) in published.items():
        weights = weights_of(resnet) if purpose == "timm" else weights_of(fine_tune)
        hub_server.publish(repo, {"config.json": json.dumps(config), "model.safetensors": weights})
        repos[purpose] = repo
    hub_server.publish(
        "example/vit-pickled", {"config.json": json.dumps(fine_tune_config()), "pytorch_model.bin": b"x"}
    )
    hub_server.publish(
        "example/vit-no-json", {"config.json": "{'architecture': 'test_vit'", "model.safetensors": b""}
    )
    hub_server.publish("example/vit-no-arch", {"config.json": json.dumps({"num_classes": 7})})
    hub_server.publish("example/vit-no-config", {"model.safetensors": weights_of(fine_tune)})
    return repos


@pytest.fixture
def face(tmp_path) -> Path:
    path = tmp_path / "face.png"
    Image.new("RGB", (60, 80), (120, 90, 60)).save(path)
    return path


def one_line_error(result) -> str:
    assert result.exit_code != 0 and (result.exception is None or isinstance(result.exception, SystemExit))
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("zoo: error: ")
    return line


# ---------------------------------------------------------------------- configs as timm writes them


def entry_of(config_file: Path, folder: Path) -> zoo.registry.Resolved:
    """What a folder (or a repository) holding this config stands for."""
    folder.mkdir()
    (folder / "config.json").write_text(config_file.read_text())
    return zoo.weights.resolve.resolve(str(folder))


@pytest.mark.parametrize("config_file", sorted(HUB_CONFIGS.glob("timm__*.json")), ids=lambda path: path.name)
def test_a_timm_repository_s_config_builds_its_registry_weights_model_with_their_preprocessing(
    config_file, tmp_path
):
    resolved = entry_of(config_file, tmp_path / "repo")
    weights = zoo.default_registry().resolve(
        config_file.name.removeprefix("timm__").removesuffix(".config.json")
    )
    assert resolved.config == zoo.default_registry().build_config(weights, weights=weights.selected)
    assert resolved.selected.weights.preprocessing == weights.selected.preprocessing
    assert resolved.selected.task == weights.selected.task


def test_the_fine_tune_s_config_gives_its_head_arguments_and_class_names(tmp_path):
    resolved = entry_of(HUB_CONFIGS / "example__vit-small-fer7.config.json", tmp_path / "repo")
    config = resolved.config
    assert (config.num_classes, config.img_size, config.drop_path_rate) == (7, 224, 0.1)
    assert resolved.selected.weights.label_names == tuple(EMOTIONS)
    assert resolved.selected.weights.preprocessing.crop_pct == 0.9


# ---------------------------------------------------------------------- a fine-tune, end to end


@pytest.mark.parametrize("form", ["list", "mapping"])
def test_a_fine_tune_loads_with_its_architecture_head_and_model_args(form, hub, repos, fine_tune):
    model = zoo.create(f"hf-hub:{repos[form]}", pretrained=True).eval()
    assert model.config.img_size == (64, 48) and model.config.drop_path_rate == 0.1
    image = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(image), fine_tune(image), rtol=0, atol=1e-5)
    cfg = model.pretrained_cfg
    assert cfg["num_classes"] == 7 and cfg["input_size"] == (3, 64, 48)
    assert (cfg["interpolation"], cfg["crop_pct"], cfg["crop_mode"]) == ("bilinear", 0.9, "squash")
    labels = zoo.labels.labels_for(f"hf-hub:{repos[form]}")
    assert [labels[i] for i in range(7)] == EMOTIONS
    assert labels.names[3] == ("a happy face" if form == "mapping" else "happy")


def test_predict_prints_the_repository_s_label_names_with_its_preprocessing(hub, repos, face):
    name = f"hf-hub:{repos['list']}"
    assert zoo.transforms(name).config == zoo.data_config(name)
    assert zoo.data_config(name).crop_mode == "squash" and zoo.data_config(name).input_size == (3, 64, 48)
    printed = CliRunner().invoke(cli, ["predict", name, str(face), "--topk", "1"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.split()[-2] in EMOTIONS
    result = CliRunner().invoke(cli, ["predict", name, str(face), "--json"])
    done = json.loads(result.stdout)
    assert done["labels"] == name
    predictions = done["results"][0]["predictions"]
    assert {p["label"] for p in predictions} <= set(EMOTIONS) and len(predictions) == 5


def test_the_vit_small_fine_tune_predicts_one_of_its_label_names(hub, hub_server, face):
    """`zoo predict hf-hub:example/vit-small-fer7 face.png`: the repository's own config.json
    (ViT-S/16, seven facial expressions), with weights of that shape."""
    config = json.loads((HUB_CONFIGS / "example__vit-small-fer7.config.json").read_text())
    torch.manual_seed(2)
    model = zoo.create("vit_small_patch16_224", num_classes=7)
    hub_server.publish(
        "example/vit-small-fer7", {"config.json": json.dumps(config), "model.safetensors": weights_of(model)}
    )
    printed = CliRunner().invoke(cli, ["predict", "hf-hub:example/vit-small-fer7", str(face), "--topk", "1"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.split()[-2] in config["label_names"]
    assert zoo.data_config("hf-hub:example/vit-small-fer7").mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("command", ["info", "flops", "get"])
def test_every_command_that_takes_a_name_reads_the_config(command, hub, repos):
    result = CliRunner().invoke(cli, [command, f"hf-hub:{repos['list']}", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    if command == "info":
        assert shown["builder"] == "vit" and shown["config"]["img_size"] == [64, 48]
    if command == "flops":
        assert shown["input_size"] == [3, 64, 48]


def test_a_repository_of_the_timm_form_keeps_its_architecture_s_label_set(hub, repos):
    name = f"hf-hub:{repos['timm']}"
    model = zoo.create(name, pretrained=True)
    assert model.pretrained_cfg["input_size"] == (3, 160, 160) and model.pretrained_cfg["crop_pct"] == 0.95
    assert zoo.labels.labels_for(name).name == "imagenet-1k"  # the head of timm's r160_in1k tag


# ---------------------------------------------------------------------- integrity, revisions, offline


def test_sha256_is_recorded_a_revision_is_pinned_and_the_cache_serves_offline(
    hub, repos, fine_tune, monkeypatch
):
    repo = "example/vit-fer7-revisions"
    weights = weights_of(fine_tune)
    first = hub.publish(repo, {"config.json": json.dumps(fine_tune_config()), "model.safetensors": weights})
    hub.publish(repo, {"config.json": json.dumps(fine_tune_config(label_names=EMOTIONS[::-1]))})
    pinned = f"hf-hub:{repo}@{first}"
    assert zoo.labels.labels_for(pinned)[0] == "angry"
    assert zoo.labels.labels_for(f"hf-hub:{repo}")[0] == "neutral"
    download = zoo.weights.factory.download(pinned)
    assert download.verified == "recorded"
    assert zoo.weights.factory.download(pinned).verified == "recorded"  # checked against the record
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.create(pinned, pretrained=True)
    assert zoo.labels.labels_for(pinned)[0] == "angry"
    line = one_line_error(CliRunner().invoke(cli, ["info", f"hf-hub:{repos['list']}"]))
    assert "is not in the cache and HF_HUB_OFFLINE is set" in line


# ---------------------------------------------------------------------- refused in one line


def test_an_architecture_the_zoo_does_not_carry_is_named(hub, repos):
    result = CliRunner().invoke(cli, ["create", f"hf-hub:{repos['uncarried']}", "--pretrained"])
    line = one_line_error(result)
    assert result.exit_code == 2
    assert "unknown architecture 'convnext_tiny'" in line and "`zoo list`" in line


def test_a_repository_of_pickled_weights_only_is_refused_without_fetching_them(hub, hub_env, repos, face):
    result = CliRunner().invoke(cli, ["predict", "hf-hub:example/vit-pickled", str(face)])
    line = one_line_error(result)
    assert "pytorch_model.bin" in line and "only safetensors" in line
    assert not list(hub_env.rglob("pytorch_model.bin"))


def test_a_config_that_contradicts_the_weights_names_the_first_tensor_that_differs(hub, repos):
    with pytest.raises(zoo.CheckpointError) as error:
        zoo.create(f"hf-hub:{repos['contradicting']}", pretrained=True)
    assert str(error.value) == (
        f"hf-hub:{repos['contradicting']}: config.json contradicts its weights model.safetensors: "
        "'head.weight' is [7, 64] in the file, [5, 64] in the model it configures"
    )


@pytest.mark.parametrize(
    ("repo", "says"),
    [
        ("example/vit-no-json", "config.json is not a valid timm model config: Expecting property name"),
        (
            "example/vit-no-arch",
            "config.json is not a valid timm model config: field 'architecture': required field is missing",
        ),
        ("example/vit-no-config", "neither zoo_config.json (written by zoo export) nor a timm config.json"),
    ],
)
def test_a_missing_or_malformed_config_is_one_line(repo, says, hub, repos):
    line = one_line_error(CliRunner().invoke(cli, ["info", f"hf-hub:{repo}"]))
    assert says in line


# ---------------------------------------------------------------------- zoo export writes one too


def test_export_of_a_timm_architecture_writes_timm_s_config_that_loads_alone_and_beside_the_zoo_s(
    hub, repos, fine_tune, tmp_path
):
    checkpoint = tmp_path / "fer7.safetensors"
    checkpoint.write_bytes(weights_of(fine_tune))
    folder = tmp_path / "export"
    result = CliRunner().invoke(
        cli,
        [
            *("export", "test_vit", "--checkpoint", str(checkpoint), "-o", str(folder), "--num-classes", "7"),
            *("-a", "img_size=[64, 48]", "--license", "mit", "-p", "std=[0.25, 0.25, 0.25]", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"][-1] == str(folder / "config.json")
    assert "- `config.json`" in (folder / "README.md").read_text()  # the card lists it
    written = json.loads((folder / "config.json").read_text())
    assert written["architecture"] == "test_vit" and written["num_classes"] == 7
    assert written["model_args"] == {"img_size": [64, 48], "num_classes": 7}
    assert (
        written["pretrained_cfg"]["input_size"] == [3, 64, 48]
        and written["pretrained_cfg"]["std"] == [0.25] * 3
    )

    image = torch.randn(1, 3, 64, 48)
    both, alone = "example/exported-both", "example/exported-timm-only"
    hub.publish(both, {path.name: path for path in folder.iterdir()})
    hub.publish(alone, {name: folder / name for name in ("config.json", "model.safetensors")})
    for repo in (both, alone):
        model = zoo.create(f"hf-hub:{repo}", pretrained=True).eval()
        assert model.pretrained_cfg["std"] == (0.25, 0.25, 0.25)
        with torch.no_grad():
            torch.testing.assert_close(model(image), fine_tune(image), rtol=0, atol=1e-5)
    other_std = {**written["pretrained_cfg"], "std": [0.5, 0.5, 0.5]}
    hub.publish(both, {"config.json": json.dumps({**written, "pretrained_cfg": other_std})})
    with pytest.raises(
        zoo.HubError, match=r"zoo_config\.json and config\.json disagree on the preprocessing"
    ):
        zoo.create(f"hf-hub:{both}")


def test_a_re_export_keeps_the_label_names_in_both_configs(hub, repos, fine_tune, tmp_path):
    checkpoint = tmp_path / "fer7.safetensors"
    checkpoint.write_bytes(weights_of(fine_tune))
    exported = zoo.weights.export.export(f"hf-hub:{repos['mapping']}", checkpoint, tmp_path / "again")
    assert exported.weights.label_names == tuple(EMOTIONS)
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert written["label_names"] == EMOTIONS and written["label_descriptions"]["fear"] == "a fear face"


def test_export_of_a_model_timm_does_not_have_writes_no_timm_config(tmp_path, fine_tune):
    checkpoint = tmp_path / "fer7.safetensors"
    checkpoint.write_bytes(weights_of(fine_tune))
    args = {"num_classes": 7, "img_size": (64, 48), "act_layer": "quick_gelu"}  # not a timm argument
    zoo.weights.export.export("test_vit", checkpoint, tmp_path / "out", license="mit", **args)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "README.md",
        "model.safetensors",
        "zoo_config.json",
    ]
    assert "config.json`" not in (tmp_path / "out" / "README.md").read_text().replace("zoo_config.json`", "")


def test_a_local_folder_in_timm_s_format_loads_as_a_repository_does(tmp_path, fine_tune):
    folder = tmp_path / "vit-fer7"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(fine_tune_config()))
    (folder / "model.safetensors").write_bytes(weights_of(fine_tune))
    model = zoo.create(str(folder), pretrained=True).eval()
    image = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(image), fine_tune(image), rtol=0, atol=1e-5)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(zoo.HubError, match="only safetensors"):
        zoo.create(str(folder))
