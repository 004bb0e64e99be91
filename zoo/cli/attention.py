"""`zoo attention`: the registered attention variants, or everything about one of them."""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

import click

from ..registry import AttentionVariant, default_registry
from ..registry.attention import AttentionKind
from .output import echo_json, json_option, print_table

__all__ = ["attention_command"]

_URL = re.compile(r"https?://\S+")


@click.command("attention")
@click.argument("name", required=False)
@json_option
def attention_command(name: str | None, as_json: bool) -> None:
    """List the attention variants, or describe one: kind, contract, options, paper.

    A variant plugs into the slots of its kind (`-a attn=NAME` for a model whose slot has
    that kind); its options are given with it: `-a 'attn={name: cbam, kernel_size: 3}'`.
    Each variant's class is imported to read its summary and options.

    \b
    Examples:
      zoo attention
      zoo attention eca
      zoo attention cbam --json

    \b
    --json prints, without NAME, one object per variant:
      [{"name": str, "kind": str, "plugin": str, "summary": str}, ...]
    --json with NAME prints one object:
      {"name": str, "kind": str, "plugin": str, "class": "module:Class", "summary": str,
       "contract": {"summary": str, "interface": str},
       "options": [{"name": str, "type": str, "default": any}, ...],
       "paper": str | null, "doc": str}
    paper is the first address in the docstring; doc is the whole docstring.
    """
    registry = default_registry()
    if name is None:
        _list_variants(registry.components("attention"), as_json)
        return
    description = describe(registry.attention(name))
    if as_json:
        echo_json(description)
    else:
        _echo_description(description)


def _list_variants(variants: list[Any], as_json: bool) -> None:
    rows = [
        {"name": v.name, "kind": v.kind.name, "plugin": v.owner, "summary": _summary(_docstring(v))}
        for v in variants
    ]
    if as_json:
        echo_json(rows)
        return
    print_table(
        [(r["name"], r["kind"], r["plugin"], r["summary"]) for r in rows],
        ("NAME", "KIND", "PLUGIN", "SUMMARY"),
    )


def describe(variant: AttentionVariant) -> dict[str, Any]:
    """Everything `zoo attention NAME` shows, in the shape `--json` prints."""
    doc = _docstring(variant)
    kind = variant.kind
    options = [
        {"name": option, "type": type_name(info.annotation), "default": info.default}
        for option, info in variant.options_model().model_fields.items()
    ]
    found = _URL.search(doc)
    return {
        "name": variant.name,
        "kind": kind.name,
        "plugin": variant.owner,
        "class": variant.target_path,
        "summary": _summary(doc),
        "contract": {"summary": kind.summary, "interface": interface(kind)},
        "options": options,
        "paper": found.group(0).rstrip(".,;)") if found else None,
        "doc": doc,
    }


def interface(kind: AttentionKind) -> str:
    """The constructor every variant of `kind` has: `__init__(channels, *, rd_channels=None,
    device, dtype, **options)` (a keyword a slot may leave out shows its default)."""
    return f"__init__{kind.signature()}"


def type_name(annotation: Any) -> str:
    """A type as one reads it: `int | None`, `3 | 7`, `int (>= 1)`."""
    if annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        bounds = ", ".join(filter(None, (_bound(item) for item in annotation.__metadata__)))
        return f"{type_name(args[0])} ({bounds})" if bounds else type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if inspect.isclass(annotation) and origin is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _bound(item: Any) -> str:
    """`>= 1` for a `Field(ge=1)` or `annotated_types.Ge(1)`; empty for other metadata."""
    found = []
    for constraint in getattr(item, "metadata", [item]):
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(constraint, attribute, None)
            if value is not None:
                found.append(f"{symbol} {value}")
    return ", ".join(found)


def _docstring(variant: AttentionVariant) -> str:
    """The class's own docstring, else its module's (nn.Module's is never shown)."""
    cls = variant.module_class()
    doc = cls.__dict__.get("__doc__") or inspect.getmodule(cls).__doc__ or ""
    return inspect.cleandoc(doc)


def _summary(doc: str) -> str:
    return doc.strip().splitlines()[0].strip() if doc.strip() else "-"


def _echo_description(description: dict[str, Any]) -> None:
    contract = description["contract"]
    click.echo(f"{description['name']}: {description['summary']}")
    fields = [
        ("kind", f"{description['kind']}: {contract['summary']}"),
        ("interface", contract["interface"]),
        ("plugin", description["plugin"]),
        ("class", description["class"]),
        ("paper", description["paper"] or "-"),
    ]
    for label, value in fields:
        click.echo(f"  {label + ':':<11}{value}")
    if description["options"]:
        click.echo("  options:")
        for option in description["options"]:
            click.echo(f"    {option['name']}: {option['type']} = {option['default']!r}")
    else:
        click.echo("  options:   none")
    body = "\n".join(description["doc"].splitlines()[1:]).strip("\n")
    if body.strip():
        click.echo("")
        for line in body.splitlines():
            click.echo(f"  {line}".rstrip())
