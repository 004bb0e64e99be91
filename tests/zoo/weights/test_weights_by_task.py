"""Weights of every task: a tag carries what its task needs, and a sequence model is published
and loaded back like an image model (export, the test hub, `zoo get`, `zoo.create`)."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli import cli
from zoo.registry.source import parse_registry_text

SMALL_SEQ2SEQ = {"src_vocab_size": 16, "tgt_vocab_size": 16, "embed_dim": 16, "hidden_size": 16}


def trained_seq2seq(steps: int = 5) -> torch.nn.Module:
    """A few steps of learning to copy digit sequences: weights that differ from any init."""
    torch.manual_seed(0)
    model = zoo.create("seq2seq_lstm_attn", **SMALL_SEQ2SEQ)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        tokens = torch.randint(3, 16, (8, 6))
        logits = model(tokens, tokens)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def export_args(checkpoint, folder, repo=None) -> list[str]:
    args = [
        "export",
        "seq2seq_lstm_attn",
        "--checkpoint",
        str(checkpoint),
        "-o",
        str(folder),
        "--license",
        "mit",
    ]
    for key, value in SMALL_SEQ2SEQ.items():
        args += ["-a", f"{key}={value}"]
    return args + (["--repo-id", repo] if repo else [])


def test_a_sequence_to_sequence_tag_carries_vocabularies_and_no_image_preprocessing():
    text = yaml.safe_dump(
        {
            "models": {
                "translator": {
                    "builder": "seq2seq_lstm",
                    "weights": {
                        "v1": {
                            "task": "sequence-to-sequence",
                            "hf_hub_id": "me/translator",
                            "license": "mit",
                            "src_vocab_size": 16,
                            "tgt_vocab_size": 20,
                        },
                        "v2": {
                            "task": "sequence-to-sequence",
                            "hf_hub_id": "me/t",
                            "license": "mit",
                            "num_classes": 3,
                        },
                    },
                }
            }
        }
    )
    problems = [str(p) for p in parse_registry_text(text, "fragment.yaml").problems]
    assert len(problems) == 3, problems
    assert all("entry 'translator'" in p for p in problems)
    assert any("field 'weights.v2.src_vocab_size': required field is missing" in p for p in problems)
    assert any("field 'weights.v2.num_classes': unknown field" in p for p in problems)


def test_a_tag_for_a_task_its_family_does_not_build_is_a_problem(make_registry):
    text = """
    models:
      headless_text:
        builder: text_transformer
        weights:
          v1: {task: sequence-to-sequence, hf_hub_id: me/t, license: mit, src_vocab_size: 8, tgt_vocab_size: 8}
    """
    registry = make_registry(text.replace("\n    ", "\n"))
    [problem] = [p for p in registry.validate() if p.field == "weights.v1.task"]
    assert problem.entry == "headless_text"
    assert "does not build for sequence-to-sequence (its tasks: sequence-classification)" in problem.message


def test_a_weight_tag_of_an_unknown_task_names_the_tasks():
    text = "models:\n  m:\n    builder: vit\n    weights:\n      v1: {task: detection, hf_hub_id: a/b, license: mit}\n"
    [problem] = parse_registry_text(text, "f.yaml").problems
    assert problem.field == "weights.v1"
    assert "unknown task (tasks: image-classification, image-embedding" in problem.message


def test_seq2seq_round_trips_through_export_the_hub_get_and_create(hub, request, tmp_path):
    trained = trained_seq2seq()
    checkpoint = tmp_path / "trained.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(checkpoint))
    folder = tmp_path / "export"
    repo = "test/" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]

    result = CliRunner().invoke(cli, export_args(checkpoint, folder, repo))
    assert result.exit_code == 0, result.output
    weights = json.loads((folder / "zoo_config.json").read_text())["weights"]
    assert weights["task"] == "sequence-to-sequence"
    assert (weights["src_vocab_size"], weights["tgt_vocab_size"]) == (16, 16)
    assert "preprocessing" not in weights and "num_classes" not in weights
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: text2text-generation" in card and "## Preprocessing" not in card

    hub.publish(repo, {p.name: p for p in folder.iterdir()})
    result = CliRunner().invoke(cli, ["get", f"hf-hub:{repo}", "--json"])
    assert result.exit_code == 0, result.output
    [download] = json.loads(result.stdout)
    assert download["verified"] == "pinned"

    src, tgt = torch.randint(3, 16, (2, 5)), torch.randint(3, 16, (2, 4))
    for name in (f"hf-hub:{repo}", str(folder)):
        model = zoo.create(name, pretrained=True).eval()
        assert torch.equal(model(src, tgt), trained(src, tgt))
        assert zoo.model_info(name).task == "sequence-to-sequence"


def test_commands_that_serve_images_refuse_a_sequence_model_in_one_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    result = CliRunner().invoke(cli, ["predict", "seq2seq_lstm_attn", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line == (
        "zoo: error: 'seq2seq_lstm_attn' is a sequence-to-sequence model; prediction serves "
        "image-classification and image-embedding models: build it with zoo.create and call it on its own inputs"
    )
    with pytest.raises(zoo.ArgumentError, match="is a sequence-classification model: it takes no images"):
        zoo.data_config("text_transformer_small")


def test_an_exported_image_model_without_head_is_published_as_embeddings(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("vit_tiny_patch16_224", img_size=32, patch_size=8, num_classes=0)
    checkpoint = tmp_path / "headless.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    config = zoo.export(
        "vit_tiny_patch16_224", checkpoint, tmp_path / "out", img_size=32, patch_size=8, num_classes=0
    )
    assert config.weights.task == "image-embedding"
    assert config.weights.output_dim == 192 and config.weights.preprocessing.input_size == (3, 32, 32)
    info = zoo.model_info(str(tmp_path / "out"))
    assert info.weights[0].output_dim == 192 and info.task == "image-embedding"
