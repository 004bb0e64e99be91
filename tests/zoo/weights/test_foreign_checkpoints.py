"""Checkpoints written by other tools: PyTorch pickles (refused, converted on purpose),
names saved through a wrapper, another head size, and sharded checkpoints."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import zoo
from zoo.cli import cli
from zoo.errors import ArgumentError, CheckpointError, IntegrityError
from zoo.weights.cache import read_record
from zoo.weights.convert import convert_checkpoint
from zoo.weights.factory import download as download_weights
from zoo.weights.header import read_checkpoint, read_header
from zoo.weights.loading import load_checkpoint

from .test_hub import registry_with, repo_id, tiny_model

TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}
TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
IMAGE = torch.randn(2, 3, 32, 32)


def tiny_resnet(num_classes: int = 10, seed: int = 0, device: str | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    return zoo.create("resnet18", num_classes=num_classes, device=device, **TINY_RESNET).eval()


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IMAGE)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("zoo: error: ") and "Traceback" not in result.output
    return line


# ---------------------------------------------------------------------- pickles are refused


@pytest.mark.parametrize("filename", ["pytorch_model.bin", "model.pt", "model.pth"])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_pytorch_pickle_is_recognised_and_names_the_conversion(tmp_path, filename, zipped):
    path = tmp_path / filename
    torch.save(tiny_resnet().state_dict(), path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(CheckpointError) as raised:
        zoo.create("resnet18", checkpoint=path, num_classes=10, **TINY_RESNET)
    message = str(raised.value)
    what = "zip archive (torch.save)" if zipped else "pickle (legacy torch.save)"
    assert message == (
        f"checkpoint '{path}' is a PyTorch {what}, not safetensors; the zoo never unpickles while "
        f"loading: convert it once with `zoo convert {path} -o {path.with_suffix('.safetensors')}`"
    )
    assert "header" not in message


def test_loading_a_pickle_never_runs_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Runs(marker), protocol=2))
    with pytest.raises(CheckpointError, match="is a PyTorch pickle"):
        zoo.create("resnet18", checkpoint=path, **TINY_RESNET)
    with pytest.raises(CheckpointError, match="holds objects that weights-only loading refuses"):
        convert_checkpoint(path, tmp_path / "evil.safetensors")
    assert not marker.exists() and not (tmp_path / "evil.safetensors").exists()


def pickled_with_code(path: Path, form: str, protocol: int, marker: Path) -> Path:
    """A checkpoint that would call os.mkdir if unpickled: a pickle, or torch.save's forms."""
    if form == "pickle":  # no tensor: a plain pickle of one is refused for torch's own global
        path.write_bytes(pickle.dumps({"epoch": 1, "hook": _Runs(marker)}, protocol=protocol))
    else:
        torch.save(
            {"weight": torch.ones(2), "hook": _Runs(marker)},
            path,
            pickle_protocol=protocol,
            _use_new_zipfile_serialization=form == "zip",
        )
    return path


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("form", ["pickle", "legacy", "zip"])
def test_a_refused_pickle_names_the_global_it_would_import(tmp_path, form, protocol):
    marker = tmp_path / "ran"
    path = pickled_with_code(tmp_path / "model.pt", form, protocol, marker)
    imported = f"{os.mkdir.__module__}.mkdir"
    with pytest.raises(CheckpointError, match=f"holds objects that .* refuses .*{imported}"):
        convert_checkpoint(path, tmp_path / "out.safetensors")
    line = one_line_error(run("convert", str(path), "-o", str(tmp_path / "out.safetensors")))
    assert imported in line
    if form != "zip":  # a zip archive is recognised by its first bytes; its pickle is converted
        line = one_line_error(run("create", "resnet18", "--checkpoint", str(path)))
        assert f"is a PyTorch pickle (legacy torch.save) that would import {imported}" in line
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_safetensors_file_whose_length_looks_like_a_pickle_is_still_read(tmp_path):
    text = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    text += b" " * (640 - len(text))  # 640 = 0x0280: the file starts with 0x80 0x02
    path = tmp_path / "model.safetensors"
    path.write_bytes((640).to_bytes(8, "little") + text + b"\x00\x00\x80\x3f")
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert read_header(path).shapes == {"x": (1,)}


