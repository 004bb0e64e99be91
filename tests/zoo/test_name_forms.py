"""Every name form means the same model, to every function and command that takes a name.

One tiny checkpoint is reachable four ways (see `zoo.weights.resolve`):

- `name`: a registry entry whose default weight tag points at a repository on the test Hub;
- `name.tag`: the same entry, its tag spelt out;
- `hf-hub:ORG/REPO`: the folder `zoo export` wrote for it, published on the test Hub;
- a path: that folder on disk.

Each public function and each command that takes a name is run over all four forms and
must agree: same architecture, parameters, weights, outputs and preprocessing. Malformed
forms are refused in one line, and no call resolves its name more than once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
import zoo.bench
import zoo.labels
import zoo.predict
import zoo.weights.factory
import zoo.weights.resolve
from zoo.cli import cli
from zoo.weights.hub_config import CONFIG_FILENAME

from ..conftest import fresh_builtin_registry
from ..hub_server import HubServer

FORMS = ("name", "name.tag", "hf-hub", "folder")
MODEL = "tiny_forms_vit"
TAG = "test"
TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}
PREPROCESSING = {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop_pct": 1.0}
WEIGHTS_REPO = "test/name-forms-weights"
EXPORT_REPO = "test/name-forms-export"


@dataclass(frozen=True)
class Forms:
    """One checkpoint, the registry that knows it, and the four names that reach it."""

    registry: zoo.Registry
    checkpoint: Path
    names: dict[str, str]
    reference: torch.nn.Module
    """The tiny ViT the checkpoint was saved from, in eval mode."""

    def __getitem__(self, form: str) -> str:
        return self.names[form]


@pytest.fixture(scope="module")
def published(hub_server: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Forms:
    """The four forms, built once: the checkpoint served for the registry entry, and the folder
    `zoo export` writes for it, on disk and served as a Hub repository."""
    root = tmp_path_factory.mktemp("name-forms")
    registry = fresh_builtin_registry()
    tag = {"num_classes": 1000, "labels": "imagenet-1k", "license": "apache-2.0"}
    tag |= {"preprocessing": PREPROCESSING, "hf_hub_id": WEIGHTS_REPO}
    entry = {"builder": "vit", "args": TINY_VIT, "weights": {TAG: tag}}
    (root / "registry.yaml").write_text(yaml.safe_dump({"models": {MODEL: entry}}))
    registry.add_models(root / "registry.yaml", owner="tests")

    torch.manual_seed(0)
    reference = zoo.create(MODEL, num_classes=1000, registry=registry).eval()
    checkpoint = root / "model.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(checkpoint))
    hub_server.publish(WEIGHTS_REPO, {"model.safetensors": checkpoint})

    folder = root / "exported"
    zoo.export(f"{MODEL}.{TAG}", checkpoint, folder, repo_id=EXPORT_REPO, registry=registry)
    hub_server.publish(EXPORT_REPO, {p.name: p for p in folder.iterdir()})
    names = {
        "name": MODEL,
        "name.tag": f"{MODEL}.{TAG}",
        "hf-hub": f"hf-hub:{EXPORT_REPO}",
        "folder": str(folder),
    }
    return Forms(registry, checkpoint, names, reference)


@pytest.fixture
def forms(published: Forms, hub: HubServer, use_registry) -> Forms:
    """The forms, with the test Hub reachable and their registry the default one."""
    use_registry(published.registry)
    return published


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Two real images of different shapes and formats."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    cat, dog = tmp_path / "cat.png", tmp_path / "dog.jpg"
    Image.fromarray(rng.integers(0, 256, (41, 57, 3), dtype=np.uint8)).save(cat)
    Image.fromarray(rng.integers(0, 256, (80, 50, 3), dtype=np.uint8)).save(dog)
    return [cat, dog]


def invoke(*args: str) -> dict | list:
    """Run a command with --json; it must succeed."""
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zoo: error: ")
    return lines[0]


def batch(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


form = pytest.mark.parametrize("form", FORMS)


# ---------------------------------------------------------------------- the library


@form
def test_resolve_gives_the_same_builder_arguments_and_weights(forms, form):
    resolved = zoo.weights.resolve.resolve(forms[form], forms.registry)
    reference = zoo.weights.resolve.resolve(forms["name.tag"], forms.registry)
    assert resolved.entry.builder == "vit"
    assert forms.registry.build_config(resolved) == forms.registry.build_config(reference)
    weights = resolved.selected.weights
    same = ("task", "num_classes", "labels", "license", "preprocessing")
    assert {k: getattr(weights, k) for k in same} == {k: getattr(reference.weights, k) for k in same}


@form
def test_create_loads_the_checkpoint(forms, form):
    model = zoo.create(forms[form], pretrained=True).eval()
    x = batch()
    with torch.no_grad():
        assert torch.equal(model(x), forms.reference(x))


@form
def test_create_without_weights_builds_the_same_architecture(forms, form):
    model = zoo.create(forms[form], device="meta")
    assert type(model) is type(forms.reference)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in forms.reference.state_dict().items()
    }


@form
def test_get_and_download_give_the_checked_checkpoint(forms, form):
    path = zoo.get(forms[form])
    assert path.read_bytes() == forms.checkpoint.read_bytes()
    download = zoo.weights.factory.download(forms[form])
    assert download.path == path
    assert download.sha256 == zoo.weights.cache.sha256_of(forms.checkpoint)


@form
def test_model_info_describes_the_same_model(forms, form):
    info = zoo.model_info(forms[form])
    reference = zoo.model_info(forms["name.tag"])
    same = ("builder", "tasks", "task", "config", "num_params")
    assert info.model_dump(include=set(same)) == reference.model_dump(include=set(same))
    assert info.num_params == sum(p.numel() for p in forms.reference.parameters())
    [weights] = info.weights
    assert weights.preprocessing == reference.weights[0].preprocessing
    assert weights.num_classes == 1000 and weights.labels == "imagenet-1k"
    assert zoo.get(weights.name).read_bytes() == forms.checkpoint.read_bytes()  # a name that works
    assert str(zoo.weights.resolve.resolve(weights.name)) == weights.name


@form
def test_data_config_and_transforms_give_the_same_preprocessing(forms, form, images):
    config = zoo.data_config(forms[form])
    assert config == zoo.data_config(forms["name.tag"])
    assert (config.input_size, config.mean, config.std, config.crop_pct) == (
        (3, 32, 32),
        (0.5,) * 3,
        (0.5,) * 3,
        1.0,
    )
    image = zoo.load_image(images[0])
    assert torch.equal(zoo.transforms(forms[form])(image), zoo.transforms(forms["name.tag"])(image))


@form
def test_labels_for_gives_the_tags_label_set(forms, form):
    labels = zoo.labels.labels_for(forms[form])
    assert labels is not None and labels.name == "imagenet-1k" and len(labels) == 1000


@form
def test_predictor_gives_the_same_predictions(forms, form, images):
    predictor = zoo.predict.predictor(forms[form])
    pictures = [zoo.load_image(path) for path in images]
    expected = forms.reference(predictor.batch(pictures)).softmax(-1).topk(3)
    top = predictor.predict(pictures, topk=3)
    assert [[p.index for p in row] for row in top] == expected.indices.tolist()
    probabilities = torch.tensor([[p.probability for p in row] for row in top])
    assert torch.allclose(probabilities, expected.values)
    assert top[0][0].label == zoo.labels.label_set("imagenet-1k")[top[0][0].index]
    assert predictor.name == str(zoo.weights.resolve.resolve(forms[form]))


@form
def test_benchmark_times_the_same_model_at_the_same_size(forms, form):
    result = zoo.bench.benchmark(forms[form], batch=1, runs=1, warmup=1, min_time=0)
    assert result.name == forms[form]
    assert result.input_size == (3, 32, 32)
    assert result.params == sum(p.numel() for p in forms.reference.parameters())
    reference = zoo.bench.benchmark(forms["name.tag"], batch=1, runs=1, warmup=1, min_time=0)
    assert result.gflops_per_sample == reference.gflops_per_sample


@form
def test_export_writes_the_same_config(forms, form, tmp_path):
    config = zoo.export(forms[form], forms.checkpoint, tmp_path / "again")
    written = json.loads((tmp_path / "again" / CONFIG_FILENAME).read_text())
    exported = json.loads((Path(forms["folder"]) / CONFIG_FILENAME).read_text())
    assert written == config.model_dump(mode="json", exclude_none=True)
    for key in ("architecture", "builder", "args", "weights"):
        assert written[key] == exported[key]
    assert written["architecture"] == MODEL
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == forms.checkpoint.read_bytes()


# ---------------------------------------------------------------------- the commands


@form
def test_zoo_info(forms, form):
    info = invoke("info", forms[form])
    reference = invoke("info", forms["name.tag"])
    for key in ("builder", "task", "config", "num_params"):
        assert info[key] == reference[key]
    assert [w["preprocessing"] for w in info["weights"]] == [w["preprocessing"] for w in reference["weights"]]


@form
def test_zoo_info_in_text_names_the_model_as_given(forms, form):
    result = CliRunner().invoke(cli, ["info", forms[form]])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == forms[form]
    parameters = f"{sum(p.numel() for p in forms.reference.parameters()):,}"
    assert f"  parameters:  {parameters}" in result.stdout.splitlines()


@form
def test_zoo_create(forms, form):
    summary = invoke("create", forms[form], "--pretrained")
    assert summary["name"] == forms[form]
    assert summary["class"] == type(forms.reference).__name__
    assert summary["parameters"] == sum(p.numel() for p in forms.reference.parameters())


@form
def test_zoo_get(forms, form):
    [row] = invoke("get", forms[form])
    assert row["sha256"] == zoo.weights.cache.sha256_of(forms.checkpoint)
    assert Path(row["path"]).read_bytes() == forms.checkpoint.read_bytes()


@form
def test_zoo_predict(forms, form, images, tmp_path):
    embeddings = tmp_path / "embeddings.safetensors"
    report = invoke("predict", forms[form], *map(str, images), "--topk", "3", "--embeddings", str(embeddings))
    reference = invoke("predict", forms["name.tag"], *map(str, images), "--topk", "3")
    assert report["model"] == forms[form] and report["labels"] == "imagenet-1k"
    assert report["results"] == reference["results"] and report["failed"] == []
    assert report["embedding_size"] == TINY_VIT["embed_dim"]


@form
def test_zoo_attn(forms, form, images, tmp_path):
    drawn = invoke("attn", forms[form], str(images[0]), "-o", str(tmp_path / "mine.png"))
    reference = invoke("attn", forms["name.tag"], str(images[0]), "-o", str(tmp_path / "reference.png"))
    assert drawn["model"] == forms[form] and drawn["map"] == "rollout"
    assert drawn["grid"] == reference["grid"] == [4, 4]
    # The same map over the same image; only the title, which names the model, differs.
    with Image.open(tmp_path / "mine.png") as mine, Image.open(tmp_path / "reference.png") as theirs:
        assert np.array_equal(np.asarray(mine.crop(drawn["box"])), np.asarray(theirs.crop(reference["box"])))
        assert mine.crop(drawn["box"]).size == (57, 41)


@form
def test_zoo_bench(forms, form):
    args = ("--batch", "1", "--runs", "1", "--warmup", "1", "--min-time", "0")
    result = invoke("bench", forms[form], *args)
    reference = invoke("bench", forms["name.tag"], *args)
    assert result["name"] == forms[form]
    for key in ("input_size", "params", "gflops_per_sample"):
        assert result[key] == reference[key]


@form
def test_zoo_export(forms, form, tmp_path):
    output = tmp_path / "again"
    report = invoke("export", forms[form], "--checkpoint", str(forms.checkpoint), "-o", str(output))
    exported = json.loads((Path(forms["folder"]) / CONFIG_FILENAME).read_text())
    for key in ("architecture", "builder", "args", "weights"):
        assert report["config"][key] == exported[key]
    assert report["sha256"] == zoo.weights.cache.sha256_of(forms.checkpoint)


# ---------------------------------------------------------------------- malformed forms


def folder_without_config(tmp_path: Path) -> str:
    (tmp_path / "not-exported").mkdir()
    (tmp_path / "not-exported" / "model.safetensors").write_bytes(b"")
    return str(tmp_path / "not-exported")


NOT_OF_THE_FORM = "'{name}' is not of the form hf-hub:ORG/REPO or hf-hub:ORG/REPO@REVISION"
NOT_EXPORTED = "'{name}' is not a folder written by zoo export: "
MALFORMED: dict[str, tuple[Callable[[Path], str], str]] = {
    "hub name with spaces": (lambda _: "hf-hub:not a repo", NOT_OF_THE_FORM),
    "hub name with an empty revision": (lambda _: f"hf-hub:{EXPORT_REPO}@", NOT_OF_THE_FORM),
    "folder without config": (folder_without_config, NOT_EXPORTED + f"it holds no {CONFIG_FILENAME}"),
    "missing folder": (lambda tmp: str(tmp / "nowhere"), NOT_EXPORTED + "no such folder"),
    "unknown tag": (lambda _: f"{MODEL}.nope", f"unknown weight tag 'nope' for '{MODEL}' (published: {TAG})"),
}
"""A malformed name (made in the test's folder) and the one line that refuses it."""

COMMANDS: dict[str, Callable[[str, Path], list[str]]] = {
    "info": lambda name, _: ["info", name],
    "create": lambda name, _: ["create", name, "--pretrained"],
    "get": lambda name, _: ["get", name],
    "predict": lambda name, tmp: ["predict", name, str(tmp / "cat.png")],
    "attn": lambda name, tmp: ["attn", name, str(tmp / "cat.png"), "-o", str(tmp / "out.png")],
    "bench": lambda name, _: ["bench", name],
    "export": lambda name, tmp: [
        "export",
        name,
        "--checkpoint",
        str(tmp / "x.safetensors"),
        "-o",
        str(tmp / "out"),
    ],
}


@pytest.mark.parametrize("malformed", sorted(MALFORMED))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_malformed_name_is_refused_in_one_line_by_every_command(
    forms, command, malformed, tmp_path, images
):
    make_name, reason = MALFORMED[malformed]
    name = make_name(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"")  # a file to export: the name is refused first
    line = one_line_error(CliRunner().invoke(cli, COMMANDS[command](name, tmp_path)))
    assert line == "zoo: error: " + reason.format(name=name)


@pytest.mark.parametrize("malformed", sorted(MALFORMED))
def test_a_malformed_name_is_refused_by_the_library(forms, malformed, tmp_path):
    make_name, reason = MALFORMED[malformed]
    name = make_name(tmp_path)
    with pytest.raises(zoo.ZooError, match=f"^{re.escape(reason.format(name=name))}$"):
        zoo.create(name)


@pytest.mark.parametrize("name", [None, "", "  ", 3])
@pytest.mark.parametrize(
    "function",
    [
        zoo.create,
        zoo.get,
        zoo.weights.factory.download,
        zoo.model_info,
        zoo.data_config,
        zoo.transforms,
        zoo.labels.labels_for,
        zoo.predict.predictor,
        zoo.bench.benchmark,
    ],
)
def test_what_is_not_a_name_is_refused(forms, function, name):
    with pytest.raises(zoo.ArgumentError, match=f"a model name is a non-empty string, not {name!r}"):
        function(name)


# ---------------------------------------------------------------------- one resolution per call


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names resolved from strings, wherever the zoo's modules call `resolve`."""
    import sys

    original = zoo.weights.resolve.resolve
    seen: list[str] = []

    def counting(name, *args, **kwargs):
        if isinstance(name, str):
            seen.append(name)
        return original(name, *args, **kwargs)

    for module in [m for n, m in sys.modules.items() if n == "zoo" or n.startswith("zoo.")]:
        if getattr(module, "resolve", None) is original:
            monkeypatch.setattr(module, "resolve", counting)
    return seen


CALLS: dict[str, Callable[[str, Path], object]] = {
    "create": lambda name, _: zoo.create(name, pretrained=True),
    "get": lambda name, _: zoo.get(name),
    "model_info": lambda name, _: zoo.model_info(name),
    "data_config": lambda name, _: zoo.data_config(name),
    "transforms": lambda name, _: zoo.transforms(name),
    "labels_for": lambda name, _: zoo.labels.labels_for(name),
    "predictor": lambda name, _: zoo.predict.predictor(name),
    "benchmark": lambda name, _: zoo.bench.benchmark(name, batch=1, runs=1, warmup=1, min_time=0),
    "export": lambda name, tmp: zoo.export(name, tmp / "model.safetensors", tmp / "out"),
}


@form
@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_function_resolves_its_name_once(forms, form, call, resolutions, tmp_path):
    (tmp_path / "model.safetensors").write_bytes(forms.checkpoint.read_bytes())
    CALLS[call](forms[form], tmp_path)
    assert resolutions == [forms[form]]


@form
def test_predicting_chooses_the_weights_once_and_checks_the_config_once(forms, form, images, decisions):
    decisions.clear()
    ready = zoo.predict.predictor(forms[form])
    done = zoo.predict.predict_files(ready, images, topk=2)
    assert decisions == {"select_weight": 1, "checked_config": 1}
    assert ready.labels.name == "imagenet-1k" and len(done.predictions) == len(images)


@form
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_resolves_its_name_once(forms, form, command, resolutions, tmp_path, images):
    (tmp_path / "x.safetensors").write_bytes(forms.checkpoint.read_bytes())
    args = COMMANDS[command](forms[form], tmp_path)
    if command == "bench":
        args += ["--batch", "1", "--runs", "1", "--warmup", "1", "--min-time", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert resolutions == [forms[form]]
