"""The forms a name is written in, and the rule by which a pattern picks names, shared by
`zoo list` and `zoo.list_models`."""

from __future__ import annotations

import pytest

from zoo.registry.names import NameForm, matches, name_form, shell_pattern, weights_match


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("resnet50", NameForm("registry", "resnet50")),
        ("resnet50.a1_in1k", NameForm("registry", "resnet50", tag="a1_in1k")),
        ("hf-hub:org/repo", NameForm("hub", "hf-hub:org/repo")),
        ("hf-hub:org/repo@v1.0", NameForm("hub", "hf-hub:org/repo", revision="v1.0")),
        ("./my.model", NameForm("folder", "./my.model")),  # a dot in a path is no tag
        ("/data/model", NameForm("folder", "/data/model")),
    ],
)
def test_a_name_is_split_by_its_form(name, form):
    assert name_form(name) == form


@pytest.mark.parametrize(
    ("given", "other", "expected"),
    [
        ("resnet50", "resnet50.a1_in1k", True),  # a bare name stands for every tag
        ("resnet50.a1_in1k", "resnet50.a1_in1k", True),
        ("resnet50.a1_in1k", "resnet50.tv_in1k", False),
        ("resnet50.a1_in1k", "resnet50", False),
        ("resnet5", "resnet50.a1_in1k", False),
        ("hf-hub:org/repo", "hf-hub:org/repo@v1", True),  # and every revision
        ("hf-hub:org/repo@v1", "hf-hub:org/repo", False),
        ("hf-hub:org/repo", "hf-hub:org/repository", False),
    ],
)
def test_a_name_stands_for_itself_and_a_bare_one_for_every_tag_or_revision(given, other, expected):
    assert name_form(given).names(name_form(other)) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("cbam", "resnet50_cbam", True),  # no wildcard: contained anywhere
        ("resnet50", "seresnet50", True),
        ("resnet50", "resnet18", False),
        ("resnet50*", "seresnet50", False),  # a wildcard: the whole name
        ("resnet50*", "resnet50_cbam", True),
        ("*_cbam", "resnet50_cbam", True),
        ("resnet?8*", "resnet18_se", True),
        ("resnet[15]*", "resnet34", False),
        ("CBAM", "resnet50_cbam", False),  # case-sensitive
        ("*", "anything", True),
        ("", "anything", True),
    ],
)
def test_a_pattern_without_wildcards_matches_names_containing_it_one_with_them_the_whole_name(
    pattern, name, expected
):
    assert matches(name, pattern) is expected


def test_the_pattern_a_plain_word_stands_for_is_shown_with_its_stars():
    assert shell_pattern("cbam") == "*cbam*"
    assert shell_pattern("vit_*") == "vit_*"


def test_weights_match_as_name_tag_or_as_name():
    assert weights_match("vit_base_patch16_224", "augreg_in21k", "in21k")
    assert weights_match("vit_base_patch16_224", "augreg_in21k", "vit_base*")
    assert weights_match("vit_base_patch16_224", "augreg_in21k", "*.augreg_in21k")
    assert not weights_match("vit_base_patch16_224", "augreg_in21k", "*.orig*")
