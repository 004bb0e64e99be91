"""Label sets: the class names that ship with the zoo, and which tag uses which."""

from __future__ import annotations

from importlib.resources import files

import pytest
from pydantic import ValidationError

import zoo
from zoo.errors import ArgumentError, UnknownModelError
from zoo.labels import LABEL_SETS, label_set, labels_for, read_labels_file
from zoo.registry.schema import ImageClassificationWeights, ImageEmbeddingWeights


def shipped_rows(name: str) -> list[list[str]]:
    text = (files("zoo") / "data" / f"{name}.tsv").read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


class TestShippedLabelSets:
    @pytest.mark.parametrize("name", sorted(LABEL_SETS))
    def test_every_class_index_has_a_name_and_a_wordnet_id(self, name):
        labels = label_set(name)
        rows = shipped_rows(name)
        assert len(labels) == LABEL_SETS[name] == len(rows)
        assert [int(row[0]) for row in rows] == list(range(len(rows)))
        assert labels.wordnet_ids == tuple(row[1] for row in rows)
        assert labels.names == tuple(row[2] for row in rows)
        assert all(wid.startswith("n") and len(wid) == 9 for wid in labels.wordnet_ids)

    def test_imagenet_1k_in_its_usual_order(self):
        labels = label_set("imagenet-1k")
        assert labels[0] == "tench"
        assert labels.names[0] == "tench, Tinca tinca"
        assert labels.wordnet_ids[0] == "n01440764"
        assert labels[len(labels) - 1] == shipped_rows("imagenet-1k")[-1][2].split(",")[0]

    def test_the_21k_set_has_the_21843_classes_of_the_in21k_heads(self):
        assert len(label_set("imagenet-21k")) == 21843

    def test_unknown_set(self):
        with pytest.raises(UnknownModelError, match=r"imagenet-22k.*imagenet-21k"):
            label_set("imagenet-22k")


class TestWhichTagUsesWhichSet:
    def test_every_published_head_names_the_set_of_its_size(self):
        """A head of a shipped set's size names it; another head (ImageNet-12k's 11,821
        classes, say) names none, and its classes are shown by index."""
        sizes = {size: name for name, size in LABEL_SETS.items()}
        for full in zoo.list_pretrained():
            weights = zoo.default_registry().resolve(full).selected.weights
            if weights.task != "image-classification":
                assert getattr(weights, "labels", None) is None, full
            else:
                assert weights.labels == sizes.get(weights.num_classes), full

    def test_labels_for_a_name_follow_its_default_tag(self):
        assert labels_for("resnet50").name == "imagenet-1k"
        assert labels_for("vit_base_patch16_224_in21k").name == "imagenet-21k"
        assert labels_for("vit_base_patch16_224_in21k.orig_in21k") is None  # no head
        assert labels_for("resnet50_cbam") is None  # no weights

    def base_tag(self, **changes):
        tag = {
            "hf_hub_id": "org/repo",
            "num_classes": 1000,
            "license": "mit",
            "preprocessing": {"input_size": [3, 8, 8], "mean": [0.5] * 3, "std": [0.5] * 3},
        }
        return {**tag, **changes}

    def test_schema_accepts_a_set_that_fits_the_head(self):
        assert (
            ImageClassificationWeights.model_validate(self.base_tag(labels="imagenet-1k")).labels
            == "imagenet-1k"
        )

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"labels": "imagenet-2k"}, "unknown label set 'imagenet-2k'"),
            ({"labels": "imagenet-21k"}, "21843 classes but the checkpoint has 1000"),
        ],
    )
    def test_schema_refuses_a_set_that_does_not_fit(self, changes, message):
        with pytest.raises(ValidationError, match=message) as caught:
            ImageClassificationWeights.model_validate(self.base_tag(**changes))
        assert caught.value.errors()[0]["loc"] == ("labels",)

    def test_a_tag_without_head_has_no_class_names(self):
        embedding = {**self.base_tag(), "task": "image-embedding", "output_dim": 8, "labels": "imagenet-1k"}
        del embedding["num_classes"]
        with pytest.raises(ValidationError, match="Extra inputs are not permitted") as caught:
            ImageEmbeddingWeights.model_validate(embedding)
        assert caught.value.errors()[0]["loc"] == ("labels",)


class TestLabelsFile:
    def test_one_name_per_line(self, tmp_path):
        path = tmp_path / "classes.txt"
        path.write_text("cat\ndog\n  bird  \n\n", encoding="utf-8")
        labels = read_labels_file(path)
        assert labels.names == ("cat", "dog", "bird")
        assert labels[2] == "bird"
        assert labels.wordnet_ids is None

    def test_a_gap_would_shift_classes_so_it_is_refused(self, tmp_path):
        path = tmp_path / "classes.txt"
        path.write_text("cat\n\ndog\n", encoding="utf-8")
        with pytest.raises(ArgumentError, match="line 2 is empty"):
            read_labels_file(path)

    def test_missing_or_empty_files(self, tmp_path):
        with pytest.raises(ArgumentError, match="cannot read"):
            read_labels_file(tmp_path / "nope.txt")
        (tmp_path / "empty.txt").write_text("\n")
        with pytest.raises(ArgumentError, match="no names"):
            read_labels_file(tmp_path / "empty.txt")
