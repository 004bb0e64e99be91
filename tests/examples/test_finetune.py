"""examples/finetune.py: the fine-tuning recipe, in one process on the CPU.

A ResNet-18 with CBAM in every block, started from the weights it borrows (`resnet18.a1_in1k`,
random ones served by the test Hub; its new attention modules freshly initialised), learns to
tell red squares from blue ones in three epochs of sixteen images (BatchNorm statistics
recomputed before validating: the backbone's are stale once attention is inserted), and
writes weights that `zoo create --checkpoint` loads and `zoo export` publishes. The recipe's
parts (optimizer groups, schedule, what trains, crops) are checked on their own, without
training.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import zoo

from .conftest import COLOURS

SIZE = "32"  # pixels: the recipe's --input-size, small enough for a CPU test


@pytest.fixture(scope="module")
def finetuned(finetune, squares, hub_server, tmp_path_factory):
    """The recipe run once: (output file, metrics lines, its folder)."""
    folder = tmp_path_factory.mktemp("finetuned")
    torch.manual_seed(0)
    backbone = folder / "resnet18.safetensors"
    save_file({k: t.contiguous() for k, t in zoo.create("resnet18").state_dict().items()}, backbone)
    hub_server.publish(
        zoo.model_info("resnet18.a1_in1k").weights[0].hf_hub_id, {"model.safetensors": backbone}
    )
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("HF_ENDPOINT", hub_server.endpoint)
        environment.setenv("HF_HOME", str(folder / "hf-home"))
        environment.delenv("HF_HUB_OFFLINE", raising=False)
        finetune.main([
            "resnet18_cbam", "--pretrained", "--train", str(squares / "train"), "--val", str(squares / "val"),
            "-o", str(folder / "finetuned.safetensors"), "--labels", str(folder / "classes.txt"),
            "--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "1", "--ema", "0.9",
            "--precise-bn", "2", "--input-size", SIZE, "--crop-scale", "0.9", "1", "--workers", "0",
            "--metrics", str(folder / "metrics.jsonl"),
        ])  # fmt: skip
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return folder / "finetuned.safetensors", metrics, folder


def test_resnet18_cbam_from_a_resnet18_backbone_tells_all_validation_squares_apart(finetuned):
    _, metrics, _ = finetuned
    epochs = [line for line in metrics if "val_accuracy" in line]
    steps = [line for line in metrics if "loss" in line]
    assert [line["epoch"] for line in epochs] == [1, 2, 3]
    assert epochs[-1]["val_accuracy"] == 1.0  # all 8 validation images
    assert epochs[-1]["ema_val_accuracy"] == 1.0
    assert len(steps) == 6  # 3 epochs of 16 images, 8 at a time
    assert steps[-1]["loss"] < steps[0]["loss"]


def test_the_weights_written_are_the_model_validated(finetuned, finetune, squares):
    output, _, folder = finetuned
    model = zoo.create("resnet18_cbam", checkpoint=output, num_classes=2).eval()
    args = finetune.parse_args(["resnet18_cbam", "--train", "x", "-o", "y", "--input-size", SIZE])
    classes, samples = finetune.image_folder(squares / "val")
    images = finetune.Images(samples, finetune.preprocessing_of(args))
    with torch.no_grad():
        predicted = [int(model(x[None]).argmax()) for x, _ in images]
    assert predicted == [label for _, label in samples]
    with safe_open(output, framework="pt") as file:
        assert json.loads(file.metadata()["classes"]) == sorted(COLOURS) == classes
    assert (folder / "classes.txt").read_text() == "blue\nred\n"


def test_zoo_export_publishes_the_weights_and_they_load_back(finetuned, tmp_path):
    output, _, _ = finetuned
    zoo.export("resnet18_cbam", output, tmp_path / "published", license="mit", num_classes=2)
    model = zoo.create(str(tmp_path / "published"), pretrained=True)
    expected = zoo.create("resnet18_cbam", checkpoint=output, num_classes=2)
    assert all(torch.equal(t, expected.state_dict()[k]) for k, t in model.state_dict().items())


# ---------------------------------------------------------------------- the parts


def recipe_args(finetune, *extra: str):
    return finetune.parse_args(["vit_tiny_patch16_224", "--train", "x", "-o", "y", *extra])


TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}
TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2, "num_classes": 2}


def test_weight_decay_spares_1d_parameters_and_the_model_s_no_weight_decay_names(finetune):
    model = zoo.create("vit_tiny_patch16_224", **TINY_VIT)
    assert model.no_weight_decay() == {"pos_embed", "cls_token"}  # timm's, which the recipe reads
    groups = finetune.parameter_groups(model, recipe_args(finetune, "--weight-decay", "0.05"))
    names = {id(p): name for name, p in model.named_parameters()}
    spared = {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    decayed = {names[id(p)] for g in groups if g["weight_decay"] == 0.05 for p in g["params"]}
    expected_spared = {n for n, p in model.named_parameters() if p.ndim <= 1} | {"pos_embed", "cls_token"}
    assert spared == expected_spared
    assert decayed == set(names.values()) - expected_spared


def test_layer_decay_scales_each_block_s_learning_rate_from_the_top(finetune):
    model = zoo.create("vit_tiny_patch16_224", **TINY_VIT)  # 2 blocks: layers 0 (embeddings) to 3 (head)
    groups = finetune.parameter_groups(model, recipe_args(finetune, "--lr", "1.0", "--layer-decay", "0.5"))
    names = {id(p): name for name, p in model.named_parameters()}
    rate = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
    assert rate["pos_embed"] == rate["patch_embed.proj.weight"] == 0.5**3
    assert rate["blocks.0.attn.qkv.weight"] == 0.5**2
    assert rate["blocks.1.mlp.fc2.bias"] == 0.5
    assert rate["head.weight"] == rate["norm.weight"] == 1.0


def test_the_schedule_warms_up_linearly_then_follows_a_cosine_to_its_floor(finetune):
    factor = finetune.cosine_with_warmup(warmup=4, total=14, floor=0.1)
    assert [factor(step) for step in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert factor(4) == 1.0
    assert factor(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert factor(14) == pytest.approx(0.1)


def test_training_what_is_new_keeps_the_backbone_s_weights_frozen(finetune, tmp_path):
    backbone = tmp_path / "resnet18.safetensors"
    save_file(
        {k: t.contiguous() for k, t in zoo.create("resnet18", **TINY_RESNET).state_dict().items()}, backbone
    )
    model = zoo.create("resnet18_cbam", checkpoint=backbone, fresh_modules=True, num_classes=2, **TINY_RESNET)
    finetune.choose_trainable(model, "new")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained == {
        name for name in dict(model.named_parameters()) if ".se." in name or name.startswith("fc.")
    }


def test_training_the_attention_keeps_everything_but_the_attention_and_the_head_frozen(finetune):
    model = zoo.create("resnet18_cbam", num_classes=2)
    finetune.choose_trainable(model, "attention")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained == {
        name for name in dict(model.named_parameters()) if ".se." in name or name.startswith("fc.")
    }
    finetune.choose_trainable(model, "head")
    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}


def test_random_crops_are_fixed_by_seed_epoch_and_image(finetune, squares):
    args = recipe_args(finetune, "--input-size", SIZE)
    _, samples = finetune.image_folder(squares / "train")
    preprocessing = finetune.preprocessing_of(args)
    crop = finetune.RandomResizedCrop((32, 32), (0.08, 1.0), preprocessing.interpolation)
    images = finetune.Images(samples, preprocessing, crop=crop, seed=3)
    first, again = images[5][0], images[5][0]
    images.epoch = 1
    assert first.shape == (3, 32, 32)
    assert torch.equal(first, again)
    assert not torch.equal(first, images[5][0])


def test_a_folder_of_one_class_is_refused_in_one_line(finetune, tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.png").write_bytes(b"")
    with pytest.raises(
        SystemExit, match=r"^finetune: error: .*: expected images in two or more class folders$"
    ):
        finetune.main(["resnet18", "--train", str(tmp_path), "-o", str(tmp_path / "out.safetensors")])


def test_resuming_from_the_run_s_own_empty_checkpoint_folder_starts_afresh_any_other_is_refused(
    finetune, tmp_path
):
    args = recipe_args(finetune, "--checkpoint-dir", str(tmp_path), "--resume", str(tmp_path))
    finetune.resume(None, tmp_path, args)  # nothing saved yet: the first start of a restarted job
    with pytest.raises(SystemExit, match=r"^finetune: error: .*elsewhere: no checkpoint to resume from$"):
        finetune.resume(None, tmp_path / "elsewhere", args)
