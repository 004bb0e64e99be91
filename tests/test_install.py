"""Real installs into a fresh virtual environment: the zoo, a plugin, broken plugins.

These run pip against the configured package index (no other network) and take a minute,
most of it installing torch into the new environment once for the whole module.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from .installed import EXAMPLE_PLUGIN, REPOSITORY


def test_a_plain_install_finds_the_registry_and_builtin_plugin_from_any_directory(environment):
    location = environment.python("import zoo, zoo_plugins; print(zoo.__file__); print(zoo_plugins.__file__)")
    assert "site-packages" in location.stdout and str(REPOSITORY) not in location.stdout
    listing = environment.zoo("list", "--json")
    names = {row["name"] for row in json.loads(listing.stdout)}
    assert {"resnet50_cbam", "vit_base_patch16_224_in21k", "ecaresnet50d"} <= names
    registry_files = len(list((REPOSITORY / "plugins" / "registry").glob("*.yaml"))) + 1  # and the example's
    assert environment.zoo("validate").stdout == f"ok: {registry_files} file(s) valid\n"


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
        result = environment.zoo("plugins", check=False)
        plugins = result.stdout
        assert result.returncode == 1
        assert "broken (zoo-broken 0.2.0): FAILED: import failed" in plugins
        assert "clash (zoo-clash 0.2.0): FAILED: attention 'se' is already provided by 'builtin'" in plugins
        created = environment.zoo("create", "resnet18_se", "--json")
        assert json.loads(created.stdout)["class"] == "ResNet"
        assert environment.zoo("create", "resnet18", "-a", "attn=fancy", check=False).returncode == 2
    finally:
        environment.pip("uninstall", "-y", "zoo-broken", "zoo-clash")


SHAKY_PLUGIN = """
    from importlib.resources import files

    def register(zoo):
        zoo.add_builder("loose", "zoo_shaky.code:loose")
        zoo.add_attention("halve", "zoo_shaky.code:Halve", kind="channel")
        zoo.add_adapter("constant", "zoo_shaky.code:CONSTANT")
    """
SHAKY_CODE = """
    import torch
    from pydantic import BaseModel

    CONSTANT = 3

    class LooseConfig(BaseModel):
        width: int = 4

    def loose(config: LooseConfig, *, device=None, dtype=None):
        return torch.nn.Linear(config.width, 2, device=device, dtype=dtype)

    class Halve(torch.nn.Module):
        def __init__(self, channels: int, *, rd_channels=None, device=None, dtype=None):
            super().__init__()

        def forward(self, x):
            return x[:, ::2]
    """
BAD_FRAGMENT_PLUGIN = """
    from importlib.resources import files

    def register(zoo):
        zoo.add_models(files(__name__) / "registry.yaml")
    """


def test_broken_components_show_in_plugins_and_validate_but_not_in_list(environment, tmp_path):
    shaky = write_plugin(tmp_path / "shaky", "zoo-shaky", SHAKY_PLUGIN)
    (shaky / "zoo_shaky" / "code.py").write_text(textwrap.dedent(SHAKY_CODE))
    fragment = write_plugin(tmp_path / "fragment", "zoo-fragment", BAD_FRAGMENT_PLUGIN)
    (fragment / "zoo_fragment" / "registry.yaml").write_text(
        "models:\n  net:\n    builder: resnet\n    paper: 3\n"
    )
    (fragment / "pyproject.toml").write_text(
        (fragment / "pyproject.toml").read_text()
        + '[tool.setuptools.package-data]\nzoo_fragment = ["registry.yaml"]\n'
    )
    environment.pip("install", str(shaky), str(fragment))
    try:
        listing = environment.zoo("list", "resnet18")  # registration is lazy: no plugin code runs
        assert "resnet18_coord" in listing.stdout
        assert "shaky" not in listing.stderr

        plugins = environment.zoo("plugins", check=False)
        assert plugins.returncode == 1
        broken = [line.strip() for line in plugins.stdout.splitlines() if line.startswith("  BROKEN: ")]
        assert [line.split(": ")[1:3] for line in broken] == [
            [
                "plugin 'shaky'",
                "builder 'loose' (zoo_shaky.code:loose) takes a config (LooseConfig) that accepts unknown keys",
            ],
            ["plugin 'shaky'", "attention 'halve' (Halve)"],
            ["plugin 'shaky'", "adapter 'constant' (zoo_shaky.code:CONSTANT) is not callable (a int)"],
        ]
        assert "on the probe input; it returned (2, 8, 5, 7)" in broken[1]
        assert plugins.stderr.splitlines()[-1] == "zoo: 1 plugin(s) not loaded, 3 broken component(s)"

        validate = environment.zoo("validate", check=False)
        assert validate.returncode == 1
        lines = [line for line in validate.stderr.splitlines() if not line.startswith("zoo: warning: ")]
        [file_problem] = [line for line in lines if "zoo_fragment" in line]
        assert file_problem.endswith(
            "registry.yaml:4: entry 'net': field 'paper': Input should be a valid string"
        )
        assert sum("plugin 'shaky'" in line for line in lines) == 3
        report = json.loads(environment.zoo("validate", "--json", check=False).stdout)
        builtin_files = len(list((REPOSITORY / "plugins" / "registry").glob("*.yaml")))
        assert (
            len(report["files"]) == builtin_files + 2 and report["ok"] is False
        )  # coordatt's, the fragment's
        assert {p["plugin"] for p in report["problems"]} == {"shaky", "fragment"}
    finally:
        environment.pip("uninstall", "-y", "zoo-shaky", "zoo-fragment")


def test_a_fragment_says_what_it_needs_until_its_plugin_is_installed(environment, tmp_path):
    fragment = tmp_path / "registry.yaml"
    fragment.write_text("models:\n  coordnet18:\n    builder: coordnet\n")
    result = environment.zoo("validate", str(fragment), check=False)
    assert (result.returncode, result.stderr.splitlines()) == (
        1,
        [
            f"{fragment}:3: entry 'coordnet18': field 'builder': builder 'coordnet' is not registered: "
            "install the plugin that provides it, then validate",
            "zoo: 1 problem(s) in 1 file(s)",
        ],
    )
    installed = EXAMPLE_PLUGIN / "src" / "zoo_coordatt" / "registry.yaml"
    assert environment.zoo("validate", str(installed)).stdout == "ok: 1 file(s) valid\n"
