"""Plugins: discovered through entry points, committed whole, failures contained, and every
component checked against its interface on demand."""

from __future__ import annotations

import logging

import pytest
import torch
from pydantic import BaseModel
from safetensors.torch import save_file

import zoo
from zoo.errors import PluginError
from zoo.plugins import ENTRY_POINT_GROUP, PluginManager, default_plugin_manager
from zoo.registry import Registry
from zoo_plugins.models.resnet import ResNetConfig
from zoo_plugins.models.resnet import build as build_resnet


def test_the_builtin_plugin_registers_through_the_public_entry_point_group():
    from importlib import metadata

    [entry_point] = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "builtin"]
    assert entry_point.value == "zoo_plugins:register"
    record = default_plugin_manager().records["builtin"]
    assert (record.distribution, record.error) == ("zoo", None)
    provides = record.summary()["provides"]
    assert {"se", "cbam", "eca", "mhsa"} <= set(provides["attention"])
    assert {"vit", "resnet"} <= set(provides["builder"])
    assert "resnet50_cbam" in provides["model"]


def test_the_plugin_interface_has_one_version_readable_everywhere():
    from zoo.plugins import INTERFACE_VERSION, PluginContext

    assert zoo.INTERFACE_VERSION == INTERFACE_VERSION == PluginContext("p").interface_version
    assert max(zoo.version.INTERFACE_HISTORY, key=zoo.version.parse_interface_version) == INTERFACE_VERSION
    assert default_plugin_manager().records["builtin"].summary()["interface"] == INTERFACE_VERSION


@pytest.mark.parametrize("declared", ["1.0", "1.1", zoo.version.INTERFACE_VERSION])
def test_a_plugin_targeting_this_or_an_older_minor_version_loads(builtin_registry, declared):
    def register(context):
        context.require_interface(declared)
        context.add_attention("targeted", "pkg:Targeted", kind="channel")

    record = PluginManager(builtin_registry).register("targeting", register)
    assert (record.error, record.interface) == (None, declared)


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        ("1.99", "needs plugin interface 1.99; this zoo provides {provided}: upgrade zoo"),
        (
            "2.0",
            "written for plugin interface 2.0; this zoo provides {provided}, of another major version: "
            "install a release of the plugin for interface 1.x",
        ),
        ("one", "'one' is not a plugin interface version: MAJOR.MINOR, such as '1.0'"),
    ],
)
def test_a_plugin_targeting_an_interface_this_zoo_lacks_is_refused_in_one_line(
    builtin_registry, declared, reason
):
    def register(context):
        context.require_interface(declared)
        context.add_attention("targeted", "pkg:Targeted", kind="channel")

    record = PluginManager(builtin_registry).register("targeting", register)
    assert record.error == reason.format(provided=zoo.version.INTERFACE_VERSION)
    assert "targeted" not in {v.name for v in builtin_registry.components("attention")}


def test_a_plugin_that_raises_is_recorded_once_and_the_rest_works(builtin_registry, caplog):
    manager = PluginManager(builtin_registry)

    def broken(context):
        context.add_builder("half_registered", "pkg:build")
        raise RuntimeError("no GPU kernels for this platform")

    with caplog.at_level(logging.WARNING, logger="zoo"):
        record = manager.register("broken", broken, distribution="zoo-broken", version="0.1")
    assert record.error == "register() failed: RuntimeError: no GPU kernels for this platform"
    assert [r.getMessage() for r in caplog.records] == [
        "plugin 'broken' (zoo-broken) was not loaded: register() failed: RuntimeError: no GPU kernels for this platform"
    ]
    assert "half_registered" not in {b.name for b in builtin_registry.components("builder")}
    assert (
        zoo.create("resnet18", num_classes=3, device="meta", registry=builtin_registry).fc.out_features == 3
    )


