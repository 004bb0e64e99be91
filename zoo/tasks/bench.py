"""Throughput of a model: samples (images, sequences) per second, FLOPs, share of the peak.

    >>> result = zoo.bench.benchmark("resnet50", batch=64, device="cuda", dtype="bfloat16")
    >>> result.samples_per_s, result.gflops_per_sample, result.peak_fraction

The model is built with random weights (nothing is downloaded) at its tag's input size. A
few warm-up steps run first (they include `torch.compile`'s compilation) and are not timed;
then `runs` timed runs of as many steps each, every one lasting at least `min_time` seconds
(the steps are raised, and the runs begun again, while a run ends sooner), and the median is
reported with the total time of the runs. On accelerators every run ends with a
synchronisation, so queued work is counted.

FLOPs are counted on the `meta` device by the counter of `zoo flops` (`zoo.tasks.flops`,
built on `torch.utils.flop_counter.FlopCounterMode`): the multiply-adds of every convolution
and matrix product, attention's included, in the forward pass for inference, forward and
backward for a training step, reported per sample as GMACs and as GFLOPs, 2 per multiply-add
(ResNet-50 at 224: 4.1 GMACs, 8.2 GFLOPs). The achieved TFLOP/s divided by the device's peak dense TFLOP/s
for the dtype (a table of common GPUs, `PEAK_TFLOPS`) is `peak_fraction`; it is None where
the peak is not known (CPUs, unlisted GPUs).
"""

from __future__ import annotations

import math
import platform
import re
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import resolve_device, resolve_dtype
from ..errors import Argument, ArgumentError, DeviceError
from ..memory import check_fits
from ..registry import Registry, Resolved, default_registry
from ..weights.factory import create
from ..weights.resolve import resolve
from .flops import FlopCount, count_flops, example_inputs

if TYPE_CHECKING:
    import torch

__all__ = ["PEAK_TFLOPS", "BenchResult", "benchmark", "cpu_supports", "peak_tflops"]

# Peak dense (no sparsity) TFLOP/s from the vendors' data sheets, by GPU and by the arithmetic
# used: "float32" on CUDA cores, "tf32", "bfloat16" and "float16" on tensor cores. Rows are
# tried in order; a row matches when each of its words is a word of the device name as CUDA
# reports it ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "Tesla V100-PCIE-16GB").
_HOPPER_SXM = {"float32": 67.0, "tf32": 494.7, "bfloat16": 989.4, "float16": 989.4}
_HOPPER_NVL = {"float32": 60.0, "tf32": 417.5, "bfloat16": 835.5, "float16": 835.5}
PEAK_TFLOPS: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    (("H200", "NVL"), _HOPPER_NVL),
    (("H200",), _HOPPER_SXM),
    (("GH200",), _HOPPER_SXM),
    (("H100", "NVL"), _HOPPER_NVL),
    (("H100", "PCIE"), {"float32": 51.2, "tf32": 378.0, "bfloat16": 756.0, "float16": 756.0}),
    (("H100",), _HOPPER_SXM),
    (("A100",), {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "float16": 312.0}),
    (("L40S",), {"float32": 91.6, "tf32": 183.0, "bfloat16": 362.0, "float16": 362.0}),
    (("L40",), {"float32": 90.5, "tf32": 90.5, "bfloat16": 181.0, "float16": 181.0}),
    (("L4",), {"float32": 30.3, "tf32": 60.0, "bfloat16": 121.0, "float16": 121.0}),
    (("A10",), {"float32": 31.2, "tf32": 62.5, "bfloat16": 125.0, "float16": 125.0}),
    (("V100", "PCIE"), {"float32": 14.0, "float16": 112.0}),
    (("V100",), {"float32": 15.7, "float16": 125.0}),
)


@dataclass
class BenchResult:
    """What `benchmark` measured; `as_dict()` is JSON-able."""

    name: str
    mode: str
    """"inference" or "train" (forward, backward and an SGD step)."""
    device: str
    device_name: str
    dtype: str
    batch: int
    input_size: tuple[int, ...]
    """Shape of one sample of the (first) input: (C, H, W) for images, (L,) for token ids."""
    compiled: bool
    channels_last: bool
    params: int
    gflops_per_sample: float
    """2 per multiply-add of the convolutions and matrix products (`zoo.tasks.flops`)."""
    gmacs_per_sample: float
    """The multiply-adds: what papers and timm quote as GMACs."""
    samples_per_s: float
    """Median over the timed runs."""
    step_ms: float
    """Median time of one step (one batch)."""
    runs_samples_per_s: list[float]
    steps_per_run: int
    timed_s: float
    """Total time of the timed runs, each at least `min_time` long."""
    warmup_s: float
    """Time of the untimed warm-up steps, compilation included."""
    achieved_tflops: float
    peak_tflops: float | None
    peak_fraction: float | None
    peak_memory_mb: float | None
    """Most accelerator memory allocated at once (None on CPU)."""
    cpu_threads: int
    """Threads torch computes with on the CPU (`torch.get_num_threads()`)."""
    torch_version: str = field(default="")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        return data


