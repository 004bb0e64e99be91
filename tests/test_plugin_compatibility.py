"""The plugin interface is a promise: a plugin written against it keeps working.

`tests/compat/zoo-simam` was written against plugin interface 1.0, as docs/plugins.md first
documented it, and is never edited. Installed (not editable) beside the zoo, its
parameter-free attention (SimAM, no reduced width) and its option-validated one (global
context) plug into every family with a channel slot, found from the installed registry so
that the check grows with the zoo, and its own family and registry names build, run and
validate from the command line and from Python.
"""

from __future__ import annotations

import json

import pytest

from .installed import REPOSITORY, Environment

FIXTURE = REPOSITORY / "tests" / "compat" / "zoo-simam"
NAMES = ["tinynet_simam", "tinynet_gc", "resnet18_simam"]
ATTENTIONS = ["simam", "{name: global_context, rd_ratio: 0.5, fusion: mul}"]


@pytest.fixture(scope="module")
def with_fixture(environment: Environment, tmp_path_factory):
    """The shared environment with the interface-1.0 plugin installed for this module's tests."""
    environment.pip("install", "--no-deps", str(FIXTURE))
    try:
        yield environment
    finally:
        environment.pip("uninstall", "-y", "zoo-simam")


def test_it_loads_with_nothing_broken(with_fixture):
    plugins = {p["name"]: p for p in json.loads(with_fixture.zoo("plugins", "--json").stdout)}
    simam = plugins["simam"]
    assert (simam["error"], simam["problems"], simam["interface"]) == (None, [], None)
    assert simam["provides"] == {
        "attention": ["simam", "global_context"],
        "builder": ["tinynet"],
        "model": NAMES,
    }
    assert with_fixture.zoo("validate").stdout.startswith("ok: ")


@pytest.mark.parametrize("name", NAMES)
def test_its_names_show_and_build_from_the_command_line(with_fixture, name):
    info = with_fixture.zoo("info", name, "--json")
    assert json.loads(info.stdout)["plugin"] == "simam"
    created = json.loads(with_fixture.zoo("create", name, "--json").stdout)
    assert created["parameters"] > 0


def test_its_attentions_run_in_every_family_with_a_channel_slot(with_fixture):
    result = with_fixture.python(
        f"""
        import json, typing, torch, yaml, zoo
        from zoo.attention import ChannelAttention
        from zoo.registry.family import FunctionFamily

        def annotated_types(annotation):
            return {{annotation, *(t for arg in typing.get_args(annotation) for t in annotated_types(arg))}}

        registry = zoo.default_registry()
        ran = []
        for builder in registry.components("builder"):
            if isinstance(builder.family, FunctionFamily):
                continue
            family = builder.family
            for field, info in builder.config_type.model_fields.items():
                if ChannelAttention not in annotated_types(info.annotation):
                    continue
                for attention in {ATTENTIONS!r}:
                    args = {{**family.test_args, field: yaml.safe_load(attention)}}
                    config = family.config.model_validate(args, context={{"registry": registry}})
                    torch.manual_seed(0)
                    model = family.build(config).eval()
                    with torch.no_grad():
                        output = model(*family.example_input(config, batch=2))
                    assert torch.isfinite(output).all(), (builder.name, attention)
                    ran.append([builder.name, field])
        print(json.dumps(ran))
        """
    )
    ran = json.loads(result.stdout)
    slots = {(builder, field) for builder, field in ran}
    assert "tinynet" in {builder for builder, _ in slots} and len(slots) > 1  # its own and the zoo's
    assert len(ran) == len(ATTENTIONS) * len(slots)