def test_a_plugin_redefining_a_name_fails_whole_unless_it_overrides(builtin_registry):
    manager = PluginManager(builtin_registry)

    def clashing(context):
        context.add_attention("mine", "pkg:Mine", kind="channel")
        context.add_attention("se", "pkg:SE", kind="channel")

    record = manager.register("clashing", clashing)
    assert (
        record.error
        == "attention 'se' is already provided by 'builtin'; pass override=True to replace it on purpose"
    )
    assert "mine" not in {a.name for a in builtin_registry.components("attention")}

    def overriding(context):
        context.add_attention("se", "pkg:SE", kind="channel", override=True)

    record = manager.register("overriding", overriding)
    assert record.error is None
    assert record.summary()["overrides"] == [{"category": "attention", "name": "se", "replaced": "builtin"}]


def test_a_plugin_with_a_bad_registry_fragment_is_refused(builtin_registry, write_registry):
    path = write_registry("models:\n  good:\n    builder: vit\n  bad:\n    args: {}\n", "fragment.yaml")
    record = PluginManager(builtin_registry).register("fragmented", lambda context: context.add_models(path))
    assert record.error == f"{path}:5: entry 'bad': field 'builder': required field is missing"
    assert "good" not in builtin_registry.model_names()


def test_an_entry_point_that_cannot_be_imported_is_reported():
    from importlib.metadata import EntryPoint

    manager = PluginManager(Registry())
    entry_point = EntryPoint(name="ghost", value="zoo_ghost_plugin:register", group=ENTRY_POINT_GROUP)
    record = manager.load_entry_point(entry_point)
    assert record.error == "import failed: ModuleNotFoundError: No module named 'zoo_ghost_plugin'"
    assert manager.records["ghost"] is record


def test_unknown_attention_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown kind 'spatial'"):
        Registry().add_attention("x", "pkg:X", kind="spatial", owner="me")


def tiny_resnet(config: ResNetConfig, *, device=None, dtype=None):
    """A builder of a plugin's own: a ResNet with one block per stage."""
    return build_resnet(
        config.model_copy(update={"layers": (1,) * len(config.layers)}), device=device, dtype=dtype
    )


def from_legacy(state):
    """A key adapter: checkpoints that kept the model under `backbone.`."""
    return {name.removeprefix("backbone."): tensor for name, tensor in state.items()}


def test_a_plugin_may_add_builders_adapters_attention_and_entries(builtin_registry, write_registry, tmp_path):
    legacy_tag = (
        "{hf_hub_id: org/tiny_net, num_classes: 4, license: mit, adapter: legacy,"
        " preprocessing: {input_size: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}"
    )
    fragment = write_registry(
        "models:\n  tiny_net:\n    builder: tiny_resnet\n    args: {block: basic, num_classes: 4}\n"
        f"    weights:\n      legacy: {legacy_tag}\n"
    )

    def register(context):
        context.add_builder("tiny_resnet", tiny_resnet)
        context.add_adapter("legacy", from_legacy)
        context.add_models(fragment)

    record = PluginManager(builtin_registry).register(
        "mine", register, distribution="zoo-mine", version="1.0"
    )
    assert record.summary()["provides"] == {
        "builder": ["tiny_resnet"],
        "adapter": ["legacy"],
        "model": ["tiny_net"],
    }
    model = zoo.create("tiny_net", registry=builtin_registry).eval()
    assert [len(stage) for stage in model.stages()] == [1, 1, 1, 1]

    legacy = tmp_path / "legacy.safetensors"
    save_file({f"backbone.{name}": t for name, t in model.state_dict().items()}, legacy)
    loaded = zoo.create("tiny_net", device="meta", registry=builtin_registry)
    zoo.load_checkpoint(
        loaded, legacy, key_adapter=builtin_registry.adapter("legacy"), device=torch.device("cpu")
    )
    image = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(image), model(image))
    from_tag = zoo.create("tiny_net.legacy", checkpoint=legacy, registry=builtin_registry).eval()
    torch.testing.assert_close(from_tag(image), model(image))


class LooseConfig(BaseModel):
    """A config that would silently ignore a misspelt argument."""

    num_classes: int = 10


def loose_builder(config: LooseConfig, *, device=None, dtype=None):
    return torch.nn.Linear(4, config.num_classes, device=device, dtype=dtype)


def positional_device_builder(config: ResNetConfig, device=None, dtype=None):
    return build_resnet(config, device=device, dtype=dtype)


