"""The registry: builders, attention variants, key adapters and model entries, by name.

A `Registry` is an object: the zoo's default one is built on first use from the installed
plugins (`zoo.registry.default_registry()`), tests build their own. Every component records the plugin
that provides it; registering a taken name raises `NameConflictError` naming both owners
unless the newcomer passes `override=True`, which is then recorded.

Builders, attention classes and adapters are registered as `"module:attribute"` strings and
imported on first use, so that listing the zoo never imports torch. Each is checked against
its interface when first used, or all at once by `Component.check` (`zoo plugins`,
`zoo validate`): a component off its interface raises an error naming its plugin.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from ..errors import (
    Argument,
    ArgumentError,
    AttentionInterfaceError,
    NameConflictError,
    PluginError,
    RegistryError,
    RegistryProblem,
    UnknownModelError,
    ZooError,
)
from . import probes
from .attention import (
    ATTENTION_KINDS,
    AttentionKind,
    check_attention_class,
    options_model,
    probe_attention_class,
    slot_keywords,
)
from .family import TASKS, Family, FunctionFamily
from .names import matches, name_form, weights_match
from .schema import ModelEntry, Preprocessing, WeightTag
from .source import (
    NO_BOOLEAN,
    YAML_BOOLEANS,
    ParsedFile,
    describe_errors,
    misplaced_bool,
    parse_registry_file,
    problems_from_validation,
    readable_errors,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "Component",
    "Builder",
    "AttentionVariant",
    "KeyAdapter",
    "ModelSource",
    "Resolved",
    "Registry",
    "SelectedWeight",
    "validate_files",
]

CATEGORIES = ("builder", "attention", "adapter", "model")


def _import_target(target: str) -> Any:
    module_name, _, attribute_path = target.partition(":")
    if not module_name or not attribute_path:
        raise ValueError(f"'{target}' is not of the form 'module:attribute'")
    obj: Any = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        obj = getattr(obj, attribute)
    return obj


@dataclass(eq=False)
class Component:
    """Something registered under a name by a plugin (its `owner`)."""

    category: typing.ClassVar[str] = ""
    name: str
    owner: str
    override: bool = field(default=False, kw_only=True)
    """Registered with `override=True`: may replace another owner's component."""
    overrides: str | None = field(default=None, kw_only=True)
    """The owner whose component this one replaced."""

    def check(self) -> None:
        """Import what the component names and check it against its interface.

        Raises:
            ZooError: One line naming the plugin, the component and what is wrong.
        """


