"""`zoo attn` for sequence models: token ids or a features file in, a labelled heatmap out;
the picture is the one `zoo.maps.draw_sequence_map` draws for the weights
`zoo.maps.sequence_maps` returns. Bad input is one line, a non-zero exit and no file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.cli import cli
from zoo.tasks.sequence_maps import draw_sequence_map, sequence_maps

TEXT = {"vocab_size": 20, "embed_dim": 16, "depth": 2, "num_heads": 2}
SEQ2SEQ = {"src_vocab_size": 12, "tgt_vocab_size": 14, "embed_dim": 8, "hidden_size": 8}
SPEECH = {"in_features": 6, "hidden_size": 8, "num_classes": 3}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def as_args(arguments: dict) -> list[str]:
    return [word for key, value in arguments.items() for word in ("-a", f"{key}={value}")]


def save_model(model, path):
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    return path


@pytest.fixture
def text(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("text_transformer_small", **TEXT)
    return model, save_model(model, tmp_path / "text.safetensors")


def attn_text(checkpoint, output, *extra: str, tokens: str = "3 4 5 6"):
    return run("attn", "text_transformer_small", tokens, "--checkpoint", str(checkpoint), *as_args(TEXT),
               "-o", str(output), *extra)  # fmt: skip


def one_error_line(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.splitlines()
    assert line.startswith("zoo: error: ") and "Traceback" not in result.output
    return line


class TestTextTransformer:
    def test_the_picture_is_the_heatmap_of_the_weights_python_returns(self, tmp_path, text):
        model, checkpoint = text
        result = attn_text(checkpoint, tmp_path / "map.png", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        ids = {"tokens": torch.tensor([[3, 4, 5, 6]])}
        value = sequence_maps(model, ids)["layer2"]
        expected = draw_sequence_map(value, ids, title="text_transformer_small: layer2, heads averaged")
        with Image.open(tmp_path / "map.png") as written:
            assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(expected.image))
        assert report == {
            "output": str(tmp_path / "map.png"),
            "model": "text_transformer_small",
            "map": "layer2",
            "size": list(expected.image.size),
            "grid": [5, 5],
            "head": "mean",
            "rows": ["[CLS]", "3", "4", "5", "6"],
            "columns": ["[CLS]", "3", "4", "5", "6"],
        }

    def test_a_vocabulary_labels_the_tokens(self, tmp_path, text):
        _, checkpoint = text
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("".join(f"word{i}\n" for i in range(20)))
        result = attn_text(checkpoint, tmp_path / "map.png", "--vocab", str(vocab), "--json", tokens="3,4")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["rows"] == ["[CLS]", "word3", "word4"]

    def test_one_head_every_head_and_another_layer(self, tmp_path, text):
        _, checkpoint = text
        one = attn_text(checkpoint, tmp_path / "h1.png", "--head", "1", "--map", "layer1")
        assert one.exit_code == 0, one.output
        assert one.stdout.startswith(f"wrote {tmp_path / 'h1.png'} (")
        assert "layer1 attention of text_transformer_small, head 1, tokens over tokens (5x5)" in one.stdout
        every = attn_text(checkpoint, tmp_path / "all.png", "--head", "all")
        assert every.exit_code == 0, every.output
        with Image.open(tmp_path / "h1.png") as single, Image.open(tmp_path / "all.png") as panels:
            assert panels.width > 1.5 * single.width  # two panels side by side

    def test_uniform_attention_is_drawn_with_a_warning(self, tmp_path):
        model = zoo.create("text_transformer_small", **TEXT)
        with torch.no_grad():
            for block in model.blocks:
                block.attn.q_proj.weight.zero_()  # every score equal: uniform rows
        checkpoint = save_model(model, tmp_path / "flat.safetensors")
        result = attn_text(checkpoint, tmp_path / "map.png")
        assert result.exit_code == 0, result.output
        [warning] = result.stderr.splitlines()
        assert warning.startswith("zoo: warning: the layer2 map of text_transformer_small is uniform: ")
        assert "untrained or zero-initialised weights" in warning
        assert (tmp_path / "map.png").exists()

    def test_attention_that_varies_gives_no_warning(self, tmp_path, text):
        result = attn_text(text[1], tmp_path / "map.png")
        assert result.exit_code == 0 and result.stderr == ""

    @pytest.mark.parametrize(
        ("tokens", "extra", "message"),
        [
            ("3 4 25", (), "tokens: token id 25 at position 2 is outside the vocabulary (ids 0 to 19)"),
            ("3 cat", (), "tokens: 'cat' is not a token id"),
            ("", (), "tokens: an empty sequence has no attention to show"),
            ("3 4", ("--map", "layer7"), "--map layer7: text_transformer_small has no such map; it offers "
                                         "layer2 (--map layer2), layer1 (--map layer1)"),
            ("3 4", ("--head", "2"), "--head 2: the layer2 map of text_transformer_small has 2 head(s), 0 to 1"),
            ("3 4", ("--head", "some"), "--head some: give mean, all or a head number (from 0)"),
            ("3 4", ("--stage", "2"), "--stage applies to images; text_transformer_small is a model of sequences"),
            ("3 4", ("--max-size", "64"), "--max-size applies to images"),
        ],
    )  # fmt: skip
    def test_bad_input_is_one_line_and_no_picture(self, tmp_path, text, tokens, extra, message):
        line = one_error_line(attn_text(text[1], tmp_path / "map.png", *extra, tokens=tokens))
        assert line == f"zoo: error: {message}" or line.startswith(f"zoo: error: {message}")
        assert list(tmp_path.iterdir()) == [text[1]]

    def test_another_models_vocabulary_is_refused(self, tmp_path, text):
        vocab = tmp_path / "big.txt"
        vocab.write_text("".join(f"w{i}\n" for i in range(30)))
        line = one_error_line(attn_text(text[1], tmp_path / "map.png", "--vocab", str(vocab)))
        assert line.endswith("has 30 tokens; the vocabulary of tokens has 20: it is another model's")

    def test_without_weights_it_says_where_to_get_them(self, tmp_path):
        line = one_error_line(run("attn", "text_transformer_small", "1 2", "-o", str(tmp_path / "m.png")))
        assert "has no published weights; load a checkpoint of your own (--checkpoint FILE)" in line

    def test_a_wrong_number_of_inputs_is_refused(self, tmp_path, text):
        result = run("attn", "text_transformer_small", "1 2", "3 4", "--checkpoint", str(text[1]),
                     *as_args(TEXT), "-o", str(tmp_path / "m.png"))  # fmt: skip
        assert one_error_line(result).endswith("takes 1 input(s), tokens (token ids); got 2")


class TestSeq2Seq:
    def test_the_alignment_has_target_rows_and_source_columns(self, tmp_path):
        checkpoint = save_model(zoo.create("seq2seq_lstm_attn", **SEQ2SEQ), tmp_path / "s2s.safetensors")
        source = tmp_path / "en.txt"
        source.write_text("".join(f"s{i}\n" for i in range(12)))
        result = run("attn", "seq2seq_lstm_attn", "4 5 6 2", "7 8 2", "--checkpoint", str(checkpoint),
                     *as_args(SEQ2SEQ), "--vocab", f"source={source}", "-o", str(tmp_path / "a.png"), "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["map"] == "alignment" and report["grid"] == [3, 4]
        assert report["rows"] == ["7", "8", "2"] and report["columns"] == ["s4", "s5", "s6", "s2"]

    def test_a_target_id_outside_the_target_vocabulary_is_refused(self, tmp_path):
        checkpoint = save_model(zoo.create("seq2seq_lstm_attn", **SEQ2SEQ), tmp_path / "s2s.safetensors")
        result = run("attn", "seq2seq_lstm_attn", "4 5", "7 14", "--checkpoint", str(checkpoint),
                     *as_args(SEQ2SEQ), "-o", str(tmp_path / "a.png"))  # fmt: skip
        assert one_error_line(result) == (
            "zoo: error: target: token id 14 at position 1 is outside the vocabulary (ids 0 to 13)"
        )
        assert not (tmp_path / "a.png").exists()


class TestSpeech:
    @pytest.fixture
    def speech(self, tmp_path):
        return save_model(zoo.create("speech_lstm_attn", **SPEECH), tmp_path / "speech.safetensors")

    def attn(self, checkpoint, features, output, *extra):
        return run("attn", "speech_lstm_attn", str(features), "--checkpoint", str(checkpoint), *as_args(SPEECH),
                   "-o", str(output), *extra)  # fmt: skip

    @pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
    def test_the_pooling_weights_over_the_frames(self, tmp_path, speech, suffix):
        frames = torch.randn(30, 6)
        path = tmp_path / f"utterance{suffix}"
        np.save(path, frames.numpy()) if suffix == ".npy" else save_file({"features": frames}, str(path))
        result = self.attn(speech, path, tmp_path / "frames.png", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["map"] == "pooling" and report["grid"] == [1, 30]
        assert report["rows"] == ["pool"] and report["columns"][:3] == ["0", "1", "2"]

    @pytest.mark.parametrize(
        ("name", "write", "message"),
        [
            ("u.npy", lambda p: np.save(p, np.zeros((30, 5), np.float32)), "features of shape (30, 5); features takes (frames, 6)"),
            ("u.npy", lambda p: np.save(p, np.array([object()]), allow_pickle=True), "holds Python objects (a pickle)"),
            ("u.npy", lambda p: torch.save(torch.zeros(30, 6), p), "is a PyTorch zip archive (torch.save)"),
            ("u.pkl", lambda p: p.write_bytes(b"\x80\x04K\x01."), "features are read from .npy or .safetensors files"),
        ],
    )  # fmt: skip
    def test_a_bad_features_file_is_one_line_and_no_picture(self, tmp_path, speech, name, write, message):
        path = tmp_path / name
        write(path)
        line = one_error_line(self.attn(speech, path, tmp_path / "frames.png"))
        assert message in line
        assert not (tmp_path / "frames.png").exists()


class TestImageModels:
    def test_a_fresh_cbam_resnet_is_drawn_with_a_warning_saying_why_it_is_flat(self, tmp_path, images):
        small = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "num_classes": 10}
        checkpoint = save_model(zoo.create("resnet18_cbam", **small), tmp_path / "cbam.safetensors")
        result = run("attn", "resnet18_cbam", str(images["cat"]), "--checkpoint", str(checkpoint),
                     *as_args(small), "-o", str(tmp_path / "map.png"))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [
            "zoo: warning: the stage4 map of resnet18_cbam is constant (0.5 everywhere), as untrained or "
            "zero-initialised weights give; it is drawn as a flat tint and shows nothing about the input"
        ]
        assert (tmp_path / "map.png").exists()

    @pytest.mark.parametrize(("option", "value"), [("--head", "all"), ("--vocab", "vocab.txt")])
    def test_sequence_options_are_refused_for_images(self, tmp_path, images, option, value):
        line = one_error_line(
            run("attn", "resnet18", str(images["cat"]), option, value, "-o", str(tmp_path / "m.png"))
        )
        assert line == f"zoo: error: {option} applies to sequence models; resnet18 is a model of images"

    def test_an_image_model_takes_one_image(self, tmp_path, images):
        result = run(
            "attn", "resnet18", str(images["cat"]), str(images["dog"]), "-o", str(tmp_path / "m.png")
        )
        assert one_error_line(result) == "zoo: error: resnet18 takes one image, got 2 inputs"

    def test_map_names_an_image_map_as_method_does(self, tmp_path, images):
        small = {
            "img_size": 32,
            "patch_size": 8,
            "embed_dim": 48,
            "depth": 2,
            "num_heads": 3,
            "num_classes": 10,
        }
        checkpoint = save_model(zoo.create("vit_tiny_patch16_224", **small), tmp_path / "vit.safetensors")
        common = [
            "attn",
            "vit_tiny_patch16_224",
            str(images["cat"]),
            "--checkpoint",
            str(checkpoint),
            *as_args(small),
        ]
        by_map = run(*common, "--map", "last", "-o", str(tmp_path / "a.png"), "--json")
        by_method = run(*common, "--method", "last", "-o", str(tmp_path / "b.png"), "--json")
        assert json.loads(by_map.stdout)["map"] == json.loads(by_method.stdout)["map"] == "last"
        assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
        both = run(*common, "--map", "last", "--method", "last", "-o", str(tmp_path / "c.png"))
        assert one_error_line(both) == "zoo: error: --map excludes --method and --stage"
