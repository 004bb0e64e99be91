"""Eval preprocessing of a weight tag, with PIL and torch only.

The values come from the registry: a weight tag's `preprocessing` (input size, crop
fraction, interpolation, mean and std), so the core knows no model:

    >>> import zoo
    >>> zoo.data_config("vit_base_patch16_224").crop_pct
    0.9
    >>> transform = zoo.transforms("resnet50.a1_in1k")
    >>> x = transform(zoo.load_image("cat.jpg"))   # (3, 224, 224) float32

The eval transform, for an input size (C, H, W) and crop fraction `crop_pct`:

1. resize, keeping the aspect ratio, so that the image covers
   `floor(H / crop_pct) x floor(W / crop_pct)` (for a square input: the shorter side becomes
   `floor(H / crop_pct)`, the longer one `int(that * long / short)`), with the tag's
   interpolation;
2. crop H x W from the centre (offsets `round((size - crop) / 2)`, ties to even);
3. scale to floats in [0, 1] (C, H, W), then `(x - mean) / std` per channel.

A name without weights (`resnet50_cbam`) gets the ImageNet defaults: mean
(0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), crop 0.875, bicubic, at the model's own
input size (its `img_size` argument where its builder has one, else 224).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, ImageError
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, model_of
from ..registry.schema import IMAGENET_MEAN, IMAGENET_PREPROCESSING, IMAGENET_STD, Preprocessing
from ..weights.resolve import resolve

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "DEFAULT_CROP_PCT",
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_INTERPOLATION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageTransform",
    "data_config",
    "load_image",
    "transforms",
]

DEFAULT_CROP_PCT = IMAGENET_PREPROCESSING.crop_pct
DEFAULT_INTERPOLATION = IMAGENET_PREPROCESSING.interpolation
DEFAULT_INPUT_SIZE = IMAGENET_PREPROCESSING.input_size[1]


def data_config(
    name_or_tag: str | Resolved,
    *,
    use_test_size: bool = False,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> Preprocessing:
    """The eval preprocessing of a weight tag.

    Args:
        name_or_tag: `name.tag`, or a name (its default tag; ImageNet defaults if it has no
            published weights, see the module docstring), or any other name form
            (`hf-hub:ORG/REPO`, an exported folder).
        use_test_size: Use the tag's `test_input_size` where it has one (ResNet Strikes
            Back weights are evaluated at 288 pixels though trained at 224).
        model_args: Builder arguments the model was built with on top of the registry's
            (`{"img_size": 384}`): a model whose builder fixes its input size by `img_size`
            or `in_chans` then gets that size.
        registry: The registry to use instead of the installed plugins' one.

    Returns:
        A frozen `Preprocessing` (`input_size`, `mean`, `std`, `crop_pct`, `interpolation`,
        `test_input_size`); `.model_dump()` gives a plain dict.
    """
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name_or_tag, registry)
    task = registry.task(resolved)
    if task not in IMAGE_TASKS:
        raise ArgumentError(
            f"'{resolved}' is {model_of(task)}: it takes no images, so it has no preprocessing"
        )
    tag = resolved.tag or resolved.entry.default_weight_tag
    model_args = dict(model_args or {})
    base = resolved.entry.weights[tag].preprocessing_or_none if tag is not None else None
    if base is not None and not model_args:
        return _test_size(base) if use_test_size else base

    config = registry.build_config(replace(resolved, tag=tag), model_args)
    img_size = getattr(config, "img_size", None)
    in_chans = getattr(config, "in_chans", None)
    if base is None:
        channels = in_chans if in_chans is not None else 3
        if channels != len(IMAGENET_MEAN):
            raise ArgumentError(
                f"'{resolved}' has no published weights and takes {channels} channels: there is no "
                "default mean and std for it; build a zoo.registry.schema.Preprocessing and pass it to "
                "zoo.transforms"
            )
        size = img_size if isinstance(img_size, int) else DEFAULT_INPUT_SIZE
        return IMAGENET_PREPROCESSING.model_copy(update={"input_size": (channels, size, size)})
    if in_chans is not None and in_chans != base.input_size[0]:
        raise ArgumentError(
            f"{resolved.name}.{tag} was trained on {base.input_size[0]} channels; its mean and std "
            f"do not fit in_chans={in_chans}"
        )
    if isinstance(img_size, int) and (img_size, img_size) != tuple(base.input_size[1:]):
        # The model takes one size only: the tag's test size no longer applies.
        return base.model_copy(
            update={"input_size": (base.input_size[0], img_size, img_size), "test_input_size": None}
        )
    return _test_size(base) if use_test_size else base


def _test_size(config: Preprocessing) -> Preprocessing:
    if config.test_input_size is None:
        return config
    return config.model_copy(update={"input_size": config.test_input_size})


def transforms(
    name_or_config: str | Resolved | Preprocessing,
    *,
    use_test_size: bool = False,
    model_args: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> ImageTransform:
    """The eval transform of a weight tag: a callable `PIL.Image -> Tensor (C, H, W)`.

    Takes what `data_config` takes, or a `Preprocessing` of one's own.
    """
    if isinstance(name_or_config, Preprocessing):
        return ImageTransform(name_or_config)
    return ImageTransform(
        data_config(name_or_config, use_test_size=use_test_size, model_args=model_args, registry=registry)
    )


class ImageTransform:
    """Resize, centre crop, scale to [0, 1] and normalise (see the module docstring)."""

    def __init__(self, config: Preprocessing) -> None:
        self.config = config
        channels, height, width = config.input_size
        self.channels = channels
        self.crop_size = (height, width)
        self.resize_box = (math.floor(height / config.crop_pct), math.floor(width / config.crop_pct))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ImageTransform(resize={self.resize_box[0]}x{self.resize_box[1]} {c.interpolation}, "
            f"crop={self.crop_size[0]}x{self.crop_size[1]}, mean={list(c.mean)}, std={list(c.std)})"
        )

    def resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) an image of `size` (width, height) is resized to."""
        width, height = size
        box_height, box_width = self.resize_box
        if box_height * width >= box_width * height:  # the height binds (for a square box: the shorter side)
            return max(box_width, int(box_height * width / height)), box_height
        return box_width, max(box_height, int(box_width * height / width))

    def crop_offsets(self, size: tuple[int, int]) -> tuple[int, int]:
        """(left, top) of the centre crop in the resized image."""
        resized_width, resized_height = self.resized_size(size)
        crop_height, crop_width = self.crop_size
        # round() to the nearest, ties to even: round(2.5) == 2, round(5.5) == 6
        return round((resized_width - crop_width) / 2), round((resized_height - crop_height) / 2)

    def crop_box(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The part of an image of `size` (width, height) the model sees, in its own pixels:
        (left, top, right, bottom)."""
        width, height = size
        resized_width, resized_height = self.resized_size(size)
        left, top = self.crop_offsets(size)
        crop_height, crop_width = self.crop_size
        sx, sy = resized_width / width, resized_height / height
        return left / sx, top / sy, (left + crop_width) / sx, (top + crop_height) / sy

    def __call__(self, image: Image.Image) -> torch.Tensor:
        import numpy as np
        import torch
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(image).__name__} (see zoo.load_image)")
        image = image.convert("RGB" if self.channels == 3 else "L" if self.channels == 1 else image.mode)
        if len(image.getbands()) != self.channels:
            raise ArgumentError(f"cannot make {self.channels}-channel input from a {image.mode} image")
        resized = self.resized_size(image.size)
        if resized != image.size:
            image = image.resize(resized, _resample(self.config.interpolation))
        left, top = self.crop_offsets(image.size)
        crop_height, crop_width = self.crop_size
        image = image.crop((left, top, left + crop_width, top + crop_height))

        pixels = np.asarray(image, dtype=np.uint8).reshape(crop_height, crop_width, self.channels)
        x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)  # (C, H, W)
        mean = torch.tensor(self.config.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.config.std, dtype=torch.float32).view(-1, 1, 1)
        return x.sub_(mean).div_(std)


def _resample(interpolation: str) -> int:
    from PIL import Image

    return {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }[interpolation]


def load_image(path: str | Path) -> Image.Image:
    """Open an image file fully, turned upright by its EXIF orientation.

    Raises:
        ImageError: the file is missing, unreadable, or not an image PIL can decode.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)  # a copy, detached from the file
    except FileNotFoundError:
        raise ImageError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ImageError(str(path), "is a directory") from None
    except PermissionError:
        raise ImageError(str(path), "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(str(path), "not an image (or a format PIL cannot read)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageError(str(path), f"cannot read the image: {error}") from None
    return image
