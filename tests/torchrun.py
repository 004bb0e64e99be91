"""Launching two ranks with torchrun, as the tests of the distributed paths do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def two_ranks(folder: Path, *command: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`torchrun --standalone --nproc_per_node 2 COMMAND...` in `folder`, on the CPU: one
    thread a rank (the machine's cores are shared) and no network for the Hub."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", *command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
