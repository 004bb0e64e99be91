"""A cold start: what building a model costs a fresh process beyond importing torch.

Each contender runs in fresh processes, round robin --repeat times, so that a busy moment
hits them all alike; medians are printed with the targets they are held to:

- `import torch`: `python -c "import torch"`, the floor of the next two;
- `zoo create vit_tiny_patch16_224`: the command, its summary printed (target: at most the
  floor + 0.5 s);
- `zoo.create("resnet50")`: `python -c "import torch, zoo; zoo.create('resnet50')"`, random
  initialisation included (target: at most the floor + 0.5 s);
- ViT-L/16 floor: import torch, read a 1.2 GB safetensors file and touch every byte, all of
  it held, as a loaded model holds it;
- ViT-L/16 zoo: `import zoo` + `zoo.create("vit_large_patch16_224", checkpoint=FILE)`, then
  one forward pass (targets: import + create at most 1.25x the floor's time; peak RSS after
  the forward at most 1.05x the floor's).

The zoo's caches (the listing, the probed attention variants) live in --workdir and are
warmed by one unmeasured run of each contender, as a user's are after the first command.
Each process also reports whether it imported the compiler (`torch._dynamo`). The
checkpoint is random, made once in --workdir. Run:

    .venv/bin/python benchmarks/cold_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import zoo_executable

VIT_LARGE = "vit_large_patch16_224"

# The ViT-L/16 contenders; each prints one JSON line.
VIT_LARGE_CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1:3]
started = time.perf_counter()
import torch
if kind == "floor":
    from safetensors import safe_open
    tensors = []
    with safe_open(path, framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key)
            if tensor.numel():
                tensor.view(-1).view(torch.uint8).max()  # every byte touched
            tensors.append(tensor)  # and held
    ready = time.perf_counter()
else:
    import zoo
    model = zoo.create("vit_large_patch16_224", checkpoint=path).eval()
    ready = time.perf_counter()
    with torch.inference_mode():
        model(torch.randn(1, 3, 224, 224)).sum().item()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": ready - started, "peak_rss": peak, "dynamo": "torch._dynamo" in sys.modules}))
"""

DYNAMO = "import sys; print('torch._dynamo' in sys.modules, file=sys.stderr)"


def make_checkpoint(workdir: Path) -> Path:
    """A random ViT-L/16 in timm's layout, made once."""
    path = workdir / "vit_large_patch16_224.safetensors"
    if path.exists():
        return path
    import torch
    from safetensors.torch import save_file

    import zoo

    print("making a random ViT-L/16 checkpoint (once) ...", file=sys.stderr)
    torch.manual_seed(0)
    state = zoo.create(VIT_LARGE).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    return path


def timed(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall time of a command that must succeed; `dynamo` if it imported the compiler."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} failed:\n{done.stderr[-3000:]}")
    return {"seconds": seconds, "dynamo": done.stderr.strip().endswith("True")}


def contenders(checkpoint: Path) -> dict[str, list[str]]:
    python = sys.executable
    zoo = zoo_executable()
    # The command as its script runs it, then a look at what the process imported.
    cli = (
        "import sys\nsys.argv = ['zoo', 'create', 'vit_tiny_patch16_224']\nfrom zoo.cli import main\n"
        f"try:\n    main()\nexcept SystemExit:\n    pass\n{DYNAMO}"
    )
    return {
        "import torch": [python, "-c", f"import torch\n{DYNAMO}"],
        "zoo create vit_tiny_patch16_224": [python, "-c", cli],
        "zoo.create('resnet50')": [python, "-c", f"import torch, zoo\nzoo.create('resnet50')\n{DYNAMO}"],
        "ViT-L/16 floor": [python, "-c", VIT_LARGE_CHILD, "floor", str(checkpoint)],
        "ViT-L/16 zoo": [python, "-c", VIT_LARGE_CHILD, "zoo", str(checkpoint)],
        "`zoo --help` (for reference)": [zoo, "--help"],
    }


def run(name: str, command: list[str], env: dict[str, str]) -> dict[str, float]:
    if name.startswith("ViT-L/16"):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    return timed(command, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "zoo-bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = make_checkpoint(args.workdir)
    env = {**os.environ, "ZOO_CACHE_DIR": str(args.workdir / "zoo-cache")}
    commands = contenders(checkpoint)

    for name, command in commands.items():  # warm-up: the page cache, the zoo's caches
        run(name, command, env)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            runs[name].append(run(name, command, env))
    median = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}

    print(f"median of {args.repeat} fresh processes each, interleaved; {os.cpu_count()} CPUs")
    for name, seconds in median.items():
        dynamo = "yes" if any(r.get("dynamo") for r in runs[name]) else "no"
        print(f"  {name:34} {seconds:7.3f} s   imports torch._dynamo: {dynamo}")
    floor = median["import torch"]
    for name in ("zoo create vit_tiny_patch16_224", "zoo.create('resnet50')"):
        extra = median[name] - floor
        print(f"{name}: import torch + {extra:.3f} s (target: + 0.5 s) {'ok' if extra <= 0.5 else 'MISSED'}")
    ratio = median["ViT-L/16 zoo"] / median["ViT-L/16 floor"]
    print(
        f"ViT-L/16 import + create(checkpoint=FILE) / floor: {ratio:.2f}x (target: 1.25x) "
        f"{'ok' if ratio <= 1.25 else 'MISSED'}"
    )
    rss = {
        name: statistics.median(r["peak_rss"] for r in runs[name])
        for name in ("ViT-L/16 floor", "ViT-L/16 zoo")
    }
    rss_ratio = rss["ViT-L/16 zoo"] / rss["ViT-L/16 floor"]
    print(
        f"ViT-L/16 peak RSS after one forward / floor: {rss_ratio:.2f}x "
        f"({rss['ViT-L/16 zoo'] / 1e9:.2f} GB / {rss['ViT-L/16 floor'] / 1e9:.2f} GB; target: 1.05x) "
        f"{'ok' if rss_ratio <= 1.05 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
