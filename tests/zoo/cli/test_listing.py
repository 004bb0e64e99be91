"""`zoo list --pretrained`: published weights with their accuracy and cost, sorted and
filtered as documented, over the real registry."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli

WEIGHT_KEYS = {
    "name",
    "builder",
    "hf_hub_id",
    "task",
    "num_classes",
    "license",
    "paper",
    "num_params",
    "gmacs",
    "imagenet",
}
IMAGENET_KEYS = {"top1", "top5", "img_size", "crop_pct", "interpolation"}
METRICS = {
    "top1": lambda row: row["imagenet"] and row["imagenet"]["top1"],
    "top5": lambda row: row["imagenet"] and row["imagenet"]["top5"],
    "params": lambda row: row["num_params"],
    "gmacs": lambda row: row["gmacs"],
}


def listed(*args: str, exit_code: int = 0):
    result = CliRunner().invoke(cli, ["list", *args])
    assert result.exit_code == exit_code, result.output
    return result


def weights(*args: str) -> list[dict]:
    return json.loads(listed("--pretrained", "--json", *args).stdout)


def test_every_weight_row_carries_every_field_null_where_absent():
    rows = weights()
    assert rows and all(set(row) == WEIGHT_KEYS for row in rows)
    assert all(row["imagenet"] is None or set(row["imagenet"]) == IMAGENET_KEYS for row in rows)
    assert any(row["imagenet"] is None for row in rows) and any(row["imagenet"] for row in rows)


@pytest.mark.parametrize("key", METRICS)
def test_sorting_by_a_metric_lists_it_largest_first_and_weights_without_it_last(key):
    values = [METRICS[key](row) for row in weights("--sort", key)]
    known = [value for value in values if value is not None]
    assert known == sorted(known, reverse=True) and known
    assert values == known + [None] * (len(values) - len(known))


def test_sorting_keeps_every_weight_and_python_sorts_the_same():
    by_top1 = [row["name"] for row in weights("--sort", "top1")]
    assert sorted(by_top1) == sorted(zoo.list_pretrained())
    assert by_top1 == zoo.list_pretrained(sort="top1")


def test_min_top1_keeps_exactly_the_weights_at_or_above_it():
    everything = weights()
    kept = weights("--min-top1", "80")
    assert kept and all(row["imagenet"]["top1"] >= 80 for row in kept)
    assert len(kept) == sum(1 for row in everything if (METRICS["top1"](row) or 0) >= 80)


def test_family_keeps_the_models_and_weights_of_that_builder_only():
    assert {row["builder"] for row in weights("--family", "resnet")} == {"resnet"}
    models = json.loads(listed("--family", "vit", "--json").stdout)
    assert models and {row["builder"] for row in models} == {"vit"}
    assert [row["name"] for row in models] == [
        row["name"] for row in json.loads(listed("--json").stdout) if row["builder"] == "vit"
    ]


def test_filters_and_sort_combine():
    rows = weights("--family", "vit", "--min-top1", "80", "--sort", "gmacs")
    assert rows and all(row["builder"] == "vit" and row["imagenet"]["top1"] >= 80 for row in rows)
    assert [row["gmacs"] for row in rows] == sorted((row["gmacs"] for row in rows), reverse=True)


def test_the_table_shows_accuracy_parameters_and_gmacs():
    lines = listed("--pretrained", "resnet50.a1_in1k").stdout.splitlines()
    assert lines[0].split()[:6] == ["NAME", "TOP-1", "TOP-5", "PARAMS", "(M)", "GMACS"]
    [row] = [json.loads(listed("--pretrained", "resnet50.a1_in1k", "--json").stdout)[0]]
    cells = lines[1].split()
    assert cells[:5] == [
        row["name"],
        f"{row['imagenet']['top1']:.2f}",
        f"{row['imagenet']['top5']:.2f}",
        f"{row['num_params'] / 1e6:.1f}",
        f"{row['gmacs']:.2f}",
    ]


def test_an_unknown_family_is_refused_with_the_nearest_builders():
    result = listed("--pretrained", "--family", "resnt", exit_code=2)
    assert result.stderr == "zoo: error: unknown family 'resnt'; did you mean 'resnet', 'regnet'?\n"


@pytest.mark.parametrize("args", [["--sort", "top1"], ["--min-top1", "80"]])
def test_sorting_and_accuracy_filters_need_pretrained(args):
    assert "add --pretrained" in listed(*args, exit_code=2).stderr


@pytest.mark.parametrize("value", ["nan", "inf", "101", "-1"])
def test_min_top1_is_a_finite_percentage(value):
    listed("--pretrained", "--min-top1", value, exit_code=2)


def test_no_weight_reaching_the_filters_says_which_filters_and_fails():
    result = listed("--pretrained", "--family", "vit", "--min-top1", "99.9", exit_code=1)
    assert result.stderr == "zoo: no weights match '*' of family 'vit' with top-1 at least 99.9\n"
