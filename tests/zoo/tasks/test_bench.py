"""`zoo.bench`: what a benchmark reports (no timing is asserted, only that it is measured)."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.bench import benchmark, cpu_supports, peak_tflops
from zoo.errors import DeviceError

NAME = "vit_tiny_patch16_224"
SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "num_classes": 10}
QUICK = {"batch": 2, "runs": 2, "warmup": 1, "min_time": 0.0}


def vit_forward_flops(tokens: int, dim: int, depth: int, heads: int, patch: int, classes: int) -> int:
    """Multiply-adds of a ViT forward pass, times 2, written out layer by layer."""
    patches = tokens - 1
    head_dim = dim // heads
    embed = patches * dim * (3 * patch * patch)
    per_block = (
        tokens * dim * 3 * dim  # qkv
        + 2 * heads * tokens * tokens * head_dim  # q k^T, then weights @ v
        + tokens * dim * dim  # proj
        + 2 * tokens * dim * 4 * dim  # mlp
    )
    return 2 * (embed + depth * per_block + dim * classes)


def test_inference_report():
    result = benchmark(NAME, model_args=SHAPE, runs=3, batch=2, warmup=2, min_time=0.0)
    assert result.mode == "inference"
    assert result.device == "cpu" and result.dtype == "float32"
    assert result.batch == 2 and result.input_size == (3, 32, 32)
    assert result.params == sum(p.numel() for p in zoo.create(NAME, **SHAPE).parameters())
    expected = vit_forward_flops(tokens=17, dim=48, depth=2, heads=3, patch=8, classes=10)
    assert result.gflops_per_sample == pytest.approx(expected / 1e9)
    assert result.gmacs_per_sample == pytest.approx(expected / 2e9)  # 2 FLOPs per multiply-add
    assert len(result.runs_samples_per_s) == 3 and all(r > 0 for r in result.runs_samples_per_s)
    assert sorted(result.runs_samples_per_s)[1] == result.samples_per_s  # the median
    assert result.step_ms == pytest.approx(1e3 * 2 / result.samples_per_s)
    assert result.achieved_tflops == pytest.approx(result.gflops_per_sample * result.samples_per_s / 1e3)
    assert result.peak_tflops is None and result.peak_fraction is None  # a CPU's peak is not known
    assert result.peak_memory_mb is None
    assert result.cpu_threads == torch.get_num_threads()


def test_a_training_step_counts_the_backward_pass_too():
    inference = benchmark(NAME, model_args=SHAPE, **QUICK)
    train = benchmark(NAME, model_args=SHAPE, train=True, **QUICK)
    assert train.mode == "train"
    # The backward pass costs about twice the forward (weight and input gradients).
    assert 2.5 < train.gflops_per_sample / inference.gflops_per_sample < 3.5


def test_a_convolutional_model_in_channels_last():
    result = benchmark(
        "resnet18_cbam",
        model_args={"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]},
        channels_last=True,
        **QUICK,
    )
    assert result.channels_last and result.input_size == (3, 224, 224)
    assert result.gflops_per_sample > 0


def test_bfloat16_on_a_cpu_only_where_it_is_native():
    if cpu_supports(torch.bfloat16):
        result = benchmark(NAME, model_args=SHAPE, dtype="bf16", **QUICK)
        assert result.dtype == "bfloat16" and result.samples_per_s > 0
    else:
        with pytest.raises(DeviceError, match="no native bfloat16"):
            benchmark(NAME, model_args=SHAPE, dtype="bf16", **QUICK)


def test_devices_that_cannot_be_timed():
    with pytest.raises(DeviceError, match="meta"):
        benchmark(NAME, model_args=SHAPE, device="meta", **QUICK)
    with pytest.raises(DeviceError, match="unknown device"):
        benchmark(NAME, model_args=SHAPE, device="gpu0", **QUICK)


@pytest.mark.parametrize(
    ("device_name", "dtype", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
        ("NVIDIA H100 PCIe", "bfloat16", 756.0),
        ("NVIDIA H100 NVL", "float16", 835.5),
        ("NVIDIA H200", "bfloat16", 989.4),
        ("NVIDIA A100-SXM4-80GB", "tf32", 156.0),
        ("NVIDIA A100 80GB PCIe", "float32", 19.5),
        ("NVIDIA L40S", "bfloat16", 362.0),
        ("NVIDIA L4", "bfloat16", 121.0),
        ("Tesla V100-PCIE-16GB", "float16", 112.0),
        ("Tesla V100-SXM2-16GB", "bfloat16", None),  # no bf16 units
        ("NVIDIA A10G", "bfloat16", None),  # not in the table
        ("NVIDIA GeForce RTX 4090", "bfloat16", None),
    ],
)
def test_peak_table_matches_whole_words_of_the_device_name(device_name, dtype, peak):
    assert peak_tflops(device_name, dtype) == peak


def _one_entry_per_family() -> list[tuple[str, str]]:
    """(family, one of its entries) for every family the registry uses."""
    registry = zoo.default_registry()
    first: dict[str, str] = {}
    for name in registry.model_names():
        first.setdefault(registry.source(name).entry.builder, name)
    return sorted(first.items())


@pytest.mark.parametrize(("family", "name"), _one_entry_per_family(), ids=lambda value: value)
def test_every_family_is_timed_on_its_own_example_input_at_its_test_size(family, name):
    builder = zoo.default_registry().builder(family)
    result = benchmark(name, model_args=builder.family.test_args, **QUICK)
    assert result.samples_per_s > 0 and result.gflops_per_sample > 0
    assert result.params == sum(p.numel() for p in zoo.create(name, **builder.family.test_args).parameters())


def test_sequence_length_sets_the_example_input_of_sequence_models_only():
    args = zoo.default_registry().builder("text_transformer").family.test_args
    short = benchmark("text_transformer_small", model_args=args, seq_len=8, **QUICK)
    long = benchmark("text_transformer_small", model_args=args, seq_len=24, **QUICK)
    assert short.input_size == (8,) and long.input_size == (24,)
    assert long.gflops_per_sample > 2 * short.gflops_per_sample
    with pytest.raises(zoo.ArgumentError, match="takes images: seq_len does not apply"):
        benchmark(NAME, model_args=SHAPE, seq_len=8, **QUICK)


def test_every_timed_run_lasts_at_least_min_time_and_the_total_is_reported():
    result = benchmark(NAME, model_args=SHAPE, batch=2, runs=3, warmup=1, min_time=0.2)
    durations = [result.batch * result.steps_per_run / rate for rate in result.runs_samples_per_s]
    assert all(seconds >= 0.2 for seconds in durations), durations
    assert result.timed_s == pytest.approx(sum(durations)) and result.timed_s >= 3 * 0.2
