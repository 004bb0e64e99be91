"""The pictures `zoo attn` draws: where a model looks, over an image or between sequences.

Each function loads a model with weights (`zoo.tasks.inference`), runs it on its inputs,
chooses one of the maps it offers and draws it; the picture comes back with what it shows,
for the caller to save and describe:

- `image_attention_picture`: the map (`rollout`, `last`, `stageN`, ...) over the centre crop
  the model sees, drawn on a copy of the image reduced to `max_size` (`zoo.tasks.maps`);
- `sequence_attention_picture`: a labelled heatmap of the weights between the positions of
  its inputs (`zoo.tasks.sequence_maps`).

Errors name the command line's options (`--map`, `--head`, `--vocab`), as `zoo attn` shows
them.

    >>> drawn = image_attention_picture("vit_base_patch16_224", "cat.jpg", map="last")
    >>> drawn.save("cat_attn.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, AttentionMapError
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, SequenceInput
from ..weights.resolve import resolve
from . import sequence_maps as sm
from .heatmaps import FONT_SIZE, Heatmap, framed, ramp_legend
from .inference import described, refuse_non_finite, weights_label
from .maps import attention_maps, overlay, save_picture
from .predict import predictor
from .preprocessing import load_image

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "ImageAttentionPicture",
    "SequenceAttentionPicture",
    "choose_map",
    "image_attention_picture",
    "over_images",
    "sequence_attention_picture",
]

DEFAULT_MAX_SIZE = 2048
DEFAULT_ALPHA = 0.5
IMAGE_MAP_WORDS = {
    "rollout": "attention rollout over every block, heads averaged (rollout)",
    "last": "class-token attention of the last block, heads averaged (last)",
}


@dataclass(frozen=True)
class ImageAttentionPicture:
    """An attention map drawn over an image."""

    image: Image.Image
    """The picture: a title (model, map), the image reduced to at most `max_size` pixels a
    side with the map over its centre crop and the rest dimmed, and a colour bar with the
    map's range."""
    model: str
    map: str
    """The map drawn (`rollout`, `last`, `stageN`, ...)."""
    grid: tuple[int, int]
    """The map's rows and columns."""
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) of the image in the picture."""

    def save(self, path: str | Path) -> None:
        """Write the picture in the format its suffix names, whole or not at all."""
        save_picture(self.image, path)


@dataclass(frozen=True)
class SequenceAttentionPicture:
    """An attention map between the positions of sequences, drawn as a labelled heatmap."""

    heatmap: Heatmap
    model: str
    map: str
    """The map drawn (`layerN`, `alignment`, `pooling`, ...)."""
    head: sm.Head
    """The heads drawn: None, their mean; a number, that head; "all", each in a panel."""
    heads: str
    """The heads drawn, in words: "heads averaged", "head 1", "every head", "one head"."""
    axes: str
    """What runs down and across: "tokens over tokens", "target over source", ..."""
    rows: list[str]
    """The labels of the rows (queries)."""
    columns: list[str]
    """The labels of the columns (keys)."""

    @property
    def image(self) -> Image.Image:
        return self.heatmap.image

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)

    def save(self, path: str | Path) -> None:
        """Write the picture in the format its suffix names, whole or not at all."""
        self.heatmap.save(path)


def over_images(name: str | Resolved, *, registry: Registry | None = None) -> bool:
    """Whether the attention of a model is drawn over an image (a model of images) rather
    than between the positions of sequences."""
    registry = registry if registry is not None else default_registry()
    return registry.task(resolve(name, registry)) in IMAGE_TASKS


def image_attention_picture(
    name: str | Resolved,
    image: str | Path,
    *,
    map: str | None = None,
    asked: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    alpha: float = DEFAULT_ALPHA,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> ImageAttentionPicture:
    """Draw where a model of images looks in one image.

    The model sees the image preprocessed as `zoo.tasks.predict` feeds it; the map covers
    the centre crop it sees, drawn on a copy of the image reduced so that its longer side is
    at most `max_size` pixels. A flat map is drawn with a warning (see `zoo.tasks.maps`).

    Args:
        name: A model of images, by any name form (`zoo.weights.resolve`).
        image: The image file.
        map: The map to draw, by name (`rollout`, `last`, `stage3`); default the model's first.
        asked: How `map` was asked for, as an unknown map's error names it (`--stage 3`);
            default `--map NAME`.
        max_size: The longer side of the picture at most, in pixels.
        alpha: The opacity of the map.
        checkpoint, num_classes, device, dtype, model_args, registry: As for
            `zoo.tasks.predict.predictor`.

    Raises:
        ImageError: The image cannot be read (before the model is loaded).
        AttentionMapError: The model offers no maps, or not the one asked for.
    """
    full = load_image(image)  # an unreadable image fails before the model is loaded
    ready = predictor(
        name,
        checkpoint=checkpoint,
        num_classes=num_classes,
        device=device,
        dtype=dtype,
        model_args=model_args,
        registry=registry,
    )
    size, x = full.size, ready.batch([full])
    del full  # the map is drawn on a reduced copy: the full image need not stay in memory
    wanted, chosen = choose_map(attention_maps(ready.model, x), map, name=ready.name, asked=asked)
    chosen = chosen[0]  # (h, w) of the one image
    refuse_non_finite(chosen, described(ready.name, ready.weights))
    shown = load_image(image, max_size=max_size)
    box = _scaled(ready.transform.crop_box(size), size, shown.size)
    drawn = overlay(shown, chosen, box=box, alpha=alpha, what=f"the {wanted} map of {ready.name}")
    picture, (left, top) = _framed_map(drawn, chosen, f"{ready.name}: {_map_words(wanted)}")
    box = (left, top, left + drawn.width, top + drawn.height)
    return ImageAttentionPicture(picture, ready.name, wanted, tuple(chosen.shape), box)


def _framed_map(drawn: Image.Image, values: torch.Tensor, title: str) -> tuple[Image.Image, tuple[int, int]]:
    """The map drawn over the image, titled, with a colour bar of the map's own range (the
    colours run from its minimum to its maximum)."""
    text_size = max(FONT_SIZE, round(drawn.height / 40))  # readable on a large picture too
    legend = ramp_legend(
        float(values.max()), low=float(values.min()), height=max(48, drawn.height // 2), width=text_size + 1
    )
    return framed(drawn, title=title, legend=legend, text_size=text_size)


def _map_words(key: str) -> str:
    """A map's name in words, for titles: what the built-in families offer, else its key."""
    if key.startswith("stage") and key[5:].isdigit():
        return f"spatial attention of stage {key[5:]} ({key})"
    return IMAGE_MAP_WORDS.get(key, key)


