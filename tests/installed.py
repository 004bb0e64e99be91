"""A fresh virtual environment with the zoo installed from this checkout, not editable, and
the example plugin: made once per test run (a minute, most of it installing torch) and
shared by the tests of real installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ["pyproject.toml", "README.md", "zoo", "plugins"]
EXAMPLE_PLUGIN = REPOSITORY / "examples" / "zoo-coordatt"
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


@dataclass
class Environment:
    root: Path
    workdir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.workdir, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def zoo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(self.root / "bin" / "zoo"), *args, check=check)

    def python(self, code: str) -> subprocess.CompletedProcess:
        return self.run(str(self.root / "bin" / "python"), "-c", textwrap.dedent(code))

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(
            str(self.root / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", *args
        )


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True, ignore=IGNORED)
    return target


def make_environment(base: Path) -> Environment:
    """A new virtual environment with the zoo (not editable) and the example plugin."""
    source = base / "zoo-source"
    source.mkdir()
    for name in PACKAGE_FILES:
        path = REPOSITORY / name
        if path.is_dir():
            copy_tree(path, source / name)
        else:
            shutil.copy(path, source / name, follow_symlinks=False)
    plugin = copy_tree(EXAMPLE_PLUGIN, base / "zoo-coordatt")
    subprocess.run([sys.executable, "-m", "venv", str(base / "env")], check=True)
    workdir = base / "elsewhere"
    workdir.mkdir()
    env = Environment(base / "env", workdir)
    env.pip("install", str(source), str(plugin))
    return env
