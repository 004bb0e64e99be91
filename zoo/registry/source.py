"""Reading registry YAML files into validated entries, with every problem located.

Plain `yaml.safe_load` silently keeps the last of two equal keys; a registry must not, so
duplicate names are problems here. Each problem carries the file, the entry, the field and
the line of the YAML node it concerns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import RegistryProblem
from .cache_dir import cache_dir
from .family import TASKS
from .schema import ModelEntry, RegistryFile

__all__ = [
    "NO_BOOLEAN",
    "YAML_BOOLEANS",
    "ParsedFile",
    "ReadableError",
    "describe_errors",
    "error_message",
    "field_path",
    "misplaced_bool",
    "parse_registry_file",
    "parse_registry_text",
    "problems_from_validation",
    "readable_errors",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class ParsedFile:
    """The entries of one registry file that passed the schema, and the problems found."""

    path: str
    entries: dict[str, ModelEntry]
    lines: dict[str, int]
    problems: list[RegistryProblem]
    root: yaml.Node | None
    text: str | None = field(default=None, repr=False, compare=False)
    """The YAML, where the node tree was not kept (a file read from the parsed-file cache)."""

    def node_tree(self) -> yaml.Node | None:
        """The file's YAML nodes, which know the line of every value (composed on demand)."""
        if self.root is None and self.text is not None:
            return _composed(self.text)
        return self.root

    def line_of(self, entry: str, field_path: Sequence[str | int] = ()) -> int | None:
        """The line of `entry`'s node at `field_path` (or of its nearest existing parent)."""
        return _line_of(self.node_tree(), ("models", entry, *field_path))


# libyaml's parser where PyYAML was built with it: ten times faster than the pure-Python one,
# and the registry is parsed by every process that builds a model.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKeyLoader(_SafeLoader):
    """A safe loader that records duplicate mapping keys instead of dropping them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys merged from an anchor may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                self.duplicates.append((key, key_node.start_mark.line + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_registry_file(path: str | Path | Traversable) -> ParsedFile:
    """Parse and check one registry file; problems are collected, never raised."""
    if isinstance(path, str):
        path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        problem = RegistryProblem(str(path), None, None, f"cannot read: {reason}")
        return ParsedFile(str(path), {}, {}, [problem], None)
    return parse_registry_text(text, str(path))


# A registry file's YAML, read once, is kept as JSON: every process that builds a model reads the
# registry, and composing YAML nodes costs ten times what parsing JSON does. Keyed by the text's
# digest, the cache holds only what YAML gave (validation runs each time) and only for files
# without problems.
_PARSED_FORMAT = 1


def _parsed_cache(text: str) -> Path:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return cache_dir() / "registry" / f"{digest}.v{_PARSED_FORMAT}.json"


def _read_parsed(text: str, source: str) -> ParsedFile | None:
    try:
        data = json.loads(_parsed_cache(text).read_text(encoding="utf-8"))
        registry = RegistryFile.model_validate(data["content"])
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None
    return ParsedFile(source, dict(registry.models), data["lines"], [], None, text)


def _write_parsed(text: str, content: Any, lines: dict[str, int]) -> None:
    path = _parsed_cache(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:  # a read-only cache: parse again next time
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump({"content": content, "lines": lines}, file)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):  # YAML values JSON cannot hold (dates), a full disk
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return
    _forget_the_oldest(path.parent)


_PARSED_KEPT = 200
"""Parsed files kept; an edited file leaves its old text's entry behind."""


def _forget_the_oldest(folder: Path) -> None:
    with contextlib.suppress(OSError):
        entries = sorted(folder.glob("*.json"), key=lambda entry: entry.stat().st_mtime_ns)
        for stale in entries[:-_PARSED_KEPT]:
            stale.unlink()


def _composed(text: str) -> yaml.Node | None:
    loader = _DuplicateKeyLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def parse_registry_text(text: str, source: str) -> ParsedFile:
    """Parse and check registry YAML given as text; `source` names it in problems."""
    cached = _read_parsed(text, source)
    if cached is not None:
        return cached
    loader = _DuplicateKeyLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(error, "problem", None) or str(error)
        return ParsedFile(
            source, {}, {}, [RegistryProblem(source, None, None, f"invalid YAML: {reason}", line)], None
        )
    finally:
        loader.dispose()

    problems = [
        RegistryProblem(source, _entry_at(root, line), None, f"duplicate key '{key}'", line)
        for key, line in loader.duplicates
    ]
    if not isinstance(data, dict):
        problems.append(RegistryProblem(source, None, None, "expected a mapping with a 'models:' key", 1))
        return ParsedFile(source, {}, {}, problems, root)

    parsed = ParsedFile(source, {}, _entry_lines(root), problems, root)
    raw_models = data.get("models")
    try:
        parsed.entries.update(RegistryFile.model_validate(data).models)
    except ValidationError as error:
        problems.extend(problems_from_validation(error, parsed, prefix=()))
        if isinstance(raw_models, dict):
            for name, raw_entry in raw_models.items():
                try:
                    parsed.entries[name] = ModelEntry.model_validate(raw_entry)
                except ValidationError:
                    continue  # already reported through RegistryFile
    if not problems:
        _write_parsed(text, {"models": raw_models}, parsed.lines)
    return parsed


