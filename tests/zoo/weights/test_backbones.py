"""Published weights as the backbone of a model that extends them (a ResNet plus attention).

Every tensor the weights have is loaded strictly; the modules they have no tensor of are
initialised as the family initialises them and reported. Checkpoints are tiny models made
here, served by the test Hub (tests/hub_server.py).
"""

from __future__ import annotations

import logging
import re

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import zoo
from zoo.cli import cli
from zoo.errors import ArgumentError, CheckpointError, RegistryError
from zoo.registry import validate_files
from zoo.weights.loading import load_checkpoint

TINY = {"block": "basic", "layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "num_classes": 10}
PREPROCESSING = {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
CBAM_TENSORS = 10  # channel gate: 2 convs with bias; spatial gate: a conv and a BatchNorm (5)


def save(model: torch.nn.Module, path) -> dict[str, torch.Tensor]:
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(path))
    return state


def published_resnet(tmp_path, seed: int = 1) -> tuple[torch.nn.Module, dict[str, torch.Tensor], object]:
    torch.manual_seed(seed)
    model = zoo.create("resnet18", **TINY)
    for module in model.modules():  # statistics that are not the defaults
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet.safetensors"
    return model, save(model, path), path


def registry_text(repo: str, backbone: str = "tiny.test", builder: str = "resnet") -> str:
    entries = {
        "tiny": {
            "builder": "resnet",
            "args": TINY,
            "weights": {
                "test": {
                    "hf_hub_id": repo,
                    "num_classes": 10,
                    "license": "apache-2.0",
                    "preprocessing": PREPROCESSING,
                }
            },
        },
        "tiny_cbam": {"builder": builder, "args": {**TINY, "attn": "cbam"}, "backbone": backbone},
    }
    if builder != "resnet":
        entries["tiny_cbam"]["args"] = {}
    return yaml.safe_dump({"models": entries})


@pytest.fixture
def served(hub, request, tmp_path, make_registry):
    """A tiny ResNet's weights on the test Hub, an entry for them and one that borrows them."""
    _, state, path = published_resnet(tmp_path)
    repo = "test/" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:90]
    hub.publish(repo, {"model.safetensors": path})
    return state, make_registry(registry_text(repo))


def test_an_entry_borrowing_weights_loads_every_tensor_they_have_and_initialises_the_rest(served):
    state, registry = served

    model = zoo.create("tiny_cbam", pretrained=True, registry=registry)

    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], tensor) for key, tensor in state.items())
    report = model.load_report
    assert set(report.fresh) == set(loaded) - set(state)
    assert report.new_modules == {f"layer{n}.0.se": "CBAM" for n in (1, 2, 3, 4)}
    assert len(report.fresh) == 4 * CBAM_TENSORS
    assert report.messages == ("40 tensors of 4 CBAM modules are new: fine-tune before use",)
    assert report.checkpoint == "tiny.test"
    assert all(torch.isfinite(loaded[key].float()).all() for key in report.fresh)
    assert model.pretrained_cfg["architecture"] == "tiny" and model.pretrained_cfg["tag"] == "test"


def test_the_new_modules_are_initialised_as_the_family_builds_them(served):
    _, registry = served
    torch.manual_seed(0)

    model = zoo.create("tiny_cbam", pretrained=True, registry=registry)

    gate = model.layer1[0].se.spatial.bn
    assert torch.equal(gate.weight, torch.ones(1)) and torch.equal(gate.bias, torch.zeros(1))
    assert torch.equal(gate.running_var, torch.ones(1)) and int(gate.num_batches_tracked) == 0
    new_convs = [m for name, m in model.named_modules() if ".se." in name and isinstance(m, torch.nn.Conv2d)]
    # He-normal over fan-out, the ResNet's own initialisation: unit variance once scaled.
    scaled = [
        conv.weight.flatten() / (2 / (conv.weight.shape[0] * conv.weight[0, 0].numel())) ** 0.5
        for conv in new_convs
    ]
    assert torch.cat(scaled).std().item() == pytest.approx(1.0, rel=0.2)


def test_borrowed_weights_are_loaded_on_the_device_and_dtype_asked_for(served):
    _, registry = served

    model = zoo.create("tiny_cbam", pretrained=True, dtype="bfloat16", registry=registry)

    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not any(t.is_meta for t in model.state_dict().values())


