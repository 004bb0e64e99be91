"""The sequence models' attention maps: a contract over every family whose models implement
the sequence-map protocol, then what each built-in family's maps are."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.registry import default_registry
from zoo.registry.family import FunctionFamily, HasSequenceMaps
from zoo.tasks.sequence_maps import sequence_maps


def small_model(builder, device=None):
    family = builder.family
    config = family.config.model_validate(family.test_args, context={"registry": default_registry()})
    torch.manual_seed(0)
    return family.build(config, device=device)


FAMILIES = [
    builder
    for builder in default_registry().components("builder")
    if not isinstance(builder.family, FunctionFamily)
    and isinstance(small_model(builder, device="meta"), HasSequenceMaps)
]


def padded_inputs(model, batch: int = 3) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Random inputs of the kinds the model declares, every one padded: rows of full length,
    of a few positions, and of one."""
    inputs, lengths = {}, {}
    generator = torch.Generator().manual_seed(1)
    for spec in model.sequence_inputs():
        length = min(9, spec.max_length or 9)
        if spec.kind == "tokens":
            inputs[spec.name] = torch.randint(0, spec.size, (batch, length), generator=generator)
        else:
            inputs[spec.name] = torch.randn(batch, length, spec.size, generator=generator)
        lengths[spec.name] = torch.tensor([length, 4, 1][:batch])
    return inputs, lengths


def test_the_built_in_sequence_families_implement_the_protocol():
    built_in = {"text_transformer", "seq2seq_lstm", "transformer_seq2seq", "speech_lstm"}
    assert built_in <= {builder.name for builder in FAMILIES}


@pytest.mark.parametrize("builder", FAMILIES, ids=lambda builder: builder.name)
class TestEveryFamilyWithSequenceMaps:
    def test_weights_sum_to_1_over_the_keys_and_padded_keys_get_none(self, builder):
        model = small_model(builder)
        inputs, lengths = padded_inputs(model)
        maps = sequence_maps(model, inputs, lengths)
        assert maps
        for value in maps.values():
            weights = value.weights
            assert (weights >= 0).all()
            torch.testing.assert_close(weights.sum(dim=-1), torch.ones(weights.shape[:-1]))
            prefix = len(value.key_prefix)
            for row, length in enumerate(lengths[value.keys].tolist()):
                assert (weights[row, ..., prefix + length :] == 0).all()

    def test_the_padding_changes_nothing_of_the_real_positions(self, builder):
        model = small_model(builder)
        inputs, lengths = padded_inputs(model)
        padded = sequence_maps(model, inputs, lengths)
        short = {name: value[1:2, :4] for name, value in inputs.items()}  # row 1 without its padding
        alone = sequence_maps(model, short)
        for name, value in alone.items():
            rows = len(value.query_prefix) + (4 if value.queries else 0)
            columns = len(value.key_prefix) + 4
            torch.testing.assert_close(value.weights[0], padded[name].weights[1, :, :rows, :columns])

    def test_the_maps_do_not_depend_on_the_mode_the_model_was_in(self, builder):
        model = small_model(builder)
        inputs, _ = padded_inputs(model, batch=1)
        trained = sequence_maps(model.train(), inputs)
        evaluated = sequence_maps(model.eval(), inputs)
        for name in trained:
            torch.testing.assert_close(trained[name].weights, evaluated[name].weights)


class TestTextTransformer:
    def test_one_map_per_block_last_first_over_the_class_token_and_the_tokens(self):
        model = zoo.create("text_transformer_small", vocab_size=30, embed_dim=16, depth=3, num_heads=2).eval()
        tokens, lengths = torch.randint(1, 30, (2, 6)), torch.tensor([6, 3])
        maps = sequence_maps(model, {"tokens": tokens}, {"tokens": lengths})
        assert list(maps) == ["layer3", "layer2", "layer1"]
        with torch.no_grad():
            _, weights = model.forward_attention(tokens, lengths)
        for index, value in enumerate(reversed(maps.values())):
            assert (value.queries, value.keys, value.query_prefix) == ("tokens", "tokens", ("[CLS]",))
            torch.testing.assert_close(value.weights, weights[index])

    def test_without_a_class_token_the_axes_are_the_tokens_alone(self):
        model = zoo.create(
            "text_transformer_small", vocab_size=30, embed_dim=16, depth=1, num_heads=2, pool="mean"
        )
        value = sequence_maps(model, torch.randint(0, 30, (1, 5)))["layer1"]
        assert value.query_prefix == () and value.weights.shape == (1, 2, 5, 5)


class TestSeq2SeqLSTM:
    def test_the_alignment_is_the_decoders_weights_over_the_source_at_each_target_step(self):
        model = zoo.create(
            "seq2seq_lstm_attn", src_vocab_size=12, tgt_vocab_size=14, embed_dim=8, hidden_size=8
        )
        source, target = torch.randint(3, 12, (2, 7)), torch.randint(3, 14, (2, 5))
        lengths = torch.tensor([7, 4])
        [value] = sequence_maps(model, {"source": source, "target": target}, {"source": lengths}).values()
        model.eval()
        with torch.no_grad():
            _, weights = model.forward_attention(source, target, lengths)
        assert (value.queries, value.keys) == ("target", "source")
        torch.testing.assert_close(value.weights, weights.unsqueeze(1))  # (B, 1, T, S)


class TestTransformerSeq2Seq:
    def test_one_cross_attention_map_per_decoder_layer_last_first(self):
        model = zoo.create(
            "transformer_seq2seq_small",
            src_vocab_size=12,
            tgt_vocab_size=14,
            embed_dim=16,
            encoder_depth=1,
            decoder_depth=2,
            num_heads=2,
        ).eval()
        source, target, lengths = (
            torch.randint(3, 12, (2, 7)),
            torch.randint(3, 14, (2, 5)),
            torch.tensor([7, 4]),
        )
        maps = sequence_maps(model, {"source": source, "target": target}, {"source": lengths})
        assert list(maps) == ["cross2", "cross1"]
        with torch.no_grad():
            _, weights = model.forward_attention(source, target, lengths)
        for index, value in enumerate(reversed(maps.values())):
            assert (value.queries, value.keys) == ("target", "source")
            torch.testing.assert_close(value.weights, weights[index])  # (B, heads, T, S)


class TestSpeechLSTM:
    @pytest.mark.parametrize("attn", ["soft", "hard"])
    def test_the_pooling_weights_over_the_frames_are_one_query(self, attn):
        model = zoo.create("speech_lstm_attn", in_features=6, hidden_size=8, num_classes=3, attn=attn).eval()
        features, lengths = torch.randn(2, 10, 6), torch.tensor([10, 6])
        [value] = sequence_maps(model, {"features": features}, {"features": lengths}).values()
        with torch.no_grad():
            _, weights = model.forward_attention(features, lengths)
        assert (value.queries, value.keys, value.query_prefix) == (None, "features", ("pool",))
        torch.testing.assert_close(value.weights, weights[:, None, None, :])
