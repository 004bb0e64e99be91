"""Reading registry YAML: every problem is located by file, line, entry and field; pydantic's
errors are worded in the input's own terms, wherever they come from."""

from __future__ import annotations

import re

import pytest

import zoo
from zoo.errors import ArgumentError
from zoo.registry import default_registry
from zoo.registry.source import parse_registry_file, parse_registry_text

PYDANTIC_INTERNALS = re.compile(r"constrained-|function-|union\[|tagged-|\[key\]|lax-|json-or-python")

PREPROCESSING = "{input_size: [3, 32, 32], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}"


def test_a_valid_file_gives_its_entries_and_their_lines():
    parsed = parse_registry_text(
        "models:\n  net_a:\n    builder: resnet\n  net_b:\n    builder: vit\n    args: {depth: 2}\n", "r.yaml"
    )
    assert parsed.problems == []
    assert list(parsed.entries) == ["net_a", "net_b"]
    assert parsed.entries["net_b"].args == {"depth": 2}
    assert parsed.lines == {"net_a": 2, "net_b": 4}


def test_a_duplicate_name_is_a_problem_not_a_silent_overwrite():
    parsed = parse_registry_text("models:\n  net:\n    builder: a\n  net:\n    builder: b\n", "r.yaml")
    [problem] = parsed.problems
    assert (problem.file, problem.entry, problem.line) == ("r.yaml", "net", 4)
    assert "duplicate key 'net'" in problem.message


def test_keys_merged_from_an_anchor_may_be_overridden():
    text = "defaults:\n  base: &base {block: basic, layers: [1]}\nmodels:\n  net:\n    builder: resnet\n    args: {<<: *base, block: bottleneck}\n"
    parsed = parse_registry_text(text, "r.yaml")
    assert parsed.problems == []
    assert parsed.entries["net"].args == {"block": "bottleneck", "layers": [1]}


def test_a_missing_field_names_entry_field_and_line():
    text = f"models:\n  net:\n    builder: vit\n    weights:\n      tag1:\n        hf_hub_id: org/repo\n        num_classes: 10\n        preprocessing: {PREPROCESSING}\n"
    [problem] = parse_registry_text(text, "r.yaml").problems
    assert problem.entry == "net"
    assert problem.field == "weights.tag1.license"
    assert problem.message == "required field is missing"
    assert problem.line == 6
    assert str(problem) == "r.yaml:6: entry 'net': field 'weights.tag1.license': required field is missing"


def test_every_problem_in_a_file_is_reported_at_once():
    text = (
        "models:\n"
        "  Bad-Name:\n    builder: vit\n"
        "  no_builder:\n    args: {}\n"
        "  unknown_field:\n    builder: vit\n    colour: red\n"
        "  bad_hub_id:\n    builder: vit\n    weights:\n      t:\n"
        f"        {{hf_hub_id: not-a-repo, num_classes: 1, license: mit, preprocessing: {PREPROCESSING}}}\n"
    )
    problems = parse_registry_text(text, "r.yaml").problems
    found = {(p.entry, p.field): p.message for p in problems}
    assert found[("Bad-Name", None)].startswith("invalid name")
    assert found[("no_builder", "builder")] == "required field is missing"
    assert found[("unknown_field", "colour")] == "unknown field"
    assert "should match pattern" in found[("bad_hub_id", "weights.t.hf_hub_id")]


def test_weights_must_be_safetensors_and_preprocessing_consistent():
    text = (
        "models:\n  net:\n    builder: vit\n    weights:\n      t:\n"
        "        hf_hub_id: org/repo\n        filename: model.bin\n        num_classes: 1\n        license: mit\n"
        "        preprocessing: {input_size: [3, 32, 32], mean: [0.5], std: [0.5, 0.5, 0.5]}\n"
    )
    fields = {p.field for p in parse_registry_text(text, "r.yaml").problems}
    assert fields == {"weights.t.filename", "weights.t.preprocessing"}


def test_a_default_tag_must_be_one_of_the_weights():
    text = "models:\n  net:\n    builder: vit\n    default_tag: missing\n"
    [problem] = parse_registry_text(text, "r.yaml").problems
    assert "default_tag 'missing' is not one of its weights" in problem.message