def test_the_message_is_logged_once_naming_the_weights(served, caplog):
    _, registry = served
    with caplog.at_level(logging.INFO, logger="zoo"):
        zoo.create("tiny_cbam", pretrained=True, registry=registry)
    assert [r.getMessage() for r in caplog.records] == [
        "tiny.test: 40 tensors of 4 CBAM modules are new: fine-tune before use"
    ]


def test_published_weights_built_with_another_attention_are_borrowed_the_same_way(served):
    state, registry = served

    model = zoo.create("tiny", attn="eca", pretrained=True, registry=registry)

    assert model.load_report.new_modules == {
        f"layer{n}.0.se": "EfficientChannelAttention" for n in (1, 2, 3, 4)
    }
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in state.items())


def test_a_new_head_and_new_modules_are_initialised_together(served):
    _, registry = served

    model = zoo.create("tiny_cbam", pretrained=True, num_classes=3, registry=registry)

    assert model.fc.out_features == 3
    assert {"fc.weight", "fc.bias"} <= set(model.load_report.fresh)
    assert len(model.load_report.messages) == 2


def test_info_names_the_borrowed_weights_and_what_they_lack(served, use_registry):
    _, registry = served
    use_registry(registry)

    info = zoo.model_info("tiny_cbam")
    text = CliRunner().invoke(cli, ["info", "tiny_cbam"])

    assert info.backbone.name == "tiny.test"
    assert info.backbone.new_modules == {f"layer{n}.0.se": "CBAM" for n in (1, 2, 3, 4)}
    assert len(info.backbone.new_tensors) == 4 * CBAM_TENSORS
    assert "  backbone:    tiny.test (40 tensors of 4 CBAM modules are new: fine-tune before use)" in (
        text.stdout.splitlines()
    )
    assert zoo.model_info("tiny").backbone is None


# ---------------------------------------------------------------------- strictness


def test_a_file_that_lacks_modules_is_refused_unless_asked_to_initialise_them(tmp_path):
    _, state, path = published_resnet(tmp_path)

    with pytest.raises(CheckpointError, match=r"40 missing: .*4 CBAM modules .*fresh_modules=True"):
        zoo.create("resnet18_cbam", checkpoint=path, **TINY)
    model = zoo.create("resnet18_cbam", checkpoint=path, fresh_modules=True, **TINY)

    assert len(model.load_report.fresh) == 4 * CBAM_TENSORS
    assert all(torch.equal(model.state_dict()[key], tensor) for key, tensor in state.items())


def edited(state: dict[str, torch.Tensor], path, **changes) -> object:
    state = dict(state)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    save_file(state, str(path))
    return path


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"conv1__weight": torch.zeros(8, 3, 5, 5)}, r"wrong shape: conv1\.weight"),
        ({"extra__weight": torch.zeros(3)}, r"unexpected: extra\.weight"),
        ({"layer1__0__bn1__running_mean": None}, r"missing: layer1\.0\.bn1\.running_mean"),
        (
            {"bn1__num_batches_tracked": torch.zeros((), dtype=torch.float32)},
            r"wrong dtype: bn1\.num_batches_tracked",
        ),
    ],
    ids=["wrong-shape", "tensor-the-model-lacks", "tensor-missing-beside-its-module", "wrong-dtype"],
)
def test_anything_but_whole_new_modules_is_still_an_error(change, error, tmp_path):
    _, state, _ = published_resnet(tmp_path)
    path = edited(state, tmp_path / "edited.safetensors", **change)

    with pytest.raises(CheckpointError, match=error):
        zoo.create("resnet18_cbam", checkpoint=path, fresh_modules=True, **TINY)


def test_fresh_modules_needs_a_checkpoint():
    with pytest.raises(ArgumentError, match="pass checkpoint=FILE"):
        zoo.create("resnet18_cbam", fresh_modules=True, **TINY)


