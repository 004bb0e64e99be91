"""Building by name on a device and dtype, and loading safetensors checkpoints strictly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo
from zoo.devices import resolve_dtype
from zoo.errors import ArgumentError, CheckpointError, DeviceError, MissingFileError, NoWeightsError
from zoo.weights.loading import load_checkpoint

from ...conftest import REFERENCE

TINY_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
TINY_RESNET = {"layers": [1, 1, 1, 1], "channels": [16, 32, 64, 128], "stem_width": 16}

# Each tiny reference case: the registry name whose layout it follows. Sizes come from its JSON.
TINY_CASES = {
    "vit_tiny_cls10": "vit_tiny_patch16_224",
    "vit_tiny_nohead": "vit_tiny_patch16_224",
    "deit_tiny_distilled_cls10": "deit_base_distilled_patch16_224",
    "resnet_basic_1111_cls10": "resnet18",
    "resnet_bottleneck_se_1111_cls10": "seresnet50",
    "resnet_d_bottleneck_eca_1111_cls10": "ecaresnet50d",
}
SIZE_FIELDS = {"img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias",
               "num_classes", "layers", "channels", "stem_width"}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TINY_CASES))
def test_tiny_reference_checkpoints_reproduce_their_outputs(case):
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    sizes = {key: value for key, value in description.items() if key in SIZE_FIELDS}
    if description["family"] == "resnet":
        sizes.pop("img_size")
    model = zoo.create(
        TINY_CASES[case], checkpoint=REFERENCE / "tiny" / f"{case}.safetensors", **sizes
    ).eval()
    io = load_file(REFERENCE / "tiny" / f"{case}.io.safetensors")
    with torch.no_grad():
        features = model.forward_features(io["input"])
        output = model.forward_head(features)
    torch.testing.assert_close(features, io["features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(output, io["output"], atol=1e-5, rtol=0)


def hub_references():
    return sorted(REFERENCE.glob("hub/*.json"))


@pytest.mark.parametrize("path", hub_references(), ids=lambda p: p.stem)
def test_each_published_checkpoint_is_the_layout_of_its_registry_name(path, builtin_registry):
    reference = json.loads(path.read_text())
    loading = [
        name
        for name in builtin_registry.pretrained_names()
        if builtin_registry.resolve(name).weights.hf_hub_id == reference["hf_hub_id"]
    ]
    repository_name = reference["hf_hub_id"].split("/", 1)[1]  # timm's: the name the catalogue gives it
    [full_name] = [repository_name] if repository_name in loading else loading
    weights = builtin_registry.resolve(full_name).weights
    config = reference["pretrained_cfg"]
    # An embedding checkpoint's head, where it has one, is its projection (CLIP's) to output_dim.
    heads = {weights.builder_args().get("num_classes", 0), getattr(weights, "output_dim", None)}
    assert config["num_classes"] in heads
    assert list(weights.preprocessing.input_size) == config["input_size"]
    test_size = weights.preprocessing.test_input_size
    assert (list(test_size) if test_size else None) == config.get("test_input_size")
    assert (weights.preprocessing.crop_pct, weights.preprocessing.interpolation) == (
        config["crop_pct"],
        config["interpolation"],
    )
    assert (list(weights.preprocessing.mean), list(weights.preprocessing.std)) == (
        config["mean"],
        config["std"],
    )
    assert weights.license == config["license"]

    model = zoo.create(full_name, device="meta", registry=builtin_registry)
    state = model.state_dict()
    assert {name: list(t.shape) for name, t in state.items()} == {n: s for n, s, _ in reference["state_dict"]}
    assert {name: str(t.dtype).removeprefix("torch.") for name, t in state.items()} == {
        n: d for n, _, d in reference["state_dict"]
    }
    tensors = sum(t.numel() for name, t in state.items() if not name.endswith("num_batches_tracked"))
    assert tensors == reference["num_params"]


def test_every_hub_reference_is_claimed_by_some_name(builtin_registry):
    claimed = {builtin_registry.resolve(n).weights.hf_hub_id for n in builtin_registry.pretrained_names()}
    assert {json.loads(p.read_text())["hf_hub_id"] for p in hub_references()} <= claimed


def test_building_on_meta_takes_no_memory():
    model = zoo.create("vit_huge_patch14_224_in21k", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 630_764_800 + 1280 * 21843 + 21843


def test_a_model_is_built_directly_in_the_requested_dtype():
    model = zoo.create("resnet18", num_classes=4, dtype="bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.layer1[0].bn1.num_batches_tracked.dtype == torch.int64
    assert model(torch.randn(1, 3, 64, 64, dtype=torch.bfloat16)).shape == (1, 4)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("bf16", torch.bfloat16), ("torch.float16", torch.float16), ("float", torch.float32)],
)
def test_dtype_names(name, expected):
    assert resolve_dtype(name) is expected


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"device": "cuda:7"}, "is not available"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"dtype": "int8"}, "unknown dtype 'int8'"),
    ({"dtype": torch.int64}, "is not a floating-point type"),
])  # fmt: skip
def test_devices_and_dtypes_that_do_not_exist_here_are_clear_errors(kwargs, message):
    with pytest.raises(DeviceError, match=message):
        zoo.create("resnet18", **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(DeviceError, match="sees no CUDA GPU here"):
        zoo.create("resnet18", device="cuda")


@pytest.fixture
def tiny_vit_checkpoint(tmp_path):
    model = zoo.create("vit_tiny_patch16_224", num_classes=10, **TINY_VIT)
    path = tmp_path / "tiny_vit.safetensors"
    save_file(model.state_dict(), path)
    return model.eval(), path


def test_a_checkpoint_loads_onto_the_requested_dtype(tiny_vit_checkpoint):
    original, path = tiny_vit_checkpoint
    loaded = zoo.create(
        "vit_tiny_patch16_224", checkpoint=path, num_classes=10, dtype="float64", **TINY_VIT
    ).eval()
    assert {p.dtype for p in loaded.parameters()} == {torch.float64}
    image = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(image.double()).float(), original(image), atol=1e-5, rtol=1e-5)


def test_floating_point_tensors_of_another_dtype_are_cast_to_the_models(tmp_path):
    saved = zoo.create("resnet18", num_classes=4, layers=[1, 1, 1, 1]).state_dict()
    half = {key: value.half() if value.is_floating_point() else value for key, value in saved.items()}
    save_file(half, tmp_path / "half.safetensors")
    loaded = zoo.create(
        "resnet18", checkpoint=tmp_path / "half.safetensors", num_classes=4, layers=[1, 1, 1, 1]
    )
    for key, value in loaded.state_dict().items():
        assert value.dtype == saved[key].dtype and torch.equal(value, half[key].to(value.dtype))


def test_other_tensors_of_another_dtype_are_refused(tmp_path):
    saved = zoo.create("resnet18", num_classes=4, layers=[1, 1, 1, 1]).state_dict()
    saved["bn1.num_batches_tracked"] = saved["bn1.num_batches_tracked"].int()
    save_file(saved, tmp_path / "int32.safetensors")
    with pytest.raises(
        CheckpointError, match=r"1 wrong dtype: bn1.num_batches_tracked \(checkpoint int32, model int64\)"
    ):
        zoo.create("resnet18", checkpoint=tmp_path / "int32.safetensors", num_classes=4, layers=[1, 1, 1, 1])


def test_a_checkpoint_that_does_not_fit_names_what_differs(tiny_vit_checkpoint):
    _, path = tiny_vit_checkpoint
    with pytest.raises(CheckpointError) as raised:  # the registry's 1000-class head, not asked for
        zoo.create("vit_tiny_patch16_224", checkpoint=path, **TINY_VIT)
    assert "2 wrong shape: head.weight (checkpoint [10, 48], model [1000, 48]), head.bias" in str(
        raised.value
    )
    with pytest.raises(CheckpointError, match=r"12 missing: blocks\.2\.norm1\.weight"):
        zoo.create("vit_tiny_patch16_224", checkpoint=path, num_classes=10, **{**TINY_VIT, "depth": 3})


def test_asking_for_another_head_loads_the_rest_and_says_so(tiny_vit_checkpoint, caplog):
    original, path = tiny_vit_checkpoint
    with caplog.at_level("INFO", logger="zoo"):
        model = zoo.create("vit_tiny_patch16_224", checkpoint=path, num_classes=5, **TINY_VIT).eval()
    assert "new 5-class head, freshly initialised (the checkpoint's has 10 classes)" in caplog.text
    assert model.head.out_features == 5
    image = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model.forward_features(image), original.forward_features(image))


def test_a_checkpoint_is_only_checked_on_meta(tiny_vit_checkpoint):
    _, path = tiny_vit_checkpoint
    model = zoo.create("vit_tiny_patch16_224", checkpoint=path, num_classes=10, device="meta", **TINY_VIT)
    assert all(p.is_meta for p in model.parameters())


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        zoo.create("resnet18", checkpoint=tmp_path / "absent.safetensors")
    pickle_like = tmp_path / "model.safetensors"
    pickle_like.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"is a PyTorch pickle .*, not safetensors"):
        zoo.create("resnet18", checkpoint=pickle_like)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(b"\x81\x04\x95" + b"\x00" * 64)
    with pytest.raises(
        CheckpointError, match="is truncated: it declares a 9766017-byte header but has 59 bytes"
    ):
        zoo.create("resnet18", checkpoint=truncated)


def test_an_adapter_maps_checkpoint_names_before_the_check(tmp_path):
    model = zoo.create("resnet18", num_classes=2, layers=[1, 1, 1, 1]).eval()
    renamed = {name.replace("fc.", "classifier."): t for name, t in model.state_dict().items()}
    path = tmp_path / "other_library.safetensors"
    save_file(renamed, path)

    def from_other_library(state):
        return {name.replace("classifier.", "fc."): t for name, t in state.items()}

    target = zoo.create("resnet18", num_classes=2, layers=[1, 1, 1, 1], device="meta")
    with pytest.raises(CheckpointError, match=r"2 missing: fc\.weight, fc\.bias; 2 unexpected: classifier\."):
        load_checkpoint(target, path)
    load_checkpoint(target, path, key_adapter=from_other_library, device=torch.device("cpu"))
    image = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(target.eval()(image), model(image))


def test_pretrained_needs_published_weights_and_excludes_checkpoint(tmp_path):
    with pytest.raises(NoWeightsError, match="'text_transformer_small' has no published weights"):
        zoo.create("text_transformer_small", pretrained=True)
    with pytest.raises(ArgumentError, match="not both"):
        zoo.create("resnet18", pretrained=True, checkpoint=tmp_path / "x.safetensors")