def test_invalid_yaml_and_unreadable_files_are_problems(tmp_path):
    [problem] = parse_registry_text("models:\n  net: [\n", "r.yaml").problems
    assert problem.message.startswith("invalid YAML") and problem.line == 3
    [problem] = parse_registry_file(tmp_path / "absent.yaml").problems
    assert problem.message == "cannot read: No such file or directory"
    [problem] = parse_registry_text("- a list\n", "r.yaml").problems
    assert "expected a mapping" in problem.message


def an_entry_of_every_builder() -> dict[str, str]:
    entries: dict[str, str] = {}
    for source in default_registry().components("model"):
        entries.setdefault(source.entry.builder, source.name)
    return entries


BUILDER_FIELDS = [
    (entry, field)
    for builder, entry in an_entry_of_every_builder().items()
    for field in default_registry().builder(builder).config_type.model_fields
]


@pytest.mark.parametrize("wrong", [{"x": 1}, "nonsense"], ids=["dict", "string"])
@pytest.mark.parametrize(("entry", "field"), BUILDER_FIELDS, ids=lambda value: value)
def test_a_builder_argument_of_a_wrong_type_is_named_plainly_with_no_pydantic_internals(entry, field, wrong):
    with pytest.raises(ArgumentError) as refused:
        zoo.create(entry, **{field: wrong}, device="meta")
    message = str(refused.value)
    assert re.search(rf"'{field}[.']", message), message
    assert not PYDANTIC_INTERNALS.search(message), message
    assert "\n" not in message


def test_the_members_of_a_union_that_all_failed_are_one_problem_at_the_argument():
    with pytest.raises(ArgumentError) as refused:
        zoo.create("resnet18", img_size=-1, device="meta")
    assert (
        str(refused.value) == "resnet18: argument 'img_size': Input should be greater than 0 or a valid tuple"
    )


def test_a_wrong_item_of_a_list_is_located_by_its_index():
    with pytest.raises(ArgumentError) as refused:
        zoo.create("resnet18", layers=[2, "two", 2, 2], device="meta")
    assert str(refused.value) == (
        "resnet18: argument 'layers.1': Input should be a valid integer, unable to parse string as an integer"
    )


def test_an_argument_in_a_registry_file_is_located_as_the_file_spells_it(make_registry):
    registry = make_registry("models:\n  net:\n    builder: resnet\n    args: {img_size: [32, x]}\n")
    problems = registry.validate([registry.source("net")])
    assert [(p.field, p.line) for p in problems] == [("args.img_size", 4), ("args.img_size.1", 4)]
    assert not any(PYDANTIC_INTERNALS.search(p.message) for p in problems)


def test_a_file_read_again_comes_from_the_parsed_cache_with_the_same_entries_and_lines(tmp_path):
    text = "defaults:\n  base: &base {block: basic, layers: [1, 1, 1, 1]}\nmodels:\n  tiny:\n    builder: resnet\n    args: {<<: *base, layers: oops}\n"
    first = parse_registry_text(text, "a.yaml")
    again = parse_registry_text(text, "a.yaml")
    assert first.root is not None and again.root is None  # the second time, no YAML was composed
    assert (again.entries, again.lines, again.problems) == (first.entries, first.lines, [])
    assert again.line_of("tiny", ("args", "layers")) == first.line_of("tiny", ("args", "layers")) == 6
    problems = default_registry().validate(
        zoo.registry.registry.model_sources(write(tmp_path, text), owner="t")
    )
    assert [(p.entry, p.field, p.line) for p in problems] == [("tiny", "args.layers", 6)]


def test_a_file_with_problems_is_never_cached():
    text = "models:\n  tiny:\n    builder: resnet\n    paper: 3\n"
    assert parse_registry_text(text, "a.yaml").problems
    again = parse_registry_text(text, "a.yaml")
    assert again.root is not None and [p.line for p in again.problems] == [4]


def write(folder, text: str):
    path = folder / "registry.yaml"
    path.write_text(text)
    return path