def test_the_cli_flag_loads_a_file_as_a_backbone(tmp_path):
    _, _, path = published_resnet(tmp_path)
    args = ["create", "resnet18_cbam", "--checkpoint", str(path), "-a", "layers=[1, 1, 1, 1]"]
    args += ["-a", "channels=[8, 16, 32, 64]", "--num-classes", "10"]

    refused = CliRunner().invoke(cli, args)
    loaded = CliRunner().invoke(cli, [*args, "--fresh-modules"])

    assert refused.exit_code == 1 and "--fresh-modules" in refused.stderr
    assert loaded.exit_code == 0, loaded.stderr
    assert loaded.stderr.strip() == (
        "zoo: info: resnet18_cbam: 40 tensors of 4 CBAM modules are new: fine-tune before use"
    )


class Gated(torch.nn.Module):
    """A module PyTorch cannot initialise: a raw parameter and no `reset_parameters`."""

    def __init__(self, device=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4, device=device))


class Plain(torch.nn.Module):
    """A model of no family hook: its new modules get PyTorch's own initialisation."""

    def __init__(self, extra: torch.nn.Module | None = None, device=None):
        super().__init__()
        self.body = torch.nn.Linear(4, 4, device=device)
        self.extra = extra

    def forward(self, x):
        return self.extra(self.body(x))


def test_a_model_without_the_hook_gets_pytorch_s_initialisation_or_a_refusal(tmp_path):
    path = tmp_path / "plain.safetensors"
    save(Plain(), path)

    model = Plain(torch.nn.Linear(4, 4, device="meta"), device="meta")
    report = load_checkpoint(model, path, fresh_modules=True)
    assert report.new_modules == {"extra": "Linear"}
    assert torch.isfinite(model.extra.weight).all() and model.extra.weight.abs().max() <= 0.5 + 1e-6

    with pytest.raises(
        CheckpointError, match=r"lacks extra\.scale, which the model has no way to initialise"
    ):
        load_checkpoint(Plain(Gated(device="meta"), device="meta"), path, fresh_modules=True)


# ---------------------------------------------------------------------- the registry field


def test_a_backbone_that_names_no_published_weights_is_a_problem_naming_file_entry_and_field(
    write_registry, builtin_registry
):
    path = write_registry(registry_text("test/none", backbone="tiny.nope"))

    [problem] = validate_files([path], builtin_registry)

    assert (problem.file, problem.entry, problem.field) == (str(path), "tiny_cbam", "backbone")
    assert "backbone 'tiny.nope' names no published weights" in problem.message
    assert re.search(rf"{re.escape(str(path))}:\d+: entry 'tiny_cbam': field 'backbone'", str(problem))


def test_a_bad_backbone_is_refused_at_creation_with_where_it_is_written(make_registry):
    registry = make_registry(registry_text("test/none", backbone="tiny.nope"))

    with pytest.raises(RegistryError, match=r"entry 'tiny_cbam': field 'backbone': backbone 'tiny.nope'"):
        zoo.create("tiny_cbam", pretrained=True, registry=registry)


def test_a_backbone_of_another_builder_is_a_problem(write_registry, builtin_registry):
    text = registry_text("test/none", backbone="vit_tiny_patch16_224.augreg_in21k_ft_in1k", builder="resnet")
    problems = validate_files([write_registry(text)], builtin_registry)

    assert [p.field for p in problems] == ["backbone"]
    assert "is built by 'vit', not by this entry's 'resnet'" in problems[0].message


WEIGHTS = {"t": {"hf_hub_id": "a/b", "num_classes": 1, "license": "x", "preprocessing": PREPROCESSING}}


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"backbone": "resnet18"}, "String should match pattern"),
        (
            {"backbone": "resnet18.a1_in1k", "weights": WEIGHTS},
            "is borrowed by an entry with weights of its own",
        ),
    ],
    ids=["not-a-name-tag", "beside-weights-of-its-own"],
)
def test_a_backbone_is_a_name_tag_and_only_for_an_entry_without_weights(entry, error, write_registry):
    path = write_registry(yaml.safe_dump({"models": {"mine": {"builder": "resnet", **entry}}}))

    with pytest.raises(RegistryError, match=error):
        zoo.Registry().add_models(path, owner="tests")


def test_state_loaded_from_a_borrowed_file_matches_the_file(tmp_path):
    _, _, path = published_resnet(tmp_path)
    model = zoo.create("resnet18_eca", checkpoint=path, fresh_modules=True, **TINY)
    on_disk = load_file(str(path))
    assert all(torch.equal(model.state_dict()[key], on_disk[key]) for key in on_disk)
