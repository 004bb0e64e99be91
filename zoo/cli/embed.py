"""`zoo embed`: one embedding vector per image, written to a safetensors or .npy file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

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

__all__ = ["embed_command"]


@click.command("embed")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=input_file)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Write the embeddings here: OUT.safetensors or OUT.npy.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Images per forward pass."
)
@checkpoint_option
@num_classes_option
@device_option
@dtype_option
@args_option()
@json_option
def embed_command(
    name: str,
    images: tuple[Path, ...],
    output: Path,
    force: bool,
    batch_size: int,
    checkpoint: Path | None,
    num_classes: int | None,
    device: str | None,
    dtype: str | None,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Embed images: one vector per image, written to a file.

    NAME[.TAG] gives the architecture and the preprocessing; the weights are the tag's
    published ones (downloaded once) unless --checkpoint names a local file. NAME may also
    be a package written by `zoo export --format pt2` (F.pt2), run on the CPU with no build.
    The embedding is the output of a model without head, else its pooled pre-logits features.

    The output's suffix names its format. OUT.safetensors holds the tensor `embeddings`
    (N, D) float32, one row per image read, in the order given; its metadata has the files'
    names (JSON, under `files`) and the model (`model`). OUT.npy holds the (N, D) float32
    array alone: no file names, no model. The output is never one of the input files, and
    an existing file is overwritten only with --force; both are checked before the model is
    loaded. Nothing is written when no image could be read.

    A file that does not exist is refused before the model is loaded (exit 2). Files that
    cannot be read as images are reported on stderr, one line each; the others
    are still embedded, and the exit status is then 1.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype. --device meta is refused: it has no weights to run. `zoo predict --embeddings
    FILE` writes the same file alongside the predictions.

    \b
    Examples:
      zoo embed vit_base_patch16_224_in21k.orig_in21k photos/*.jpg -o emb.safetensors
      zoo embed resnet50.a1_in1k cat.jpg dog.png -o emb.npy --json
      zoo embed vit_tiny_patch16_224 x.jpg --checkpoint finetuned.safetensors --num-classes 10 -o x.npy

    \b
    --json prints one object:
      {"model": str, "output": str | null, "files": [str, ...], "embedding_size": int | null,
       "failed": [{"file": str, "error": str}, ...]}
    "output" is null when nothing was written (no image could be read).
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "embed")
    from ..tasks.predict import embed_files, embedding_format, predictor, save_embeddings
    from ..tasks.ranks import joined, local_first

    check_output(output, "--output", inputs=[*images, checkpoint], force=force)
    embedding_format(output)
    packaged = package_or_none(name, checkpoint=checkpoint, model_args=model_args, **flags)
    with joined() as ranks:
        with local_first(ranks):  # one download per node into a shared cache
            model = packaged or predictor(name, checkpoint=checkpoint, model_args=model_args, **flags)
        embedded = embed_files(model, images, batch_size=batch_size, on_error=echo_error, ranks=ranks)
        if ranks.leads:
            if embedded.embeddings is not None:
                save_embeddings(output, embedded.embeddings, embedded.files, metadata={"model": model.name})
            _report(model.name, output, embedded, as_json)
    if embedded.failed:
        sys.exit(1)


def _report(name: str, output: Path, embedded, as_json: bool) -> None:
    written = embedded.embeddings is not None
    size = embedded.embeddings.shape[1] if written else None
    if as_json:
        failed = [{"file": error.path, "error": error.reason} for error in embedded.failed]
        echo_json(
            {
                "model": name,
                "output": str(output) if written else None,
                "files": embedded.files,
                "embedding_size": size,
                "failed": failed,
            }
        )
    elif written:
        click.echo(f"wrote {output}: {len(embedded.files)} embedding(s) of size {size}")
    else:
        click.echo(f"no image could be read: {output} not written")
