"""`zoo predict`: the top-k classes of images, and their embeddings if asked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ArgumentError
from .options import (
    args_option,
    checkpoint_option,
    device_option,
    dtype_option,
    input_file,
    num_classes_option,
    refuse_meta,
    split_assignments,
)
from .output import echo_error, echo_json, json_option
from .overwrite import check_output
from .packaged import package_or_none

if TYPE_CHECKING:
    from ..tasks.predict import PredictedFiles, Predictor

__all__ = ["predict_command"]


@click.command("predict")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=input_file)
@click.option(
    "--topk", type=click.IntRange(min=1), default=5, show_default=True, help="Classes shown per image."
)
@click.option(
    "--labels",
    "labels_file",
    type=input_file,
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
    NAME may also be a package written by `zoo export --format pt2` (F.pt2), which records
    all three and runs on the CPU with no build.
    --embeddings FILE also writes the embeddings (pooled pre-logits features, one row per
    image, in the order given) to FILE, as `zoo embed NAME IMAGES... -o FILE` does: never
    over one of the input files, and over an existing file only with --force. A model
    without head (an image-embedding tag, or --num-classes 0) has no classes to show: it is
    refused unless --embeddings is given; use `zoo embed` for it.

    A file that does not exist is refused before the model is loaded (exit 2). Files that
    cannot be read as images are reported on stderr, one line each; the others
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
    from ..tasks.predict import embedding_format, predict_files, predictor, save_embeddings
    from ..tasks.ranks import joined, local_first

    if embeddings_file is not None:
        inputs = [*images, checkpoint, labels_file]
        check_output(embeddings_file, "--embeddings", inputs=inputs, force=force)
        embedding_format(embeddings_file)
    packaged = package_or_none(
        name, labels=labels_file, checkpoint=checkpoint, model_args=model_args, **flags
    )
    with joined() as ranks:
        with local_first(ranks):  # one download per node into a shared cache
            model = packaged or predictor(
                name, checkpoint=checkpoint, labels=labels_file, model_args=model_args, **flags
            )
        if not model.has_head and embeddings_file is None:
            raise ArgumentError(
                f"{name} has no classifier head: it gives embeddings; write them with "
                f"'zoo embed {name} IMAGE... -o OUT.safetensors'"
            )
        # Results are shown as they come in one process; once gathered, by rank 0, in several.
        streamed = not as_json and ranks.world_size == 1
        done = predict_files(
            model,
            images,
            topk=topk,
            embeddings=embeddings_file is not None or not model.has_head,
            batch_size=batch_size,
            on_error=echo_error,
            on_batch=_echo_results if streamed else None,
            ranks=ranks,
        )
        if ranks.leads:
            if not as_json and not streamed:
                _echo_results(done)
            written = embeddings_file is not None and done.embeddings is not None
            if written:
                save_embeddings(embeddings_file, done.embeddings, done.files, metadata={"model": name})
            if as_json:
                _echo_json_report(name, model, done, embeddings_file if written else None)
            else:
                _echo_summary(model, done, embeddings_file if written else None)
    if done.failed:
        sys.exit(1)


def _echo_results(done: PredictedFiles) -> None:
    for index, file in enumerate(done.files):
        if done.predictions is None:
            click.echo(f"{file}: embedded")
            continue
        click.echo(file)
        for prediction in done.predictions[index]:
            label = prediction.description if prediction.description else f"class {prediction.index}"
            click.echo(f"  {prediction.probability:7.2%}  {label}  [{prediction.index}]")


def _echo_json_report(name: str, model: Predictor, done: PredictedFiles, written: Path | None) -> None:
    results: list[dict[str, Any]] = [{"file": file} for file in done.files]
    if done.predictions is not None:
        for result, predictions in zip(results, done.predictions, strict=True):
            result["predictions"] = [p.as_dict() for p in predictions]
    echo_json(
        {
            "model": name,
            "labels": model.labels.name if model.labels is not None else None,
            "results": results,
            "embedding_size": _embedding_size(done),
            "embeddings_file": str(written) if written is not None else None,
            "failed": [{"file": error.path, "error": error.reason} for error in done.failed],
        }
    )


def _echo_summary(model: Predictor, done: PredictedFiles, written: Path | None) -> None:
    size = _embedding_size(done)
    if size is not None and not model.has_head:
        click.echo(f"embedding size: {size}")
    if written is not None:
        click.echo(f"wrote {written}: {len(done.files)} embedding(s) of size {size}")


def _embedding_size(done: PredictedFiles) -> int | None:
    return done.embeddings.shape[1] if done.embeddings is not None else None