# ---------------------------------------------------------------------- zoo convert


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"state_dict": s, "epoch": 3, "optimizer": {"lr": 0.1}},
        lambda s: {"model": s, "args": ["--lr", "0.1"]},
        lambda s: {"state_dict_ema": s},
        lambda s: {"model_ema": s, "step": 10},
        lambda s: {"model": {"state_dict": s}, "epoch": 1},
    ],
    ids=["bare", "state_dict", "model", "state_dict_ema", "model_ema", "nested"],
)
@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod.", "model.", "module._orig_mod."])
def test_convert_unwraps_strips_and_writes_what_loads_strictly(tmp_path, wrap, prefix):
    original = tiny_resnet()
    state = {prefix + name: tensor for name, tensor in original.state_dict().items()}
    source = tmp_path / "checkpoint.pth"
    torch.save(wrap(state), source)

    converted = convert_checkpoint(source, tmp_path / "model.safetensors")

    assert converted.prefix == prefix and converted.tensors == len(state)
    loaded = zoo.create("resnet18", checkpoint=converted.output, num_classes=10, **TINY_RESNET)
    assert torch.equal(outputs(loaded), outputs(original))
    assert set(tmp_path.iterdir()) == {source, converted.output}  # nothing left half-written


def test_convert_reads_a_legacy_pickle_and_takes_the_key_asked_for(tmp_path):
    plain, ema = tiny_resnet(seed=1), tiny_resnet(seed=2)
    source = tmp_path / "last.pt"
    checkpoint = {"state_dict": plain.state_dict(), "state_dict_ema": ema.state_dict()}
    torch.save(checkpoint, source, _use_new_zipfile_serialization=False)
    assert convert_checkpoint(source, tmp_path / "plain.safetensors").key == "state_dict"
    converted = convert_checkpoint(source, tmp_path / "ema.safetensors", key="state_dict_ema")
    loaded = zoo.create("resnet18", checkpoint=converted.output, num_classes=10, **TINY_RESNET)
    assert torch.equal(outputs(loaded), outputs(ema))
    with pytest.raises(ArgumentError, match=r"has no 'ema' \(found: state_dict, state_dict_ema\)"):
        convert_checkpoint(source, tmp_path / "x.safetensors", key="ema")


def test_tied_tensors_are_cloned_and_the_ties_recorded(tmp_path):
    shared = torch.randn(6, 4)
    state = {"embed.weight": shared, "head.weight": shared, "head.bias": torch.zeros(6), "half": shared[:3]}
    source = tmp_path / "tied.bin"
    torch.save(state, source)

    converted = convert_checkpoint(source, tmp_path / "tied.safetensors")

    assert converted.aliases == {"head.weight": "embed.weight", "half": "embed.weight"}
    written = load_file(converted.output)
    assert written.keys() == state.keys()
    assert all(torch.equal(written[name], tensor) for name, tensor in state.items())
    with safe_open(converted.output, "pt") as file:
        assert json.loads(file.metadata()["aliases"]) == converted.aliases


def test_convert_refuses_what_it_cannot_write_in_one_line(tmp_path):
    source = tmp_path / "mixed.pt"
    torch.save({"weight": torch.ones(2), "epoch": 3, "best": 0.9}, source)
    with pytest.raises(CheckpointError, match=r"not tensors: epoch \(int\), best \(float\);"):
        convert_checkpoint(source, tmp_path / "out.safetensors")

    good = tmp_path / "good.pt"
    torch.save({"weight": torch.ones(2)}, good)
    with pytest.raises(ArgumentError, match="is the input"):
        convert_checkpoint(good, good)
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"keep me")
    with pytest.raises(ArgumentError, match="already exists; pass force=True"):
        convert_checkpoint(good, target)
    assert target.read_bytes() == b"keep me"
    convert_checkpoint(good, target, force=True)
    assert torch.equal(load_file(target)["weight"], torch.ones(2))
    with pytest.raises(CheckpointError, match="is already safetensors; nothing to convert"):
        convert_checkpoint(target, tmp_path / "again.safetensors")


def test_zoo_convert_on_the_command_line(tmp_path):
    original = tiny_resnet()
    source = tmp_path / "pytorch_model.bin"
    torch.save({"model": {f"module.{k}": v for k, v in original.state_dict().items()}}, source)
    output = tmp_path / "model.safetensors"

    result = run("convert", str(source), "-o", str(output), "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {
        "input": str(source),
        "output": str(output),
        "tensors": len(original.state_dict()),
        "key": "model",
        "prefix": "module.",
        "aliases": {},
        "sha256": zoo.weights.cache.sha256_of(output),
        "size": output.stat().st_size,
    }
    line = one_line_error(run("convert", str(source), "-o", str(output)))
    assert line == f"zoo: error: output '{output}' already exists; pass --force to replace it"
    again = run("convert", str(source), "-o", str(output), "--force")
    assert again.exit_code == 0 and again.stdout.startswith(f"{output}: 80 tensors, from 'model'")
    refused = tmp_path / "mixed.pt"
    torch.save({"w": torch.ones(1), "note": "hello"}, refused)
    assert "not tensors: note (str)" in one_line_error(
        run("convert", str(refused), "-o", str(tmp_path / "m"))
    )

    help_text = run("convert", "--help").stdout
    assert re.search(r"^  --json +Print JSON instead of text\.$", help_text, re.MULTILINE)
    assert '{"input": str, "output": str, "tensors": int' in help_text
    assert 'torch.load(FILE, weights_only=True, map_location="cpu")' in " ".join(help_text.split())


