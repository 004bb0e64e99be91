"""Fixtures shared by the whole suite.

- `builtin_registry`: a fresh registry holding only the built-in plugin.
- `write_registry(text)`: registry YAML written to a file in the test's folder.
- `hub_server` (session): one `olah` server on loopback for the whole run (see `hub_server.py`).
- `hub`: that server, with `HF_ENDPOINT` pointing at it, `HF_HOME` in the test's temporary
  folder and no `HF_HUB_OFFLINE`/`HF_TOKEN` from the caller's environment.
- `make_registry(yaml_text)`: a fresh `Registry` with the built-in plugin and extra entries.
- `use_registry(registry)`: make it the registry the CLI (and `zoo.create` without
  `registry=`) sees, for the test's duration.
- `decisions`: how often the registry chooses the weights of a name (`select_weight`) and
  checks builder arguments (`checked_config`) during the test; `.clear()` it after set-up.
- `environment` (session): a new virtual environment with the zoo installed, not editable,
  and the example plugin (`installed.py`).
- `zoo_cache_dir` (autouse): `ZOO_CACHE_DIR` in the test's temporary folder, so that no test
  reads or writes the listing cache of the home folder, nor one another test left.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zoo.plugins import PluginManager
from zoo.registry import Registry

from .hub_server import HubServer
from .installed import Environment, make_environment

REFERENCE = Path(__file__).parent / "data" / "reference"


def fresh_builtin_registry() -> Registry:
    """A new registry holding only the built-in plugin, registered as any plugin is."""
    import zoo_plugins

    manager = PluginManager(Registry())
    record = manager.register("builtin", zoo_plugins.register, distribution="zoo")
    assert record.error is None, record.error
    return manager.registry


@pytest.fixture(scope="session")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """A new virtual environment with the zoo (not editable) and the example plugin, shared by
    the tests of real installs."""
    return make_environment(tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="session")
def parsed_registry_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registry files parsed once for the whole run: the parsed-file cache is keyed by each
    file's text, so sharing it changes nothing a test sees but the time a process takes."""
    return tmp_path_factory.mktemp("parsed-registry-files")


@pytest.fixture(autouse=True)
def zoo_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, parsed_registry_files: Path
) -> Path:
    """Each test gets its own, empty cache folder (subprocesses inherit it), but for the
    registry files parsed already (`parsed_registry_files`)."""
    folder = tmp_path_factory.mktemp("zoo-cache")
    (folder / "registry").symlink_to(parsed_registry_files, target_is_directory=True)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def builtin_registry() -> Registry:
    return fresh_builtin_registry()


@pytest.fixture
def write_registry(tmp_path: Path):
    """Write registry YAML text to a file and return its path."""
    counter = iter(range(1000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"registry_{next(counter)}.yaml")
        path.write_text(text)
        return path

    return write


_HUB_VARIABLES = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ENDPOINT",
)


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    server = HubServer(tmp_path_factory.mktemp("hub-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean Hugging Face environment: `HF_HOME` in the test's folder, nothing else set."""
    for variable in _HUB_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    import huggingface_hub  # noqa: F401  (imported, if first here, without offline mode)

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return home


@pytest.fixture
def hub(hub_server: HubServer, hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("HF_ENDPOINT", hub_server.endpoint)
    return hub_server


@pytest.fixture
def make_registry(write_registry) -> Callable[[str], Registry]:
    """`make_registry(yaml)`: the built-in plugin's registry plus the entries of `yaml`
    (a registry file's text: `models:` and optionally `defaults:`)."""

    def make(text: str) -> Registry:
        registry = fresh_builtin_registry()
        registry.add_models(write_registry(textwrap.dedent(text)), owner="tests")
        return registry

    return make


@pytest.fixture
def use_registry(monkeypatch: pytest.MonkeyPatch) -> Callable[[object], None]:
    """`use_registry(registry)`: the default registry (CLI included) for this test.

    A registry in place is what `zoo list` lists, directly: the listing cache serves only
    a process that has not loaded the plugins yet (see `zoo.registry.snapshot`).
    """
    import zoo.registry.plugins

    def use(registry) -> None:
        monkeypatch.setattr(zoo.registry.plugins, "_default", PluginManager(registry))

    return use


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Calls of `Registry.select_weight` and `Registry.checked_config`, by method name."""
    counts: Counter = Counter()

    def counting(method: str) -> None:
        original = getattr(Registry, method)

        def counted(self, *args, **kwargs):
            counts[method] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Registry, method, counted)

    counting("select_weight")
    counting("checked_config")
    return counts
