"""The sequence-map protocol, as the core runs and checks it; reading token ids, vocabularies
and feature files; drawing maps and masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from zoo.errors import ArgumentError, AttentionMapError
from zoo.registry.family import HasSequenceMaps, SequenceInput, SequenceMap
from zoo.tasks.heatmaps import KEPT, MASKED
from zoo.tasks.maps import colorize
from zoo.tasks.sequence_maps import (
    axis_labels,
    draw_sequence_map,
    map_matrix,
    mask_picture,
    masks,
    parse_token_ids,
    read_features,
    read_vocabulary,
    sequence_maps,
    uniformity,
)

TOKENS = SequenceInput("tokens", "tokens", size=10, max_length=6)
FRAMES = SequenceInput("features", "frames", size=4)


class ToyAttention(nn.Module):
    """A sequence model of the protocol: dot-product attention of token embeddings over
    themselves, two heads, padded keys masked. `broken` makes it break one promise."""

    def __init__(self, broken: str | None = None):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.broken = broken

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (TOKENS,)

    def sequence_maps(self, inputs, lengths):
        x = self.embed(inputs["tokens"])  # (B, L, 4)
        scores = torch.stack([x @ x.transpose(1, 2), -(x @ x.transpose(1, 2))], dim=1)  # (B, 2, L, L)
        if "tokens" in lengths:
            keep = torch.arange(x.shape[1]) < lengths["tokens"][:, None]
            scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        if self.broken == "unnormalised":
            weights = weights * 2
        if self.broken == "padding":
            weights = (scores.masked_fill(scores == float("-inf"), 0)).softmax(dim=-1)
        if self.broken == "shape":
            weights = weights[:, :, :-1]
        if self.broken == "axis":
            return {"self": SequenceMap(weights, "tokens", "words")}
        return {
            "self": SequenceMap(weights, "tokens", "tokens"),
            "first": SequenceMap(weights[:, :1], "tokens", "tokens"),
        }


class TestTheProtocol:
    def test_a_model_with_both_methods_implements_it(self):
        assert isinstance(ToyAttention(), HasSequenceMaps)
        assert not isinstance(nn.Linear(2, 2), HasSequenceMaps)

    def test_maps_come_back_in_order_as_float32_with_rows_summing_to_1(self):
        ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0]])
        maps = sequence_maps(ToyAttention(), {"tokens": ids}, {"tokens": torch.tensor([4, 2])})
        assert list(maps) == ["self", "first"]
        weights = maps["self"].weights
        assert weights.shape == (2, 2, 4, 4) and weights.dtype == torch.float32
        torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 2, 4))
        assert (weights[1, :, :, 2:] == 0).all()  # padded keys get no weight

    def test_a_lone_tensor_names_the_only_input(self):
        ids = torch.tensor([[1, 2, 3]])
        model = ToyAttention()
        torch.testing.assert_close(
            sequence_maps(model, ids)["self"].weights, sequence_maps(model, {"tokens": ids})["self"].weights
        )

    def test_the_model_runs_in_eval_mode_and_its_flags_are_restored(self):
        model = ToyAttention()
        seen = []
        model.embed.register_forward_hook(lambda module, args, out: seen.append(module.training))
        sequence_maps(model, torch.tensor([[1, 2]]))
        assert seen == [False] and model.training and model.embed.training

    def test_a_model_without_the_protocol_is_refused(self):
        with pytest.raises(AttentionMapError, match="Linear offers no sequence attention maps"):
            sequence_maps(nn.Linear(2, 2), torch.zeros(1, 2, dtype=torch.long))

    @pytest.mark.parametrize(
        ("broken", "message"),
        [
            ("unnormalised", "has rows that do not sum to 1"),
            ("padding", "puts weight on padded positions of tokens"),
            ("shape", r"is \(1, 2, 2, 3\), expected \(B=1, heads, 3, 3\)"),
            ("axis", "names the input 'words'"),
        ],
    )
    def test_maps_that_break_the_protocol_are_refused_naming_the_map(self, broken, message):
        with pytest.raises(AttentionMapError, match=f"ToyAttention.sequence_maps: map 'self' {message}"):
            sequence_maps(
                ToyAttention(broken), {"tokens": torch.tensor([[1, 2, 3]])}, {"tokens": torch.tensor([2])}
            )

    @pytest.mark.parametrize(
        ("inputs", "lengths", "message"),
        [
            ({"tokens": torch.tensor([[1, 12, 3]])}, None, r"token id 12 at position 1 is outside the vocabulary \(ids 0 to 9\)"),
            ({"tokens": torch.tensor([[1, 2], [3, -1]])}, None, "token id -1 at position 1 of row 1"),
            ({"tokens": torch.rand(1, 3)}, None, "expected token ids"),
            ({"tokens": torch.ones(1, 7, dtype=torch.long)}, None, "7 positions; the model takes at most 6"),
            ({"tokens": torch.ones(1, 0, dtype=torch.long)}, None, "an empty sequence"),
            ({"words": torch.ones(1, 2, dtype=torch.long)}, None, "missing tokens; the model takes tokens"),
            ({"tokens": torch.ones(2, 3, dtype=torch.long)}, {"tokens": torch.tensor([3, 4])}, "lengths of tokens"),
        ],
    )  # fmt: skip
    def test_inputs_that_do_not_fit_the_declaration_are_refused(self, inputs, lengths, message):
        with pytest.raises(ArgumentError, match=message):
            sequence_maps(ToyAttention(), inputs, lengths)


class TestReadingInputs:
    def test_token_ids_are_integers_between_spaces_or_commas(self):
        assert parse_token_ids(" 1 2,3 ,, 9 ", TOKENS).tolist() == [[1, 2, 3, 9]]

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("1 two 3", "'two' is not a token id"),
            ("1.5", "'1.5' is not a token id"),
            ("1 10", "token id 10 at position 1 is outside the vocabulary"),
            ("-1", "token id -1 at position 0"),
            ("", "an empty sequence"),
            ("1 2 3 4 5 6 7", "7 positions; the model takes at most 6"),
        ],
    )
    def test_bad_token_ids_are_refused_in_one_line(self, text, message):
        with pytest.raises(ArgumentError, match=message) as caught:
            parse_token_ids(text, TOKENS)
        assert "\n" not in str(caught.value)

    def test_a_vocabulary_is_one_token_a_line_kept_as_written(self, tmp_path):
        path = tmp_path / "vocab.txt"
        path.write_text("<pad>\n the\ncat\r\n\n", encoding="utf-8")
        assert read_vocabulary(path) == ("<pad>", " the", "cat", "")

    @pytest.mark.parametrize(
        ("content", "message"), [(b"", "has no tokens"), (b"\xff\xfe\x00", "not UTF-8 text")]
    )
    def test_an_unreadable_vocabulary_is_refused(self, tmp_path, content, message):
        path = tmp_path / "vocab.txt"
        path.write_bytes(content)
        with pytest.raises(ArgumentError, match=message):
            read_vocabulary(path)

    @pytest.mark.parametrize("shape", [(7, 4), (1, 7, 4)])
    def test_features_are_read_from_npy_as_frames(self, tmp_path, shape):
        array = np.random.default_rng(0).standard_normal(shape).astype(np.float64)
        np.save(tmp_path / "f.npy", array)
        frames = read_features(tmp_path / "f.npy", FRAMES)
        assert frames.shape == (1, 7, 4) and frames.dtype == torch.float32
        np.testing.assert_allclose(frames[0].numpy(), array.reshape(7, 4), rtol=1e-6)

    def test_features_are_read_from_safetensors_one_tensor_or_the_one_named_after_the_input(self, tmp_path):
        frames = torch.randn(5, 4)
        save_file({"x": frames}, str(tmp_path / "one.safetensors"))
        save_file({"features": frames, "other": torch.zeros(2)}, str(tmp_path / "named.safetensors"))
        torch.testing.assert_close(read_features(tmp_path / "one.safetensors", FRAMES)[0], frames)
        torch.testing.assert_close(read_features(tmp_path / "named.safetensors", FRAMES)[0], frames)

    def test_integer_features_are_converted(self, tmp_path):
        np.save(tmp_path / "f.npy", np.arange(8, dtype=np.int16).reshape(2, 4))
        assert read_features(tmp_path / "f.npy", FRAMES).tolist() == [[[0, 1, 2, 3], [4, 5, 6, 7]]]

    @pytest.mark.parametrize(
        ("name", "write", "message"),
        [
            ("f.npy", lambda p: np.save(p, np.zeros((5, 3), np.float32)), r"features of shape \(5, 3\); features takes \(frames, 4\)"),
            ("f.npy", lambda p: np.save(p, np.zeros((2, 5, 4), np.float32)), r"shape \(2, 5, 4\)"),
            ("f.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True), r"holds Python objects \(a pickle\)"),
            ("f.npy", lambda p: torch.save(torch.zeros(5, 4), p), "is a PyTorch zip archive"),
            ("f.npy", lambda p: p.write_bytes(b"not numpy at all"), "not a .npy file"),
            ("f.npy", lambda p: np.save(p, np.full((2, 4), np.nan, np.float32)), "NaN or infinite"),
            ("f.npy", lambda p: np.save(p, np.zeros((2, 4), np.complex64)), "dtype complex64"),
            ("f.pt", lambda p: torch.save(torch.zeros(5, 4), p), "features are read from .npy or .safetensors files"),
            ("f.safetensors", lambda p: save_file({"a": torch.zeros(2, 4), "b": torch.zeros(2, 4)}, str(p)), r"holds 2 tensors \(a, b\)"),
            ("f.safetensors", lambda p: p.write_bytes(b"\x08" + b"\x00" * 7 + b"{}"), "f.safetensors"),
        ],
    )  # fmt: skip
    def test_bad_feature_files_are_refused_in_one_line_and_nothing_unpickled(
        self, tmp_path, name, write, message
    ):
        path = tmp_path / name
        write(path)
        with pytest.raises(ArgumentError, match=message) as caught:
            read_features(path, FRAMES)
        assert "\n" not in str(caught.value)


class TestPictures:
    def test_the_matrix_drawn_is_the_head_mean_one_head_or_every_head(self):
        weights = torch.rand(2, 3, 4, 5).softmax(dim=-1)
        value = SequenceMap(weights, "tokens", "tokens")
        torch.testing.assert_close(map_matrix(value, sample=1), weights[1].mean(dim=0))
        torch.testing.assert_close(map_matrix(value, head=2), weights[0, 2])
        torch.testing.assert_close(map_matrix(value, head="all"), weights[0])
        with pytest.raises(ArgumentError, match=r"head 3: the map has 3 head\(s\), 0 to 2"):
            map_matrix(value, head=3)

    def test_labels_are_the_prefix_then_the_tokens_of_the_vocabulary_or_the_ids(self):
        value = SequenceMap(torch.zeros(1, 1, 4, 3), "target", "source", ("[CLS]",), ())
        inputs = {"target": torch.tensor([[2, 0, 1]]), "source": torch.tensor([[1, 2, 7]])}
        rows, columns = axis_labels(
            value, inputs, vocabularies={"target": ["a", " ", "c"], "source": ["x", "y", "z"]}
        )
        assert rows == ["[CLS]", "c", "a", "' '"]
        assert columns == ["y", "z", "7"]  # an id past the vocabulary's end shows as the id

    def test_frames_are_labelled_by_number(self):
        value = SequenceMap(torch.zeros(1, 1, 1, 3), None, "features", ("pool",))
        assert axis_labels(value, {"features": torch.zeros(1, 3, 4)}) == (["pool"], ["0", "1", "2"])

    def test_the_picture_shows_the_weights_sequence_maps_returns(self):
        ids = torch.tensor([[1, 2, 3, 4]])
        value = sequence_maps(ToyAttention(), {"tokens": ids})["self"]
        picture = draw_sequence_map(value, {"tokens": ids}, head=1)
        [grid] = picture.grids
        shown = value.weights[0, 1]
        expected = colorize(shown / shown.max()).round().to(torch.uint8).numpy()
        image = np.asarray(picture.image)
        for row in range(4):
            for column in range(4):
                x, y = grid.centre(row, column)
                assert tuple(image[y, x]) == tuple(expected[row, column])

    def test_every_head_gets_a_panel(self):
        ids = torch.tensor([[1, 2, 3]])
        [value, _] = sequence_maps(ToyAttention(), {"tokens": ids}).values()
        assert len(draw_sequence_map(value, {"tokens": ids}, head="all").grids) == 2


class TestUniformMapsWarn:
    def test_rows_that_spread_evenly_over_the_keys_they_see_are_uniform(self):
        causal = torch.ones(5, 5).tril()
        assert uniformity(causal / causal.sum(dim=-1, keepdim=True)) is not None
        assert uniformity(torch.full((3, 4), 0.25)) is not None
        assert uniformity(torch.zeros(2, 2)) == "zero everywhere"
        assert uniformity(torch.tensor([[0.5, 0.5], [0.4, 0.6]])) is None
        assert uniformity(torch.tensor([[0.25 + 1e-5, 0.25 - 1e-5, 0.25, 0.25]])) is not None  # nearly

    def test_drawing_a_uniform_map_warns_in_one_line_and_a_varied_one_does_not(self, caplog):
        inputs = {"tokens": torch.tensor([[1, 2, 3]])}
        flat = SequenceMap(torch.full((1, 2, 3, 3), 1 / 3), "tokens", "tokens")
        with caplog.at_level(logging.WARNING, logger="zoo"):
            draw_sequence_map(flat, inputs, what="the layer1 map of toy")
        [record] = caplog.records
        assert record.getMessage().startswith(
            "the layer1 map of toy is uniform: every query spreads its weight"
        )
        assert "untrained or zero-initialised weights" in record.getMessage()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zoo"):
            draw_sequence_map(sequence_maps(ToyAttention(), inputs)["self"], inputs)
        assert caplog.records == []


class TestMasks:
    def test_causal_padding_and_both(self):
        assert masks("causal", [3]).tolist() == [
            [True, False, False],
            [True, True, False],
            [True, True, True],
        ]
        assert masks("padding", [3, 1]).tolist() == [[True, True, True], [True, False, False]]
        both = masks("causal", [3, 2])
        assert both.shape == (2, 3, 3)
        assert both[1].tolist() == [[True, False, False], [True, True, False], [True, True, False]]
        assert masks("padding", [2], max_len=4).tolist() == [[True, True, False, False]]

    @pytest.mark.parametrize(
        ("kind", "lengths", "max_len", "message"),
        [
            ("sliding", [3], None, "unknown mask 'sliding'; masks: causal, padding"),
            ("causal", [0], None, "lengths must be positive"),
            ("padding", [5], 3, "shorter than"),
            ("causal", [5000], None, "at most 1024"),
        ],
    )
    def test_bad_masks_are_refused(self, kind, lengths, max_len, message):
        with pytest.raises(ArgumentError, match=message):
            masks(kind, lengths, max_len)

    def test_the_causal_picture_is_the_lower_triangle_kept(self):
        picture = mask_picture("causal", [5])
        [grid] = picture.grids
        assert (grid.rows, grid.columns) == (5, 5)
        image = np.asarray(picture.image)
        for row in range(5):
            for column in range(5):
                assert tuple(image[grid.centre(row, column)[::-1]]) == (KEPT if column <= row else MASKED)

    def test_the_padding_picture_has_a_row_per_sequence(self):
        picture = mask_picture("padding", [4, 2, 1])
        [grid] = picture.grids
        assert (grid.rows, grid.columns) == (3, 4)
        image = np.asarray(picture.image)
        assert tuple(image[grid.centre(1, 1)[::-1]]) == KEPT
        assert tuple(image[grid.centre(1, 2)[::-1]]) == MASKED

    def test_causal_with_several_lengths_has_a_panel_per_sequence(self):
        picture = mask_picture("causal", [4, 2])
        assert len(picture.grids) == 2
        image = np.asarray(picture.image)
        assert tuple(image[picture.grids[1].centre(3, 1)[::-1]]) == KEPT
        assert tuple(image[picture.grids[1].centre(3, 2)[::-1]]) == MASKED  # past length 2