# ---------------------------------------------------------------------- names saved through a wrapper


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "model.", "module._orig_mod."])
def test_a_prefix_every_name_carries_is_stripped_when_the_rest_fits(tmp_path, prefix, caplog):
    original = tiny_resnet()
    path = tmp_path / "wrapped.safetensors"
    save_file({prefix + k: v for k, v in original.state_dict().items()}, path)

    rehearsed = tiny_resnet(device="meta")
    messages = load_checkpoint(rehearsed, path, device=torch.device("meta")).messages
    assert all(p.is_meta for p in rehearsed.parameters())
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create("resnet18", checkpoint=path, num_classes=10, **TINY_RESNET)

    assert len(messages) == 1 and messages[0].startswith(f"tensor names start with '{prefix}'")
    assert messages[0].endswith("; loaded without it")
    assert messages[0] in caplog.text
    assert torch.equal(outputs(model), outputs(original))


def test_a_prefix_that_does_not_make_the_names_fit_is_named_in_the_mismatch(tmp_path):
    state = tiny_resnet().state_dict()
    path = tmp_path / "ddp.safetensors"
    save_file({f"module.{k}": v for k, v in state.items() if not k.startswith("layer4.")}, path)
    with pytest.raises(CheckpointError) as raised:
        zoo.create("resnet18", checkpoint=path, num_classes=10, **TINY_RESNET)
    assert str(raised.value).startswith(
        f"checkpoint '{path}' does not fit the model: every checkpoint name starts with 'module.' "
        "(as DistributedDataParallel saves them); without it: 18 missing: layer4.0.conv1.weight"
    )


# ---------------------------------------------------------------------- another head size