def benchmark(
    name: str | Resolved,
    *,
    batch: int = 32,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    compile: bool = False,
    channels_last: bool = False,
    train: bool = False,
    runs: int = 5,
    warmup: int = 3,
    min_time: float = 0.5,
    seq_len: int | None = None,
    registry: Registry | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> BenchResult:
    """Measure a model's throughput with random weights.

    Args:
        name: A model name of any form (`name.tag` picks that tag's head and input size).
            Images come at the weights' input size; sequence models get their family's
            example input.
        batch: Images per step.
        device: Where to run (default cpu).
        dtype: Dtype of weights and inputs (default float32). On a CPU, bfloat16 and
            float16 are accepted only where the CPU computes them natively.
        compile: Run the model through `torch.compile` (compiled during the warm-up).
        channels_last: NHWC memory format for weights and inputs.
        train: Time a training step (forward, cross-entropy, backward, SGD step).
        runs: Timed runs; the median is reported.
        warmup: Untimed steps before the first run (at least 1).
        min_time: Seconds each run lasts at least (steps per run are chosen from the
            last warm-up step's time, and raised while a run ends sooner).
        seq_len: Steps of each sequence, for sequence models (default: the family's).
        registry: The registry to use instead of the installed plugins' one.
        model_args: Builder arguments on top of the registry's.
    """
    import torch

    _check_counts(batch=batch, runs=runs, warmup=warmup, min_time=min_time)
    target = resolve_device(device) or torch.device("cpu")
    if target.type == "meta":
        raise DeviceError("cannot time a model on the meta device")
    precision = resolve_dtype(dtype) or torch.float32
    if target.type == "cpu" and precision in (torch.bfloat16, torch.float16) and not cpu_supports(precision):
        raise DeviceError(
            f"this CPU ({platform.machine()}) has no native {_dtype_name(precision)} arithmetic; "
            "benchmark float32 instead"
        )
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    model_args, inputs = example_inputs(
        resolved, registry, model_args or {}, seq_len=seq_len, device=target, dtype=precision
    )
    count = _count(resolved, registry, model_args, seq_len=seq_len, dtype=precision, train=train)
    check_fits(_step_bytes(count, batch, precision, train=train), f"a batch of {batch}", target)
    model = create(resolved, device=target, dtype=precision, registry=registry, **model_args)
    model.train(train)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=memory_format)
    params = sum(p.numel() for p in model.parameters())

    def batch_of(size: int) -> tuple[torch.Tensor, ...]:
        return tuple(_in_format(x, memory_format) for x in inputs(size))

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9) if train else None
    runner = torch.compile(model) if compile else model
    step = (
        _train_step(runner, optimizer, batch_of(batch)) if train else _inference_step(runner, batch_of(batch))
    )
    synchronize = _synchronizer(target)

    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    started = last_started = time.perf_counter()
    try:
        step()  # compiles, when asked to
        synchronize()
    except Exception as error:
        if not compile:
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DeviceError(f"torch.compile does not work here: {reason}") from error
    for _ in range(warmup - 1):
        last_started = time.perf_counter()
        step()
        synchronize()
    finished = time.perf_counter()
    warmup_s, last_step = finished - started, finished - last_started

    steps = max(1, math.ceil(min_time / max(last_step, 1e-9))) if min_time > 0 else 1
    steps, durations = _timed_runs(step, synchronize, runs=runs, steps=steps, min_time=min_time)
    rates = [batch * steps / seconds for seconds in durations]
    samples_per_s = statistics.median(rates)
    gflops, gmacs = count.flops / 2e9, count.macs / 2e9  # per sample of the batch of two
    achieved = gflops * samples_per_s / 1e3
    device_name = _device_name(target)
    peak = peak_tflops(device_name, _peak_dtype(precision)) if target.type == "cuda" else None
    memory = torch.cuda.max_memory_allocated(target) / 2**20 if target.type == "cuda" else None
    return BenchResult(
        name=str(resolved),
        mode="train" if train else "inference",
        device=str(target),
        device_name=device_name,
        dtype=_dtype_name(precision),
        batch=batch,
        input_size=tuple(batch_of(1)[0].shape[1:]),
        compiled=compile,
        channels_last=channels_last,
        params=params,
        gflops_per_sample=gflops,
        gmacs_per_sample=gmacs,
        samples_per_s=samples_per_s,
        step_ms=1e3 * batch / samples_per_s,
        runs_samples_per_s=rates,
        steps_per_run=steps,
        timed_s=sum(durations),
        warmup_s=warmup_s,
        achieved_tflops=achieved,
        peak_tflops=peak,
        peak_fraction=achieved / peak if peak else None,
        peak_memory_mb=memory,
        cpu_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
    )


MAX_MIN_TIME = 3600.0
"""The longest a timed run may be asked to last, in seconds."""


