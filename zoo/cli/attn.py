"""`zoo attn`: where a model looks: over an image, or between the positions of sequences."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ArgumentError
from .options import (
    FiniteFloat,
    args_option,
    check_input_files,
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
    from ..tasks.attention_pictures import ImageAttentionPicture, SequenceAttentionPicture

    Picture = ImageAttentionPicture | SequenceAttentionPicture

__all__ = ["attn_command"]


@click.command("attn")
@click.argument("name")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The picture to write: .png, .jpg, .jpeg or .webp.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option(
    "--map", "map_name", metavar="NAME", help="The map to draw, by its name (default: the model's first)."
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    help="Images: longer side of the picture at most, in pixels (a smaller image keeps its "
    "size)  [default: 2048]",
)
@click.option(
    "--method", metavar="rollout|last", help="Images: a transformer's attention rollout or last block's map."
)
@click.option(
    "--stage",
    type=click.IntRange(min=1),
    help="Images: the spatial attention of stage N of a convolutional model.",
)
@click.option("--alpha", type=FiniteFloat(0, 1), help="Images: opacity of the map  [default: 0.5]")
@click.option(
    "--head",
    metavar="mean|all|N",
    help="Sequences: the mean over heads, one panel per head, or head N (from 0)  [default: mean]",
)
@click.option(
    "--vocab",
    "vocabularies",
    multiple=True,
    metavar="[INPUT=]FILE",
    help="Sequences: label token ids with a vocabulary, the token of id i on line i + 1 "
    "(repeatable; INPUT= for one input only: --vocab source=en.txt).",
)
@checkpoint_option
@num_classes_option
@device_option
@dtype_option
@args_option()
@json_option
@click.pass_context
def attn_command(
    ctx: click.Context,
    name: str,
    inputs: tuple[str, ...],
    output: Path,
    force: bool,
    map_name: str | None,
    max_size: int | None,
    method: str | None,
    stage: int | None,
    alpha: float | None,
    head: str | None,
    vocabularies: tuple[str, ...],
    checkpoint: Path | None,
    num_classes: int | None,
    device: str | None,
    dtype: str | None,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Draw where a model attends and write the picture.

    For a model of images, INPUT is one image, and the map is drawn over it. A ViT shows
    its class token's attention to the patches: attention rollout over all blocks (--method
    rollout, the default) or the last block's (--method last). A ResNet with CBAM shows the
    spatial attention of a stage (--stage N, default the last). The map covers the centre
    crop the model sees; the rest of the picture is dimmed. The model sees the image
    preprocessed as `zoo predict` does; the picture is drawn on a copy of the image reduced
    so that its longer side is at most --max-size pixels.

    For a sequence model, INPUT is each of its inputs in order: token ids as one argument
    ("12 7 33 5" or 12,7,33,5), or a file of feature frames (.npy, or .safetensors holding
    one tensor), (frames, features). The picture is a heatmap of the attention weights,
    queries down and keys across, labelled with the tokens (from --vocab) or the ids or
    frame numbers: the mean over heads (--head mean), head N (--head N) or one panel per
    head (--head all). An encoder-decoder takes source then target ids and shows the
    decoder's attention over the source. --map picks a map by name (a text transformer's
    layerN, an encoder-decoder's alignment, a speech model's pooling).

    A map that is constant, or whose every row is uniform, is drawn with a warning: that is
    what untrained or zero-initialised weights give. The picture is written in the format
    the output's suffix names (.png, .jpg or .jpeg, .webp), whole or not at all. An existing
    output is refused unless --force, the input files always.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype. --device meta is refused: it has no weights to run.

    \b
    Examples:
      zoo attn vit_base_patch16_224 cat.jpg -o cat_attn.png
      zoo attn vit_base_patch16_224 photo.jpg -o small.jpg --max-size 1024 --force
      zoo attn deit_base_distilled_patch16_224 cat.jpg -o last.png --method last
      zoo attn resnet50_cbam cat.jpg -o stage3.png --stage 3 --checkpoint mine.safetensors
      zoo attn text_transformer_small "5 9 2 7" --vocab vocab.txt --checkpoint text.safetensors -o t.png
      zoo attn seq2seq_lstm_attn "4 5 6 2" "6 5 4 2" --checkpoint s2s.safetensors -o align.png
      zoo attn speech_lstm_attn utterance.npy --checkpoint speech.safetensors -o frames.png

    \b
    --json prints one object:
      {"output": str, "model": str, "map": str, "size": [width, height],
       "grid": [rows, columns]}
    map is the map drawn (rollout, last, stageN, layerN, ...); size is the picture's; grid
    is the map's. An image map adds "box": [left, top, right, bottom], where the image
    lies in the picture, under its title and beside its colour bar. A sequence map adds
    "head": "mean" | "all" | N, and "rows" and
    "columns": the labels drawn on each axis.
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "attn")
    from ..tasks import attention_pictures as pictures
    from ..tasks.maps import picture_format
    from ..tasks.sequence_maps import FEATURE_FORMATS
    from ..weights.resolve import resolve

    try:
        picture_format(output)
    except ArgumentError as error:
        raise ArgumentError(f"--output {error}") from None
    resolved = resolve(name)
    images = pictures.over_images(resolved)
    _refuse_options_of_the_other_kind(ctx, images, name)
    if images:
        wanted, asked = _image_map(inputs, map_name, method, stage, name)
        check_input_files(inputs[:1], "inputs")
        check_output(output, "--output", inputs=[Path(inputs[0]), checkpoint], force=force)
        drawn = pictures.image_attention_picture(
            resolved,
            inputs[0],
            map=wanted,
            asked=asked,
            max_size=max_size or pictures.DEFAULT_MAX_SIZE,
            alpha=pictures.DEFAULT_ALPHA if alpha is None else alpha,
            checkpoint=checkpoint,
            model_args=model_args,
            **flags,
        )
    else:
        files = [Path(value) for value in inputs if Path(value).suffix.lower() in FEATURE_FORMATS]
        check_input_files(files, "inputs")
        check_input_files(_vocabulary_paths(vocabularies), "vocabularies")
        check_output(
            output, "--output", inputs=[*files, checkpoint, *_vocabulary_paths(vocabularies)], force=force
        )
        drawn = pictures.sequence_attention_picture(
            resolved,
            inputs,
            map=map_name,
            head=_head(head),
            vocabularies=vocabularies,
            checkpoint=checkpoint,
            model_args=model_args,
            **flags,
        )
    drawn.save(output)
    if as_json:
        echo_json(_as_json(drawn, output))
    else:
        click.echo(_summary(drawn, output))


_IMAGE_OPTIONS = ("max_size", "method", "stage", "alpha")
_SEQUENCE_OPTIONS = ("head", "vocabularies")


def _refuse_options_of_the_other_kind(ctx: click.Context, images: bool, name: str) -> None:
    """An image option for a sequence model, or the reverse, is refused rather than ignored."""
    wrong = _IMAGE_OPTIONS if not images else _SEQUENCE_OPTIONS
    for parameter in ctx.command.params:
        if parameter.name in wrong and ctx.params.get(parameter.name) not in (None, ()):
            flag = parameter.opts[-1] if parameter.opts[-1].startswith("--") else parameter.opts[0]
            kind = "sequence models" if images else "images"
            raise ArgumentError(
                f"{flag} applies to {kind}; {name} is a model of {'images' if images else 'sequences'}"
            )


def _image_map(
    inputs: tuple[str, ...], map_name: str | None, method: str | None, stage: int | None, name: str
) -> tuple[str | None, str]:
    """The map --map, --method or --stage asks for, and the option that asked."""
    if len(inputs) != 1:
        raise ArgumentError(f"{name} takes one image, got {len(inputs)} inputs")
    if map_name is not None and (method is not None or stage is not None):
        raise ArgumentError("--map excludes --method and --stage")
    if method is not None and stage is not None:
        raise ArgumentError("--method and --stage exclude each other")
    if method is not None:
        return method, f"--method {method}"
    if stage is not None:
        return f"stage{stage}", f"--stage {stage}"
    return map_name, f"--map {map_name}"


def _head(text: str | None) -> int | str | None:
    """`--head`: None (the mean), "all" or a head number."""
    if text is None or text == "mean":
        return None
    if text == "all":
        return "all"
    if text.isdigit():
        return int(text)
    raise ArgumentError(f"--head {text}: give mean, all or a head number (from 0)")


def _vocabulary_paths(vocabularies: tuple[str, ...]) -> list[Path]:
    return [Path(value.partition("=")[2] if "=" in value else value) for value in vocabularies]


def _as_json(drawn: Picture, output: Path) -> dict[str, Any]:
    from ..tasks.attention_pictures import SequenceAttentionPicture

    width, height = drawn.image.size
    report = {"output": str(output), "model": drawn.model, "map": drawn.map}
    report |= {"size": [width, height], "grid": list(drawn.grid)}
    if isinstance(drawn, SequenceAttentionPicture):
        report |= {"head": "mean" if drawn.head is None else drawn.head}
        report |= {"rows": drawn.rows, "columns": drawn.columns}
    else:
        report |= {"box": list(drawn.box)}
    return report


def _summary(drawn: Picture, output: Path) -> str:
    from ..tasks.attention_pictures import SequenceAttentionPicture

    width, height = drawn.image.size
    rows, columns = drawn.grid
    shown = f"wrote {output} ({width}x{height}): {drawn.map} attention of {drawn.model}"
    if isinstance(drawn, SequenceAttentionPicture):
        return f"{shown}, {drawn.heads}, {drawn.axes} ({rows}x{columns})"
    return f"{shown}, a {rows}x{columns} map over the centre crop"
