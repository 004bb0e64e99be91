"""Loading ViT-L/16 sharded over ranks (`zoo.create_sharded`): memory and bytes read per rank.

Each world size runs under `torchrun --standalone --nproc_per_node N` on the CPU (gloo). A
rank measures, as ratios of the checkpoint file's size:

- peak RSS: the rank's peak resident memory (VmHWM) beyond the runtime's own footprint,
  measured apart in the same process just before loading: Python, torch, zoo with its
  plugins and registry (a model built once on `meta`) and the process group (printed in GB);
- bytes read: what the rank caused to be fetched from storage (`read_bytes` of
  /proc/self/io), page faults on the mapping included. The ranks load one after the
  other, each after evicting the file from the page cache (posix_fadvise DONTNEED), so
  that what a rank reads is what it alone needs, as on a node of its own (kernel
  read-ahead included); loaded together on one node, ranks share the page cache, and one
  rank's read-ahead serves another's faults;
- held: the bytes of the parameters and buffers in the rank's own shards;
- load s: the time `create_sharded` took on the rank (from a cold page cache).

The goal at world size 2 is at most 0.6x the file per rank for peak RSS and bytes read.
The checkpoint is a random ViT-L/16 (about 1.2 GB in float32), made here once and kept in
--workdir; nothing is downloaded. Run:

    .venv/bin/python benchmarks/sharded_load.py [--world-sizes 1 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "vit_large_patch16_224"


def make_checkpoint(workdir: Path) -> Path:
    """A random ViT-L/16 checkpoint, made in a process of its own (it holds the whole model)."""
    path = workdir / f"{NAME}.safetensors"
    if not path.exists():
        print("making a random ViT-L/16 checkpoint (once) ...", file=sys.stderr)
        script = (
            "import sys, torch, zoo\n"
            "from safetensors.torch import save_file\n"
            "torch.manual_seed(0)\n"
            f"model = zoo.create({NAME!r})\n"
            "save_file({k: v.contiguous() for k, v in model.state_dict().items()}, sys.argv[1])\n"
        )
        subprocess.run([sys.executable, "-c", script, str(path) + ".partial"], check=True)
        os.replace(str(path) + ".partial", path)
    return path


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (clean pages: no privilege needed)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def status(field: str) -> int:
    """A field of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def read_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise KeyError("read_bytes")


def rank_main(path: Path) -> None:
    """One rank: load the checkpoint sharded, in its turn, and say what it took (rank 0
    prints every rank's numbers)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    import zoo

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))  # made together; loading needs no collective
    zoo.create(NAME, device="meta")  # imports the plugins and reads the registry: the runtime's part
    for turn in range(dist.get_world_size()):
        dist.barrier()
        if turn == dist.get_rank():
            model, loaded = load(path, mesh)
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {"rank": dist.get_rank(), **loaded})
    if dist.get_rank() == 0:
        print(json.dumps(gathered))
    del model
    dist.barrier()  # no rank leaves while another's last messages are in flight
    dist.destroy_process_group()


def load(path: Path, mesh):
    """`create_sharded` from a cold page cache, and what it took."""
    import zoo

    evict(path)
    footprint, before = status("VmRSS"), read_bytes()
    started = time.perf_counter()
    model = zoo.create_sharded(NAME, checkpoint=path, device="cpu", mesh=mesh)
    return model, {
        "seconds": time.perf_counter() - started,
        "footprint": footprint,
        "peak_above": status("VmHWM") - footprint,
        "read": read_bytes() - before,
        "held": sum(t.to_local().nbytes for t in model.state_dict().values()),
    }


def measure(path: Path, world_size: int) -> list[dict[str, int]]:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--standalone", f"--nproc_per_node={world_size}", __file__, "--rank", str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"world size {world_size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "zoo-bench")
    parser.add_argument("--rank", type=Path, help=argparse.SUPPRESS)  # run by torchrun
    args = parser.parse_args()
    if args.rank is not None:
        rank_main(args.rank)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = make_checkpoint(args.workdir)
    size = path.stat().st_size
    print(f"{NAME}: {size / 1e9:.2f} GB file (float32), CPU, gloo, {os.cpu_count()} CPUs")
    print(
        f"{'world':>5}{'rank':>5}{'runtime GB':>12}{'peak RSS/file':>15}{'read/file':>11}"
        f"{'held/file':>11}{'load s':>8}"
    )
    for world_size in args.world_sizes:
        for rank in measure(path, world_size):
            print(
                f"{world_size:5}{rank['rank']:5}{rank['footprint'] / 1e9:12.2f}"
                f"{rank['peak_above'] / size:15.2f}{rank['read'] / size:11.2f}{rank['held'] / size:11.2f}"
                f"{rank['seconds']:8.2f}"
            )


if __name__ == "__main__":
    main()