def _check_counts(*, batch: int, runs: int, warmup: int, min_time: float) -> None:
    for name, value in (("batch", batch), ("runs", runs), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(
                f"{{{name}}} must be a whole number, at least 1", arguments=[Argument(name, repr(value))]
            )
    if not isinstance(min_time, (int, float)) or not 0 <= min_time <= MAX_MIN_TIME:
        raise ArgumentError(
            f"{{min_time}} must be a number of seconds from 0 to {MAX_MIN_TIME:g}",
            arguments=[Argument("min_time", repr(min_time))],
        )


def _step_bytes(count: FlopCount, batch: int, dtype: torch.dtype, *, train: bool) -> int:
    """About what one step holds at once, from the count of a batch of two: the weights
    (with their gradients and momentum when training) and the activations, every one of them
    kept for the backward pass when training, else the largest output with its input."""
    per_sample = count.activations / 2
    if not train:
        per_sample = 2 * max((row.activations / row.calls / 2 for row in count.operators), default=0)
    weights = count.params * (3 if train else 1)
    return int((weights + per_sample * batch) * dtype.itemsize)


def _timed_runs(
    step: Callable[[], None], synchronize: Callable[[], None], *, runs: int, steps: int, min_time: float
) -> tuple[int, list[float]]:
    """`runs` timed runs of `steps` steps each: the steps per run and the seconds of each run.

    A run that ends before `min_time` (the steps chosen from the warm-up were too few: steps
    often get faster once warm) raises the steps to what would have filled it, and the runs
    begin again, so that every run lasts at least `min_time` and all take as many steps.
    """
    durations: list[float] = []
    while len(durations) < runs:
        begin = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize()
        seconds = time.perf_counter() - begin
        if seconds < min_time:
            steps = max(steps + 1, math.ceil(steps * min_time / max(seconds, 1e-9)))
            durations = []
        else:
            durations.append(seconds)
    return steps, durations


def _in_format(x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    return x.contiguous(memory_format=memory_format) if x.ndim == 4 else x


def _inference_step(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    import torch

    def step() -> None:
        with torch.inference_mode():
            model(*inputs)

    return step


def _train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, inputs: tuple[torch.Tensor, ...]
) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        _loss(model(*inputs)).backward()
        optimizer.step()

    return step


def _loss(output: torch.Tensor) -> torch.Tensor:
    """A scalar costing what a cross-entropy over the outputs' last dimension costs."""
    return output.float().logsumexp(dim=-1).mean()


def _count(
    resolved: Resolved,
    registry: Registry,
    model_args: Mapping[str, Any],
    *,
    seq_len: int | None,
    dtype: torch.dtype,
    train: bool,
) -> FlopCount:
    """The count of one step on `meta`, a batch of two: BatchNorm cannot train on one value
    per channel."""
    model = create(resolved, device="meta", dtype=dtype, registry=registry, **model_args).train(train)
    _, inputs = example_inputs(resolved, registry, model_args, seq_len=seq_len, device="meta", dtype=dtype)
    step = (lambda model, x: _loss(model(*x)).backward()) if train else None
    return count_flops(model, inputs(2), step=step)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    import torch

    backend = getattr(torch, device.type, None)
    synchronize = getattr(backend, "synchronize", None) if device.type != "cpu" else None
    if synchronize is None:
        return lambda: None
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return synchronize


def _device_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return _cpu_name()
    return device.type


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _peak_dtype(dtype: torch.dtype) -> str:
    """The arithmetic a dtype runs on: float32 matmuls use TF32 when torch is told to."""
    import torch

    name = _dtype_name(dtype)
    if name == "float32" and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return name


def peak_tflops(device_name: str, dtype: str) -> float | None:
    """Peak dense TFLOP/s of a GPU (by its name, as CUDA reports it) for an arithmetic
    ("float32", "tf32", "bfloat16", "float16"), or None when not known."""
    words_of_name = set(re.split(r"[^0-9A-Z]+", device_name.upper()))
    for words, peaks in PEAK_TFLOPS:
        if words_of_name.issuperset(words):
            return peaks.get(dtype)
    return None


def cpu_supports(dtype: torch.dtype) -> bool:
    """Whether this CPU computes `dtype` natively (bf16: AVX512-BF16, AMX or Arm BF16;
    fp16: AMX-FP16 or Arm FP16)."""
    import torch

    if dtype == torch.float32 or dtype == torch.float64:
        return True
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686"):
        cpu = getattr(torch, "cpu", None)
        checks = {
            torch.bfloat16: ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
            torch.float16: ("_is_amx_fp16_supported",),
        }.get(dtype, ())
        return any(getattr(cpu, check, lambda: False)() for check in checks)
    if machine in ("aarch64", "arm64"):
        features = _arm_features()
        return {torch.bfloat16: "bf16", torch.float16: "asimdhp"}.get(dtype, "") in features
    return False


def _arm_features() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("features"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()
