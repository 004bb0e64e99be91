"""`zoo predict`, `zoo attn`, `zoo bench`: using a model once it is in the zoo."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ArgumentError, AttentionMapError, ImageError
from .common import (
    args_option,
    checkpoint_option,
    device_option,
    dtype_option,
    echo_json,
    json_option,
    num_classes_option,
    parse_assignments,
)

__all__ = ["COMMANDS"]

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _writable(path: Path, option: str) -> None:
    if not path.parent.is_dir():
        raise ArgumentError(f"{option} {path}: directory '{path.parent}' does not exist")
    if path.is_dir():
        raise ArgumentError(f"{option} {path}: is a directory")


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

    if embeddings_file is not None:
        _writable(embeddings_file, "--embeddings")
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
                tensors.append(model.transform(_load(path)))
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


def _load(path: Path):
    from ..tasks.preprocessing import load_image

    return load_image(path)


def _echo_result(file: str, predictions) -> None:
    if predictions is None:
        click.echo(f"{file}: embedded")
        return
    click.echo(file)
    for prediction in predictions:
        label = prediction.description if prediction.description else f"class {prediction.index}"
        click.echo(f"  {prediction.probability:7.2%}  {label}  [{prediction.index}]")


@click.command("attn")
@click.argument("name")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The PNG to write.")
@click.option(
    "--method", metavar="rollout|last", help="Transformer map: attention rollout or the last block's."
)
@click.option(
    "--stage", type=click.IntRange(min=1), help="Convolutional map: the spatial attention of stage N."
)
@click.option(
    "--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Opacity of the map."
)
@checkpoint_option
@num_classes_option
@device_option
@dtype_option
@args_option()
def attn_command(
    name: str,
    image: Path,
    output: Path,
    method: str | None,
    stage: int | None,
    alpha: float,
    checkpoint: Path | None,
    num_classes: int | None,
    device: str | None,
    dtype: str | None,
    assignments: tuple[str, ...],
) -> None:
    """Draw where a model looks over an image and write it as a PNG of the image's size.

    A ViT shows its class token's attention to the patches: attention rollout over all
    blocks (--method rollout, the default) or the last block's (--method last). A ResNet
    with CBAM shows the spatial attention of a stage (--stage N, default the last). The
    map covers the centre crop the model sees; the rest of the picture is dimmed.

    \b
    Examples:
      zoo attn vit_base_patch16_224 cat.jpg -o cat_attn.png
      zoo attn deit_base_distilled_patch16_224 cat.jpg -o last.png --method last
      zoo attn resnet50_cbam cat.jpg -o stage3.png --stage 3 --checkpoint mine.safetensors
    """
    from ..files import atomic_path
    from ..tasks.maps import attention_maps, overlay
    from ..tasks.predict import predictor

    if method is not None and stage is not None:
        raise ArgumentError("--method and --stage exclude each other")
    _writable(output, "--output")
    picture = _load(image)
    model = predictor(
        name,
        checkpoint=checkpoint,
        num_classes=num_classes,
        device=device,
        dtype=dtype,
        model_args=parse_assignments(assignments),
    )
    maps = attention_maps(model.model, model.batch([picture]))
    wanted = method if method is not None else f"stage{stage}" if stage is not None else next(iter(maps))
    if wanted not in maps:
        offered = ", ".join(_how_to_ask(key) for key in maps)
        asked = f"--method {method}" if method is not None else f"--stage {stage}"
        raise AttentionMapError(f"{asked}: {name} has no such map; it offers {offered}")
    chosen = maps[wanted][0]
    drawn = overlay(picture, chosen, box=model.transform.crop_box(picture.size), alpha=alpha)
    with atomic_path(output) as temporary:
        drawn.save(temporary, format="PNG")
    rows, columns = chosen.shape
    click.echo(
        f"wrote {output} ({drawn.width}x{drawn.height}): {wanted} attention of {name}, "
        f"a {rows}x{columns} map over the centre crop"
    )


def _how_to_ask(key: str) -> str:
    if key.startswith("stage") and key[5:].isdigit():
        return f"{key} (--stage {key[5:]})"
    return f"{key} (--method {key})"


@click.command("bench")
@click.argument("name")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Images per step.")
@device_option
@dtype_option
@click.option(
    "--compile", "compile_", is_flag=True, help="Run through torch.compile (compiled during warm-up)."
)
@click.option("--channels-last", is_flag=True, help="NHWC memory format for weights and inputs.")
@click.option("--train", is_flag=True, help="Time a training step (forward, backward, SGD step) instead.")
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed runs; the median is reported.",
)
@click.option(
    "--warmup", type=click.IntRange(min=1), default=3, show_default=True, help="Untimed steps first."
)
@click.option(
    "--min-time",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds each run lasts at least.",
)
@args_option()
@json_option
def bench_command(
    name: str,
    batch: int,
    device: str | None,
    dtype: str | None,
    compile_: bool,
    channels_last: bool,
    train: bool,
    runs: int,
    warmup: int,
    min_time: float,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure throughput: images/s, parameters, GFLOPs per image, share of the peak.

    The model has random weights (nothing is downloaded) and runs at its input size.
    Warm-up steps are not timed; the median of several runs is reported. The share of the
    device's peak is shown for GPUs whose peak is known.

    \b
    Examples:
      zoo bench resnet50
      zoo bench vit_base_patch16_224 --device cuda --dtype bfloat16 --batch 256 --compile
      zoo bench resnet50_cbam --device cuda --channels-last --train --json
      zoo bench resnet18 --dtype bfloat16          (on a CPU with native bf16)
    """
    from ..tasks.bench import benchmark

    result = benchmark(
        name,
        batch=batch,
        device=device,
        dtype=dtype,
        compile=compile_,
        channels_last=channels_last,
        train=train,
        runs=runs,
        warmup=warmup,
        min_time=min_time,
        model_args=parse_assignments(assignments),
    )
    if as_json:
        echo_json(result.as_dict())
        return
    size = "x".join(map(str, result.input_size))
    options = [o for o, on in (("compiled", result.compiled), ("channels-last", result.channels_last)) if on]
    click.echo(
        f"{name} {result.mode} on {result.device} ({result.device_name}), {result.dtype}, "
        f"batch {result.batch} of {size}" + (f", {', '.join(options)}" if options else "")
    )
    low, high = min(result.runs_images_per_s), max(result.runs_images_per_s)
    click.echo(
        f"  {result.images_per_s:,.1f} images/s (median of {len(result.runs_images_per_s)} runs, "
        f"{low:,.1f} to {high:,.1f}), {result.step_ms:.2f} ms per step"
    )
    click.echo(
        f"  {result.params:,} parameters, {result.gflops_per_image:.3g} GFLOPs per image, "
        f"{result.achieved_tflops:.3g} TFLOP/s"
    )
    if result.peak_fraction is not None:
        click.echo(
            f"  {result.peak_fraction:.1%} of the device's peak ({result.peak_tflops:g} TFLOP/s dense)"
        )
    else:
        click.echo("  peak of this device: not known")
    if result.device == "cpu":
        click.echo(f"  {result.cpu_threads} CPU thread(s) (set OMP_NUM_THREADS to change)")
    if result.peak_memory_mb is not None:
        click.echo(f"  peak memory: {result.peak_memory_mb:,.0f} MiB")


COMMANDS = [predict_command, attn_command, bench_command]
