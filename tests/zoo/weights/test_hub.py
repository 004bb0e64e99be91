"""The weight hub against a real Hub-protocol server (olah on loopback).

Downloads go through `huggingface_hub` into `HF_HOME` in each test's temporary folder;
checkpoints are tiny models made here, published as git repositories the server serves.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import zoo
from zoo.cli import cli

from ...hub_server import HubServer, free_port

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
TINY_RESNET = {"block": "basic", "layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}
PREPROCESSING = {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


def tiny_model(kind: str, num_classes: int = 10, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "vit":
        return zoo.create("vit_tiny_patch16_224", num_classes=num_classes, **TINY_VIT).eval()
    model = zoo.create("resnet18", num_classes=num_classes, **TINY_RESNET).eval()
    for module in model.modules():  # BatchNorm statistics that matter
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def save(model: torch.nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def repo_id(request: pytest.FixtureRequest, suffix: str = "") -> str:
    return "test/" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name + suffix).strip("-")[:90]


def registry_with(make_registry, name: str, kind: str, weights: dict[str, dict]) -> zoo.Registry:
    """A registry with one tiny entry whose tags point at served repositories."""
    tags = {
        tag: {"num_classes": 10, "license": "apache-2.0", "preprocessing": PREPROCESSING, **fields}
        for tag, fields in weights.items()
    }
    entry = {"builder": kind, "args": TINY_VIT if kind == "vit" else TINY_RESNET, "weights": tags}
    return make_registry(yaml.safe_dump({"models": {name: entry}}))


def loaded_directly(kind: str, path: Path) -> torch.nn.Module:
    model = tiny_model(kind, seed=123)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("zoo: error: ")
    return lines[0]


@pytest.fixture
def served_vit(hub: HubServer, request, tmp_path, make_registry):
    """A tiny ViT checkpoint published at the test hub, and a registry entry for it."""
    path = save(tiny_model("vit", seed=1), tmp_path / "vit.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    registry = registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}})
    return path, repo, registry


# ---------------------------------------------------------------------- download and load


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_pretrained_load_gives_the_outputs_of_loading_the_file_directly(
    kind, hub, hub_env, request, tmp_path, make_registry
):
    path = save(tiny_model(kind, seed=1), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    registry = registry_with(make_registry, "tiny", kind, {"test": {"hf_hub_id": repo}})

    model = zoo.create("tiny", pretrained=True, registry=registry).eval()

    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), loaded_directly(kind, path)(x))
    cached = zoo.get("tiny.test", registry=registry)
    assert cached.is_relative_to(hub_env / "hub")  # the standard cache under HF_HOME
    assert f"models--{repo.replace('/', '--')}" in str(cached)
    assert cached.read_bytes() == path.read_bytes()


def test_loading_maps_the_file_instead_of_copying_it(served_vit):
    path, _, registry = served_vit
    model = zoo.create("tiny_vit", pretrained=True, registry=registry)
    tensors = [t for t in model.state_dict().values() if t.numel()]
    start = min(t.data_ptr() for t in tensors)
    end = max(t.data_ptr() + t.numel() * t.element_size() for t in tensors)
    assert end - start <= path.stat().st_size  # all inside one mapping of the file
    cached = zoo.get("tiny_vit", registry=registry)
    before = cached.read_bytes()
    with torch.no_grad():
        model.pos_embed.add_(1.0)  # writable: copy-on-write, the file is untouched
    assert cached.read_bytes() == before


def test_device_and_dtype_are_applied_after_loading(served_vit):
    path, _, registry = served_vit
    model = zoo.create("tiny_vit", pretrained=True, registry=registry, dtype="bfloat16", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.equal(model.pos_embed.float(), load_file(str(path))["pos_embed"].bfloat16().float())


def test_zoo_get_prints_sha256_and_path(served_vit, use_registry):
    path, repo, registry = served_vit
    use_registry(registry)
    result = CliRunner().invoke(cli, ["get", "tiny_vit"])
    assert result.exit_code == 0, result.output
    digest, local = result.stdout.split()
    assert digest == zoo.weights.cache.sha256_of(path)
    assert Path(local).read_bytes() == path.read_bytes()
    assert "%|" not in result.stderr  # no progress bar when not on a terminal

    result = CliRunner().invoke(cli, ["get", "tiny_vit.test", "--json"])
    [row] = json.loads(result.stdout)
    assert row["name"] == "tiny_vit.test" and row["sha256"] == digest and row["verified"] == "recorded"
    assert row["repo_id"] == repo and row["path"] == local

    blob = Path(local).resolve()
    blob.write_bytes(b"garbage")  # --force fetches and checks again
    result = CliRunner().invoke(cli, ["get", "tiny_vit", "--force"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [digest, local] and Path(local).read_bytes() == path.read_bytes()


def test_zoo_get_reports_what_succeeded_and_what_failed(hub, request, tmp_path, make_registry, use_registry):
    path = save(tiny_model("vit", seed=1), tmp_path / "vit.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    tags = {"test": {"hf_hub_id": repo}, "gone": {"hf_hub_id": repo + "-unpublished"}}
    use_registry(registry_with(make_registry, "tiny_vit", "vit", tags))

    result = CliRunner().invoke(cli, ["get", "tiny_vit.gone", "tiny_vit.test", "tiny_vit.nope", "--json"])
    assert result.exit_code == 1
    gone, fetched, unknown = json.loads(result.stdout)
    assert gone == {"name": "tiny_vit.gone", "error": f"tiny_vit.gone: repository {repo}-unpublished not "
                    f"found on {hub.endpoint} (or it is private: set HF_TOKEN)"}  # fmt: skip
    assert fetched["name"] == "tiny_vit.test" and fetched["sha256"] == zoo.weights.cache.sha256_of(path)
    assert unknown["name"] == "tiny_vit.nope" and unknown["error"].startswith("unknown weight tag 'nope'")
    assert result.stderr == ""

    result = CliRunner().invoke(cli, ["get", "tiny_vit.nope", "tiny_vit.test"])
    assert result.exit_code == 2  # only unknown names: a usage error, as in every command
    assert result.stdout.split()[0] == fetched["sha256"]
    assert result.stderr == f"zoo: error: {unknown['error']}\n"


def test_revision_selects_an_older_commit(hub, request, tmp_path, make_registry):
    first = save(tiny_model("vit", seed=1), tmp_path / "first.safetensors")
    second = save(tiny_model("vit", seed=2), tmp_path / "second.safetensors")
    repo = repo_id(request)
    old = hub.publish(repo, {"model.safetensors": first})
    hub.publish(repo, {"model.safetensors": second})
    registry = registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}})
    assert zoo.get("tiny_vit", registry=registry).read_bytes() == second.read_bytes()
    assert zoo.get("tiny_vit", registry=registry, revision=old).read_bytes() == first.read_bytes()


# ---------------------------------------------------------------------- cache and offline


def test_second_run_is_served_from_the_cache_with_the_server_stopped(
    hub_env, request, tmp_path, make_registry, monkeypatch
):
    path = save(tiny_model("vit", seed=3), tmp_path / "model.safetensors")
    with HubServer(tmp_path / "own-server") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        server.publish("test/stopped", {"model.safetensors": path})
        registry = registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": "test/stopped"}})
        first = zoo.create("tiny_vit", pretrained=True, registry=registry).eval()
    x = torch.randn(1, 3, 32, 32)

    again = zoo.create("tiny_vit", pretrained=True, registry=registry).eval()  # server gone
    assert torch.equal(again(x), first(x))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = zoo.create("tiny_vit", pretrained=True, registry=registry).eval()
    assert torch.equal(offline(x), first(x))


def test_unreachable_hub_and_missing_file_is_one_line_saying_what_to_check(
    hub_env, served_vit, use_registry, monkeypatch
):
    _, repo, registry = served_vit
    use_registry(registry)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    result = CliRunner().invoke(cli, ["create", "tiny_vit", "--pretrained"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"zoo: error: tiny_vit.test: {repo}/model.safetensors is not in the cache and {endpoint} refused the "
        "connection (not retried); check the network and HF_ENDPOINT; with HF_HUB_OFFLINE=1 only files in the "
        "cache are used",
    ]  # more in test_network.py


def test_offline_mode_uses_only_the_cache(served_vit, use_registry, monkeypatch):
    path, _, registry = served_vit
    use_registry(registry)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        zoo.NotCachedError, match=r"HF_HUB_OFFLINE is set; fetch it with `zoo get tiny_vit.test` while online"
    ):
        zoo.create("tiny_vit", pretrained=True)
    line = one_line_error(CliRunner().invoke(cli, ["get", "tiny_vit"]))
    assert "HF_HUB_OFFLINE is set" in line and "`zoo get tiny_vit.test`" in line
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert CliRunner().invoke(cli, ["get", "tiny_vit"]).exit_code == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["get", "tiny_vit"])
    assert result.exit_code == 0 and result.stdout.split()[0] == zoo.weights.cache.sha256_of(path)


def test_cache_ls_rm_and_verify(served_vit, use_registry):
    path, repo, registry = served_vit
    use_registry(registry)
    runner = CliRunner()
    assert json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).stdout) == []
    local = zoo.get("tiny_vit")

    [row] = json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).stdout)
    assert row == {
        "name": "tiny_vit",
        "tag": "test",
        "repo_id": repo,
        "filename": "model.safetensors",
        "size": path.stat().st_size,
        "path": str(local),
        "verified": "recorded",
        "sha256": zoo.weights.cache.sha256_of(path),
    }
    assert "tiny_vit.test" in runner.invoke(cli, ["cache", "ls"]).stdout
    result = runner.invoke(cli, ["cache", "verify"])
    assert result.exit_code == 0 and result.stdout.startswith("ok  tiny_vit.test")

    result = runner.invoke(cli, ["cache", "rm", "tiny_vit"])
    assert result.exit_code == 0 and "removed tiny_vit.test" in result.stdout
    assert not local.exists() and not local.resolve().exists()
    assert json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).stdout) == []
    assert "nothing is cached" in one_line_error(runner.invoke(cli, ["cache", "rm", "tiny_vit"]))


# ---------------------------------------------------------------------- integrity


def test_pinned_sha256_mismatch_is_refused_the_file_kept_and_removed_only_when_asked(
    hub, request, tmp_path, make_registry, use_registry
):
    path = save(tiny_model("vit", seed=4), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    wrong = "0" * 64
    registry = registry_with(
        make_registry, "tiny_vit", "vit", {"pinned": {"hf_hub_id": repo, "sha256": wrong}}
    )
    use_registry(registry)
    runner = CliRunner()

    line = one_line_error(runner.invoke(cli, ["get", "tiny_vit"]))
    [local] = zoo.weights.cache.cached_versions(repo, "model.safetensors")
    found = zoo.weights.cache.sha256_of(path)
    assert (
        f"tiny_vit.pinned: sha256 mismatch for {local}: its pinned sha256 is {wrong}, the file has {found}"
        in line
    )
    assert "fetch it again with `zoo get tiny_vit.pinned --force`" in line and "was removed" not in line
    assert local.read_bytes() == path.read_bytes()  # left as it was
    # never loaded: the library raises, the CLI refuses in one line with the same advice
    with pytest.raises(zoo.IntegrityError, match=re.escape("zoo get tiny_vit.pinned --force")):
        zoo.create("tiny_vit", pretrained=True)
    line = one_line_error(runner.invoke(cli, ["create", "tiny_vit", "--pretrained"]))
    assert f"its pinned sha256 is {wrong}, the file has {found}" in line and "--force`" in line
    assert local.is_file()

    result = runner.invoke(cli, ["cache", "verify", "--remove"])
    assert result.exit_code == 1
    assert f"sha256 mismatch for {local}" in result.stderr and "the file was removed" in result.stderr
    blobs = list((zoo.weights.cache.repo_folder(repo) / "blobs").iterdir())
    assert not [b for b in blobs if not b.name.endswith(".incomplete")]  # nothing left to load
    assert json.loads(runner.invoke(cli, ["cache", "ls", "--json"]).stdout) == []


def test_pinned_sha256_that_matches_is_reported_as_pinned(hub, request, tmp_path, make_registry):
    path = save(tiny_model("resnet", seed=4), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    digest = zoo.weights.cache.sha256_of(path)
    registry = registry_with(
        make_registry, "tiny", "resnet", {"pinned": {"hf_hub_id": repo, "sha256": digest}}
    )
    result = zoo.weights.factory.download("tiny", registry=registry)
    assert (result.sha256, result.verified) == (digest, "pinned")


def test_a_cached_file_that_changed_since_recorded_is_reported_kept_and_never_loaded(
    served_vit, use_registry
):
    path, _, registry = served_vit
    use_registry(registry)
    runner = CliRunner()
    local = zoo.get("tiny_vit")
    good = zoo.weights.cache.sha256_of(local)
    blob = local.resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor: the header still parses
    blob.write_bytes(bytes(data))
    changed = zoo.weights.cache.sha256_of(local)

    result = runner.invoke(cli, ["cache", "verify"])
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"zoo: error: tiny_vit.test: sha256 mismatch for {local}: its sha256 was recorded "
    )
    assert f"as {good}, the file has {changed}" in line
    assert "fetch it again with `zoo get tiny_vit.test --force`" in line
    assert local.read_bytes() == bytes(data)  # reported, not removed

    with pytest.raises(zoo.IntegrityError, match=f"the file has {changed}; fetch it again"):
        zoo.create("tiny_vit", pretrained=True)
    line = one_line_error(runner.invoke(cli, ["create", "tiny_vit", "--pretrained"]))
    assert f"as {good}, the file has {changed}" in line and "`zoo get tiny_vit.test --force`" in line
    assert local.read_bytes() == bytes(data)  # refused, not removed

    # the advice works: fetched again, the good file is checked against the same record
    result = runner.invoke(cli, ["get", "tiny_vit.test", "--force"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [good, str(local)]
    assert local.read_bytes() == path.read_bytes()
    assert runner.invoke(cli, ["cache", "verify"]).stdout.startswith(f"ok  tiny_vit.test  {good}  (recorded)")


def test_truncated_file_is_refused_in_one_line(hub, request, tmp_path, make_registry, use_registry):
    path = save(tiny_model("vit", seed=5), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path.read_bytes()[:-1000]})
    use_registry(registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}}))
    with pytest.raises(zoo.CheckpointError, match="is truncated or lies about its size"):
        zoo.create("tiny_vit", pretrained=True)
    line = one_line_error(CliRunner().invoke(cli, ["create", "tiny_vit", "--pretrained"]))
    assert "truncated" in line


def test_header_that_lies_about_sizes_is_refused_in_one_line(
    hub, request, tmp_path, make_registry, use_registry
):
    path = save(tiny_model("vit", seed=6), tmp_path / "model.safetensors")
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    header["pos_embed"]["shape"] = [1, 17, 24]  # half the bytes its offsets span
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": len(text).to_bytes(8, "little") + text + raw[8 + length :]})
    use_registry(registry_with(make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}}))
    line = one_line_error(CliRunner().invoke(cli, ["create", "tiny_vit", "--pretrained"]))
    assert "lies about tensor 'pos_embed'" in line


def test_checkpoint_that_does_not_fit_names_what_is_wrong(hub, request, tmp_path, make_registry):
    path = save(tiny_model("vit", num_classes=7, seed=6), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    registry = registry_with(
        make_registry, "tiny_vit", "vit", {"test": {"hf_hub_id": repo}}
    )  # says 10 classes
    with pytest.raises(
        zoo.CheckpointError, match=r"wrong shape: head.weight \(checkpoint \[7, 48\], model \[10, 48\]\)"
    ):
        zoo.create("tiny_vit", pretrained=True, registry=registry)


def test_four_processes_fetching_the_same_file_end_with_one_verified_copy(hub, request, tmp_path):
    """Four `zoo get` processes at once, on an `hf-hub:` repository (no registry needed)."""
    model_path = save(tiny_model("resnet", seed=7), tmp_path / "model.safetensors")
    folder = tmp_path / "exported"
    zoo.export("resnet18", model_path, folder, license="mit", num_classes=10, **TINY_RESNET)
    repo = repo_id(request)
    hub.publish(repo, {p.name: p for p in folder.iterdir()})
    name = f"hf-hub:{repo}"
    command = [sys.executable, "-c", "from zoo.cli import main; main()", "get", name, "--json"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs

    digest = zoo.weights.cache.sha256_of(model_path)
    rows = [json.loads(stdout)[0] for stdout, _ in outputs]
    assert {(row["sha256"], row["path"]) for row in rows} == {(digest, rows[0]["path"])}
    blobs = list((zoo.weights.cache.repo_folder(repo) / "blobs").iterdir())
    weights = [blob for blob in blobs if blob.stat().st_size == model_path.stat().st_size]
    assert len(weights) == 1 and not [blob for blob in blobs if blob.name.endswith(".incomplete")]
    assert zoo.weights.cache.sha256_of(weights[0]) == digest
    record = zoo.weights.cache.read_record()
    assert record[rows[0]["path"]]["sha256"] == digest
    assert zoo.weights.cache.verify_file(Path(rows[0]["path"]), name=name, rehash=True).sha256 == digest


# ---------------------------------------------------------------------- adaptation


def test_new_num_classes_gives_a_fresh_head_and_loads_the_rest(served_vit, caplog):
    path, _, registry = served_vit
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create("tiny_vit", pretrained=True, registry=registry, num_classes=4)
    assert model.head.weight.shape == (4, 48) and not model.head.weight.is_meta
    assert model.head.bias.abs().sum() == 0  # initialised as the model initialises heads
    state = load_file(str(path))
    assert torch.equal(model.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"])
    [message] = [r.getMessage() for r in caplog.records if r.name == "zoo"]
    assert message == (
        "tiny_vit.test: head: new 4-class head, freshly initialised (the checkpoint's has 10 classes); "
        "the rest is loaded"
    )


def test_the_cli_prints_each_adaptation_on_one_line(served_vit, use_registry):
    _, _, registry = served_vit
    use_registry(registry)
    result = CliRunner().invoke(
        cli, ["create", "tiny_vit", "--pretrained", "--num-classes", "4", "-a", "img_size=48"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "zoo: info: tiny_vit.test: head: new 4-class head, freshly initialised "
        "(the checkpoint's has 10 classes); the rest is loaded",
        "zoo: info: tiny_vit.test: pos_embed: position embeddings resampled from a 4x4 to a 6x6 grid "
        "(bicubic), 1 prefix token(s) kept",
    ]


def test_no_head_drops_the_checkpoints_head(served_vit):
    _, _, registry = served_vit
    model = zoo.create("tiny_vit", pretrained=True, registry=registry, num_classes=0)
    assert isinstance(model.head, torch.nn.Identity)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 48)


def test_new_img_size_resamples_position_embeddings_keeping_the_class_token(served_vit, caplog):
    path, _, registry = served_vit
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create("tiny_vit", pretrained=True, registry=registry, img_size=48)
    original = load_file(str(path))["pos_embed"]  # (1, 1 + 4*4, 48)
    assert model.pos_embed.shape == (1, 1 + 6 * 6, 48)
    assert torch.equal(model.pos_embed[:, :1], original[:, :1])
    grid = original[:, 1:].reshape(1, 4, 4, 48).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(6, 6), mode="bicubic", antialias=True)
    assert torch.allclose(model.pos_embed[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 36, 48))
    assert any("resampled from a 4x4 to a 6x6 grid" in r.getMessage() for r in caplog.records)
    assert model(torch.randn(1, 3, 48, 48)).shape == (1, 10)


@pytest.mark.parametrize("in_chans", [1, 4, 6])
def test_new_in_chans_adapts_the_first_conv(in_chans, hub, request, tmp_path, make_registry, caplog):
    path = save(tiny_model("resnet", seed=8), tmp_path / "model.safetensors")
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": path})
    registry = registry_with(make_registry, "tiny", "resnet", {"test": {"hf_hub_id": repo}})
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = zoo.create("tiny", pretrained=True, registry=registry, in_chans=in_chans).eval()
    original = load_file(str(path))["conv1.weight"]  # (64, 3, 7, 7)
    if in_chans == 1:
        assert torch.allclose(model.conv1.weight, original.sum(dim=1, keepdim=True))
    else:
        tiled = torch.cat([original, original, original], dim=1)[:, :in_chans]
        assert torch.allclose(model.conv1.weight, tiled * 3 / in_chans)
    assert any(f"from 3 to {in_chans} input channel(s)" in r.getMessage() for r in caplog.records)
    if in_chans % 3 and in_chans != 1:
        return
    # a grey image repeated across channels gives the original model's output
    grey = torch.rand(1, 1, 32, 32)
    reference = loaded_directly("resnet", path)
    assert torch.allclose(
        model(grey.expand(1, in_chans, 32, 32)), reference(grey.expand(1, 3, 32, 32)), atol=1e-5
    )


def test_without_overrides_a_mismatch_is_not_adapted(served_vit, tmp_path):
    path, _, _ = served_vit
    with pytest.raises(zoo.CheckpointError, match=r"wrong shape: head\.weight"):
        zoo.create("vit_tiny_patch16_224", checkpoint=path, **TINY_VIT)  # the registry's 1000 classes


def test_a_weight_tag_may_name_a_key_adapter(hub, request, tmp_path, make_registry):
    path = save(tiny_model("vit", seed=9), tmp_path / "model.safetensors")
    prefixed = {f"backbone.{k}": v for k, v in load_file(str(path)).items()}
    save_file(prefixed, str(tmp_path / "prefixed.safetensors"))
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": tmp_path / "prefixed.safetensors"})
    registry = registry_with(
        make_registry, "tiny_vit", "vit", {"other": {"hf_hub_id": repo, "adapter": "strip"}}
    )
    registry.add_adapter(
        "strip", lambda state: {k.removeprefix("backbone."): v for k, v in state.items()}, owner="tests"
    )
    x = torch.randn(1, 3, 32, 32)
    model = zoo.create("tiny_vit", pretrained=True, registry=registry).eval()
    assert torch.equal(model(x), loaded_directly("vit", path)(x))


# ---------------------------------------------------------------------- hf-hub: names and export


def test_exported_folder_served_by_the_hub_loads_back_with_hf_hub(hub, request, tmp_path):
    trained = tiny_model("resnet", num_classes=5, seed=10)
    checkpoint = save(trained, tmp_path / "trained.safetensors")
    folder = tmp_path / "export"
    repo = repo_id(request)
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "resnet18",
            "--checkpoint",
            str(checkpoint),
            "-o",
            str(folder),
            "--num-classes",
            "5",
            "-a",
            "block=basic",
            "-a",
            "layers=[1, 1, 1, 1]",
            "-a",
            "channels=[8, 16, 32, 64]",
            "--license",
            "cc-by-4.0",
            "--repo-id",
            repo,
            "-p",
            "input_size=[3, 32, 32]",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "zoo_config.json"]
    config = json.loads((folder / "zoo_config.json").read_text())
    assert config["builder"] == "resnet" and config["args"]["num_classes"] == 5
    assert config["weights"]["sha256"] == zoo.weights.cache.sha256_of(checkpoint)
    card = (folder / "README.md").read_text()
    assert "license: cc-by-4.0" in card and f'zoo.create("hf-hub:{repo}", pretrained=True)' in card
    assert "| mean | [0.485, 0.456, 0.406] |" in card and "3 x 32 x 32" in card

    commit = hub.publish(repo, {p.name: p for p in folder.iterdir()})
    x = torch.randn(2, 3, 32, 32)
    for name in (f"hf-hub:{repo}", f"hf-hub:{repo}@{commit}"):
        model = zoo.create(name, pretrained=True).eval()
        assert torch.equal(model(x), trained(x))
    download = zoo.weights.factory.download(f"hf-hub:{repo}")
    assert download.verified == "pinned"  # the config pins the sha256
    result = CliRunner().invoke(cli, ["cache", "ls", "--json"])
    [row] = json.loads(result.stdout)  # one file, whichever name fetched it last
    assert row["name"] in (f"hf-hub:{repo}", f"hf-hub:{repo}@{commit}") and row["tag"] is None
    assert row["path"] == str(download.path) and row["verified"] == "pinned"
    removed = CliRunner().invoke(cli, ["cache", "rm", f"hf-hub:{repo}", "--json"])  # any revision
    assert removed.exit_code == 0 and [r["path"] for r in json.loads(removed.stdout)] == [row["path"]]


def test_hf_hub_config_that_is_not_valid_is_one_line(hub, request):
    repo = repo_id(request)
    hub.publish(
        repo, {"zoo_config.json": json.dumps({"builder": "vit", "args": {}, "weights": {"license": "mit"}})}
    )
    with pytest.raises(
        zoo.HubError, match=r"zoo_config.json is not a valid zoo config: field 'weights.num_classes'"
    ):
        zoo.create(f"hf-hub:{repo}", pretrained=True)
    hub.publish(
        repo,
        {
            "zoo_config.json": json.dumps(
                {
                    "builder": "nope",
                    "weights": {"num_classes": 1, "license": "mit", "preprocessing": PREPROCESSING},
                }
            )
        },
    )
    with pytest.raises(zoo.UnknownModelError, match="unknown builder 'nope'"):
        zoo.get(f"hf-hub:{repo}")


def test_hf_hub_repository_that_does_not_exist_is_one_line(hub):
    line = one_line_error(CliRunner().invoke(cli, ["get", "hf-hub:test/no-such-repo"]))
    assert "test/no-such-repo" in line
    assert "not of the form" in one_line_error(CliRunner().invoke(cli, ["get", "hf-hub:no-slash"]))


def test_export_writes_nothing_when_the_checkpoint_does_not_fit(tmp_path):
    checkpoint = save(tiny_model("resnet", num_classes=5), tmp_path / "trained.safetensors")
    output = tmp_path / "out" / "export"
    result = CliRunner().invoke(
        cli, ["export", "resnet18", "--checkpoint", str(checkpoint), "-o", str(output), "--license", "mit"]
    )
    assert "does not fit the model" in one_line_error(result)
    assert not output.exists()
    assert not [p for p in output.parent.iterdir()] if output.parent.exists() else True


def test_export_refuses_a_folder_that_is_not_empty(tmp_path):
    checkpoint = save(tiny_model("resnet", num_classes=5), tmp_path / "trained.safetensors")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    args = [
        "export",
        "resnet18",
        "--checkpoint",
        str(checkpoint),
        "-o",
        str(tmp_path / "out"),
        "--num-classes",
        "5",
        "-a",
        "block=basic",
        "-a",
        "layers=[1, 1, 1, 1]",
        "-a",
        "channels=[8, 16, 32, 64]",
        "--license",
        "mit",
    ]
    assert "not empty" in one_line_error(CliRunner().invoke(cli, args))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "trained.safetensors"]


def test_settings_are_read_when_used_not_at_import(served_vit, tmp_path, monkeypatch):
    _, _, registry = served_vit
    first = zoo.get("tiny_vit", registry=registry)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))
    second = zoo.get("tiny_vit", registry=registry)
    assert first != second and second.is_relative_to(tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "zoo" / "sha256.json").is_file()
    assert os.environ["HF_HOME"] == str(tmp_path / "elsewhere")


TINY_REFERENCE = Path(__file__).parents[2] / "data" / "reference" / "tiny"
REFERENCE_ENTRIES = {
    "vit_tiny_cls10": ("vit", TINY_VIT),
    "deit_tiny_distilled_cls10": ("vit", {**TINY_VIT, "distilled": True}),
    "resnet_d_bottleneck_eca_1111_cls10": (
        "resnet",
        {
            "block": "bottleneck",
            "layers": [1, 1, 1, 1],
            "channels": [16, 32, 64, 128],
            "stem_type": "deep",
            "stem_width": 16,
            "avg_down": True,
            "attn": "eca",
        },
    ),
}


@pytest.mark.parametrize("reference", sorted(REFERENCE_ENTRIES))
def test_timm_format_reference_checkpoints_served_by_the_hub_reproduce_their_outputs(
    reference, hub, request, make_registry
):
    builder, args = REFERENCE_ENTRIES[reference]
    repo = repo_id(request)
    hub.publish(repo, {"model.safetensors": TINY_REFERENCE / f"{reference}.safetensors"})
    weights = {"num_classes": 10, "license": "apache-2.0", "preprocessing": PREPROCESSING, "hf_hub_id": repo}
    registry = make_registry(
        yaml.safe_dump({"models": {"ref": {"builder": builder, "args": args, "weights": {"t": weights}}}})
    )
    io = load_file(str(TINY_REFERENCE / f"{reference}.io.safetensors"))
    model = zoo.create("ref", pretrained=True, registry=registry).eval()
    with torch.no_grad():
        assert torch.allclose(model(io["input"]), io["output"], atol=1e-5)
        assert torch.allclose(model.forward_features(io["input"]), io["features"], atol=1e-5)


def test_help_imports_neither_torch_nor_huggingface_hub():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom zoo.cli import cli\n"
        "for args in (['--help'], ['get', '--help'], ['cache', 'ls', '--help'], ['export', '--help']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'huggingface_hub') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
