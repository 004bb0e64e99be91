"""How long the `zoo` command takes to start, against the bare interpreter.

Measured in one run, each command in a fresh process, the commands interleaved round robin
so that a busy machine slows them all alike:

- `python -c pass`: the interpreter's own start-up, the floor;
- `zoo --help`: the command line and each command's short help;
- `zoo list`, cold: an empty listing cache (`ZOO_CACHE_DIR` a new folder), so the plugins
  are loaded and every registry file is read and validated, then the cache is written;
- `zoo list`, warm: the cache of an earlier run, checked against the installed plugins
  and registry files, then printed.

Prints the median wall time of each over --repeat runs, and its difference from and ratio
to `python -c pass`. Run:

    .venv/bin/python benchmarks/cli_startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import zoo_executable


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of `command`, which must succeed."""
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(repeat: int, workdir: Path) -> dict[str, list[float]]:
    """Each contender's wall times, run round robin `repeat` times."""
    zoo = zoo_executable()
    warm = {**os.environ, "ZOO_CACHE_DIR": str(workdir / "warm")}
    timed([zoo, "list"], warm)  # writes the warm cache
    contenders = {
        "python -c pass": lambda _: timed([sys.executable, "-c", "pass"], dict(os.environ)),
        "zoo --help": lambda _: timed([zoo, "--help"], warm),
        "zoo list (cold cache)": lambda i: timed(
            [zoo, "list"], {**os.environ, "ZOO_CACHE_DIR": str(workdir / f"cold-{i}")}
        ),
        "zoo list (warm cache)": lambda _: timed([zoo, "list"], warm),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(repeat):
        for name, run in contenders.items():
            times[name].append(run(i))
    return times


def report(times: dict[str, list[float]]) -> None:
    floor = statistics.median(times["python -c pass"])
    print(f"{'command':<24}{'median':>10}{'- python':>12}{'/ python':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24}{median * 1000:>8.0f}ms{(median - floor) * 1000:>10.0f}ms{median / floor:>9.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs of each command (default: 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-cli-startup-") as workdir:
        times = measure(args.repeat, Path(workdir))
    print(f"{args.repeat} runs each, {sys.executable} (Python {sys.version.split()[0]})")
    report(times)


if __name__ == "__main__":
    main()
