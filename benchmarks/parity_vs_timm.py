"""Full-size numerics against timm: every catalogue architecture, random timm-format weights.

For each architecture of the catalogue (one weight per distinct architecture configuration:
its first head), builds timm's model (`timm.create_model(arch, pretrained=False)`), perturbs
every float tensor of its state dict (so that zero-initialised gates, layer scales and BatchNorm
statistics all count), loads that state dict strictly into the zoo's model of the same weight
(through its key adapter, if it declares one), and compares the eval-mode outputs on one
random image at the weight's input size: they must agree within 1e-4 absolute.

timm is not a dependency of the zoo: run this where it is installed (see the shared benchmark
notes), with the catalogue facts at hand (`$ZOO_CATALOGUE_FACTS`, default
`../shared/reference/catalogue`):

    .venv/bin/pip install --no-deps timm==1.0.31
    PYTHONPATH=../shared/bench/torchvision_shim:. .venv/bin/python benchmarks/parity_vs_timm.py \\
        [--module vision_transformer] [--arch 'vit_*'] [--max-params 400e6] [--tolerance 1e-4]

Prints one line per architecture and a count; exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time

import torch

from tests.data.reference.tiny.timm_weights import perturbed
from tools.catalogue.__main__ import translate
from tools.catalogue.facts import Unsupported, by_architecture
from tools.catalogue.writer import TRANSLATORS, adapted_state, builder_args, components


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="timm module (default: every one)")
    parser.add_argument("--arch", default="*", help="architectures matching this glob")
    parser.add_argument("--max-params", type=float, default=1.2e9, help="skip larger models")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def compare(module: str, arch: str, weights: list, args: argparse.Namespace) -> tuple[str, str]:
    import timm

    weight = weights[0]
    try:
        architecture = translate(module, arch, weights)
    except Unsupported as reason:
        return "skip", f"not translated: {reason}"
    registry = components()
    config = registry.checked_config(
        architecture.builder, builder_args(architecture, weight), label=weight.row["tag"]
    )
    with torch.device("meta"):
        sized = registry.builder(architecture.builder).build(config)
    count = sum(p.numel() for p in sized.parameters())
    if count > args.max_params:
        return "skip", f"{count / 1e6:.0f}M parameters, over --max-params"
    generator = torch.Generator().manual_seed(0)
    reference = timm.create_model(arch, pretrained=False, num_classes=weight.num_classes).eval()
    state = perturbed(reference.state_dict(), generator, scale=0.02)
    reference.load_state_dict(state)
    ours = registry.builder(architecture.builder).build(config).eval()
    ours.load_state_dict(adapted_state(architecture.adapter, state) if architecture.adapter else state)
    image = torch.randn(1, *weight.cfg["input_size"], generator=generator)
    with torch.inference_mode():
        expected, actual = reference(image), ours(image)
    actual = actual[0] if isinstance(actual, tuple) else actual
    difference = (expected - actual).abs().max().item()
    verdict = "ok" if difference <= args.tolerance else "DIFF"
    return verdict, f"max |difference| {difference:.2e} ({count / 1e6:.1f}M parameters)"


def main() -> int:
    args = parse_args()
    try:
        import timm
    except Exception as error:  # timm, or the torchvision it imports, is not installed here
        print(f"timm cannot be imported ({type(error).__name__}: {error}); nothing to compare")
        return 0
    print(f"timm {timm.__version__}, torch {torch.__version__}")
    torch.set_num_threads(args.threads)
    counts: dict[str, int] = {}
    for module in args.module or list(TRANSLATORS):
        for arch, weights in by_architecture((module,)).items():
            if not fnmatch.fnmatch(arch, args.arch):
                continue
            start = time.perf_counter()
            try:
                verdict, detail = compare(module, arch, weights, args)
            except Exception as error:
                verdict, detail = "FAIL", f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            counts[verdict] = counts.get(verdict, 0) + 1
            print(f"{verdict:4} {arch}: {detail} [{time.perf_counter() - start:.1f} s]", flush=True)
    print(", ".join(f"{verdict}: {n}" for verdict, n in sorted(counts.items())))
    return 1 if counts.get("DIFF") or counts.get("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main())
