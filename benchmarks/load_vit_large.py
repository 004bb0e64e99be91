"""Loading a ViT-L/16 checkpoint: zoo against the physical floor and transformers.

Measured in one run, each contender in fresh processes with the page cache warm:

- floor: read the file with safetensors and touch every byte, holding all of it (the
  physical floor: the time and memory that getting the weights into memory takes);
- zoo: `import zoo` then `zoo.create("vit_large_patch16_224", pretrained=True, device=...)`,
  the file found in the Hugging Face cache (offline), then one forward pass;
- transformers: `import transformers` then `ViTForImageClassification.from_pretrained` on a
  ViT of the same size saved in its own format, then one forward pass.

The zoo maps the file, so its load is lazy: reading the pages is paid in the first forward
pass, which is why "load + 1st forward" is printed too. Peak RSS is the process's maximum
resident set after that forward pass (torch itself is about 0.23 GB of it on a CPU).

Weights are random, made here once (about 1.2 GB each) and kept in --workdir. Contenders
run round robin, --repeat times each; medians and ratios are printed. Run:

    python -m venv .venv && .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/load_vit_large.py [--device cuda] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HUB_ID = "timm/vit_large_patch16_224.augreg_in21k_ft_in1k"  # the registry's default tag
NAME = "vit_large_patch16_224"
COMMIT = "0" * 40

# Each contender runs this child script; it prints one JSON line.
CHILD = r"""
import json, os, resource, sys, time
kind, device, dtype, path = sys.argv[1:5]
t0 = time.perf_counter()
if kind == "floor":
    from safetensors import safe_open
    imported = time.perf_counter()
    import torch
    tensors = []
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key)  # read into memory
            if tensor.numel():
                tensor.view(-1).view(torch.uint8).max()  # and touch every byte
            tensors.append(tensor)  # all of it held at once, as a loaded model holds it
    loaded = time.perf_counter()
    forward = loaded
else:
    if kind == "zoo":
        import zoo
        import torch
        imported = time.perf_counter()
        model = zoo.create("vit_large_patch16_224", pretrained=True, device=device, dtype=dtype)
    else:
        import torch
        from transformers import ViTForImageClassification
        imported = time.perf_counter()
        model = ViTForImageClassification.from_pretrained(path, dtype=getattr(torch, dtype))
        if device != "cpu":
            model = model.to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    loaded = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        x = torch.randn(1, 3, 224, 224, device=device, dtype=getattr(torch, dtype))
        out = model(x)
        out = out if isinstance(out, torch.Tensor) else out.logits
        out.float().sum().item()
    forward = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"import_s": imported - t0, "load_s": loaded - imported, "forward_s": forward - loaded,
                  "peak_rss": peak}))
"""


def make_zoo_checkpoint(workdir: Path) -> Path:
    """A random ViT-L/16 in the Hugging Face cache layout, where `pretrained=True` finds it."""
    snapshot = workdir / "hf-home" / "hub" / ("models--" + HUB_ID.replace("/", "--")) / "snapshots" / COMMIT
    path = snapshot / "model.safetensors"
    if path.exists():
        return path
    import torch
    from safetensors.torch import save_file

    import zoo

    print("making a random ViT-L/16 checkpoint (once) ...", file=sys.stderr)
    torch.manual_seed(0)
    model = zoo.create(NAME)
    snapshot.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    refs = snapshot.parents[1] / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(COMMIT)
    return path


def make_transformers_checkpoint(workdir: Path) -> Path:
    folder = workdir / "transformers-vit-large"
    if (folder / "model.safetensors").exists():
        return folder
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    print("making a random transformers ViT-L/16 checkpoint (once) ...", file=sys.stderr)
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        image_size=224,
        patch_size=16,
        num_labels=1000,
    )
    ViTForImageClassification(config).save_pretrained(folder)
    return folder


def run(kind: str, device: str, dtype: str, path: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, device, dtype, str(path)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm(path: Path) -> None:
    files = [path] if path.is_file() else list(path.glob("*"))
    for file in files:
        with open(file, "rb") as handle:
            while handle.read(64 << 20):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "zoo-bench")
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    zoo_file = make_zoo_checkpoint(args.workdir)
    hf_folder = None if args.skip_transformers else make_transformers_checkpoint(args.workdir)
    env = {**os.environ, "HF_HOME": str(args.workdir / "hf-home"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    size = zoo_file.stat().st_size

    contenders = [("floor", "cpu", zoo_file), ("zoo", args.device, zoo_file)]
    if hf_folder is not None:
        contenders.append(("transformers", args.device, hf_folder))
    for kind, device, path in contenders:
        warm(path)
        run(kind, device, args.dtype, path, env)  # warm-up (zoo: records the sha256 once)
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind, _, _ in contenders}
    for _ in range(args.repeat):  # round robin, so that a busy moment hits every contender alike
        for kind, device, path in contenders:
            runs[kind].append(run(kind, device, args.dtype, path, env))
    results = {
        kind: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for kind, rs in runs.items()
    }

    print(
        f"ViT-L/16, {size / 1e9:.2f} GB file, device {args.device}, dtype {args.dtype}, "
        f"median of {args.repeat} runs, {os.cpu_count()} CPUs"
    )
    print(f"{'':14}{'import s':>10}{'load s':>10}{'1st forward s':>15}{'peak RSS GB':>13}{'RSS/file':>10}")
    for kind, r in results.items():
        print(
            f"{kind:14}{r['import_s']:10.3f}{r['load_s']:10.3f}{r['forward_s']:15.3f}"
            f"{r['peak_rss'] / 1e9:13.2f}{r['peak_rss'] / size:10.2f}"
        )
    zoo_r, floor = results["zoo"], results["floor"]
    print(f"zoo load / floor load: {zoo_r['load_s'] / floor['load_s']:.2f}")
    if "transformers" in results:
        tr = results["transformers"]
        print(f"zoo load / transformers load: {zoo_r['load_s'] / tr['load_s']:.2f}")
        print(
            f"zoo import+load / transformers import+load: "
            f"{(zoo_r['import_s'] + zoo_r['load_s']) / (tr['import_s'] + tr['load_s']):.2f}"
        )
        print(
            f"zoo load+1st forward / transformers load+1st forward: "
            f"{(zoo_r['load_s'] + zoo_r['forward_s']) / (tr['load_s'] + tr['forward_s']):.2f}"
        )
        print(
            f"peak RSS: zoo {zoo_r['peak_rss'] / size:.2f}x file, "
            f"transformers {tr['peak_rss'] / size:.2f}x file, floor {floor['peak_rss'] / size:.2f}x file"
        )


if __name__ == "__main__":
    main()