def sequence_attention_picture(
    name: str | Resolved,
    inputs: Sequence[str | Path],
    *,
    map: str | None = None,
    head: sm.Head = None,
    vocabularies: Sequence[str] = (),
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> SequenceAttentionPicture:
    """Draw the attention of a sequence model between the positions of its inputs.

    Args:
        name: A sequence model, by any name form (`zoo.weights.resolve`).
        inputs: Each input the model takes, in order: token ids written out ("12 7 33 5" or
            "12,7,33,5"), or a file of feature frames (.npy, or .safetensors holding one
            tensor), (frames, features).
        map: The map to draw, by name (`layer1`, `alignment`); default the model's first.
        head: None: the mean over heads; a number: that head (from 0); "all": one panel each.
        vocabularies: Vocabulary files to label token ids with, the token of id i on line
            i + 1: `FILE` for every token input, `INPUT=FILE` for one.
        checkpoint, device, dtype, registry: As for `zoo.tasks.sequence_maps.sequence_model`.
        num_classes, model_args: Builder arguments the checkpoint was trained with.

    Raises:
        ArgumentError: Inputs that do not fit the model, a head it does not have, a
            vocabulary that is not its.
        AttentionMapError: The model offers no maps, or not the one asked for.
    """
    model_args = {**(model_args or {}), **({"num_classes": num_classes} if num_classes is not None else {})}
    resolved = resolve(name, registry)
    model = sm.sequence_model(
        resolved, checkpoint=checkpoint, device=device, dtype=dtype, registry=registry, model_args=model_args
    )
    declared = sm.sequence_inputs(model)
    given = _sequence_inputs(declared, inputs, str(resolved))
    labels = _vocabularies(vocabularies, declared)
    what = described(str(resolved), weights_label(resolved, checkpoint))
    wanted, chosen = choose_map(sm.sequence_maps(model, given, name=what), map, name=str(resolved))
    heads = _heads_drawn(head, chosen.weights.shape[1], f"the {wanted} map of {resolved}")
    heatmap = sm.draw_sequence_map(
        chosen,
        given,
        head=head,
        vocabularies=labels,
        title=f"{resolved}: {wanted}, {heads}",
        what=f"the {wanted} map of {resolved}",
    )
    rows, columns = sm.axis_labels(chosen, given, vocabularies=labels)
    axes = f"{chosen.queries or ' / '.join(chosen.query_prefix)} over {chosen.keys}"
    return SequenceAttentionPicture(heatmap, str(resolved), wanted, head, heads, axes, rows, columns)


def choose_map(
    maps: Mapping[str, Any], wanted: str | None, *, name: str, asked: str | None = None
) -> tuple[str, Any]:
    """The map asked for (the model's first when none is) and its key.

    Raises:
        AttentionMapError: No such map; the error names `asked` (default `--map WANTED`) and
            the maps offered, each with the option that asks for it.
    """
    wanted = wanted if wanted is not None else next(iter(maps))
    if wanted not in maps:
        images = all(hasattr(value, "ndim") for value in maps.values())
        offered = ", ".join(_how_to_ask(key, images) for key in maps)
        asked = asked if asked is not None else f"--map {wanted}"
        raise AttentionMapError(f"{asked}: {name} has no such map; it offers {offered}")
    return wanted, maps[wanted]


def _how_to_ask(key: str, images: bool) -> str:
    if not images:
        return f"{key} (--map {key})"
    if key.startswith("stage") and key[5:].isdigit():
        return f"{key} (--stage {key[5:]})"
    return f"{key} (--method {key})"


def _sequence_inputs(
    declared: Sequence[SequenceInput], given: Sequence[str | Path], name: str
) -> dict[str, torch.Tensor]:
    """Each input by name: token ids parsed, feature frames read."""
    if len(given) != len(declared):
        takes = ", ".join(f"{spec.name} ({_kind_words(spec.kind)})" for spec in declared)
        raise ArgumentError(f"{name} takes {len(declared)} input(s), {takes}; got {len(given)}")
    return {spec.name: _read_input(spec, value) for spec, value in zip(declared, given, strict=True)}


def _read_input(spec: SequenceInput, value: str | Path) -> torch.Tensor:
    return sm.parse_token_ids(str(value), spec) if spec.kind == "tokens" else sm.read_features(value, spec)


def _kind_words(kind: str) -> str:
    return "token ids" if kind == "tokens" else "a features file"


def _vocabularies(options: Sequence[str], declared: Sequence[SequenceInput]) -> dict[str, tuple[str, ...]]:
    """`FILE` for every token input, `INPUT=FILE` for one."""
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


def _heads_drawn(head: sm.Head, heads: int, what: str) -> str:
    """The heads drawn, in words; a head the map does not have is refused."""
    if isinstance(head, int) and head >= heads:
        raise ArgumentError(f"--head {head}: {what} has {heads} head(s), 0 to {heads - 1}")
    if head == "all":
        return "every head"
    if head is not None:
        return f"head {head}"
    return "one head" if heads == 1 else "heads averaged"


def _scaled(
    box: tuple[float, float, float, float], size: tuple[int, int], shown: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A box in the pixels of an image of `size`, in those of its copy of size `shown`."""
    sx, sy = shown[0] / size[0], shown[1] / size[1]
    left, top, right, bottom = box
    return left * sx, top * sy, right * sx, bottom * sy
