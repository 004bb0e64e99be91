"""Real installs into a fresh virtual environment: the zoo, a plugin, broken plugins.

These run pip against the configured package index (no other network) and take a minute,
most of it installing torch into the new environment once for the whole module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ["pyproject.toml", "README.md", "registry.yaml", "zoo", "plugins"]
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


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> Environment:
    """A new virtual environment with the zoo (not editable) and the example plugin."""
    base = tmp_path_factory.mktemp("install")
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


def test_a_plain_install_finds_the_registry_and_builtin_plugin_from_any_directory(environment):
    location = environment.python("import zoo, zoo_plugins; print(zoo.__file__); print(zoo_plugins.__file__)")
    assert "site-packages" in location.stdout and str(REPOSITORY) not in location.stdout
    listing = environment.zoo("list", "--json")
    names = {row["name"] for row in json.loads(listing.stdout)}
    assert {"resnet50_cbam", "vit_base_patch16_224_in21k", "ecaresnet50d"} <= names
    assert environment.zoo("validate").stdout == "ok: 2 file(s) valid\n"


def test_an_installed_plugin_adds_its_attention_and_models(environment):
    listing = environment.zoo("list", "coord")
    assert [line.split()[:3] for line in listing.stdout.splitlines()[1:]] == [
        ["resnet18_coord", "resnet", "coord"],
        ["resnet50_coord", "resnet", "coord"],
    ]
    info = environment.zoo("info", "resnet50_coord").stdout
    assert "provided by: plugin 'coordatt' from zoo-coordatt 0.1.0" in info
    assert "attn = {name: coord, reduction: 32}" in info

    plugins = {p["name"]: p for p in json.loads(environment.zoo("plugins", "--json").stdout)}
    assert plugins["coordatt"]["provides"] == {
        "attention": ["coord"],
        "model": ["resnet18_coord", "resnet50_coord"],
    }
    assert (plugins["coordatt"]["distribution"], plugins["coordatt"]["version"]) == ("zoo-coordatt", "0.1.0")
    assert plugins["builtin"]["distribution"] == "zoo" and plugins["builtin"]["error"] is None

    summary = json.loads(
        environment.zoo("create", "resnet50", "-a", "attn={name: coord, reduction: 16}", "--json").stdout
    )
    assert summary["class"] == "ResNet"


def test_a_plugin_attention_plugs_into_any_resnet_from_python(environment):
    result = environment.python(
        """
        import torch, zoo
        model = zoo.create("resnet18", attn="coord", num_classes=3).eval()
        gates = {type(block.se).__name__ for stage in model.stages() for block in stage}
        print(gates, tuple(model(torch.randn(2, 3, 64, 64)).shape))
        print(zoo.model_info("resnet18_coord").plugin)
        """
    )
    assert result.stdout.splitlines() == ["{'CoordinateAttention'} (2, 3)", "coordatt"]


def write_plugin(directory: Path, name: str, module_text: str) -> Path:
    package = name.replace("-", "_")
    (directory / package).mkdir(parents=True)
    (directory / package / "__init__.py").write_text(textwrap.dedent(module_text))
    (directory / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name}"
            version = "0.2.0"
            [project.entry-points."zoo.plugins"]
            {package.removeprefix("zoo_")} = "{package}:register"
            """
        )
    )
    return directory


def test_broken_plugins_are_reported_once_and_the_zoo_keeps_working(environment, tmp_path):
    broken = write_plugin(tmp_path / "broken", "zoo-broken", "import a_missing_dependency\n")
    clashing = write_plugin(
        tmp_path / "clash",
        "zoo-clash",
        """
        def register(zoo):
            zoo.add_attention("fancy", "zoo_clash:Fancy", kind="channel")
            zoo.add_attention("se", "zoo_clash:SE", kind="channel")
        """,
    )
    environment.pip("install", str(broken), str(clashing))
    try:
        listing = environment.zoo("list", "resnet18")
        assert "resnet18_coord" in listing.stdout
        assert listing.stderr.splitlines() == [
            "zoo: warning: plugin 'broken' (zoo-broken) was not loaded: "
            "import failed: ModuleNotFoundError: No module named 'a_missing_dependency'",
            "zoo: warning: plugin 'clash' (zoo-clash) was not loaded: "
            "attention 'se' is already provided by 'builtin'; pass override=True to replace it on purpose",
        ]
        plugins = environment.zoo("plugins").stdout
        assert "broken (zoo-broken 0.2.0): FAILED: import failed" in plugins
        assert "clash (zoo-clash 0.2.0): FAILED: attention 'se' is already provided by 'builtin'" in plugins
        created = environment.zoo("create", "resnet18_se", "--json")
        assert json.loads(created.stdout)["class"] == "ResNet"
        assert environment.zoo("create", "resnet18", "-a", "attn=fancy", check=False).returncode == 2
    finally:
        environment.pip("uninstall", "-y", "zoo-broken", "zoo-clash")
