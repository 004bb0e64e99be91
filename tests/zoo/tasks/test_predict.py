"""`zoo.predict`: a model ready for inference, from a local checkpoint.

The published-weights path is the same code with the file fetched from the Hub; it is
tested against the test hub server.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import zoo
from zoo.errors import ArgumentError, ImageError, NoWeightsError
from zoo.labels import label_set
from zoo.predict import embed_files, predict_files, predictor, save_embeddings

NAME = "vit_tiny_patch16_224"
SHAPE = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}


def checkpoint(tmp_path, num_classes: int) -> tuple[torch.nn.Module, str]:
    torch.manual_seed(num_classes)
    model = zoo.create(NAME, **SHAPE, num_classes=num_classes).eval()
    path = tmp_path / f"vit_{num_classes}.safetensors"
    save_file(model.state_dict(), path)
    return model, str(path)


def image(seed: int, size=(45, 37)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_top_k_are_the_most_probable_classes_of_the_checkpoint(tmp_path):
    model, path = checkpoint(tmp_path, 10)
    ready = predictor(NAME, checkpoint=path, num_classes=10, model_args=SHAPE)
    assert not ready.model.training and ready.has_head and ready.labels is None
    images = [image(0), image(1)]
    predictions = ready.predict(images, topk=3)

    x = torch.stack([zoo.transforms(NAME, model_args=SHAPE)(im) for im in images])
    with torch.no_grad():
        probabilities = model(x).softmax(dim=-1)
    for row, expected in zip(predictions, probabilities, strict=True):
        values, indices = expected.topk(3)
        assert [p.index for p in row] == indices.tolist()
        assert [p.probability for p in row] == pytest.approx(values.tolist(), abs=1e-6)
        assert all(p.label is None for p in row)


def test_a_head_of_the_tags_size_gets_the_tags_class_names(tmp_path):
    _, path = checkpoint(tmp_path, 1000)
    ready = predictor(NAME, checkpoint=path, model_args=SHAPE)
    assert ready.labels is label_set("imagenet-1k")
    [row] = ready.predict([image(2)], topk=2)
    names = label_set("imagenet-1k")
    for prediction in row:
        assert prediction.description == names.names[prediction.index]
        assert prediction.wordnet_id == names.wordnet_ids[prediction.index]
        assert prediction.label == names.names[prediction.index].split(",")[0]


def test_class_names_from_a_file_must_match_the_head(tmp_path):
    _, path = checkpoint(tmp_path, 10)
    names = tmp_path / "classes.txt"
    names.write_text("".join(f"thing {i}\n" for i in range(10)))
    ready = predictor(NAME, checkpoint=path, num_classes=10, labels=names, model_args=SHAPE)
    [row] = ready.predict([image(3)], topk=1)
    assert row[0].label == f"thing {row[0].index}"
    names.write_text("a\nb\n")
    with pytest.raises(ArgumentError, match="2 class names for a model with 10 classes"):
        predictor(NAME, checkpoint=path, num_classes=10, labels=names, model_args=SHAPE)


def test_a_model_without_head_gives_embeddings(tmp_path):
    model, path = checkpoint(tmp_path, 0)
    ready = predictor(NAME, checkpoint=path, num_classes=0, model_args=SHAPE)
    assert not ready.has_head
    embeddings = ready.embed([image(4), image(5)])
    x = torch.stack([zoo.transforms(NAME, model_args=SHAPE)(image(s)) for s in (4, 5)])
    with torch.no_grad():
        torch.testing.assert_close(embeddings, model(x))
    with pytest.raises(ArgumentError, match="no classifier head"):
        ready.predict([image(4)])


def test_embeddings_of_a_model_with_head_are_its_pre_logits(tmp_path):
    model, path = checkpoint(tmp_path, 10)
    ready = predictor(NAME, checkpoint=path, num_classes=10, model_args=SHAPE)
    x = ready.batch([image(6)])
    predictions, embeddings = ready.run(x, topk=1, embeddings=True)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
    torch.testing.assert_close(embeddings, expected)
    assert predictions[0][0].index == int(model(x).argmax())


def image_files(tmp_path: Path, count: int) -> list[Path]:
    paths = [tmp_path / f"image{index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        image(index, size=(40 + index, 36)).save(path)
    return paths


def test_predicting_files_gives_what_predicting_their_images_gives(tmp_path):
    _, path = checkpoint(tmp_path, 10)
    ready = predictor(NAME, checkpoint=path, num_classes=10, model_args=SHAPE)
    files = image_files(tmp_path, 5)
    pictures = [zoo.load_image(file) for file in files]

    done = predict_files(ready, files, topk=3, embeddings=True, batch_size=2)

    assert done.files == [str(file) for file in files] and done.failed == []
    expected = ready.predict(pictures, topk=3)  # one batch of five: equal up to rounding
    for row, expected_row in zip(done.predictions, expected, strict=True):
        assert [p.index for p in row] == [p.index for p in expected_row]
        assert [p.probability for p in row] == pytest.approx([p.probability for p in expected_row], abs=1e-6)
    torch.testing.assert_close(done.embeddings, ready.embed(pictures))
    assert predict_files(ready, files, topk=3).embeddings is None  # not asked for


def test_a_file_that_is_no_image_is_reported_and_the_others_still_predicted(tmp_path):
    _, path = checkpoint(tmp_path, 10)
    ready = predictor(NAME, checkpoint=path, num_classes=10, model_args=SHAPE)
    files = image_files(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("not a picture")
    files.insert(1, tmp_path / "notes.txt")
    errors, batches = [], []

    done = predict_files(ready, files, batch_size=2, on_error=errors.append, on_batch=batches.append)

    assert [error.path for error in done.failed] == [str(tmp_path / "notes.txt")]
    assert errors == done.failed and isinstance(errors[0], ImageError)
    assert done.files == [str(file) for file in files if file.suffix == ".png"]
    assert [part.files for part in batches] == [[str(files[0])], [str(files[2]), str(files[3])]]
    assert len(done.predictions) == 3


def test_a_model_without_head_only_embeds_its_files(tmp_path):
    _, path = checkpoint(tmp_path, 0)
    ready = predictor(NAME, checkpoint=path, num_classes=0, model_args=SHAPE)
    files = image_files(tmp_path, 3)

    done = predict_files(ready, files, batch_size=2)
    embedded = embed_files(ready, files, batch_size=2)

    assert done.predictions is None
    assert done.embeddings.shape == (3, SHAPE["embed_dim"])
    torch.testing.assert_close(embedded.embeddings, done.embeddings)
    assert embedded.files == done.files


def test_a_name_walked_through_predict_has_its_weights_chosen_once_and_its_config_checked_once(
    tmp_path, decisions
):
    _, path = checkpoint(tmp_path, 1000)
    files = image_files(tmp_path, 3)
    decisions.clear()

    ready = predictor(NAME, checkpoint=path, model_args=SHAPE)
    done = predict_files(ready, files, topk=2, embeddings=True, batch_size=2)

    assert decisions == {"select_weight": 1, "checked_config": 1}
    default_tag = zoo.default_registry().resolve(NAME).selected
    assert ready.labels is label_set(default_tag.labels)  # read from the one choice
    assert ready.transform.config.mean == default_tag.preprocessing.mean
    assert ready.transform.config.input_size == (3, SHAPE["img_size"], SHAPE["img_size"])
    assert len(done.predictions) == 3


def test_a_name_without_weights_needs_a_checkpoint():
    with pytest.raises(NoWeightsError, match="checkpoint"):
        predictor("resnet18_cbam")


def test_saved_embeddings_list_their_files(tmp_path):
    target = tmp_path / "emb.safetensors"
    values = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    save_embeddings(target, values, ["a.png", "b.png"], metadata={"model": NAME})
    with safe_open(target, framework="pt") as handle:
        torch.testing.assert_close(handle.get_tensor("embeddings"), values)
        assert json.loads(handle.metadata()["files"]) == ["a.png", "b.png"]
        assert handle.metadata()["model"] == NAME
    assert [p.name for p in tmp_path.iterdir()] == ["emb.safetensors"]  # no temporary left


def test_predict_on_a_checkpoint_served_by_the_test_hub(
    hub, make_registry, use_registry, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from zoo.cli import cli

    model, path = checkpoint(tmp_path, 1000)
    hub.publish("test/tiny_vit.in1k", {"model.safetensors": Path(path)})
    preprocessing = {
        "input_size": [3, 32, 32],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "crop_pct": 0.9,
    }
    tag = {"hf_hub_id": "test/tiny_vit.in1k", "num_classes": 1000, "labels": "imagenet-1k",
           "license": "apache-2.0", "preprocessing": preprocessing}  # fmt: skip
    use_registry(
        make_registry(
            json.dumps({"models": {"tiny_vit": {"builder": "vit", "args": SHAPE, "weights": {"in1k": tag}}}})
        )
    )
    image(3).save(tmp_path / "photo.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    files = [str(tmp_path / "photo.png"), str(tmp_path / "notes.txt")]

    result = CliRunner().invoke(cli, ["predict", "tiny_vit.in1k", *files, "--topk", "3", "--json"])
    assert result.exit_code == 1  # one file failed; the other was still predicted
    report = json.loads(result.stdout)
    assert report["labels"] == "imagenet-1k"
    assert [failure["file"] for failure in report["failed"]] == [files[1]]

    x = zoo.transforms("tiny_vit.in1k")(image(3)).unsqueeze(0)
    with torch.no_grad():
        values, indices = model(x).softmax(dim=-1)[0].topk(3)
    [photo] = report["results"]
    assert [p["index"] for p in photo["predictions"]] == indices.tolist()
    assert [p["probability"] for p in photo["predictions"]] == pytest.approx(values.tolist(), abs=1e-6)
    names = label_set("imagenet-1k")
    assert [p["label"] for p in photo["predictions"]] == [names[i] for i in indices.tolist()]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the second run needs nothing but the cache
    again = CliRunner().invoke(cli, ["predict", "tiny_vit.in1k", files[0], "--topk", "3", "--json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["results"] == report["results"]


def test_a_16_bit_image_and_its_8_bit_reduction_give_the_same_answer(tmp_path):
    # A small ResNet with fixed random weights; a smooth 16-bit grey scene with texture.
    shape = {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64]}
    torch.manual_seed(0)
    model = zoo.create("resnet18", num_classes=10, **shape).eval()
    path = tmp_path / "resnet.safetensors"
    save_file(model.state_dict(), path)
    ready = predictor("resnet18", checkpoint=path, num_classes=10, model_args=shape)

    rows, columns = np.mgrid[0:240, 0:320]
    scene = 0.5 + 0.3 * np.sin(rows / 17.0) * np.cos(columns / 23.0) + 0.1 * np.sin(columns / 3.0)
    noise = np.random.default_rng(0).normal(0, 0.03, scene.shape)
    values = (np.clip(scene + noise, 0, 1) * 65535).round().astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "scene16.png")
    Image.fromarray((values / 257).round().astype(np.uint8)).save(tmp_path / "scene8.png")
    deep, shallow = (zoo.load_image(tmp_path / f"scene{bits}.png") for bits in (16, 8))

    [top_deep], [top_shallow] = ready.predict([deep], topk=1), ready.predict([shallow], topk=1)
    assert top_deep[0].index == top_shallow[0].index
    embeddings = ready.embed([deep, shallow])
    assert float(torch.nn.functional.cosine_similarity(embeddings[0], embeddings[1], dim=0)) > 0.99
    # ...and the 16-bit image is not read as a clipped, nearly white one.
    white = ready.embed([Image.new("L", deep.size, 255)])[0]
    assert float(torch.nn.functional.cosine_similarity(embeddings[0], white, dim=0)) < 0.99
    assert (deep.mode, shallow.mode) == ("F", "L")
