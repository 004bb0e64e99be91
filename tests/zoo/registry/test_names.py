"""The rule by which a pattern picks names, shared by `zoo list` and `zoo.list_models`."""

from __future__ import annotations

import pytest

from zoo.registry.names import matches, shell_pattern, weights_match


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