@dataclass(eq=False)
class _LazyComponent(Component):
    """A component given as an object or as a `"module:attribute"` string loaded on demand."""

    target: Any = field(default=None, kw_only=True)

    @cached_property
    def loaded(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        try:
            return _import_target(self.target)
        except Exception as error:
            raise self._error(f"failed to load: {error}") from error

    @property
    def target_path(self) -> str:
        if isinstance(self.target, str):
            return self.target
        module, qualname = (getattr(self.target, a, None) for a in ("__module__", "__qualname__"))
        return f"{module}:{qualname}" if module and qualname else repr(self.target)

    def _error(self, reason: str) -> PluginError:
        return PluginError(self.owner, f"{self.category} '{self.name}' ({self.target_path}) {reason}")


@dataclass(eq=False)
class Builder(_LazyComponent):
    """A model family registered under a builder name (see `zoo.registry.family`).

    The target is a `Family`, or a bare function `build(config, *, device=None, dtype=None)`
    whose `config` is annotated with a pydantic model. Either way the config forbids unknown
    keys, so that a misspelt argument is an error rather than silently ignored.
    """

    category: typing.ClassVar[str] = "builder"

    @cached_property
    def family(self) -> Family:
        """The family, its build signature, config and tasks checked."""
        target = self.loaded
        if isinstance(target, Family):
            self._check_signature(target.build)
            self._check_config(target.config)
            unknown = [task for task in target.tasks if task not in TASKS]
            if unknown:
                raise self._error(
                    f"declares unknown task(s) {', '.join(unknown)} (tasks: {', '.join(TASKS)})"
                )
            return target
        self._check_signature(target)
        try:
            config = typing.get_type_hints(target).get("config")
        except Exception as error:  # an annotation naming something that does not exist
            raise self._error(f"has annotations that cannot be resolved: {error}") from None
        self._check_config(config)
        return FunctionFamily(target, config)

    @property
    def function(self) -> Callable[..., Any]:
        """`build(config, *, device=None, dtype=None) -> nn.Module`, unchecked (see `build`)."""
        return self.family.build

    @property
    def config_type(self) -> type[BaseModel]:
        """The builder's typed schema: the pydantic model of its arguments."""
        return self.family.config

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.family.tasks

    def check(self) -> None:
        _ = self.family

    def build(
        self, config: BaseModel, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.nn.Module:
        """Call the builder, refusing with one line a builder that raises or returns a non-module.

        Errors of the zoo's own (a bad attention option, a variant off its interface) pass
        through unchanged: they already say what is wrong and whose it is.

        Raises:
            PluginError: The builder raised or did not return a `torch.nn.Module`.
        """
        import torch

        try:
            model = self.function(config, device=device, dtype=dtype)
        except ZooError:
            raise
        except Exception as error:
            raise self._error(f"failed: {type(error).__name__}: {error}") from error
        if not isinstance(model, torch.nn.Module):
            raise self._error(f"returned {_describe(model)}, not a torch.nn.Module")
        return model

    def _check_signature(self, function: Any) -> None:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            raise self._error(f"is not a function ({function!r})") from None
        for keyword in ("device", "dtype"):
            if keyword not in parameters or parameters[keyword].kind is not inspect.Parameter.KEYWORD_ONLY:
                signature = "build(config, *, device=None, dtype=None)"
                raise self._error(f"must take keyword-only '{keyword}' (signature: {signature})")

    def _check_config(self, config: Any) -> None:
        if not (inspect.isclass(config) and issubclass(config, BaseModel)):
            raise self._error("must annotate its 'config' parameter with a pydantic model")
        if config.model_config.get("extra") != "forbid":
            raise self._error(
                f"takes a config ({config.__qualname__}) that accepts unknown keys: give it "
                'model_config = ConfigDict(extra="forbid"), so that a misspelt argument is an error'
            )


@dataclass(eq=False)
class AttentionVariant(_LazyComponent):
    """An attention class registered by name for one kind of slot (see `zoo.attention`)."""

    category: typing.ClassVar[str] = "attention"
    kind: AttentionKind = field(default=ATTENTION_KINDS["channel"], kw_only=True)

    def module_class(self) -> type:
        """The class, its signature checked and its forward probed (once) against its kind."""
        return self._probed_class

    @cached_property
    def _checked_class(self) -> type:
        cls = self.loaded
        self._owned(check_attention_class, cls)
        return cls

    @cached_property
    def _probed_class(self) -> type:
        cls = self._checked_class
        if not probes.passed(cls, self.kind):
            self._owned(probe_attention_class, cls)
            probes.record(cls, self.kind)
        return cls

    def _owned(self, check: Callable[..., None], cls: type) -> None:
        try:
            check(cls, self.kind, name=self.name)
        except AttentionInterfaceError as error:
            raise AttentionInterfaceError(f"plugin '{self.owner}': {error}") from error

    def check(self) -> None:
        self.module_class()

    def instantiate(self, *args: Any, **kwargs: Any) -> Any:
        """The module, built with what a slot passes: an optional keyword of the kind (see
        `zoo.registry.attention`) only if the class's constructor names it."""
        cls = self.module_class()
        return cls(*args, **slot_keywords(cls, self.kind, kwargs))

    def options_model(self) -> type[BaseModel]:
        return self._options_model

    @cached_property
    def _options_model(self) -> type[BaseModel]:
        return options_model(self._checked_class, self.kind)


@dataclass(eq=False)
class KeyAdapter(_LazyComponent):
    """Maps a checkpoint's tensors to the model's names: `adapt(state) -> state`."""

    category: typing.ClassVar[str] = "adapter"

    @cached_property
    def function(self) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
        function = self.loaded
        if not callable(function):
            raise self._error(f"is not callable ({_describe(function)})")
        return function

    def check(self) -> None:
        _ = self.function

    def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.function(state))


@dataclass(eq=False)
class ModelSource(Component):
    """A model entry, where it was defined and which plugin defined it."""

    category: typing.ClassVar[str] = "model"
    entry: ModelEntry = field(default=None, kw_only=True)  # type: ignore[assignment]
    parsed: ParsedFile | None = field(default=None, kw_only=True, repr=False)

    @property
    def file(self) -> str:
        return self.parsed.path if self.parsed else "<code>"

    @property
    def line(self) -> int | None:
        return self.parsed.lines.get(self.name) if self.parsed else None


@dataclass(frozen=True)
class SelectedWeight:
    """The published weights a resolved name stands for, chosen once when the name is
    resolved (`Registry.select_weight`) and read by everything that uses them: the file to
    load, the head it fixes, its task, preprocessing and label set."""

    name: str
    """The name they are published under: the entry's own, the entry it borrows them from
    (its `backbone`), or the exported model's (`hf-hub:ORG/REPO`, a folder)."""
    tag: str
    weights: WeightTag
    """The registry's record of them: where the file is (`hf_hub_id`, `filename`,
    `revision`, `sha256`, or `path`), its license, adapter and the task's fields."""
    how: Literal["named", "default", "borrowed"]
    """Why these: the name names their tag, they are its entry's default, or its entry has
    none of its own and borrows them."""
    label: str
    """What messages call them: `name.tag`, or the exported model's name."""

    @property
    def borrowed(self) -> bool:
        return self.how == "borrowed"

    @property
    def task(self) -> str:
        return self.weights.task

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The image preprocessing they were trained for (image tasks)."""
        return self.weights.preprocessing_or_none

    @property
    def labels(self) -> str | None:
        """The name of the label set the head's outputs follow, if any."""
        return getattr(self.weights, "labels", None)

    def builder_args(self) -> dict[str, Any]:
        """The builder arguments the checkpoint fixes (its head, its vocabularies)."""
        return self.weights.builder_args()

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Resolved:
    """A model name resolved to its entry, with the weight tag the name carried (if any) and
    the published weights it stands for (`selected`)."""

    name: str
    source: ModelSource
    tag: str | None
    selected: SelectedWeight | None = field(default=None, kw_only=True, compare=False)
    """The weights by the one rule (`Registry.select_weight`): the tag named, else the
    entry's default tag, else the weights it borrows, else none."""
    config: BaseModel | None = field(default=None, kw_only=True, compare=False, repr=False)
    """The builder config of the name as it is (no overrides), where the resolver has
    checked it already (exported models): `Registry.build_config` gives it again."""

    @property
    def entry(self) -> ModelEntry:
        return self.source.entry

    @property
    def weights(self) -> WeightTag | None:
        return self.entry.weights[self.tag] if self.tag else None

    @property
    def published(self) -> SelectedWeight | None:
        """The selected weights if they are the entry's own; None if it borrows them or has none."""
        return None if self.selected is None or self.selected.borrowed else self.selected

    @property
    def named_weights(self) -> SelectedWeight | None:
        """The selected weights if the name names their tag (`name.tag`, an exported model)."""
        return self.selected if self.tag is not None else None

    def __str__(self) -> str:
        return f"{self.name}.{self.tag}" if self.tag else self.name


class Registry:
    """Everything the zoo knows by name."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Component]] = {category: {} for category in CATEGORIES}

    # ------------------------------------------------------------------ registration

    def add(self, components: Iterable[Component]) -> None:
        """Register components all at once: on any conflict, none is registered."""
        staged: dict[tuple[str, str], Component] = {}
        for component in components:
            key = (component.category, component.name)
            existing = staged.get(key) or self._tables[component.category].get(component.name)
            if existing is not None:
                if not component.override or key in staged:
                    raise NameConflictError(
                        component.category, component.name, component.owner, existing.owner
                    )
                component.overrides = existing.owner
            staged[key] = component
        for (category, name), component in staged.items():
            self._tables[category][name] = component

    def name_clashes(self, components: Iterable[Component]) -> list[RegistryProblem]:
        """Each model entry among `components` whose name a plugin already provides from
        another file, unless the entry replaces it on purpose (`override=True`)."""
        problems = []
        for source in components:
            taken = self._tables["model"].get(source.name) if isinstance(source, ModelSource) else None
            if taken is None or source.override or _same_file(taken, source):
                continue
            message = f"name already provided by plugin '{taken.owner}'"
            problems.append(RegistryProblem(source.file, source.name, None, message, source.line))
        return problems

    def add_builder(self, name: str, target: Any, *, owner: str, override: bool = False) -> None:
        self.add([Builder(name, owner, target=target, override=override)])

    def add_attention(self, name: str, target: Any, *, kind: str, owner: str, override: bool = False) -> None:
        kind_ = attention_kind(name, kind)
        self.add([AttentionVariant(name, owner, target=target, kind=kind_, override=override)])

    def add_adapter(self, name: str, target: Any, *, owner: str, override: bool = False) -> None:
        self.add([KeyAdapter(name, owner, target=target, override=override)])

    def add_models(self, path: str | Path | Traversable, *, owner: str, override: bool = False) -> list[str]:
        """Register the entries of a registry file; a file with any problem adds nothing."""
        sources = model_sources(path, owner=owner, override=override)
        self.add(sources)
        return [source.name for source in sources]

    # ------------------------------------------------------------------ lookups

    def components(self, category: str) -> list[Component]:
        return list(self._tables[category].values())

    def builder(self, name: str) -> Builder:
        return self._lookup("builder", name)

    def attention(self, name: str, *, kind: str | None = None) -> AttentionVariant:
        """The variant registered as `name`; with `kind`, only one that fits that kind of slot.

        An unknown name (or one of another kind) raises `UnknownModelError` naming every
        variant that fits, with close matches.
        """
        if kind is None:
            return self._lookup("attention", name)
        variant = self._tables["attention"].get(name)
        if variant is not None and variant.kind.name == kind:
            return variant
        fitting = [v.name for v in self.components("attention") if v.kind.name == kind]
        other = f"'{name}' is a {variant.kind.name} attention; " if variant is not None else ""
        raise UnknownModelError(
            f"{kind} attention",
            name,
            _close(name, fitting),
            context=f"({other}{kind} attentions: {', '.join(fitting) or 'none'})",
        )

    def adapter(self, name: str) -> KeyAdapter:
        return self._lookup("adapter", name)

    def source(self, name: str) -> ModelSource:
        return self._lookup("model", name)

    def _lookup(self, category: str, name: str) -> Any:
        table = self._tables[category]
        if name not in table:
            # Attention variants are few: name them all. Models are many: only close matches.
            context = f"(attentions: {', '.join(table)})" if category == "attention" and table else ""
            raise UnknownModelError(category, name, _close(name, table), context=context)
        return table[name]

    def resolve(self, name: str) -> Resolved:
        """Split `name[.tag]`, look both up and select the weights it stands for; unknown
        parts raise with close matches."""
        form = name_form(name)
        base, tag = form.base, form.tag
        source = self.source(base)
        if tag is not None and tag not in source.entry.weights:
            tags = list(source.entry.weights)
            published = ", ".join(tags) if tags else "none"
            raise UnknownModelError(
                "weight tag",
                tag,
                [f"{base}.{t}" for t in _close(tag, tags)],
                context=f"for '{base}' (published: {published})",
            )
        return self.with_selection(Resolved(base, source, tag))

    def with_selection(self, resolved: Resolved) -> Resolved:
        """`resolved` carrying the weights it stands for (`Resolved.selected`)."""
        return replace(resolved, selected=self.select_weight(resolved))

    def select_weight(self, resolved: Resolved) -> SelectedWeight | None:
        """The published weights a resolved name stands for, by the one rule: the tag it
        names, else its entry's default tag, else the weights its entry borrows (`backbone`),
        else none.

        Raises:
            RegistryError: The entry borrows weights that do not exist (see `backbone`).
        """
        entry = resolved.entry
        if resolved.tag is not None:
            return SelectedWeight(resolved.name, resolved.tag, resolved.weights, "named", str(resolved))
        default = entry.default_weight_tag
        if default is not None:
            label = f"{resolved.name}.{default}"
            return SelectedWeight(resolved.name, default, entry.weights[default], "default", label)
        if entry.backbone is not None:
            return replace(self.backbone(resolved.source).selected, how="borrowed")
        return None

    def backbone(self, source: ModelSource) -> Resolved:
        """The published weights an entry borrows (its `backbone`), resolved.

        Raises:
            RegistryError: The backbone names no published weights, or weights of another
                builder; the error names file, entry and field.
        """
        problem = self._backbone_problem(source)
        if problem is not None:
            raise RegistryError([problem])
        return self.resolve(source.entry.backbone)

    def _backbone_problem(self, source: ModelSource) -> RegistryProblem | None:
        entry = source.entry
        if entry.backbone is None:
            return None
        try:
            borrowed = self.resolve(entry.backbone)
        except UnknownModelError as error:
            message = f"backbone '{entry.backbone}' names no published weights: {error}"
        else:
            if borrowed.entry.builder == entry.builder:
                return None
            message = (
                f"backbone '{entry.backbone}' is built by '{borrowed.entry.builder}', "
                f"not by this entry's '{entry.builder}'"
            )
        line = source.parsed.line_of(source.name, ("backbone",)) if source.parsed else None
        return RegistryProblem(source.file, source.name, "backbone", message, line)

    def model_names(self, pattern: str = "*") -> list[str]:
        """Model names matching `pattern`, sorted (the rule: `zoo.registry.names`)."""
        return sorted(n for n in self._tables["model"] if matches(n, pattern))

    def pretrained_names(self, pattern: str = "*") -> list[str]:
        """`name.tag` of the published weights matching `pattern` (the rule: `zoo.registry.names`)."""
        names = []
        for name in sorted(self._tables["model"]):
            for tag in self.source(name).entry.weights:
                if weights_match(name, tag, pattern):
                    names.append(f"{name}.{tag}")
        return names

    def task(self, resolved: Resolved) -> str | None:
        """What a resolved name is for: the task of the weights it stands for
        (`Resolved.selected`), else the first task its family declares (None for a family
        that declares none)."""
        if resolved.selected is not None:
            return resolved.selected.task
        return next(iter(self.builder(resolved.entry.builder).tasks), None)

    # ------------------------------------------------------------------ configs

    def build_config(
        self,
        resolved: Resolved,
        overrides: Mapping[str, Any] = {},
        *,
        weights: SelectedWeight | None = None,
    ) -> BaseModel:
        """The builder's config for an entry, the head of its weights and any overrides.

        Args:
            resolved: The name.
            overrides: Builder arguments replacing the entry's and the weights'.
            weights: The weights whose head the config takes (`resolved.selected` for a model
                that loads them); by default those the name names (`name.tag`), if any.
        """
        weights = weights if weights is not None else resolved.named_weights
        if resolved.config is not None and not overrides and weights is resolved.named_weights:
            return resolved.config
        args = dict(resolved.entry.args)
        if weights is not None:
            args.update(weights.builder_args())
        args.update(overrides)
        # An entry's own weights name the model built; borrowed ones only lend it a head.
        built = weights if weights is not None and not weights.borrowed else resolved
        return self.checked_config(resolved.entry.builder, args, label=str(built))

    def checked_config(self, builder_name: str, args: Mapping[str, Any], *, label: str) -> BaseModel:
        """Builder arguments checked against the builder's schema, as its config.

        Raises:
            ArgumentError: One line, starting with `label`, naming what is wrong.
        """
        builder = self.builder(builder_name)
        _refuse_misplaced_bool(builder.config_type, args, label=label, builder=builder.name)
        try:
            return builder.config_type.model_validate(args, context={"registry": self})
        except ValidationError as error:
            arguments = list(builder.config_type.model_fields)
            reason = describe_errors(
                error, label="argument", known=arguments, of=f" for builder '{builder.name}'"
            )
            raise ArgumentError(f"{label}: {reason}") from None

    # ------------------------------------------------------------------ validation

    def validate(self, sources: Iterable[ModelSource] | None = None) -> list[RegistryProblem]:
        """Check entries against the builders, attention variants and adapters they name."""
        problems: list[RegistryProblem] = []
        for source in self.components("model") if sources is None else sources:
            problems.extend(self._entry_problems(source))
        return problems

    def _entry_problems(self, source: ModelSource) -> list[RegistryProblem]:
        entry, name = source.entry, source.name

        def problem(field: str, message: str, path: tuple[str | int, ...] = ()) -> RegistryProblem:
            line = source.parsed.line_of(name, path) if source.parsed else None
            return RegistryProblem(source.file, name, field, message, line)

        try:
            builder = self.builder(entry.builder)
        except UnknownModelError as error:
            return [problem("builder", _unregistered("builder", entry.builder, error), ("builder",))]
        try:
            config_type = builder.config_type
        except ZooError as error:
            return [problem("builder", str(error), ("builder",))]

        problems = self._argument_problems(source, config_type, entry.args, ("args",))
        if not problems:  # each tag's head, on top of arguments known to be good
            for tag, weights in entry.weights.items():
                args = {**entry.args, **weights.builder_args()}
                problems += self._argument_problems(source, config_type, args, ("weights", tag))
        for tag, weights in entry.weights.items():
            if weights.task not in builder.tasks:
                supported = ", ".join(builder.tasks) or "none"
                message = (
                    f"builder '{builder.name}' does not build for {weights.task} (its tasks: {supported})"
                )
                problems.append(problem(f"weights.{tag}.task", message, ("weights", tag)))
        backbone = self._backbone_problem(source)
        if backbone is not None:
            problems.append(backbone)
        for tag, weights in entry.weights.items():
            if weights.adapter is not None:
                try:
                    self.adapter(weights.adapter)
                except ZooError as error:
                    problems.append(
                        problem(f"weights.{tag}.adapter", str(error), ("weights", tag, "adapter"))
                    )
        return _unique(problems)

    def _argument_problems(
        self,
        source: ModelSource,
        config_type: type[BaseModel],
        args: Mapping[str, Any],
        where: tuple[str, ...],
    ) -> list[RegistryProblem]:
        found = misplaced_bool(config_type, args)
        if found is not None:
            at = (*where, *found[0].split("."))
            line = source.parsed.line_of(source.name, at) if source.parsed else None
            message = f"{NO_BOOLEAN} {YAML_BOOLEANS}"
            return [RegistryProblem(source.file, source.name, _dotted(at), message, line)]
        try:
            config_type.model_validate(args, context={"registry": self})
        except ValidationError as error:
            if source.parsed is not None:
                return problems_from_validation(error, source.parsed, ("models", source.name, *where))
            return [
                RegistryProblem(source.file, source.name, _dotted((*where, *item.path)), item.message)
                for item in readable_errors(error)
            ]
        return []


def attention_kind(name: str, kind: str) -> AttentionKind:
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention '{name}': unknown kind '{kind}' (kinds: {', '.join(ATTENTION_KINDS)})")
    return ATTENTION_KINDS[kind]


def model_sources(path: str | Path | Traversable, *, owner: str, override: bool = False) -> list[ModelSource]:
    """The entries of a registry file; raises `RegistryError` listing every problem."""
    parsed = parse_registry_file(path)
    if parsed.problems:
        raise RegistryError(parsed.problems)
    return [
        ModelSource(name, owner, entry=entry, parsed=parsed, override=override)
        for name, entry in parsed.entries.items()
    ]


def validate_files(paths: Iterable[str | Path], registry: Registry) -> list[RegistryProblem]:
    """Every problem in some registry files: schema, duplicate names, names the installed
    plugins already provide, builder arguments."""
    problems: list[RegistryProblem] = []
    defined_at: dict[str, str] = {}
    for path in paths:
        parsed = parse_registry_file(path)
        problems.extend(parsed.problems)
        sources = [
            ModelSource(name, "<validate>", entry=entry, parsed=parsed)
            for name, entry in parsed.entries.items()
        ]
        for source in sources:
            where = f"{source.file}:{source.line}"
            if source.name in defined_at:
                message = f"duplicate name, also defined at {defined_at[source.name]}"
                problems.append(RegistryProblem(source.file, source.name, None, message, source.line))
            defined_at.setdefault(source.name, where)
        problems.extend(registry.name_clashes(sources))
        problems.extend(registry.validate(sources))
    return problems


def _same_file(first: ModelSource, second: ModelSource) -> bool:
    """Whether two entries come from one file: the same path (an installed file is often named
    through a link), or the same text (a plugin's source file, validated beside its installed
    copy)."""
    if first.parsed is None or second.parsed is None:
        return False
    paths = Path(first.file), Path(second.file)
    if paths[0].resolve() == paths[1].resolve():
        return True
    try:
        return paths[0].read_bytes() == paths[1].read_bytes()
    except OSError:
        return False


def _close(name: str, choices: Iterable[str]) -> list[str]:
    """Up to three of `choices` close to `name`, ignoring case (`ECA` finds `eca` first)."""
    by_folded: dict[str, list[str]] = {}
    for choice in choices:
        by_folded.setdefault(choice.casefold(), []).append(choice)
    wanted = name.casefold()
    close = difflib.get_close_matches(wanted, list(by_folded), n=3, cutoff=0.6)
    if not close:
        close = [c for c in by_folded if c.startswith(wanted) or wanted.startswith(c)][:3]
    return [choice for folded in close for choice in by_folded[folded]][:3]


def _unregistered(category: str, name: str, error: UnknownModelError) -> str:
    """Why an entry names something missing: most often, a plugin not installed yet."""
    close = ", ".join(f"'{s}'" for s in error.suggestions)
    hint = f" (did you mean {close}?)" if close else ""
    return f"{category} '{name}' is not registered{hint}: install the plugin that provides it, then validate"


def _describe(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _unique(problems: list[RegistryProblem]) -> list[RegistryProblem]:
    return list(dict.fromkeys(problems))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


def _refuse_misplaced_bool(
    model: type[BaseModel], values: Mapping[str, Any], *, label: str, builder: str
) -> None:
    """Refuse `True` or `False` where a number or anything else but a bool is meant (see
    `misplaced_bool`), naming the argument."""
    found = misplaced_bool(model, values)
    if found is not None:
        where, value = found
        name = where.partition(".")[0]
        raise ArgumentError(
            f"{label}: {{{name}}}: argument '{where}' of builder '{builder}' {NO_BOOLEAN} {YAML_BOOLEANS}",
            arguments=[Argument(name, repr(value))],
        )
