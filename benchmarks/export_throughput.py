"""Exported files against eager PyTorch: ONNX Runtime and an AOTInductor package, per family.

For each family (builder), takes its entry with the fewest stated parameters (the first
by name where none states any), builds it with random weights (saved to a temporary
checkpoint), exports it with `zoo export`'s code in both formats (each verified against
the model as it is written, as the command does) and times inference on the family's
example input, in one process: eager PyTorch (`torch.inference_mode()`), onnxruntime (CPU)
and the package alternate, several rounds, and the median of each is kept. A family that
cannot be exported is reported in one line with the reason. float32, CPU, a fixed thread
count (onnxruntime's intra-op threads too).

    .venv/bin/python benchmarks/export_throughput.py [--families resnet,vit] [--batch 8] \\
        [--rounds 5] [--min-time 0.5] [--threads 2] [--small]

`--small` builds each family at its test size (`Family.test_args`): seconds instead of
minutes, for a quick look at the overheads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def entries(families: list[str] | None) -> dict[str, str]:
    import zoo

    registry = zoo.default_registry()
    builders: dict[str, list[str]] = {}
    for name in zoo.list_models():
        builders.setdefault(registry.resolve(name).entry.builder, []).append(name)

    def stated(name: str) -> int:
        selected = registry.resolve(name).selected
        return (selected.weights.num_params or 0) if selected is not None else 0

    chosen = {
        b: min(n, key=lambda name: (stated(name) == 0, stated(name), name)) for b, n in builders.items()
    }
    return {b: chosen[b] for b in sorted(chosen) if not families or b in families}


def throughput(step: Callable[[], object], batch: int, min_time: float) -> float:
    """Samples per second over at least `min_time` seconds of repeated steps."""
    steps, started = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_time:
            return steps * batch / elapsed


def measure(builder: str, name: str, args: dict, folder: Path, options: argparse.Namespace) -> str:
    import onnxruntime
    import torch
    from safetensors.torch import save_file

    import zoo
    from zoo.tasks import export_pt2
    from zoo.tasks.graph_export import export_graph

    torch.manual_seed(0)
    model = zoo.create(name, **args).eval()
    checkpoint = folder / f"{builder}.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(checkpoint))
    reports = {}
    for format in ("onnx", "pt2"):
        try:
            reports[format] = export_graph(
                name, folder / f"{builder}.{format}", format=format, checkpoint=checkpoint, model_args=args
            )
        except zoo.ZooError as error:
            return f"{builder:20} {name:32} refused: {error}"
    registry = zoo.default_registry()
    config = registry.build_config(registry.resolve(name), args)
    inputs = registry.builder(builder).family.example_input(config, batch=options.batch)

    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = options.threads
    # Its threads would otherwise spin after each run, taking the cores from the next one timed.
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(reports["onnx"].output), settings, providers=["CPUExecutionProvider"]
    )
    feeds = {
        declared.name: tensor.numpy() for declared, tensor in zip(session.get_inputs(), inputs, strict=True)
    }
    package = export_pt2.load(reports["pt2"].output)

    def eager() -> object:
        with torch.inference_mode():
            return model(*inputs)

    runs: dict[str, list[float]] = {"eager": [], "onnx": [], "pt2": []}
    steps = {"eager": eager, "onnx": lambda: session.run(None, feeds), "pt2": lambda: package(list(inputs))}
    for step in steps.values():
        step()  # warm-up
    for _ in range(options.rounds):  # interleaved, so that a noisy moment hits all three alike
        for key, step in steps.items():
            runs[key].append(throughput(step, options.batch, options.min_time))
    rates = {key: statistics.median(values) for key, values in runs.items()}
    diff = max(report.max_abs_diff for report in reports.values())
    compile_s = reports["pt2"].export_s
    return (
        f"{builder:20} {name:32} {rates['eager']:9.1f} {rates['onnx']:9.1f} {rates['pt2']:9.1f}"
        f" {rates['onnx'] / rates['eager']:6.2f}x {rates['pt2'] / rates['eager']:6.2f}x"
        f" {diff:9.1e} {compile_s:8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=lambda text: text.replace(",", " ").split(), default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="each family at its test size")
    options = parser.parse_args()

    import torch

    import zoo

    torch.set_num_threads(options.threads)
    chosen = entries(options.families)
    if not chosen:
        sys.exit("no such family")
    print(f"torch {torch.__version__}, {options.threads} threads, batch {options.batch}, float32, CPU")
    print(f"{'family':20} {'entry':32} {'eager/s':>9} {'onnx/s':>9} {'pt2/s':>9} {'onnx':>7} {'pt2':>7}"
          f" {'max diff':>9} {'compile s':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for builder, name in chosen.items():
            args = dict(zoo.default_registry().builder(builder).family.test_args) if options.small else {}
            print(measure(builder, name, args, Path(folder), options), flush=True)


if __name__ == "__main__":
    main()
