"""`zoo.tasks.attention_pictures`: the pictures `zoo attn` draws, made and described by the
library; the command only saves and prints them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.errors import ArgumentError, AttentionMapError
from zoo.tasks.attention_pictures import (
    ImageAttentionPicture,
    choose_map,
    image_attention_picture,
    over_images,
    sequence_attention_picture,
)
from zoo.tasks.sequence_maps import draw_sequence_map, sequence_maps

VIT = "vit_tiny_patch16_224"
VIT_SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
TEXT = {"vocab_size": 20, "embed_dim": 16, "depth": 2, "num_heads": 2}


def saved(model: torch.nn.Module, path) -> str:
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))
    return str(path)


@pytest.fixture
def vit(tmp_path) -> str:
    torch.manual_seed(0)
    return saved(zoo.create(VIT, **VIT_SHAPE, num_classes=10), tmp_path / "vit.safetensors")


@pytest.fixture
def text(tmp_path) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(0)
    model = zoo.create("text_transformer_small", **TEXT).eval()
    return model, saved(model, tmp_path / "text.safetensors")


@pytest.fixture
def photo(tmp_path) -> str:
    pixels = np.random.default_rng(0).integers(0, 256, size=(60, 90, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    return str(tmp_path / "photo.png")


def test_models_of_images_are_drawn_over_images_the_others_between_sequences():
    assert over_images(VIT) and over_images("resnet50_cbam")
    assert not over_images("text_transformer_small") and not over_images("seq2seq_lstm_attn")


def test_an_image_map_is_drawn_over_the_image_and_saved_as_asked(vit, photo, tmp_path):
    drawn = image_attention_picture(
        VIT, photo, checkpoint=vit, num_classes=10, model_args=VIT_SHAPE, max_size=45
    )

    assert isinstance(drawn, ImageAttentionPicture)
    assert (drawn.model, drawn.map, drawn.grid) == (VIT, "rollout", (4, 4))
    left, top, right, bottom = drawn.box
    assert (right - left, bottom - top) == (45, 30)  # the longer side reduced to max_size
    assert drawn.image.width > right and top > 0  # a colour bar beside it, a title above
    drawn.save(tmp_path / "map.webp")
    with Image.open(tmp_path / "map.webp") as written:
        assert (written.format, written.size) == ("WEBP", drawn.image.size)


def test_an_image_map_not_offered_is_refused_naming_how_to_ask_for_the_others(vit, photo):
    with pytest.raises(AttentionMapError) as refused:
        image_attention_picture(
            VIT, photo, map="stage2", asked="--stage 2", checkpoint=vit, num_classes=10, model_args=VIT_SHAPE
        )
    assert str(refused.value) == (
        f"--stage 2: {VIT} has no such map; it offers rollout (--method rollout), last (--method last)"
    )


def test_a_sequence_map_is_the_heatmap_of_the_weights_with_its_labels(text, tmp_path):
    model, checkpoint = text
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("".join(f"w{i}\n" for i in range(20)))

    drawn = sequence_attention_picture(
        "text_transformer_small",
        ["3 4 5"],
        map="layer1",
        head=1,
        vocabularies=[str(vocabulary)],
        checkpoint=checkpoint,
        model_args=TEXT,
    )

    ids = {"tokens": torch.tensor([[3, 4, 5]])}
    expected = draw_sequence_map(
        sequence_maps(model, ids)["layer1"],
        ids,
        head=1,
        vocabularies={"tokens": tuple(f"w{i}" for i in range(20))},
        title="text_transformer_small: layer1, head 1",
    )
    assert np.array_equal(np.asarray(drawn.image), np.asarray(expected.image))
    assert (drawn.map, drawn.head, drawn.heads, drawn.axes) == ("layer1", 1, "head 1", "tokens over tokens")
    assert drawn.rows == drawn.columns == ["[CLS]", "w3", "w4", "w5"] and drawn.grid == (4, 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"head": 2}, "--head 2: the layer2 map of text_transformer_small has 2 head(s), 0 to 1"),
        ({"inputs": ["1 2", "3"]}, "text_transformer_small takes 1 input(s), tokens (token ids); got 2"),
    ],
)
def test_what_the_model_cannot_show_is_refused_in_one_line(text, changes, message):
    arguments = {"inputs": ["3 4"], "checkpoint": text[1], "model_args": TEXT, **changes}
    with pytest.raises(ArgumentError) as refused:
        sequence_attention_picture("text_transformer_small", **arguments)
    assert str(refused.value) == message


def test_the_first_map_is_chosen_unless_one_is_named():
    maps = {"layer2": "second", "layer1": "first"}
    assert choose_map(maps, None, name="m") == ("layer2", "second")
    assert choose_map(maps, "layer1", name="m") == ("layer1", "first")
    with pytest.raises(
        AttentionMapError, match=r"^--map layer7: m has no such map; it offers layer2 \(--map"
    ):
        choose_map(maps, "layer7", name="m")
