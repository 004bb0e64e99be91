"""`zoo bench`: throughput, parameters and FLOPs of a model with random weights."""

from __future__ import annotations

import click

from .options import FiniteFloat, args_option, device_option, dtype_option, refuse_meta, split_assignments
from .output import echo_json, json_option

__all__ = ["bench_command"]


@click.command("bench")
@click.argument("name")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Samples (images, ...) per step.",
)
@click.option(
    "--seq-len",
    type=click.IntRange(min=1),
    help="Steps of each sequence, for sequence models [default: the family's].",
)
@device_option
@dtype_option
@click.option(
    "--compile", "compile_", is_flag=True, help="Run through torch.compile (compiled during warm-up)."
)
@click.option("--channels-last", is_flag=True, help="NHWC memory format for weights and inputs.")
@click.option("--train", is_flag=True, help="Time a training step (forward, backward, SGD step) instead.")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed runs; the median is reported.",
)
@click.option(
    "--warmup", type=click.IntRange(min=1), default=3, show_default=True, help="Untimed steps first."
)
@click.option(
    "--min-time",
    type=FiniteFloat(min=0),
    default=0.5,
    show_default=True,
    help="Seconds each timed run lasts at least.",
)
@args_option()
@json_option
def bench_command(
    name: str,
    batch: int,
    seq_len: int | None,
    device: str | None,
    dtype: str | None,
    compile_: bool,
    channels_last: bool,
    train: bool,
    runs: int,
    warmup: int,
    min_time: float,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure throughput: samples/s, parameters, GMACs and GFLOPs per sample, share of the peak.

    The model has random weights (nothing is downloaded). Image models run at the input
    size of their weights' preprocessing; any other family on its own example input
    (token ids, frames, source and target sequences), --seq-len steps long.
    Warm-up steps are not timed; the median of several runs is reported. The share of the
    device's peak is shown for GPUs whose peak is known. MACs and FLOPs (2 per multiply-add)
    are counted on meta as zoo flops counts them, for every family.

    \b
    Examples:
      zoo bench resnet50
      zoo bench vit_base_patch16_224 --device cuda --dtype bfloat16 --batch 256 --compile
      zoo bench resnet50_cbam --device cuda --channels-last --train --json
      zoo bench resnet18 --dtype bfloat16          (on a CPU with native bf16)
      zoo bench text_transformer_small --seq-len 128 --batch 8

    `-a device=D` and `-a dtype=T` are --device and --dtype; `-a num_classes=N` is the
    builder argument. --device meta is refused: timing needs real tensors.

    \b
    --json prints one object:
      {"name": str, "mode": "inference" | "train", "device": str, "device_name": str,
       "dtype": str, "batch": int, "input_size": [int, ...], "compiled": bool,
       "channels_last": bool, "params": int, "gflops_per_sample": float,
       "gmacs_per_sample": float, "samples_per_s": float, "step_ms": float,
       "runs_samples_per_s": [float, ...],
       "steps_per_run": int, "timed_s": float, "warmup_s": float, "achieved_tflops": float,
       "peak_tflops": float | null, "peak_fraction": float | null,
       "peak_memory_mb": float | null, "cpu_threads": int, "torch_version": str}
    """
    flags, model_args = split_assignments(assignments, {"device": device, "dtype": dtype})
    refuse_meta(flags["device"], "bench")
    from ..tasks.bench import benchmark

    result = benchmark(
        name,
        batch=batch,
        seq_len=seq_len,
        **flags,
        compile=compile_,
        channels_last=channels_last,
        train=train,
        runs=runs,
        warmup=warmup,
        min_time=min_time,
        model_args=model_args,
    )
    if as_json:
        echo_json(result.as_dict())
        return
    size = "x".join(map(str, result.input_size))
    options = [o for o, on in (("compiled", result.compiled), ("channels-last", result.channels_last)) if on]
    click.echo(
        f"{name} {result.mode} on {result.device} ({result.device_name}), {result.dtype}, "
        f"batch {result.batch} of {size}" + (f", {', '.join(options)}" if options else "")
    )
    low, high = min(result.runs_samples_per_s), max(result.runs_samples_per_s)
    click.echo(
        f"  {result.samples_per_s:,.1f} samples/s (median of {len(result.runs_samples_per_s)} runs, "
        f"{low:,.1f} to {high:,.1f}; {result.timed_s:.2f} s timed), {result.step_ms:.2f} ms per step"
    )
    click.echo(
        f"  {result.params:,} parameters, {result.gmacs_per_sample:.3g} GMACs = "
        f"{result.gflops_per_sample:.3g} GFLOPs per sample (2 per multiply-add), "
        f"{result.achieved_tflops:.3g} TFLOP/s"
    )
    if result.peak_fraction is not None:
        click.echo(
            f"  {result.peak_fraction:.1%} of the device's peak ({result.peak_tflops:g} TFLOP/s dense)"
        )
    else:
        click.echo("  peak of this device: not known")
    if result.device == "cpu":
        click.echo(f"  {result.cpu_threads} CPU thread(s) (set OMP_NUM_THREADS to change)")
    if result.peak_memory_mb is not None:
        click.echo(f"  peak memory: {result.peak_memory_mb:,.0f} MiB")