def raising_builder(config: ResNetConfig, *, device=None, dtype=None):
    raise RuntimeError("out of coffee")


def string_builder(config: ResNetConfig, *, device=None, dtype=None):
    return "a model"


class Halve(torch.nn.Module):
    """A channel attention that drops half the channels: off its slot's shape."""

    def __init__(self, channels: int, *, rd_channels: int | None = None, device=None, dtype=None):
        super().__init__()

    def forward(self, x):
        return x[:, ::2]


def register_shaky(context):
    context.add_builder("loose", loose_builder)
    context.add_builder("positional", positional_device_builder)
    context.add_builder("raising", raising_builder)
    context.add_attention("halve", Halve, kind="channel")
    context.add_attention("nowhere", "zoo_nowhere_to_be_found:Attention", kind="token")
    context.add_adapter("constant", 3)


def test_registering_imports_nothing_and_check_reports_each_broken_component_in_one_line(builtin_registry):
    manager = PluginManager(builtin_registry)
    record = manager.register("shaky", register_shaky, distribution="zoo-shaky")
    assert record.error is None  # registration is lazy: nothing was imported or checked yet
    here = f"{__name__}"
    assert [(p.plugin, p.category, p.name, p.message) for p in manager.check()] == [
        (
            "shaky",
            "builder",
            "loose",
            f"plugin 'shaky': builder 'loose' ({here}:loose_builder) takes a config (LooseConfig) that "
            'accepts unknown keys: give it model_config = ConfigDict(extra="forbid"), so that a misspelt '
            "argument is an error",
        ),
        (
            "shaky",
            "builder",
            "positional",
            f"plugin 'shaky': builder 'positional' ({here}:positional_device_builder) must take "
            "keyword-only 'device' (signature: build(config, *, device=None, dtype=None))",
        ),
        (
            "shaky",
            "attention",
            "halve",
            "plugin 'shaky': attention 'halve' (Halve): a channel attention's output must be "
            "(B, C, H, W) = (2, 16, 5, 7) on the probe input; it returned (2, 8, 5, 7)",
        ),
        (
            "shaky",
            "attention",
            "nowhere",
            "plugin 'shaky': attention 'nowhere' (zoo_nowhere_to_be_found:Attention) failed to load: "
            "No module named 'zoo_nowhere_to_be_found'",
        ),
        (
            "shaky",
            "adapter",
            "constant",
            "plugin 'shaky': adapter 'constant' (3) is not callable (a int)",
        ),
    ]


def test_a_builder_that_raises_or_returns_no_module_is_one_line_naming_plugin_and_builder(builtin_registry):
    PluginManager(builtin_registry).register("shaky", register_shaky)
    config = ResNetConfig(block="basic", layers=(1, 1, 1, 1))
    with pytest.raises(PluginError) as raised:
        builtin_registry.builder("raising").build(config, device="meta")
    assert str(raised.value) == (
        f"plugin 'shaky': builder 'raising' ({__name__}:raising_builder) failed: RuntimeError: out of coffee"
    )
    builtin_registry.add_builder("string", string_builder, owner="shaky")
    with pytest.raises(PluginError, match=r"builder 'string' \(.*\) returned a str, not a torch.nn.Module"):
        builtin_registry.builder("string").build(config, device="meta")

    resnet = builtin_registry.builder("resnet")
    assert isinstance(resnet.build(config, device="meta"), torch.nn.Module)
    assert resnet.function(config, device="meta", dtype=None).fc.out_features == 1000  # callers of old


def test_a_refused_registry_file_is_reported_problem_by_problem_by_validate(builtin_registry, write_registry):
    path = write_registry("models:\n  bad:\n    args: {}\n  worse:\n    builder: 3\n", "fragment.yaml")
    manager = PluginManager(builtin_registry)
    record = manager.register("fragmented", lambda context: context.add_models(path))
    assert [(p.entry, p.field) for p in record.registry_problems] == [
        ("bad", "builder"),
        ("worse", "builder"),
    ]
    report = manager.validate()
    assert str(path) in report.files
    assert [str(p) for p in report.problems] == [str(p) for p in record.registry_problems]
    assert report.owners[str(path)] == "fragmented"
