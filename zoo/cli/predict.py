"""`zoo predict`: the top-k classes of images, and their embeddings if asked."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ArgumentError, ImageError
from .options import (
    args_option,
    checkpoint_option,
    device_option,
    dtype_option,
    num_classes_option,
    refuse_meta,
    split_assignments,
)
from .output import echo_json, json_option
from .overwrite import check_output

if TYPE_CHECKING:
    from ..tasks.predict import Predictor
    from ..tasks.ranks import Ranks

__all__ = ["predict_command"]


@click.command("predict")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--topk", type=click.IntRange(min=1), default=5, show_default=True, help="Classes shown per image."
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path),
    help="Class names, one per line (for a fine-tuned head).",
)
@click.option(
    "--embeddings",
    "embeddings_file",
    type=click.Path(path_type=Path),
    help="Also write the embeddings to this file, as `zoo embed -o` does.",
)
@click.option("--force", is_flag=True, help="Overwrite the --embeddings file if it exists.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Images per forward pass."
)
@checkpoint_option
@num_classes_option
@device_option
@dtype_option
@args_option()
@json_option
def predict_command(
    name: str,
    images: tuple[Path, ...],
    topk: int,
    labels_file: Path | None,
    embeddings_file: Path | None,
    force: bool,
    batch_size: int,
    checkpoint: Path | None,
    num_classes: int | None,
    device: str | None,
    dtype: str | None,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Classify images: the top-k classes with their probabilities.

    NAME[.TAG] gives the architecture, the preprocessing and the class names; the weights
    are the tag's published ones (downloaded once) unless --checkpoint names a local file.
    --embeddings FILE also writes the embeddings (pooled pre-logits features, one row per
    image, in the order given) to FILE, as `zoo embed NAME IMAGES... -o FILE` does: never
    over one of the input files, and over an existing file only with --force. A model
    without head (an image-embedding tag, or --num-classes 0) has no classes to show: it is
    refused unless --embeddings is given; use `zoo embed` for it.

    Files that cannot be read as images are reported on stderr, one line each; the others
    are still processed, and the exit status is then 1.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype. --device meta is refused: it has no weights to run.

    \b
    Examples:
      zoo predict vit_base_patch16_224 cat.jpg dog.png
      zoo predict resnet50.a1_in1k photos/*.jpg --topk 3 --json
      zoo predict resnet50.a1_in1k *.jpg --embeddings emb.safetensors
      zoo predict resnet18 x.jpg --checkpoint finetuned.safetensors --num-classes 10 --labels classes.txt

    \b
    --json prints one object:
      {"model": str, "labels": str | null,
       "results": [{"file": str, "predictions": [{"index": int, "label": str | null,
                    "probability": float, "description": str | null,
                    "wordnet_id": str | null}, ...]}, ...],
       "embedding_size": int | null, "embeddings_file": str | null,
       "failed": [{"file": str, "error": str}, ...]}
    A model without head (with --embeddings) gives results without "predictions".
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "predict")
    from ..tasks.predict import embedding_format, predictor
    from ..tasks.ranks import joined, local_first

    if embeddings_file is not None:
        inputs = [*images, checkpoint, labels_file]
        check_output(embeddings_file, "--embeddings", inputs=inputs, force=force)
        embedding_format(embeddings_file)
    with joined() as ranks:
        with local_first(ranks):  # one download per node into a shared cache
            model = predictor(name, checkpoint=checkpoint, labels=labels_file, model_args=model_args, **flags)
        if not model.has_head and embeddings_file is None:
            raise ArgumentError(
                f"{name} has no classifier head: it gives embeddings; write them with "
                f"'zoo embed {name} IMAGE... -o OUT.safetensors'"
            )
        want_embeddings = embeddings_file is not None or not model.has_head
        collected = _predict_all(model, images, batch_size, topk, want_embeddings, not as_json, ranks)
        if ranks.leads:
            embedding_size = _write_embeddings(collected, embeddings_file, name)
            if as_json:
                _echo_json_report(name, model, collected, embedding_size, embeddings_file)
            else:
                _echo_summary(model, collected, embedding_size, embeddings_file)
    if collected.failed:
        sys.exit(1)


@dataclass
class _Collected:
    """What a run over the images gathered, in the order the images were given."""

    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    embedded_files: list[str] = field(default_factory=list)
    embedding_rows: list[Any] = field(default_factory=list)
    shown: list[tuple[str, Any]] = field(default_factory=list)
    """(file, its predictions or None) of each image, for printing."""

    def extend(self, other: _Collected) -> None:
        for name in ("results", "failed", "embedded_files", "embedding_rows", "shown"):
            getattr(self, name).extend(getattr(other, name))


def _predict_all(
    model: Predictor,
    images: Sequence[Path],
    batch_size: int,
    topk: int,
    want_embeddings: bool,
    echo: bool,
    ranks: Ranks,
) -> _Collected:
    """Run the model over the images, `batch_size` at a time: this rank's batches, gathered
    with every other rank's in order (see `zoo.tasks.ranks`). `echo` prints each result, as
    it comes in a single process, once gathered (by rank 0) in a launch of several."""
    chunks = list(_chunks(images, batch_size))
    mine = []
    for index in ranks.share(len(chunks)):
        part = _predict_chunk(model, chunks[index], topk, want_embeddings)
        mine.append((index, part))
        if echo and ranks.world_size == 1:
            _echo_results(part)
    collected = _Collected()
    for part in ranks.in_order(mine):
        collected.extend(part)
    if echo and ranks.world_size > 1 and ranks.leads:
        _echo_results(collected)
    return collected


def _predict_chunk(model: Predictor, chunk: Sequence[Path], topk: int, want_embeddings: bool) -> _Collected:
    """The results of one batch of images."""
    collected = _Collected()
    ready, tensors = _read_chunk(model, chunk, collected.failed)
    if not ready:
        return collected
    predictions, embeddings = model.run(model.stack(tensors), topk=topk, embeddings=want_embeddings)
    if embeddings is not None:
        collected.embedding_rows.append(embeddings)
        collected.embedded_files += ready
    for index, file in enumerate(ready):
        result: dict[str, Any] = {"file": file}
        if predictions is not None:
            result["predictions"] = [p.as_dict() for p in predictions[index]]
        collected.results.append(result)
        collected.shown.append((file, predictions[index] if predictions is not None else None))
    return collected


def _echo_results(collected: _Collected) -> None:
    for file, predictions in collected.shown:
        _echo_result(file, predictions)


def _read_chunk(
    model: Predictor, chunk: Sequence[Path], failed: list[dict[str, str]]
) -> tuple[list[str], list[Any]]:
    """The files of a chunk that read as images, and their tensors; the others go to `failed`."""
    from ..tasks.preprocessing import load_image

    ready, tensors = [], []
    for path in chunk:
        try:
            tensors.append(model.transform(load_image(path)))
            ready.append(str(path))
        except ImageError as error:
            click.echo(f"zoo: error: {error}", err=True)
            failed.append({"file": str(path), "error": error.reason})
    return ready, tensors


def _write_embeddings(collected: _Collected, embeddings_file: Path | None, name: str) -> int | None:
    """The embedding size (None if nothing was embedded); writes them if a file is given."""
    if not collected.embedding_rows:
        return None
    import torch

    from ..tasks.predict import save_embeddings

    stacked = torch.cat(collected.embedding_rows)
    if embeddings_file is not None:
        save_embeddings(embeddings_file, stacked, collected.embedded_files, metadata={"model": name})
    return stacked.shape[1]


def _echo_json_report(
    name: str,
    model: Predictor,
    collected: _Collected,
    embedding_size: int | None,
    embeddings_file: Path | None,
) -> None:
    written = embeddings_file is not None and collected.embedding_rows
    echo_json(
        {
            "model": name,
            "labels": model.labels.name if model.labels is not None else None,
            "results": collected.results,
            "embedding_size": embedding_size,
            "embeddings_file": str(embeddings_file) if written else None,
            "failed": collected.failed,
        }
    )


def _echo_summary(
    model: Predictor, collected: _Collected, embedding_size: int | None, embeddings_file: Path | None
) -> None:
    if embedding_size is not None and not model.has_head:
        click.echo(f"embedding size: {embedding_size}")
    if embeddings_file is not None and collected.embedding_rows:
        count = len(collected.embedded_files)
        click.echo(f"wrote {embeddings_file}: {count} embedding(s) of size {embedding_size}")


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _echo_result(file: str, predictions) -> None:
    if predictions is None:
        click.echo(f"{file}: embedded")
        return
    click.echo(file)
    for prediction in predictions:
        label = prediction.description if prediction.description else f"class {prediction.index}"
        click.echo(f"  {prediction.probability:7.2%}  {label}  [{prediction.index}]")
