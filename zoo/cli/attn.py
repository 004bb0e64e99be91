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
    writable_path,
)
from .output import echo_json, json_option

__all__ = ["attn_command"]


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
@json_option
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
    as_json: bool,
) -> None:
    """Draw where a model looks over an image and write it as a PNG of the image's size.

    A ViT shows its class token's attention to the patches: attention rollout over all
    blocks (--method rollout, the default) or the last block's (--method last). A ResNet
    with CBAM shows the spatial attention of a stage (--stage N, default the last). The
    map covers the centre crop the model sees; the rest of the picture is dimmed.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype. --device meta is refused: it has no weights to run.

    \b
    Examples:
      zoo attn vit_base_patch16_224 cat.jpg -o cat_attn.png
      zoo attn deit_base_distilled_patch16_224 cat.jpg -o last.png --method last
      zoo attn resnet50_cbam cat.jpg -o stage3.png --stage 3 --checkpoint mine.safetensors

    \b
    --json prints one object:
      {"output": str, "model": str, "map": str, "size": [width, height],
       "grid": [rows, columns]}
    map is the map drawn (rollout, last, stageN); size is the PNG's; grid is the map's.
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "attn")
    if method is not None and stage is not None:
        raise ArgumentError("--method and --stage exclude each other")
    from ..files import atomic_path
    from ..tasks.maps import attention_maps, overlay
    from ..tasks.predict import predictor
    from ..tasks.preprocessing import load_image

    writable_path(output, "--output")
    picture = load_image(image)
    model = predictor(name, checkpoint=checkpoint, model_args=model_args, **flags)
    wanted, chosen = _choose_map(attention_maps(model.model, model.batch([picture])), method, stage, name)
    drawn = overlay(picture, chosen, box=model.transform.crop_box(picture.size), alpha=alpha)
    with atomic_path(output) as temporary:
        drawn.save(temporary, format="PNG")
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
