"""The listing cache: used when nothing changed, rebuilt when anything it was built from did.

Plugins are installed for real, as importlib.metadata sees them: a `.dist-info` folder with
an entry point on `sys.path`, next to the plugin's package and registry file.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo.registry.plugins
from zoo.cli import cli
from zoo.registry import snapshot

PLUGIN_CODE = """
from pathlib import Path

def register(zoo):
    zoo.add_models(Path(__file__).with_name("registry.yaml"))
"""

ENTRY = """
  {name}:
    builder: resnet
    args: {{layers: [1, 1, 1, 1], attn: se}}
    description: {description}
"""


class SitePackages:
    """A folder on `sys.path` that plugins are installed into and removed from."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def install(
        self, name: str, version: str = "0.1.0", models: tuple[str, ...] = (), code: str = PLUGIN_CODE
    ):
        package = self.root / f"zoo_{name}"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text(textwrap.dedent(code))
        self.write_models(name, *models)
        self.write_metadata(name, version)

    def write_metadata(self, name: str, version: str) -> None:
        """The distribution's metadata alone, as an upgrade that changes no file of the package."""
        self.remove_metadata(name)
        info = self.root / f"zoo_{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo-{name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{name} = zoo_{name}:register\n")
        importlib.invalidate_caches()

    def write_models(self, name: str, *models: str, description: str = "a test model") -> Path:
        text = "models:" + "".join(ENTRY.format(name=m, description=description) for m in models)
        path = self.root / f"zoo_{name}" / "registry.yaml"
        path.write_text(text if models else "models: {}\n")
        return path

    def remove_metadata(self, name: str) -> None:
        for info in self.root.glob(f"zoo_{name}-*.dist-info"):
            for file in info.iterdir():
                file.unlink()
            info.rmdir()
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SitePackages:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield SitePackages(root)
    for module in [m for m in sys.modules if m.startswith("zoo_") and m.partition(".")[0] != "zoo_plugins"]:
        del sys.modules[module]
    importlib.invalidate_caches()


@pytest.fixture
def listing(monkeypatch: pytest.MonkeyPatch):
    """`listing()`: what `zoo list` lists in a new process; `.full_loads` counts the plugin loads."""
    loads = []
    discover = zoo.registry.plugins.PluginManager.discover

    def counted(self, *args, **kwargs):
        loads.append(1)
        return discover(self, *args, **kwargs)

    monkeypatch.setattr(zoo.registry.plugins.PluginManager, "discover", counted)

    def new_process() -> list[str]:
        monkeypatch.setattr(zoo.registry.plugins, "_default", None)
        return [row.name for row in snapshot.load_listing().models]

    new_process.full_loads = loads
    return new_process


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("listing-*.json"))


def test_the_second_listing_is_read_from_the_cache(listing, zoo_cache_dir):
    first = listing()
    assert len(listing.full_loads) == 1 and len(cache_files(zoo_cache_dir)) == 1
    assert listing() == first and "resnet50_cbam" in first
    assert len(listing.full_loads) == 1


def test_the_cache_lives_in_zoo_cache_dir_else_xdg_cache_home_else_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "zoo-cache"))
    assert snapshot.cache_dir() == tmp_path / "zoo-cache"
    monkeypatch.delenv("ZOO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert snapshot.cache_dir() == tmp_path / "xdg" / "zoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert snapshot.cache_dir() == tmp_path / "home" / ".cache" / "zoo"


def test_a_changed_registry_file_rebuilds_the_listing(site, listing):
    site.install("extra", models=("extra_a",))
    assert "extra_a" in listing()
    path = site.write_models("extra", "extra_a", "extra_b")
    assert {"extra_a", "extra_b"} <= set(listing())
    assert len(listing.full_loads) == 2

    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))  # touched
    listing()
    assert len(listing.full_loads) == 3
    listing()
    assert len(listing.full_loads) == 3


def test_installing_upgrading_and_removing_a_plugin_rebuilds_the_listing(site, listing):
    before = listing()
    site.install("extra", version="0.1.0", models=("extra_a",))
    assert listing() == sorted([*before, "extra_a"])
    assert len(listing.full_loads) == 2

    site.write_metadata("extra", version="0.2.0")
    listing()
    assert len(listing.full_loads) == 3

    site.remove_metadata("extra")
    assert listing() == before
    assert len(listing.full_loads) == 4


