"""`zoo attn`: where a model looks over an image, drawn over it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..errors import ArgumentError, AttentionMapError
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

__all__ = ["attn_command"]


@click.command("attn")
@click.argument("name")
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The picture to write: .png, .jpg, .jpeg or .webp.",
)
@click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="Longer side of the picture at most, in pixels (a smaller image keeps its size).",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
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
@json_option
def attn_command(
    name: str,
    image: Path,
    output: Path,
    max_size: int,
    force: bool,
    method: str | None,
    stage: int | None,
    alpha: float,
    checkpoint: Path | None,
    num_classes: int | None,
    device: str | None,
    dtype: str | None,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Draw where a model looks over an image and write the picture.

    A ViT shows its class token's attention to the patches: attention rollout over all
    blocks (--method rollout, the default) or the last block's (--method last). A ResNet
    with CBAM shows the spatial attention of a stage (--stage N, default the last). The
    map covers the centre crop the model sees; the rest of the picture is dimmed.

    The model sees the image preprocessed as `zoo predict` does; the picture is drawn on a
    copy of the image reduced so that its longer side is at most --max-size pixels, in the
    format the output's suffix names (.png, .jpg or .jpeg, .webp). An existing output is
    refused unless --force, the input image always.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype. --device meta is refused: it has no weights to run.

    \b
    Examples:
      zoo attn vit_base_patch16_224 cat.jpg -o cat_attn.png
      zoo attn vit_base_patch16_224 photo.jpg -o small.jpg --max-size 1024 --force
      zoo attn deit_base_distilled_patch16_224 cat.jpg -o last.png --method last
      zoo attn resnet50_cbam cat.jpg -o stage3.png --stage 3 --checkpoint mine.safetensors

    \b
    --json prints one object:
      {"output": str, "model": str, "map": str, "size": [width, height],
       "grid": [rows, columns]}
    map is the map drawn (rollout, last, stageN); size is the picture's; grid is the map's.
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "attn")
    if method is not None and stage is not None:
        raise ArgumentError("--method and --stage exclude each other")
    from ..tasks.maps import attention_maps, overlay, picture_format, save_picture
    from ..tasks.predict import predictor
    from ..tasks.preprocessing import load_image

    try:
        picture_format(output)
    except ArgumentError as error:
        raise ArgumentError(f"--output {error}") from None
    check_output(output, "--output", inputs=[image, checkpoint], force=force)
    picture = load_image(image)
    model = predictor(name, checkpoint=checkpoint, model_args=model_args, **flags)
    size, x = picture.size, model.batch([picture])
    del picture  # the map is drawn on a reduced copy: the full image need not stay in memory
    wanted, chosen = _choose_map(attention_maps(model.model, x), method, stage, name)
    shown = load_image(image, max_size=max_size)
    box = _scaled(model.transform.crop_box(size), size, shown.size)
    drawn = overlay(shown, chosen, box=box, alpha=alpha)
    save_picture(drawn, output)
    rows, columns = chosen.shape
    if as_json:
        echo_json(
            {
                "output": str(output),
                "model": name,
                "map": wanted,
                "size": [drawn.width, drawn.height],
                "grid": [rows, columns],
            }
        )
        return
    click.echo(
        f"wrote {output} ({drawn.width}x{drawn.height}): {wanted} attention of {name}, "
        f"a {rows}x{columns} map over the centre crop"
    )


def _scaled(
    box: tuple[float, float, float, float], size: tuple[int, int], shown: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A box in the pixels of an image of `size`, in those of its copy of size `shown`."""
    sx, sy = shown[0] / size[0], shown[1] / size[1]
    left, top, right, bottom = box
    return left * sx, top * sy, right * sx, bottom * sy


def _choose_map(maps: Mapping[str, Any], method: str | None, stage: int | None, name: str) -> tuple[str, Any]:
    """The map asked for (the model's first without --method or --stage) and its key."""
    wanted = method if method is not None else f"stage{stage}" if stage is not None else next(iter(maps))
    if wanted not in maps:
        offered = ", ".join(_how_to_ask(key) for key in maps)
        asked = f"--method {method}" if method is not None else f"--stage {stage}"
        raise AttentionMapError(f"{asked}: {name} has no such map; it offers {offered}")
    return wanted, maps[wanted][0]


def _how_to_ask(key: str) -> str:
    if key.startswith("stage") and key[5:].isdigit():
        return f"{key} (--stage {key[5:]})"
    return f"{key} (--method {key})"
