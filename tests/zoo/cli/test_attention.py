"""`zoo attention`: the attention variants the zoo has, and what each one takes."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from zoo.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class Gain(torch.nn.Module):
    """A learned gain on every channel.

    Made up for these tests: https://example.org/gain
    """

    def __init__(
        self, channels: int, *, rd_channels: int | None = None, gain: float = 1.0, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.full((channels, 1, 1), gain, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def test_without_name_every_variant_is_a_row_with_kind_plugin_and_summary():
    result = run("attention")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "PLUGIN", "SUMMARY"]
    rows = {line.split()[0]: line.split(maxsplit=3)[1:] for line in lines[1:]}
    assert set(rows) == {"se", "cbam", "eca", "mhsa", "mha", "soft", "hard", "additive", "wmsa"} | {
        "talking_heads",
        "class_attention",
    } | {"self_attention"} | {"selective_kernel", "split_attention", "bot"} | {
        "gc",
        "diff",
        "map",
        "mqa",
        "attention_pool",
    }
    assert rows["eca"] == ["channel", "builtin", "Efficient Channel Attention (ECA)."]
    assert rows["mhsa"][:2] == ["token", "builtin"]
    assert rows["additive"][:2] == ["alignment", "builtin"]
    assert rows["wmsa"][:2] == ["window", "builtin"]


def test_the_list_as_json_has_one_object_per_variant():
    rows = json.loads(run("attention", "--json").stdout)
    assert {"name": "cbam", "kind": "channel", "plugin": "builtin",
            "summary": "Convolutional Block Attention Module (CBAM)."} in rows  # fmt: skip
    assert [row["kind"] for row in rows if row["name"] in ("soft", "hard")] == ["pooling", "pooling"]


def test_a_plugins_variant_is_listed_with_its_owner(builtin_registry, use_registry):
    builtin_registry.add_attention("gain", Gain, kind="channel", owner="tests")
    use_registry(builtin_registry)
    rows = {row["name"]: row for row in json.loads(run("attention", "--json").stdout)}
    assert rows["gain"] == {
        "name": "gain",
        "kind": "channel",
        "plugin": "tests",
        "summary": "A learned gain on every channel.",
    }


def test_one_variant_shows_its_kind_contract_options_and_paper():
    result = run("attention", "eca")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "eca: Efficient Channel Attention (ECA)."
    assert "  kind:      channel: (B, C, H, W) -> (B, C, H, W) re-weighting inside a conv block" in lines
    assert "  interface: __init__(channels, *, rd_channels=None, device, dtype, **options)" in lines
    assert "  paper:     https://arxiv.org/abs/1910.03151" in lines
    options = lines[lines.index("  options:") + 1 : lines.index("  options:") + 4]
    assert options == ["    kernel_size: int (>= 1) | None = None", "    gamma: int = 2", "    beta: int = 1"]
    assert any("ECA-Net: Efficient Channel Attention" in line for line in lines)


def test_one_variant_as_json(builtin_registry, use_registry):
    builtin_registry.add_attention("gain", Gain, kind="channel", owner="tests")
    use_registry(builtin_registry)
    described = json.loads(run("attention", "gain", "--json").stdout)
    assert described == {
        "name": "gain",
        "kind": "channel",
        "plugin": "tests",
        "class": f"{__name__}:Gain",
        "summary": "A learned gain on every channel.",
        "contract": {
            "summary": "(B, C, H, W) -> (B, C, H, W) re-weighting inside a conv block",
            "interface": "__init__(channels, *, rd_channels=None, device, dtype, **options)",
        },
        "options": [{"name": "gain", "type": "float", "default": 1.0}],
        "paper": "https://example.org/gain",
        "doc": "A learned gain on every channel.\n\nMade up for these tests: https://example.org/gain",
    }


def test_options_of_other_kinds_and_literal_types():
    cbam = json.loads(run("attention", "cbam", "--json").stdout)
    assert cbam["options"][-1] == {"name": "kernel_size", "type": "3 | 7", "default": 7}
    mha = json.loads(run("attention", "mha", "--json").stdout)
    assert mha["kind"] == "sequence"
    assert mha["contract"]["interface"] == (
        "__init__(embed_dim, *, num_heads, kdim, vdim, out_dim, dropout, bias, device, dtype, **options)"
    )
    assert [o["name"] for o in mha["options"]] == ["dk", "dv", "fused"]


@pytest.mark.parametrize(("name", "suggestion"), [("ECA", "'eca'"), ("Cbam", "'cbam'"), ("mhs", "'mhsa'")])
def test_an_unknown_name_is_one_line_with_suggestions_and_exit_2(name, suggestion):
    result = run("attention", name)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"zoo: error: unknown attention '{name}' (attentions: se, cbam, eca, ")
    assert f"did you mean {suggestion}" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
