"""`python -m zoo` is the `zoo` command (torchrun starts it so: `torchrun ... -m zoo predict ...`)."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_zoo_runs_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("zoo, version ")
