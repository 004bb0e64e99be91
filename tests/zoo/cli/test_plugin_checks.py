"""`zoo plugins` and `zoo validate` check every installed component, not only registry files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo.registry.plugins
from zoo.cli import cli
from zoo.plugins import PluginManager

from ..registry.test_plugins import register_shaky


@pytest.fixture
def installed(builtin_registry, monkeypatch):
    """`installed(name, register)`: the CLI sees the built-in plugin and this one."""
    manager = PluginManager(builtin_registry)
    monkeypatch.setattr(zoo.registry.plugins, "_default", manager)

    def install(name, register):
        manager.register(name, register, distribution=f"zoo-{name}", version="0.1")
        return manager

    return install


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_plugins_shows_each_broken_component_in_one_line_and_exits_1(installed):
    installed("shaky", register_shaky)
    result = run("plugins")
    assert result.exit_code == 1
    broken = [line for line in result.stdout.splitlines() if line.startswith("  BROKEN: ")]
    assert broken[0].split(": ", 2)[1:] == [
        "plugin 'shaky'",
        "builder 'loose' (tests.zoo.registry.test_plugins:loose_builder) takes a config (LooseConfig) "
        'that accepts unknown keys: give it model_config = ConfigDict(extra="forbid"), so that a misspelt '
        "argument is an error",
    ]
    assert len(broken) == 5 and all("plugin 'shaky': " in line for line in broken)
    assert result.stderr == "zoo: 0 plugin(s) not loaded, 5 broken component(s)\n"

    [plugin] = json.loads(run("plugins", "--json").stdout)
    assert [(p["category"], p["name"]) for p in plugin["problems"]] == [
        ("builder", "loose"),
        ("builder", "positional"),
        ("attention", "halve"),
        ("attention", "nowhere"),
        ("adapter", "constant"),
    ]


def test_plugins_exits_1_when_a_plugin_failed_to_load(installed):
    installed("broken", lambda context: 1 / 0)
    result = run("plugins")
    assert (
        "broken (zoo-broken 0.1): FAILED: register() failed: ZeroDivisionError: division by zero"
        in result.stdout
    )
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        1,
        "zoo: 1 plugin(s) not loaded, 0 broken component(s)",
    )


def test_validate_checks_components_and_prints_one_json_shape(installed, write_registry):
    installed("shaky", register_shaky)
    assert run("validate").exit_code == 1
    report = json.loads(run("validate", "--json").stdout)
    assert report["ok"] is False and all(path.endswith(".yaml") for path in report["files"])
    assert report["problems"][0] == {
        "file": None,
        "line": None,
        "entry": None,
        "field": None,
        "plugin": "shaky",
        "component": {"category": "builder", "name": "loose"},
        "message": report["problems"][0]["message"],
    }

    fragment = write_registry("models:\n  mynet:\n    builder: coordnet\n")
    result = run("validate", "--json", str(fragment))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "files": [str(fragment)],
        "problems": [
            {
                "file": str(fragment),
                "line": 3,
                "entry": "mynet",
                "field": "builder",
                "plugin": None,
                "component": None,
                "message": "builder 'coordnet' is not registered: install the plugin that provides it, then validate",
            }
        ],
    }


def test_validate_reports_the_problems_of_a_registry_file_that_kept_a_plugin_out(installed, write_registry):
    fragment = write_registry(
        "models:\n  net:\n    builder: resnet\n    args: {}\n    paper: 3\n", "bad.yaml"
    )
    installed("fragmented", lambda context: context.add_models(fragment))
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{fragment}:5: entry 'net': field 'paper': Input should be a valid string",
        f"zoo: 1 problem(s) in {len(builtin_registry_files()) + 1} file(s)",
    ]
    [problem] = json.loads(run("validate", "--json").stdout)["problems"]
    assert (problem["file"], problem["plugin"]) == (str(fragment), "fragmented")


def builtin_registry_files() -> list[Path]:
    import zoo_plugins

    return list((Path(zoo_plugins.__file__).parent / "registry").glob("*.yaml"))


def copies_of_every_installed_entry(registry) -> tuple[str, dict[str, int]]:
    """A registry file redefining every model the registry holds, and the line of each."""
    lines, at = ["models:"], {}
    for source in registry.components("model"):
        at[source.name] = len(lines) + 1
        lines += [f"  {source.name}:", f"    builder: {source.entry.builder}"]
    return "\n".join(lines) + "\n", at


def clashes_with_builtin(path, at: dict[str, int]) -> list[str]:
    return [
        f"{path}:{line}: entry '{name}': name already provided by plugin 'builtin'"
        for name, line in at.items()
    ]


def test_validate_reports_every_name_a_plugin_file_takes_from_another_plugin(
    installed, write_registry, builtin_registry
):
    text, at = copies_of_every_installed_entry(builtin_registry)
    copies = write_registry(text, "copies.yaml")
    installed("copycat", lambda context: context.add_models(copies))
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        *clashes_with_builtin(copies, at),
        f"zoo: {len(at)} problem(s) in {len(builtin_registry_files()) + 1} file(s)",
    ]
    rows = json.loads(run("validate", "--json").stdout)["problems"]
    assert {(row["entry"], row["line"], row["plugin"], row["field"]) for row in rows} == {
        (name, line, "copycat", None) for name, line in at.items()
    }


def test_validate_reports_every_name_a_file_given_takes_from_an_installed_plugin(
    installed, write_registry, builtin_registry
):
    installed("builtin-only", lambda context: None)
    text, at = copies_of_every_installed_entry(builtin_registry)
    copies = write_registry(text, "copies.yaml")
    result = run("validate", str(copies))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        *clashes_with_builtin(copies, at),
        f"zoo: {len(at)} problem(s) in 1 file(s)",
    ]


def test_an_installed_registry_file_given_on_the_command_line_clashes_with_nothing(
    installed, builtin_registry
):
    installed("builtin-only", lambda context: None)
    files = sorted({source.file for source in builtin_registry.components("model")})
    result = run("validate", *files)
    assert (result.exit_code, result.stdout) == (0, f"ok: {len(files)} file(s) valid\n")


def test_a_plugin_file_that_overrides_a_name_on_purpose_is_no_clash(installed, write_registry):
    replacement = write_registry("models:\n  resnet50:\n    builder: resnet\n")
    manager = installed("replacing", lambda context: context.add_models(replacement, override=True))
    assert manager.records["replacing"].error is None
    assert "already provided" not in run("validate").stderr