def problems_from_validation(
    error: ValidationError, parsed: ParsedFile, prefix: Sequence[str | int]
) -> list[RegistryProblem]:
    """Turn a pydantic error on (part of) a registry file into located problems.

    `prefix` is where the validated object sits below the file's root, e.g.
    `("models", "resnet50", "args")` when an entry's args were validated on their own.
    """
    problems = []
    for item in readable_errors(error):
        loc = (*prefix, *item.path)
        message = f"invalid name: {item.message}" if item.names_key else item.message
        entry = str(loc[1]) if len(loc) > 1 and loc[0] == "models" else None
        field = ".".join(str(part) for part in loc[2:]) if entry is not None else ".".join(map(str, loc))
        problems.append(
            RegistryProblem(parsed.path, entry, field or None, message, _line_of(parsed.node_tree(), loc))
        )
    return problems


def describe_errors(
    error: ValidationError,
    *,
    label: str = "field",
    known: Sequence[str] | None = None,
    of: str = "",
    owner: str = "it",
) -> str:
    """A pydantic error as one line: `field 'a.b': message; field 'c': message`.

    With `known` (the names accepted at the top level), unknown keys there are grouped first
    with the accepted ones listed: `unknown option 'k' (options: kernel_size, gamma)`, or
    `(owner takes no options)` when none is; `of` says whose they are (`" for builder
    'resnet'"`). An unknown key further down is `field 'a.k': unknown field`.
    """
    unknown, parts = [], []
    for item in readable_errors(error):
        where = ".".join(str(part) for part in item.path)
        if known is not None and item.type == "extra_forbidden" and len(item.path) == 1:
            unknown.append(f"'{where}'")
        else:
            parts.append(f"{label} '{where}': {item.message}" if where else item.message)
    if unknown:
        offered = f"{label}s: {', '.join(known)}" if known else f"{owner} takes no {label}s"
        plural = label if len(unknown) == 1 else f"{label}s"
        parts.insert(0, f"unknown {plural} {', '.join(unknown)}{of} ({offered})")
    return "; ".join(parts)


@dataclass(frozen=True)
class ReadableError:
    """One problem of a pydantic error, in the words of whoever wrote the input."""

    path: tuple[str | int, ...]
    """Where it is: the keys and indexes of the input (`layers.2`), nothing of pydantic's."""
    message: str
    type: str
    """pydantic's error type (`missing`, `extra_forbidden`, `int_parsing`, ...)."""
    names_key: bool = False
    """The key of a mapping is wrong, not its value."""


def readable_errors(error: ValidationError) -> list[ReadableError]:
    """The problems of a pydantic error, located as the input spells them (`field_path`); the
    members of a union that all failed at one place are one problem: `Input should be a valid
    integer or a valid tuple`."""
    merged: dict[tuple[str | int, ...], ReadableError] = {}
    for item in error.errors():
        readable = ReadableError(
            field_path(item), error_message(item), item["type"], names_key=item["loc"][-1:] == ("[key]",)
        )
        earlier = merged.get(readable.path)
        merged[readable.path] = readable if earlier is None else _either(earlier, readable)
    return list(merged.values())


def _either(first: ReadableError, second: ReadableError) -> ReadableError:
    """Two failed members of a union at one place, as one problem."""
    should = "Input should be "
    if not (first.message.startswith(should) and second.message.startswith(should)):
        return replace(first, message=f"{first.message}; or {second.message}")
    expected = [_without_detail(message.removeprefix(should)) for message in (first.message, second.message)]
    return replace(first, message=should + " or ".join(dict.fromkeys(expected)))


def _without_detail(expected: str) -> str:
    """`a valid integer` of `a valid integer, unable to parse string as an integer`."""
    return expected.split(", ", 1)[0]


def field_path(item: Mapping[str, Any]) -> tuple[str | int, ...]:
    """Where a pydantic error is, as the input spells it: the keys and indexes only, without
    the member of a union pydantic tried (`constrained-int`, `function-after[...]`, a model's
    class name), a tagged union's tag (the task of a weight tag) or `[key]`."""
    loc = item["loc"]
    # The key a missing or unknown field is, or a wrong key is, may look like anything.
    named = {len(loc) - 1} if item["type"] in ("missing", "extra_forbidden") else set()
    named |= {index - 1 for index, part in enumerate(loc) if part == "[key]"}
    return tuple(part for index, part in enumerate(loc) if index in named or not _inserted_by_pydantic(part))


