"""Running a model on images: top-k classes with their names, or embeddings.

A `Predictor` bundles what inference needs: the model in eval mode, the eval transform of
its weights and the names of its classes, all read from the weights the name stands for
(`Resolved.selected`). It is made the same way whether the weights come from the Hub
(`pretrained`) or from a local file (`checkpoint=`); only where the file comes from differs.
`predict_files` and `embed_files` run it over image files, a batch at a time.

    >>> predictor = zoo.predict.predictor("vit_base_patch16_224")
    >>> [top] = predictor.predict([zoo.load_image("cat.jpg")], topk=1)
    >>> top[0].label, top[0].probability, top[0].index     # name, softmax probability, class
    >>> done = zoo.predict.predict_files(predictor, ["cat.jpg", "dog.png"], topk=3)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, CheckpointError, ImageError
from ..files import atomic_path
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, model_of
from ..registry.labels import LabelSet, read_labels_file
from ..weights.resolve import resolve
from .inference import described, inference_model, refuse_non_finite, weights_label
from .labels import labels_for
from .preprocessing import ImageTransform, fitted_data_config, load_image
from .ranks import Ranks

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "EMBEDDING_FORMATS",
    "EmbeddedFiles",
    "PredictedFiles",
    "Prediction",
    "Predictor",
    "embed_files",
    "embedding_format",
    "predict_files",
    "predictor",
    "save_embeddings",
]


@dataclass(frozen=True)
class Prediction:
    """One of the top-k classes for an image."""

    index: int
    probability: float
    label: str | None = None
    """The class's first name ("tabby"), when the model's label set is known."""
    description: str | None = None
    """All its names ("tabby, tabby cat")."""
    wordnet_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "label": self.label,
            "probability": self.probability,
            "description": self.description,
            "wordnet_id": self.wordnet_id,
        }


@dataclass
class Predictor:
    """A model ready for inference on images."""

    name: str
    model: torch.nn.Module
    transform: ImageTransform
    num_classes: int | None
    """Outputs of the classifier head; 0 for a model without head (it gives embeddings)."""
    labels: LabelSet | None
    weights: str | None = None
    """What the weights are called (`resnet18.a1_in1k`, a file), for messages."""

    @property
    def has_head(self) -> bool:
        return self.num_classes != 0

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Preprocess images into one batch (B, C, H, W) on the model's device and dtype."""
        return self.stack([self.transform(image) for image in images])

    def stack(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Preprocessed images (each (C, H, W)) as one batch on the model's device and dtype."""
        import torch

        parameter = next(self.model.parameters())
        return torch.stack(list(tensors)).to(device=parameter.device, dtype=parameter.dtype)

    def run(self, x: torch.Tensor, *, topk: int = 5, embeddings: bool = False):
        """Predictions and, if asked or if the model has no head, embeddings for a batch.

        Returns:
            `(predictions, embeddings)`: one list of `Prediction`s per image (None for a
            model without head) and a (B, D) float32 CPU tensor (None unless asked for or
            headless). Embeddings of a model with a head are its pooled pre-logits features.

        Raises:
            CheckpointError: The model's outputs hold NaN or infinite values.
        """
        import torch

        with torch.inference_mode():
            if not self.has_head:
                features = self._finite(self.model(x))
                return None, self._as_embeddings(features)
            if not embeddings:
                return self._top(self._finite(self.model(x)), topk), None
            tokens = self.model.forward_features(x)
            pooled = self._finite(self.model.forward_head(tokens, pre_logits=True))
            logits = self._finite(self.model.forward_head(tokens))
            return self._top(logits, topk), self._as_embeddings(pooled)

    def predict(self, images: Sequence[Image.Image], *, topk: int = 5) -> list[list[Prediction]]:
        """The `topk` most probable classes of each image, most probable first."""
        if not self.has_head:
            raise ArgumentError(f"{self.name} has no classifier head; use embed() for its features")
        predictions, _ = self.run(self.batch(images), topk=topk)
        return predictions

    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embeddings (B, D): the output of a model without head, else its pre-logits."""
        _, features = self.run(self.batch(images), topk=1, embeddings=True)
        return features

    def _finite(self, outputs: torch.Tensor) -> torch.Tensor:
        refuse_non_finite(outputs, described(self.name, self.weights))
        return outputs

    def _as_embeddings(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2:
            raise CheckpointError(
                f"{self.name}: expected pooled features (B, D), got {tuple(features.shape)}"
            )
        return features.float().cpu()

    def _top(self, logits: torch.Tensor, topk: int) -> list[list[Prediction]]:
        if logits.ndim != 2:
            raise CheckpointError(f"{self.name}: expected logits (B, classes), got {tuple(logits.shape)}")
        probabilities = logits.float().softmax(dim=-1)
        values, indices = probabilities.topk(min(topk, probabilities.shape[-1]), dim=-1)
        return [
            [self._prediction(int(i), float(p)) for p, i in zip(row_values, row_indices, strict=True)]
            for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True)
        ]

    def _prediction(self, index: int, probability: float) -> Prediction:
        if self.labels is None:
            return Prediction(index, probability)
        wordnet_id = self.labels.wordnet_ids[index] if self.labels.wordnet_ids else None
        return Prediction(index, probability, self.labels[index], self.labels.names[index], wordnet_id)


def predictor(
    name: str | Resolved,
    *,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    labels: LabelSet | str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    registry: Registry | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> Predictor:
    """Load a model for inference: published weights, or a local checkpoint.

    Args:
        name: `name[.tag]` (or any other name form, see `zoo.weights.resolve`). Without
            `checkpoint`, the tag's published weights (the default tag's for a bare name) are
            fetched; the tag also gives the preprocessing and the class names. The model must
            be for an image task (`zoo.registry.family.IMAGE_TASKS`).
        checkpoint: A local safetensors file to load instead (a fine-tuned model, say).
        num_classes: The head the checkpoint has, when it differs from the tag's.
        labels: Class names: a `LabelSet`, or a text file with one name per line. Default:
            the tag's label set, when it has as many classes as the model.
        device: Where to run (`"cuda"`, ...); under torchrun, a bare `"cuda"` is the process's
            own GPU, `cuda:LOCAL_RANK`.
        dtype: Floating-point dtype of the weights (`"bfloat16"`, ...).
        registry: The registry to use instead of the installed plugins' one.
        model_args: Builder arguments on top of the registry's (for checkpoints of a
            variant: `{"img_size": 384}`).
    """
    registry = registry if registry is not None else default_registry()
    model_args = dict(model_args or {})
    resolved = resolve(name, registry)
    task = registry.task(resolved)
    if task not in IMAGE_TASKS:
        raise ArgumentError(
            f"'{resolved}' is {model_of(task)}; prediction serves {' and '.join(IMAGE_TASKS)} "
            "models: build it with zoo.create and call it on its own inputs"
        )
    head_args = {**model_args, **({"num_classes": num_classes} if num_classes is not None else {})}
    ready = inference_model(
        resolved, registry, checkpoint=checkpoint, device=device, dtype=dtype, model_args=head_args
    )
    outputs = getattr(ready.config, "num_classes", None)
    class_names = _class_names(labels, resolved, outputs)
    preprocessing = fitted_data_config(resolved, registry, model_args=model_args, config=ready.config)
    return Predictor(
        name=str(resolved),
        model=ready.model,
        transform=ImageTransform(preprocessing),
        num_classes=outputs,
        labels=class_names,
        weights=weights_label(resolved, checkpoint),
    )


def _class_names(
    given: LabelSet | str | Path | None, resolved: Resolved, outputs: int | None
) -> LabelSet | None:
    """The class names given (checked against the head), else the weights' when they fit it."""
    if given is None:
        known = labels_for(resolved)
        return known if known is not None and len(known) == outputs else None
    labels = given if isinstance(given, LabelSet) else read_labels_file(given)
    if outputs is not None and len(labels) != outputs:
        raise ArgumentError(f"{len(labels)} class names for a model with {outputs} classes")
    return labels


