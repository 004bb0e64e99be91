"""`zoo predict`: the top-k classes of images, or their embeddings."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import ImageError
from .options import (
    args_option,
    checkpoint_option,
    device_option,
    dtype_option,
    num_classes_option,
    parse_assignments,
    writable_path,
)
from .output import echo_json, json_option

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
    help="Write the embeddings to this safetensors file.",
)
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
    A model without head prints its embedding size; --embeddings writes the embeddings
    (pooled features, one row per image, in the order given) to a safetensors file.

    Files that cannot be read as images are reported on stderr, one line each; the others
    are still processed, and the exit status is then 1.

    \b
    Examples:
      zoo predict vit_base_patch16_224 cat.jpg dog.png
      zoo predict resnet50.a1_in1k photos/*.jpg --topk 3 --json
      zoo predict vit_base_patch16_224_in21k.orig_in21k *.jpg --embeddings emb.safetensors
      zoo predict resnet18 x.jpg --checkpoint finetuned.safetensors --num-classes 10 --labels classes.txt
    """
    from ..tasks.predict import predictor, save_embeddings
    from ..tasks.preprocessing import load_image

    if embeddings_file is not None:
        writable_path(embeddings_file, "--embeddings")
    model = predictor(
        name,
        checkpoint=checkpoint,
        num_classes=num_classes,
        labels=labels_file,
        device=device,
        dtype=dtype,
        model_args=parse_assignments(assignments),
    )
    want_embeddings = embeddings_file is not None or not model.has_head
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    embedded_files: list[str] = []
    embedding_rows = []
    if not model.has_head and not as_json:
        click.echo(f"{name} has no classifier head: it gives embeddings")

    for chunk in _chunks(images, batch_size):
        ready, tensors = [], []
        for path in chunk:
            try:
                tensors.append(model.transform(load_image(path)))
                ready.append(str(path))
            except ImageError as error:
                click.echo(f"zoo: error: {error}", err=True)
                failed.append({"file": str(path), "error": error.reason})
        if not ready:
            continue
        predictions, embeddings = model.run(model.stack(tensors), topk=topk, embeddings=want_embeddings)
        if embeddings is not None:
            embedding_rows.append(embeddings)
            embedded_files += ready
        for index, file in enumerate(ready):
            result: dict[str, Any] = {"file": file}
            if predictions is not None:
                result["predictions"] = [p.as_dict() for p in predictions[index]]
            results.append(result)
            if not as_json:
                _echo_result(file, predictions[index] if predictions is not None else None)

    embedding_size = None
    if embedding_rows:
        import torch

        stacked = torch.cat(embedding_rows)
        embedding_size = stacked.shape[1]
        if embeddings_file is not None:
            save_embeddings(embeddings_file, stacked, embedded_files, metadata={"model": name})
    if as_json:
        echo_json(
            {
                "model": name,
                "labels": model.labels.name if model.labels is not None else None,
                "results": results,
                "embedding_size": embedding_size,
                "embeddings_file": str(embeddings_file)
                if embeddings_file is not None and embedding_rows
                else None,
                "failed": failed,
            }
        )
    else:
        if embedding_size is not None and not model.has_head:
            click.echo(f"embedding size: {embedding_size}")
        if embeddings_file is not None and embedding_rows:
            click.echo(
                f"wrote {embeddings_file}: {len(embedded_files)} embedding(s) of size {embedding_size}"
            )
        elif not model.has_head and embedding_rows:
            click.echo("write them with --embeddings FILE")
    if failed:
        sys.exit(1)


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
