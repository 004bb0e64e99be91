"""Plugin discovery through the `zoo.plugins` entry-point group.

A plugin is any installed distribution that declares, in its `pyproject.toml`::

    [project.entry-points."zoo.plugins"]
    myattn = "zoo_myattn:register"

`register` receives a `PluginContext` and declares what the plugin adds::

    def register(zoo):
        zoo.add_attention("myattn", "zoo_myattn.attention:MyAttention", kind="channel")
        zoo.add_builder("mynet", "zoo_myattn.model:build")
        zoo.add_adapter("mynet_v1", "zoo_myattn.adapters:from_v1")
        zoo.add_models(importlib.resources.files("zoo_myattn") / "registry.yaml")

The zoo's own models register exactly this way (distribution `zoo`, entry point `builtin`).
A plugin's contributions are committed all together or not at all: a plugin that fails to
import or to register is recorded with the reason, logged once, and the rest of the zoo
keeps working.

Registering imports nothing of what a plugin names (so that `zoo list` never imports torch);
`PluginManager.check` imports all of it and checks every component against its interface,
which is what `zoo plugins` and `zoo validate` report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import PluginError, RegistryError, RegistryProblem, ZooError
from ..version import INTERFACE_VERSION, parse_interface_version
from . import discovery
from .discovery import BUILTIN_DISTRIBUTION, ENTRY_POINT_GROUP  # noqa: F401  (BUILTIN_DISTRIBUTION: its old home)
from .registry import (
    AttentionVariant,
    Builder,
    Component,
    KeyAdapter,
    Registry,
    attention_kind,
    model_sources,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "INTERFACE_VERSION",
    "ComponentProblem",
    "ValidationReport",
    "PluginContext",
    "PluginRecord",
    "PluginManager",
    "check_interface",
    "default_plugin_manager",
    "default_registry",
    "loaded_default_plugin_manager",
    "reset_default_plugin_manager",
]

logger = logging.getLogger("zoo")


@dataclass
class PluginRecord:
    """What `zoo plugins` shows: where a plugin comes from, what it added, how it failed."""

    name: str
    entry_point: str
    distribution: str | None = None
    version: str | None = None
    contributions: list[Component] = field(default_factory=list)
    error: str | None = None
    registry_problems: list[RegistryProblem] = field(default_factory=list)
    """Every problem of the registry file that refused the plugin, if one did."""
    interface: str | None = None
    """The plugin interface version the plugin declared it targets (`require_interface`)."""

    def summary(self) -> dict[str, Any]:
        """A JSON-able description of the plugin."""
        provides: dict[str, list[str]] = {}
        for component in self.contributions:
            provides.setdefault(component.category, []).append(component.name)
        return {
            "name": self.name,
            "entry_point": self.entry_point,
            "distribution": self.distribution,
            "version": self.version,
            "interface": self.interface,
            "provides": provides,
            "overrides": [
                {"category": c.category, "name": c.name, "replaced": c.overrides}
                for c in self.contributions
                if c.overrides
            ],
            "error": self.error,
        }


@dataclass(frozen=True)
class ComponentProblem:
    """A plugin that failed to load, or one of its components that is off its interface."""

    plugin: str
    category: str | None
    """`"builder"`, `"attention"` or `"adapter"`; None when the plugin itself failed."""
    name: str | None
    message: str
    """One line naming the plugin, the component and what is wrong."""

    def __str__(self) -> str:
        return self.message

    def summary(self) -> dict[str, Any]:
        """A JSON-able description of the problem."""
        return {"plugin": self.plugin, "category": self.category, "name": self.name, "message": self.message}


@dataclass
class ValidationReport:
    """What `zoo validate` found: the registry files checked and every problem, in order."""

    files: list[str]
    problems: list[RegistryProblem | ComponentProblem]
    owners: dict[str, str] = field(default_factory=dict)
    """The plugin that ships each file, where one does."""

    def summary(self) -> dict[str, Any]:
        """The JSON form: `{"ok", "files", "problems": [{"file", "line", "entry", "field",
        "plugin", "component", "message"}]}`, null where a key does not apply."""
        return {
            "ok": not self.problems,
            "files": self.files,
            "problems": [self._row(p) for p in self.problems],
        }

    def _row(self, problem: RegistryProblem | ComponentProblem) -> dict[str, Any]:
        if isinstance(problem, ComponentProblem):
            component = {"category": problem.category, "name": problem.name} if problem.category else None
            return {
                **dict.fromkeys(("file", "line", "entry", "field")),
                "plugin": problem.plugin,
                "component": component,
                "message": problem.message,
            }
        return {
            "file": problem.file,
            "line": problem.line,
            "entry": problem.entry,
            "field": problem.field,
            "plugin": self.owners.get(problem.file),
            "component": None,
            "message": problem.message,
        }


class PluginContext:
    """Handed to a plugin's `register` function; stages what the plugin contributes."""

    interface_version: str = INTERFACE_VERSION
    """The plugin interface this zoo provides, `MAJOR.MINOR` (see `zoo.version`)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.staged: list[Component] = []
        self.interface: str | None = None

    def require_interface(self, version: str) -> None:
        """Declare the plugin interface version the plugin is written against.

        Optional. A plugin declaring one is loaded only by a zoo that provides that version
        or a later minor version of the same major one; any other is refused in one line
        (`PluginError`), instead of failing later on a changed contract.
        """
        check_interface(version, owner=self.owner)
        self.interface = version

    def add_builder(self, name: str, target: Any, *, override: bool = False) -> None:
        """A model builder, as an object or a `"module:function"` string."""
        self.staged.append(Builder(name, self.owner, target=target, override=override))

    def add_attention(self, name: str, target: Any, *, kind: str, override: bool = False) -> None:
        """An attention class of `kind` (a key of `zoo.attention.ATTENTION_KINDS`: `"channel"`,
        `"token"`, `"sequence"`, `"pooling"`, `"alignment"`)."""
        kind_ = attention_kind(name, kind)
        self.staged.append(AttentionVariant(name, self.owner, target=target, kind=kind_, override=override))

    def add_adapter(self, name: str, target: Any, *, override: bool = False) -> None:
        """A key adapter: `adapt(state: Mapping[str, Tensor]) -> dict[str, Tensor]`."""
        self.staged.append(KeyAdapter(name, self.owner, target=target, override=override))

    def add_models(self, path: str | Path | Traversable, *, override: bool = False) -> None:
        """The model entries of a registry YAML file shipped with the plugin."""
        self.staged.extend(model_sources(path, owner=self.owner, override=override))


class PluginManager:
    """Loads plugins into a registry and remembers how each one went."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self.records: dict[str, PluginRecord] = {}

    def discover(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every installed plugin of `group`, the zoo's own first."""
        for entry_point in discovery.plugin_entry_points(group):
            self.load_entry_point(entry_point)

    def load_entry_point(self, entry_point: metadata.EntryPoint) -> PluginRecord:
        distribution = discovery.distribution_of(entry_point)
        name = entry_point.name
        if name in self.records:  # two distributions chose the same plugin name
            name = f"{distribution}:{name}"
        version = entry_point.dist.version if entry_point.dist else None
        try:
            register = entry_point.load()
        except Exception as error:  # a broken plugin must not take the zoo down
            record = PluginRecord(name, entry_point.value, distribution, version)
            return self._failed(record, f"import failed: {type(error).__name__}: {error}")
        return self.register(
            name, register, entry_point=entry_point.value, distribution=distribution, version=version
        )

    def register(
        self,
        name: str,
        register: Callable[[PluginContext], Any],
        *,
        entry_point: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Run one plugin's `register` function and commit what it staged."""
        record = PluginRecord(name, entry_point or _describe(register), distribution, version)
        if not callable(register):
            return self._failed(record, f"entry point is not callable ({register!r})")
        context = PluginContext(name)
        try:
            register(context)
            clashes = self.registry.name_clashes(context.staged)
            if clashes:  # located in their file, for `zoo validate`
                raise RegistryError(clashes)
            self.registry.add(context.staged)
        except PluginError as error:
            return self._failed(record, error.reason if error.plugin == name else str(error))
        except RegistryError as error:
            record.registry_problems = error.problems
            return self._failed(record, str(error))
        except ZooError as error:
            return self._failed(record, str(error))
        except Exception as error:
            return self._failed(record, f"register() failed: {type(error).__name__}: {error}")
        record.contributions = context.staged
        record.interface = context.interface
        self.records[name] = record
        return record

    def _failed(self, record: PluginRecord, reason: str) -> PluginRecord:
        record.error = reason
        self.records[record.name] = record
        logger.warning("plugin '%s' (%s) was not loaded: %s", record.name, record.distribution or "?", reason)
        return record

    def check(self) -> list[ComponentProblem]:
        """Every plugin that failed to load, and every registered component off its interface.

        Imports the code of every builder, attention variant and key adapter and checks it:
        a builder's signature and config model, an attention class's constructor and its
        forward on a probe input (see `zoo.registry.attention`), an adapter's being callable.
        What passes is remembered, so the same checks cost nothing on first use.
        """
        problems = [
            ComponentProblem(
                record.name, None, None, f"plugin '{record.name}' was not loaded: {record.error}"
            )
            for record in self.records.values()
            if record.error
        ]
        for category in ("builder", "attention", "adapter"):
            for component in self.registry.components(category):
                message = _component_problem(component)
                if message is not None:
                    problems.append(ComponentProblem(component.owner, category, component.name, message))
        return problems

    def validate(self) -> ValidationReport:
        """Everything `check` finds, and every problem of every installed registry file:
        the files of loaded plugins checked against the builders and attention variants, and
        the schema problems of files that kept their plugin from loading."""
        refused = {r.name: r.registry_problems for r in self.records.values() if r.registry_problems}
        owners = {source.file: source.owner for source in self.registry.components("model")}
        owners |= {p.file: name for name, problems in refused.items() for p in problems}
        problems: list[RegistryProblem | ComponentProblem] = [
            p for p in self.check() if not (p.category is None and p.plugin in refused)
        ]
        problems += [p for file_problems in refused.values() for p in file_problems]
        problems += self.registry.validate()
        return ValidationReport(sorted(owners), problems, owners)


def check_interface(version: str, *, owner: str) -> None:
    """Raise `PluginError` unless this zoo provides plugin interface `version`."""
    try:
        wanted = parse_interface_version(version)
    except ValueError as error:
        raise PluginError(owner, str(error)) from None
    provided = parse_interface_version(INTERFACE_VERSION)
    if wanted[0] != provided[0]:
        raise PluginError(
            owner,
            f"written for plugin interface {version}; this zoo provides {INTERFACE_VERSION}, "
            f"of another major version: install a release of the plugin for interface {provided[0]}.x",
        )
    if wanted[1] > provided[1]:
        raise PluginError(
            owner, f"needs plugin interface {version}; this zoo provides {INTERFACE_VERSION}: upgrade zoo"
        )


def _component_problem(component: Component) -> str | None:
    try:
        component.check()
    except ZooError as error:
        return str(error)
    except Exception as error:  # a check a plugin broke in an unforeseen way stays one line
        where = f"plugin '{component.owner}': {component.category} '{component.name}'"
        return f"{where}: {type(error).__name__}: {error}"
    return None


def _describe(function: Any) -> str:
    module = getattr(function, "__module__", "?")
    return f"{module}:{getattr(function, '__qualname__', repr(function))}"


_default: PluginManager | None = None
_default_lock = threading.Lock()


def default_plugin_manager() -> PluginManager:
    """The plugin manager of the installed plugins, loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            manager = PluginManager()
            manager.discover()
            _default = manager
        return _default


def loaded_default_plugin_manager() -> PluginManager | None:
    """The default plugin manager if this process has loaded (or been given) one, else `None`."""
    return _default


def reset_default_plugin_manager() -> None:
    """Forget the loaded plugins, so that the next use discovers them again."""
    global _default
    with _default_lock:
        _default = None


def default_registry() -> Registry:
    """The registry of the installed plugins, discovered on first use."""
    return default_plugin_manager().registry