EMBEDDING_FORMATS = (".safetensors", ".npy")
"""The file formats embeddings are written as, by suffix (in any case)."""


def embedding_format(path: str | Path) -> str:
    """The format (`EMBEDDING_FORMATS`) the suffix of `path` names.

    Raises:
        ArgumentError: any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EMBEDDING_FORMATS:
        named = f"'{Path(path).suffix}'" if suffix else "no suffix"
        raise ArgumentError(f"{path}: {named}; embeddings are written as .safetensors or .npy")
    return suffix


@dataclass
class EmbeddedFiles:
    """The embeddings of image files, in the order the files were given."""

    files: list[str] = field(default_factory=list)
    """The files that were read as images: one row each."""
    embeddings: torch.Tensor | None = None
    """(len(files), D) float32 on the CPU; None when no file could be read."""
    failed: list[ImageError] = field(default_factory=list)
    """The files that could not be read as images."""


@dataclass
class PredictedFiles:
    """The predictions (and embeddings) of image files, in the order the files were given."""

    files: list[str] = field(default_factory=list)
    """The files that were read as images."""
    predictions: list[list[Prediction]] | None = None
    """The top-k classes of each file read, most probable first; None for a model without head."""
    embeddings: torch.Tensor | None = None
    """(len(files), D) float32 on the CPU, when asked for (always for a model without head);
    None when not asked for or no file could be read."""
    failed: list[ImageError] = field(default_factory=list)
    """The files that could not be read as images."""


def predict_files(
    ready: Predictor,
    paths: Sequence[str | Path],
    *,
    topk: int = 5,
    embeddings: bool = False,
    batch_size: int = 16,
    on_error: Callable[[ImageError], None] | None = None,
    on_batch: Callable[[PredictedFiles], None] | None = None,
    ranks: Ranks | None = None,
) -> PredictedFiles:
    """Classify image files, `batch_size` at a time (`Predictor.run` for each batch), and
    embed them too if asked (a model without head only embeds them).

    A file that cannot be read as an image is skipped, kept in `failed` and passed to
    `on_error` as it is met; the others are still run. `on_batch` gets the results of each
    batch as soon as this process has them, to show them as they come. With the `ranks` of a
    torchrun launch, this rank runs its share of the batches and every rank gets all of
    them, in order (see `zoo.tasks.ranks`).
    """
    ranks = ranks if ranks is not None else Ranks()
    chunks = list(_chunks(paths, batch_size))
    mine = []
    for index in ranks.share(len(chunks)):
        part = _run_chunk(ready, chunks[index], topk, embeddings, on_error)
        if on_batch is not None:
            on_batch(part)
        mine.append((index, part))
    return _joined(ranks.in_order(mine), has_head=ready.has_head)


def embed_files(
    ready: Predictor,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 16,
    on_error: Callable[[ImageError], None] | None = None,
    ranks: Ranks | None = None,
) -> EmbeddedFiles:
    """Embed image files, `batch_size` at a time (`Predictor.embed` for each batch).

    A file that cannot be read as an image is skipped, kept in `failed` and passed to
    `on_error` as it is met; the others are still embedded. With the `ranks` of a torchrun
    launch, this rank embeds its share of the batches and every rank gets all of them, in
    order (see `zoo.tasks.ranks`).
    """
    done = predict_files(
        ready, paths, topk=1, embeddings=True, batch_size=batch_size, on_error=on_error, ranks=ranks
    )
    return EmbeddedFiles(done.files, done.embeddings, done.failed)


def _run_chunk(
    ready: Predictor,
    chunk: Sequence[str | Path],
    topk: int,
    embeddings: bool,
    on_error: Callable[[ImageError], None] | None,
) -> PredictedFiles:
    """The results of one batch: the files that were read (and those that were not)."""
    part, tensors = PredictedFiles(), []
    for path in chunk:
        try:
            tensors.append(ready.transform(load_image(path)))
            part.files.append(str(path))
        except ImageError as error:
            part.failed.append(error)
            if on_error is not None:
                on_error(error)
    if tensors:
        part.predictions, part.embeddings = ready.run(ready.stack(tensors), topk=topk, embeddings=embeddings)
    return part


def _joined(parts: Sequence[PredictedFiles], *, has_head: bool) -> PredictedFiles:
    """The results of every batch, as one."""
    import torch

    rows = [part.embeddings for part in parts if part.embeddings is not None]
    return PredictedFiles(
        files=[file for part in parts for file in part.files],
        predictions=[row for part in parts for row in part.predictions or ()] if has_head else None,
        embeddings=torch.cat(rows) if rows else None,
        failed=[error for part in parts for error in part.failed],
    )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def save_embeddings(
    path: str | Path, embeddings: torch.Tensor, files: Sequence[str], *, metadata: Mapping[str, str] = {}
) -> None:
    """Write embeddings (N, D) to a safetensors or .npy file (by suffix), whole or not at all.

    A safetensors file holds the tensor `embeddings`; its metadata lists the images, in row
    order, as JSON under `files`, with any `metadata` given. A .npy file holds the array
    alone: the files and the metadata are not recorded.
    """
    if embeddings.shape[0] != len(files):
        raise ValueError(f"{embeddings.shape[0]} embeddings for {len(files)} files")
    if embedding_format(path) == ".npy":
        _save_npy(path, embeddings)
    else:
        _save_safetensors(path, embeddings, {**metadata, "files": json.dumps(list(files))})


def _save_npy(path: str | Path, embeddings: torch.Tensor) -> None:
    import numpy as np

    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.save(file, embeddings.detach().cpu().numpy())


def _save_safetensors(path: str | Path, embeddings: torch.Tensor, header: Mapping[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as temporary:
        save_file({"embeddings": embeddings.contiguous()}, str(temporary), metadata=dict(header))
