"""The sequence models through the command line: listed, described, built, validated."""

import json

import pytest
from click.testing import CliRunner

from zoo.cli import cli

SEQUENCE_MODELS = {
    "text_transformer_small": ("text_transformer", "mha"),
    "text_transformer_base": ("text_transformer", "mha"),
    "seq2seq_lstm_attn": ("seq2seq_lstm", "additive"),
    "speech_lstm_attn": ("speech_lstm", "soft"),
    "transformer_seq2seq_small": ("transformer_seq2seq", "mha"),
    "transformer_seq2seq_base": ("transformer_seq2seq", "mha"),
}


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_the_registry_with_the_sequence_models_validates():
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok:")


def test_list_shows_each_sequence_model_with_its_builder_and_attention():
    rows = {row["name"]: row for row in json.loads(run("list", "--json").output)}
    for name, (builder, attention) in SEQUENCE_MODELS.items():
        assert rows[name]["builder"] == builder and rows[name]["attention"] == attention
        assert rows[name]["weights"] == []
    assert not any(name in run("list", "--pretrained").output for name in SEQUENCE_MODELS)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_info_says_no_weights_are_published(name):
    result = run("info", name)
    assert result.exit_code == 0, result.output
    assert "none published" in result.output
    assert f"attention:   {SEQUENCE_MODELS[name][1]}" in result.output


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_create_builds_each_on_meta(name):
    result = run("create", name, "--device", "meta", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["device"] == "meta"


def test_create_builds_a_real_one_with_another_attention():
    result = run("create", "speech_lstm_attn", "-a", "attn={name: hard, hidden: 32}", "-a", "hidden_size=32")
    assert result.exit_code == 0, result.output
    assert "SpeechLSTMAttention" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (("create", "speech_lstm_attn", "-a", "attn=additive"), "unknown pooling attention 'additive'"),
        (("create", "seq2seq_lstm_attn", "--pretrained"), "no published weights"),
        (("create", "text_transformer_small", "-a", "pos_embed=rotary"), "pos_embed"),
    ],
)
def test_bad_input_ends_in_one_line_and_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
