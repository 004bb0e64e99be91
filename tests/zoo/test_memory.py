"""A request too large for memory is refused in one line naming its size, before it is
allocated: a model while it is built, a mask before it is drawn, a benchmark's batch before
it runs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import zoo
from zoo import memory
from zoo.cli import cli

from ..kinds import entries_of_each_kind, stated_size

LARGEST = sorted(zoo.list_models(), key=stated_size)[-3:]

GIGABYTE = 10**9


@pytest.fixture
def small_machine(monkeypatch):
    """A machine with 10 MB available (nothing is allocated to find out)."""
    monkeypatch.setattr(memory, "_mem_available", lambda: 10_000_000)


def one_error_line(command: list[str]) -> str:
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ")
    return line


def test_a_model_with_too_many_modules_is_refused_while_built_on_meta():
    line = one_error_line(["create", "vit_tiny_patch16_224", "-a", "depth=1000000000", "--device", "meta"])
    assert f"more than {memory.MAX_MODULES:,} modules" in line


@pytest.mark.parametrize(
    "name", ["vit_tiny_patch16_224", "resnet18", "text_transformer_small", "seq2seq_lstm_attn"]
)
def test_a_model_larger_than_the_memory_available_is_refused_while_built(small_machine, name):
    with pytest.raises(
        zoo.errors.ArgumentError, match=r"would need more than .* MB .*has 10\.0 MB available"
    ):
        zoo.create(name)


def test_each_kind_of_model_of_the_zoo_builds_within_the_limits_on_meta():
    """The largest included: the catalogue's, up to 2.7 B parameters."""
    for name in {*entries_of_each_kind(), *LARGEST}:
        zoo.create(name, device="meta")


def test_masks_whose_cells_pass_the_bound_are_refused_naming_the_size():
    lengths = ",".join(["1024"] * 1024)
    line = one_error_line(["mask", "causal", "--lengths", lengths, "-o", "never.png"])
    assert "1,073,741,824 cells: drawing it would need 25.8 GB" in line


@pytest.mark.parametrize("kind", ["causal", "padding"])
def test_masks_up_to_the_bound_are_drawn(tmp_path, kind):
    lengths = "1024" if kind == "causal" else ",".join(["1024"] * 1024)
    result = CliRunner().invoke(cli, ["mask", kind, "--lengths", lengths, "-o", str(tmp_path / "m.png")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mode", [[], ["--train"]], ids=["inference", "train"])
def test_a_benchmark_batch_too_large_is_refused_before_the_model_is_built(small_machine, mode):
    line = one_error_line(["bench", "resnet18", "--batch", "100000", *mode])
    assert "a batch of 100000 would need" in line and "this machine has 10.0 MB available" in line


@pytest.mark.parametrize("value", ["inf", "nan", "1e300"])
def test_a_run_time_past_an_hour_is_refused(value):
    assert "--min-time" in one_error_line(["bench", "resnet18", "--min-time", value])
