"""Messages about a bad name or option list the valid choices, in one line, ignoring case."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import ArgumentError, UnknownModelError


def error_line(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    return line


def test_a_variant_of_another_kind_names_its_kind_and_every_variant_that_fits():
    assert error_line("create", "vit_tiny_patch16_224", "-a", "attn=eca") == (
        "zoo: error: vit_tiny_patch16_224: argument 'attn': unknown token attention 'eca' "
        "('eca' is a channel attention; token attentions: mhsa, talking_heads, diff)"
    )
    with pytest.raises(
        ArgumentError, match=r"unknown token attention 'eca' .*token attentions: mhsa, talking_heads, diff\)"
    ):
        zoo.create("vit_tiny_patch16_224", attn="eca", device="meta")


def test_an_unknown_variant_lists_the_variants_of_the_slot_and_suggests_ignoring_case():
    assert error_line("create", "resnet18", "-a", "attn=ECA") == (
        "zoo: error: resnet18: argument 'attn': unknown channel attention 'ECA' "
        "(channel attentions: se, cbam, eca, gc); did you mean 'eca'?"
    )


def test_variants_a_plugin_adds_are_listed_too(builtin_registry):
    from .test_attention import Gain

    builtin_registry.add_attention("gain", Gain, kind="channel", owner="tests")
    with pytest.raises(UnknownModelError) as raised:
        builtin_registry.attention("Gainn", kind="channel")
    assert str(raised.value) == (
        "unknown channel attention 'Gainn' (channel attentions: se, cbam, eca, gc, gain); did you mean 'gain'?"
    )
    with pytest.raises(UnknownModelError, match=r"pooling attentions: soft, hard\)$"):
        builtin_registry.attention("gain", kind="pooling")


def test_an_unknown_option_lists_the_variants_options():
    assert error_line("create", "resnet18", "-a", "attn={name: eca, k_size: 3}") == (
        "zoo: error: resnet18: argument 'attn': attention 'eca': unknown option 'k_size' "
        "(options: kernel_size, gamma, beta)"
    )
    with pytest.raises(
        ArgumentError,
        match=r"unknown options 'k', 'r' \(options: rd_ratio, rd_divisor, act, gate, tensor_names\)",
    ):
        zoo.create("resnet18", attn={"name": "se", "k": 3, "r": 4}, device="meta")


def test_a_variant_without_options_says_so(builtin_registry):
    from .test_attention import Gain

    class Plain(Gain):
        def __init__(self, channels: int, *, rd_channels: int | None = None, device=None, dtype=None) -> None:
            super().__init__(channels, device=device, dtype=dtype)

    builtin_registry.add_attention("plain", Plain, kind="channel", owner="tests")
    with pytest.raises(ArgumentError, match=r"unknown option 'gain' \('plain' takes no options\)"):
        zoo.create("resnet18", attn={"name": "plain", "gain": 2}, device="meta", registry=builtin_registry)


def test_a_bad_option_value_still_names_the_option():
    line = error_line("create", "resnet18", "-a", "attn={name: cbam, kernel_size: 5}")
    assert line.endswith("attention 'cbam': option 'kernel_size': Input should be 3 or 7")


@pytest.mark.parametrize(
    ("name", "first"), [("ResNet18", "resnet18"), ("VIT_TINY_PATCH16_224", "vit_tiny_patch16_224")]
)
def test_model_suggestions_ignore_case(name, first):
    assert error_line("info", name).startswith(f"zoo: error: unknown model '{name}'; did you mean '{first}'")