def test_another_head_size_says_which_num_classes_loads_it(tmp_path):
    path = tmp_path / "ten.safetensors"
    save_file(tiny_resnet(num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError) as raised:
        zoo.create("resnet18", checkpoint=path, **TINY_RESNET)  # the registry's 1000 classes
    assert str(raised.value).endswith("; the checkpoint has a 10-class head: pass num_classes=10 to load it")
    zoo.create("resnet18", checkpoint=path, num_classes=10, **TINY_RESNET)

    line = one_line_error(
        run(
            "create",
            "resnet18",
            "--checkpoint",
            str(path),
            "-a",
            "layers=[1,1,1,1]",
            "-a",
            "channels=[8,16,32,64]",
        )
    )
    assert "pass --num-classes 10" in line


def test_a_checkpoint_without_head_says_num_classes_0(tmp_path):
    path = tmp_path / "features.safetensors"
    save_file(zoo.create("vit_tiny_patch16_224", num_classes=0, **TINY_VIT).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"has no head: pass num_classes=0 to load it"):
        zoo.create("vit_tiny_patch16_224", checkpoint=path, **TINY_VIT)


def test_no_head_hint_when_more_than_the_head_differs(tmp_path):
    path = tmp_path / "ten.safetensors"
    save_file(tiny_resnet(num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError) as raised:
        zoo.create("resnet18", checkpoint=path, **{**TINY_RESNET, "layers": [1, 1, 2, 1]})
    assert "--num-classes" not in str(raised.value)


# ---------------------------------------------------------------------- sharded checkpoints


def write_shards(model: torch.nn.Module, folder: Path, count: int = 3) -> dict[str, str]:
    """The model's state dict in `count` shards with their index, as transformers writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(model.state_dict())
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    weight_map = {}
    for number in range(count):
        shard = f"model-{number + 1:05d}-of-{count:05d}.safetensors"
        part = names[number::count]
        save_file({name: state[name] for name in part}, folder / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return weight_map


def test_a_sharded_folder_or_its_index_loads_like_one_file(tmp_path):
    original = tiny_resnet(seed=4)
    write_shards(original, tmp_path / "sharded")
    for checkpoint in (tmp_path / "sharded", tmp_path / "sharded" / "model.safetensors.index.json"):
        model = zoo.create("resnet18", checkpoint=checkpoint, num_classes=10, **TINY_RESNET)
        assert torch.equal(outputs(model), outputs(original))
    result = run(
        "create", "resnet18", "--checkpoint", str(tmp_path / "sharded"), "--num-classes", "10",
        "-a", "layers=[1,1,1,1]", "-a", "channels=[8,16,32,64]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_shards_are_checked_against_the_model_across_all_of_them(tmp_path):
    folder = tmp_path / "sharded"
    weight_map = write_shards(tiny_resnet(), folder)
    shard = folder / weight_map.pop("layer1.0.bn1.bias")
    save_file({k: v for k, v in load_file(shard).items() if k != "layer1.0.bn1.bias"}, shard)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError) as raised:
        zoo.create("resnet18", checkpoint=folder, num_classes=10, **TINY_RESNET)
    assert str(raised.value) == f"checkpoint '{folder}' does not fit the model: 1 missing: layer1.0.bn1.bias"


def test_a_bad_shard_is_refused_before_any_data_is_read(tmp_path):
    write_shards(tiny_resnet(), tmp_path / "sharded")
    last = tmp_path / "sharded" / "model-00003-of-00003.safetensors"
    last.write_bytes(last.read_bytes()[:-4])
    model = tiny_resnet(device="meta")
    with pytest.raises(CheckpointError, match=f"checkpoint '{last}' is truncated or lies about its size"):
        load_checkpoint(model, tmp_path / "sharded")
    assert all(t.is_meta for t in model.state_dict().values())  # nothing was assigned


def test_an_inconsistent_index_is_one_line(tmp_path):
    folder = tmp_path / "sharded"
    weight_map = write_shards(tiny_resnet(), folder)
    index = folder / "model.safetensors.index.json"
    first, second = "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"

    (folder / "model-00003-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(folder)
    assert str(raised.value) == (
        f"checkpoint '{index}' names shard 'model-00003-of-00003.safetensors', which does not exist next to it"
    )

    write_shards(tiny_resnet(), folder)
    duplicated = next(name for name, shard in weight_map.items() if shard == first)
    tensors = load_file(folder / second)
    save_file({**tensors, duplicated: load_file(folder / first)[duplicated]}, folder / second)
    with pytest.raises(
        CheckpointError, match=f"has tensor '{re.escape(duplicated)}' in two shards: {first} and {second}"
    ):
        read_checkpoint(index)

    write_shards(tiny_resnet(), folder)
    index.write_text(json.dumps({"weight_map": {**weight_map, duplicated: second}}))
    with pytest.raises(
        CheckpointError,
        match=f"puts tensor '{re.escape(duplicated)}' in shard {second}, but it is in {first}",
    ):
        read_checkpoint(index)
    index.write_text(json.dumps({"weight_map": {**weight_map, "x": "../outside.safetensors"}}))
    with pytest.raises(CheckpointError, match="which is not a file name beside it"):
        read_checkpoint(index)
    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(CheckpointError, match="needs a non-empty 'weight_map' object"):
        read_checkpoint(index)


def test_a_sharded_repository_on_the_hub_loads_and_every_shard_is_recorded(
    hub, hub_env, request, tmp_path, make_registry, monkeypatch
):
    original = tiny_model("resnet", seed=5)
    folder = tmp_path / "published"
    weight_map = write_shards(original, folder)
    repo = repo_id(request)
    hub.publish(repo, {path.name: path for path in folder.iterdir()})
    tag = {"hf_hub_id": repo, "filename": "model.safetensors.index.json"}
    registry = registry_with(make_registry, "tiny", "resnet", {"test": tag})

    model = zoo.create("tiny", pretrained=True, registry=registry)

    assert torch.equal(outputs(model), outputs(original))
    download = download_weights("tiny", registry=registry)
    assert download.path.name == "model.safetensors.index.json"
    assert {shard.path.name for shard in download.shards} == set(weight_map.values())
    assert all(shard.path.parent == download.path.parent for shard in download.shards)
    record = read_record()
    for shard in (download, *download.shards):
        entry = record[str(shard.path)]
        assert entry["repo_id"] == repo and entry["sha256"] == shard.sha256
        assert shard.sha256 == zoo.weights.cache.sha256_of(folder / shard.path.name)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # every shard is served from the cache
    assert torch.equal(outputs(zoo.create("tiny", pretrained=True, registry=registry)), outputs(original))
    monkeypatch.delenv("HF_HUB_OFFLINE")

    blob = download.shards[1].path.resolve()
    blob.write_bytes(b"\x00" * blob.stat().st_size)  # a shard changed in the cache is caught
    with pytest.raises(
        IntegrityError, match=f"sha256 mismatch for {re.escape(str(download.shards[1].path))}: "
    ):
        zoo.create("tiny", pretrained=True, registry=registry)