def test_a_plugin_whose_registration_changes_rebuilds_the_listing(site, listing):
    site.install("extra", models=("extra_a",))
    listing()
    other = site.root / "other.yaml"
    other.write_text("models:" + ENTRY.format(name="extra_other", description="x"))
    code = f"def register(zoo):\n    zoo.add_models({str(other)!r})\n"
    (site.root / "zoo_extra" / "__init__.py").write_text(code)  # an editable install, edited
    del sys.modules["zoo_extra"]
    names = listing()
    assert "extra_other" in names and "extra_a" not in names


def test_a_file_changed_while_the_plugins_load_leaves_no_cache(site, monkeypatch, zoo_cache_dir):
    site.install("extra", models=("extra_a",))
    discover = zoo.registry.plugins.PluginManager.discover

    def discover_then_edit(self, *args, **kwargs):
        discover(self, *args, **kwargs)
        site.write_models("extra", "extra_a", "extra_b")  # the load read the old file

    monkeypatch.setattr(zoo.registry.plugins.PluginManager, "discover", discover_then_edit)
    monkeypatch.setattr(zoo.registry.plugins, "_default", None)
    assert "extra_b" not in [row.name for row in snapshot.load_listing().models]
    assert cache_files(zoo_cache_dir) == []


def test_a_corrupt_cache_is_ignored_and_rebuilt(listing, zoo_cache_dir):
    expected = listing()
    [path] = cache_files(zoo_cache_dir)
    for garbage in ("{not json", '{"key": 1}', "[]", '{"key": null, "models": [{}]}', ""):
        path.write_text(garbage)
        assert listing() == expected
        assert json.loads(path.read_text())["models"]
    path.write_bytes(b"\xff\xfe")
    assert listing() == expected


def test_a_cache_that_cannot_be_written_means_no_cache(listing, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker / "zoo"))
    assert "resnet50_cbam" in listing()
    assert "resnet50_cbam" in listing()
    assert len(listing.full_loads) == 2


def test_a_broken_plugin_is_reported_on_every_listing_and_never_cached(site, listing, zoo_cache_dir, caplog):
    site.install("broken", code="import a_missing_dependency\n")
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zoo"):
            assert "resnet50_cbam" in listing()
        assert [r.getMessage() for r in caplog.records] == [
            "plugin 'broken' (zoo-broken) was not loaded: "
            "import failed: ModuleNotFoundError: No module named 'a_missing_dependency'"
        ]
    assert cache_files(zoo_cache_dir) == []


def test_a_registry_in_place_is_listed_directly_never_from_the_cache(listing, use_registry, make_registry):
    listing()  # the cache now holds the installed plugins' listing
    use_registry(make_registry("models:" + ENTRY.format(name="only_here", description="x")))
    result = CliRunner().invoke(cli, ["list", "only_here", "--json"])
    assert [row["name"] for row in json.loads(result.stdout)] == ["only_here"]


LISTINGS = [
    ["list"],
    ["list", "--json"],
    ["list", "--pretrained"],
    ["list", "--pretrained", "--json"],
    ["list", "cbam"],
    ["list", "--pretrained", "in1k", "--json"],
    ["list", "--pretrained", "--sort", "top1", "--min-top1", "75"],
    ["list", "--pretrained", "--family", "vit", "--json"],
    ["list", "nomatch"],
    ["list", "nomatch", "--json"],
]


@pytest.mark.parametrize("args", LISTINGS, ids=" ".join)
def test_zoo_list_prints_the_same_with_and_without_the_cache(args, monkeypatch, zoo_cache_dir, tmp_path):
    def run() -> tuple[int, str, str]:
        monkeypatch.setattr(zoo.registry.plugins, "_default", None)
        result = CliRunner().invoke(cli, args)
        return result.exit_code, result.stdout, result.stderr

    cold = run()
    assert cache_files(zoo_cache_dir)
    warm = run()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "a-file" / "zoo"))  # no cache can be written
    uncached = run()
    assert cold == warm == uncached


def test_a_listing_from_the_cache_imports_neither_yaml_nor_pydantic():
    script = (
        "import sys; from zoo.cli import cli; cli.main(['list'], standalone_mode=False); "
        "print(sorted(m for m in ('yaml', 'pydantic', 'zoo_plugins.models') if m in sys.modules))"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout.splitlines()[-1] == "['pydantic', 'yaml']"  # cold: the plugins were loaded
    assert runs[1].stdout.splitlines()[-1] == "[]"
    assert runs[0].stdout == runs[1].stdout.replace("[]", "['pydantic', 'yaml']")