# The names pydantic gives the members of a union it tried, when they are not a model class:
# `int`, `constrained-int`, `tuple[constrained-int, constrained-int]`, `function-after[f(), X]`.
_VALIDATOR_NAME = re.compile(
    r"[a-z]+(-[a-z]+)*\[.*\]|constrained-[a-z]+|none|bool|int|float|decimal|complex|str|bytes|typed-dict",
    re.DOTALL,
)


def _inserted_by_pydantic(part: str | int) -> bool:
    if not isinstance(part, str):
        return False
    return (
        part == "[key]"
        or part in TASKS
        or bool(_VALIDATOR_NAME.fullmatch(part))
        or part in _model_class_names()
    )


def _model_class_names() -> set[str]:
    """The names of every pydantic model class: pydantic names a union's model member so."""
    names, pending = set(), [BaseModel]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def error_message(item: Mapping[str, Any]) -> str:
    """A pydantic error item as a short sentence."""
    if item["type"] == "missing":
        return "required field is missing"
    if item["type"] == "extra_forbidden":
        return "unknown field"
    return str(item["msg"]).removeprefix("Value error, ")


def _entry_lines(root: yaml.Node | None) -> dict[str, int]:
    models = _child(root, "models")
    if not isinstance(models, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in models.value if key.tag != _MERGE_TAG}


def _entry_at(root: yaml.Node | None, line: int) -> str | None:
    """The entry whose definition spans `line`, if any."""
    candidates = [(start, name) for name, start in _entry_lines(root).items() if start <= line]
    return max(candidates)[1] if candidates else None


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        found = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                if found is None:  # explicit keys win over merged ones
                    merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    for source in merged:
                        found = found or _child(source, key)
            elif key_node.value == str(key):
                found = value_node
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    node, line = root, None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        line = child.start_mark.line + 1
    return line


NO_BOOLEAN = "takes no boolean"
YAML_BOOLEANS = "(YAML reads yes, no, on and off as booleans)"
"""Why a refusal of what `misplaced_bool` finds says so: the boolean was likely never meant."""


def misplaced_bool(model: type[BaseModel], values: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The first boolean among `values` (walking lists, mappings and nested models) given for a
    field whose annotation admits no bool: (its dotted path, the field's value); else None.

    pydantic reads `True` as `1` for an `int` or `float` field, and YAML reads `yes` as `True`:
    `depth=yes` would build one block. The configs are the plugins', so the check walks
    their annotations rather than asking each to be strict.
    """
    for name, value in values.items():
        field = model.model_fields.get(name)
        if field is not None and (where := _bool_in(field.annotation, value, name)) is not None:
            return where, value
    return None


def _bool_in(annotation: Any, value: Any, path: str) -> str | None:
    """Where in `value` a bool stands that `annotation` does not admit, or None."""
    if isinstance(value, bool):
        return None if _admits_bool(annotation) else path
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(value, Mapping):
            found = misplaced_bool(option, value)
            if found is not None:
                return f"{path}.{found[0]}"
        items = _item_annotations(option, value)
        for key, (item_annotation, item) in items.items():
            if (found := _bool_in(item_annotation, item, f"{path}.{key}")) is not None:
                return found
    return None


def _options(annotation: Any) -> list[Any]:
    """The types a union (or `Annotated`, or optional) annotation stands for."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _options(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return [option for arg in get_args(annotation) for option in _options(arg)]
    return [annotation]


def _admits_bool(annotation: Any) -> bool:
    for option in _options(annotation):
        if option in (bool, Any, object) or not (isinstance(option, type) or get_origin(option)):
            return True  # a TypeVar, a string annotation, ...: nothing to go by
        if get_origin(option) is Literal and any(isinstance(arg, bool) for arg in get_args(option)):
            return True
    return False


def _item_annotations(annotation: Any, value: Any) -> dict[Any, tuple[Any, Any]]:
    """The annotation of each item of a list or mapping `value`, by index or key."""
    origin, args = get_origin(annotation), get_args(annotation)
    if not isinstance(origin, type) or not args:  # not a container: Literal, a plain type, ...
        return {}
    if isinstance(value, Mapping) and issubclass(origin, Mapping) and len(args) == 2:
        return {key: (args[1], item) for key, item in value.items()}
    if not isinstance(value, (list, tuple)) or not issubclass(origin, Sequence) or issubclass(origin, str):
        return {}
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return {index: (arg, item) for index, (arg, item) in enumerate(zip(args, value, strict=False))}
    return {index: (args[0], item) for index, item in enumerate(value)}
