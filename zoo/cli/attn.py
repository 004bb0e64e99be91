"""`zoo attn`: where a model looks: over an image, or between the positions of sequences."""

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
@click.option("--alpha", type=click.FloatRange(0, 1), help="Images: opacity of the map  [default: 0.5]")
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
    is the map's. A sequence map adds "head": "mean" | "all" | N, and "rows" and
    "columns": the labels drawn on each axis.
    """
    flags, model_args = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    refuse_meta(flags["device"], "attn")
    from ..registry import default_registry
    from ..registry.family import IMAGE_TASKS
    from ..tasks.maps import picture_format
    from ..weights.resolve import resolve

    try:
        picture_format(output)
    except ArgumentError as error:
        raise ArgumentError(f"--output {error}") from None
    registry = default_registry()
    resolved = resolve(name, registry)
    images = registry.task(resolved) in IMAGE_TASKS
    _refuse_options_of_the_other_kind(ctx, images, name)
    if images:
        if len(inputs) != 1:
            raise ArgumentError(f"{name} takes one image, got {len(inputs)} inputs")
        if map_name is not None and (method is not None or stage is not None):
            raise ArgumentError("--map excludes --method and --stage")
        if method is not None and stage is not None:
            raise ArgumentError("--method and --stage exclude each other")
        wanted = method if method is not None else f"stage{stage}" if stage is not None else map_name
        asked = (
            f"--method {method}"
            if method is not None
            else f"--stage {stage}"
            if stage is not None
            else f"--map {map_name}"
        )
        check_output(output, "--output", inputs=[Path(inputs[0]), checkpoint], force=force)
        result = _image_picture(
            resolved,
            Path(inputs[0]),
            output,
            wanted,
            asked,
            max_size or 2048,
            0.5 if alpha is None else alpha,
            checkpoint,
            flags,
            model_args,
            name,
        )
    else:
        files = [Path(value) for value in inputs if Path(value).suffix.lower() in FEATURE_SUFFIXES]
        check_output(
            output, "--output", inputs=[*files, checkpoint, *_vocabulary_paths(vocabularies)], force=force
        )
        result = _sequence_picture(
            resolved, inputs, output, map_name, _head(head), vocabularies, checkpoint, flags, model_args, name
        )
    if as_json:
        echo_json(result.pop("json"))
        return
    click.echo(result["line"])


FEATURE_SUFFIXES = (".npy", ".safetensors")  # an INPUT with one of these is a file, not token ids

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


def _image_picture(
    resolved: Any,
    image: Path,
    output: Path,
    wanted: str | None,
    asked: str,
    max_size: int,
    alpha: float,
    checkpoint: Path | None,
    flags: dict[str, Any],
    model_args: dict[str, Any],
    name: str,
) -> dict[str, Any]:
    from ..tasks.maps import attention_maps, overlay, save_picture
    from ..tasks.predict import predictor
    from ..tasks.preprocessing import load_image

    picture = load_image(image)
    model = predictor(resolved, checkpoint=checkpoint, model_args=model_args, **flags)
    size, x = picture.size, model.batch([picture])
    del picture  # the map is drawn on a reduced copy: the full image need not stay in memory
    wanted, chosen = _choose_map(attention_maps(model.model, x), wanted, asked, name)
    shown = load_image(image, max_size=max_size)
    box = _scaled(model.transform.crop_box(size), size, shown.size)
    drawn = overlay(shown, chosen, box=box, alpha=alpha, what=f"the {wanted} map of {name}")
    save_picture(drawn, output)
    rows, columns = chosen.shape
    return {
        "json": {
            "output": str(output),
            "model": name,
            "map": wanted,
            "size": [drawn.width, drawn.height],
            "grid": [rows, columns],
        },
        "line": f"wrote {output} ({drawn.width}x{drawn.height}): {wanted} attention of {name}, "
        f"a {rows}x{columns} map over the centre crop",
    }


def _sequence_picture(
    resolved: Any,
    given: tuple[str, ...],
    output: Path,
    map_name: str | None,
    head: int | str | None,
    vocabulary_options: tuple[str, ...],
    checkpoint: Path | None,
    flags: dict[str, Any],
    model_args: dict[str, Any],
    name: str,
) -> dict[str, Any]:
    from ..tasks import sequence_maps as sm

    if flags["num_classes"] is not None:
        model_args = {**model_args, "num_classes": flags["num_classes"]}
    model = sm.sequence_model(
        resolved, checkpoint=checkpoint, device=flags["device"], dtype=flags["dtype"], model_args=model_args
    )
    declared = sm.sequence_inputs(model)
    if len(given) != len(declared):
        takes = ", ".join(f"{spec.name} ({_kind_words(spec.kind)})" for spec in declared)
        raise ArgumentError(f"{name} takes {len(declared)} input(s), {takes}; got {len(given)}")
    inputs = {
        spec.name: sm.parse_token_ids(value, spec) if spec.kind == "tokens" else sm.read_features(value, spec)
        for spec, value in zip(declared, given, strict=True)
    }
    vocabularies = _vocabularies(vocabulary_options, declared)
    maps = sm.sequence_maps(model, inputs)
    wanted, chosen = _choose_map(maps, map_name, f"--map {map_name}", name)
    heads = chosen.weights.shape[1]
    if isinstance(head, int) and head >= heads:
        raise ArgumentError(
            f"--head {head}: the {wanted} map of {name} has {heads} head(s), 0 to {heads - 1}"
        )
    described = _heads_drawn(head, heads)
    drawn = sm.draw_sequence_map(
        chosen,
        inputs,
        head=head,
        vocabularies=vocabularies,
        title=f"{name}: {wanted}, {described}",
        what=f"the {wanted} map of {name}",
    )
    drawn.save(output)
    rows, columns = sm.axis_labels(chosen, inputs, vocabularies=vocabularies)
    width, height = drawn.image.size
    axes = f"{chosen.queries or ' / '.join(chosen.query_prefix)} over {chosen.keys}"
    return {
        "json": {
            "output": str(output),
            "model": name,
            "map": wanted,
            "size": [width, height],
            "grid": [len(rows), len(columns)],
            "head": "mean" if head is None else head,
            "rows": rows,
            "columns": columns,
        },
        "line": f"wrote {output} ({width}x{height}): {wanted} attention of {name}, {described}, "
        f"{axes} ({len(rows)}x{len(columns)})",
    }


def _heads_drawn(head: int | str | None, heads: int) -> str:
    if head == "all":
        return "every head"
    if head is not None:
        return f"head {head}"
    return "one head" if heads == 1 else "heads averaged"


def _kind_words(kind: str) -> str:
    return "token ids" if kind == "tokens" else "a features file"


def _vocabularies(options: tuple[str, ...], declared: Any) -> dict[str, tuple[str, ...]]:
    """`--vocab FILE` for every token input, `--vocab INPUT=FILE` for one."""
    from ..tasks import sequence_maps as sm

    token_inputs = {spec.name: spec for spec in declared if spec.kind == "tokens"}
    if options and not token_inputs:
        raise ArgumentError("--vocab: the model takes no token ids")
    found: dict[str, tuple[str, ...]] = {}
    for option in options:
        target, sep, path = option.partition("=")
        names = [target] if sep and target in token_inputs else list(token_inputs)
        path = path if sep and target in token_inputs else option
        tokens = sm.read_vocabulary(path)
        for input_name in names:
            sm.check_vocabulary(tokens, token_inputs[input_name], f"--vocab {option}")
            found[input_name] = tokens
    return found


def _scaled(
    box: tuple[float, float, float, float], size: tuple[int, int], shown: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A box in the pixels of an image of `size`, in those of its copy of size `shown`."""
    sx, sy = shown[0] / size[0], shown[1] / size[1]
    left, top, right, bottom = box
    return left * sx, top * sy, right * sx, bottom * sy


def _choose_map(maps: Mapping[str, Any], wanted: str | None, asked: str, name: str) -> tuple[str, Any]:
    """The map asked for (the model's first when none is) and its key. An image map is
    given as the first sample's (h, w); a sequence map as it is."""
    wanted = wanted if wanted is not None else next(iter(maps))
    images = all(hasattr(value, "ndim") for value in maps.values())
    if wanted not in maps:
        offered = ", ".join(_how_to_ask(key, images) for key in maps)
        raise AttentionMapError(f"{asked}: {name} has no such map; it offers {offered}")
    chosen = maps[wanted]
    return wanted, chosen[0] if images else chosen


def _how_to_ask(key: str, images: bool) -> str:
    if not images:
        return f"{key} (--map {key})"
    if key.startswith("stage") and key[5:].isdigit():
        return f"{key} (--stage {key[5:]})"
    return f"{key} (--method {key})"
