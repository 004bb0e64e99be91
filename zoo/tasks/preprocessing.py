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
   (`crop_mode: squash`: each side to its own size instead, the aspect ratio not kept);
2. crop H x W from the centre (offsets `round((size - crop) / 2)`, ties to even);
3. scale to floats in [0, 1] (C, H, W), then `(x - mean) / std` per channel.

An 8-bit image is resized in 8 bits by PIL and divided by 255; a 16-bit, 32-bit or float
image is brought to floats in [0, 1] (PIL mode F, see `load_image`) and resized in floats,
so it keeps its precision to the tensor.

A name that borrows published weights (`resnet50_cbam`, whose `backbone` is
`resnet50.a1_in1k`) gets their preprocessing. A name with neither (`regnety_002`) gets the
ImageNet defaults: mean
(0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), crop 0.875, bicubic, at the model's own
input size (its `img_size` argument where its builder has one, else 224).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, ImageError
from ..registry import Registry, Resolved, default_registry
from ..registry.family import IMAGE_TASKS, image_size, model_of
from ..registry.schema import IMAGENET_MEAN, IMAGENET_PREPROCESSING, IMAGENET_STD, Preprocessing
from ..weights.resolve import resolve

if TYPE_CHECKING:
    import torch
    from PIL import Image
    from pydantic import BaseModel

__all__ = [
    "DEFAULT_CROP_PCT",
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_INTERPOLATION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BACKGROUND",
    "ImageTransform",
    "bounded_size",
    "data_config",
    "fitted_data_config",
    "load_image",
    "rgb_for_display",
    "standard_image",
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
    return fitted_data_config(resolved, registry, model_args=model_args, use_test_size=use_test_size)


def fitted_data_config(
    resolved: Resolved,
    registry: Registry,
    *,
    model_args: Mapping[str, Any] | None = None,
    config: BaseModel | None = None,
    use_test_size: bool = False,
) -> Preprocessing:
    """`data_config` of a resolved image model, fitted to the builder config it is built with.

    Args:
        resolved: A model of images.
        registry: The registry it was resolved in.
        model_args: Builder arguments the model is built with on top of the registry's.
        config: The builder config the model was built with (from `model_args`), already
            checked; built here when needed and not given.
        use_test_size: As for `data_config`.
    """
    weights = resolved.selected
    base = weights.preprocessing if weights is not None else None
    if base is not None and not model_args:
        return _test_size(base) if use_test_size else base

    if config is None:
        config = registry.build_config(resolved, dict(model_args or {}), weights=resolved.published)
    grid = image_size(config)
    in_chans = getattr(config, "in_chans", None)
    if base is None:
        channels = in_chans if in_chans is not None else 3
        if channels != len(IMAGENET_MEAN):
            raise ArgumentError(
                f"'{resolved}' has no published weights and takes {channels} channels: there is no "
                "default mean and std for it; build a zoo.registry.schema.Preprocessing and pass it to "
                "zoo.transforms"
            )
        height, width = grid or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
        return IMAGENET_PREPROCESSING.model_copy(update={"input_size": (channels, height, width)})
    if in_chans is not None and in_chans != base.input_size[0]:
        raise ArgumentError(
            f"{weights} was trained on {base.input_size[0]} channels; its mean and std "
            f"do not fit in_chans={in_chans}"
        )
    if grid is not None and grid != tuple(base.input_size[1:]):
        # The model takes one size only: the tag's test size no longer applies.
        return base.model_copy(update={"input_size": (base.input_size[0], *grid), "test_input_size": None})
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
        if self.config.crop_mode == "squash":
            return box_width, box_height
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
        import torch
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image, got {type(image).__name__} (see zoo.load_image)")
        image = self._with_channels(image)
        x = self._float_pixels(image) if image.mode == "F" else self._eight_bit_pixels(image)
        mean = torch.tensor(self.config.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.config.std, dtype=torch.float32).view(-1, 1, 1)
        return x.sub_(mean).div_(std)

    def _with_channels(self, image: Image.Image) -> Image.Image:
        """The image in the standard mode (see `load_image`), with the model's channels."""
        if self.channels not in (1, 3):
            if len(image.getbands()) != self.channels:
                raise ArgumentError(f"cannot make {self.channels}-channel input from a {image.mode} image")
            return image
        image = standard_image(image)
        if image.mode == "F":
            return image  # one band, repeated for three channels once resized
        return image.convert("RGB" if self.channels == 3 else "L")

    def _resized_and_cropped(self, image: Image.Image) -> Image.Image:
        resized = self.resized_size(image.size)
        if resized != image.size:
            image = image.resize(resized, _resample(self.config.interpolation))
        left, top = self.crop_offsets(image.size)
        crop_height, crop_width = self.crop_size
        return image.crop((left, top, left + crop_width, top + crop_height))

    def _eight_bit_pixels(self, image: Image.Image) -> torch.Tensor:
        """(C, H, W) in [0, 1] from an 8-bit image: resized by PIL in 8 bits, then / 255."""
        import numpy as np
        import torch

        crop_height, crop_width = self.crop_size
        image = self._resized_and_cropped(image)
        pixels = np.asarray(image, dtype=np.uint8).reshape(crop_height, crop_width, self.channels)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)

    def _float_pixels(self, image: Image.Image) -> torch.Tensor:
        """(C, H, W) from a float image in [0, 1]: resized by PIL in floats, never rounded."""
        import numpy as np
        import torch

        band = np.asarray(self._resized_and_cropped(image), dtype=np.float32)
        return torch.from_numpy(band.copy()).unsqueeze(0).repeat(self.channels, 1, 1)


def _resample(interpolation: str) -> int:
    from PIL import Image

    return {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }[interpolation]


# What `standard_image` does with each mode PIL opens (see `load_image`).
BACKGROUND = (255, 255, 255)
"""The colour transparent pixels are shown on: white, as viewers and browsers show them."""
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_AS_RGB = frozenset({"RGB", "RGBX", "P", "CMYK", "YCbCr", "LAB", "HSV"})
_WITH_ALPHA = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_FULL_16_BIT = 65535


def standard_image(image: Image.Image, name: str | None = None) -> Image.Image:
    """The image in one of three modes, by the rules of `load_image`: "RGB", "L" (8-bit
    grey) or "F" (one band of floats in [0, 1], for 16-bit, 32-bit and float images).

    Raises:
        ImageError: a mode that cannot be read without losing values (see `load_image`).
    """
    name = name if name is not None else getattr(image, "filename", "") or "the image"
    try:
        return _in_standard_mode(image, name)
    except ImageError:
        raise
    except ValueError as error:  # a conversion PIL does not have
        raise ImageError(name, f"cannot convert a {image.mode} image to RGB: {error}") from None


def _in_standard_mode(image: Image.Image, name: str) -> Image.Image:
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        return _scaled_to_unit(image.convert("F"))
    if mode == "I":
        return _scaled_to_unit(_checked(image, name, 0, _FULL_16_BIT, "32-bit integer", "0..65535"))
    if mode == "F":
        return _checked(image, name, 0.0, 1.0, "float", "[0, 1]")
    if mode in _WITH_ALPHA or (mode in _AS_RGB | {"L", "1"} and image.has_transparency_data):
        return _on_background(image)
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in _AS_RGB:
        return image.convert("RGB")
    raise ImageError(name, f"images of mode {mode} cannot be read; save it as RGB, grey or 16-bit")


def rgb_for_display(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, for drawing on: `standard_image`, floats rounded to 8 bits."""
    import numpy as np
    from PIL import Image

    image = standard_image(image)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32) * np.float32(255)
        image = Image.fromarray(np.rint(values).astype(np.uint8))
    return image.convert("RGB")


def _checked(image: Image.Image, name: str, low: float, high: float, kind: str, allowed: str) -> Image.Image:
    """`image` if all its values lie in [low, high]; else one line saying what they are."""
    import numpy as np

    values = np.asarray(image)
    if values.size == 0:
        return image
    least, most = values.min(), values.max()
    if not (np.isfinite(least) and np.isfinite(most) and least >= low and most <= high):
        raise ImageError(
            name,
            f"{kind} pixels from {least:.6g} to {most:.6g}: only values in {allowed} can be read "
            "without clipping; scale them to [0, 1] as float or save as 16-bit",
        )
    return image


def _scaled_to_unit(image: Image.Image) -> Image.Image:
    """An I or F image of values in 0..65535 as floats in [0, 1] (mode F)."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image.convert("F"), dtype=np.float32) / np.float32(_FULL_16_BIT)
    return Image.fromarray(values)


def _on_background(image: Image.Image) -> Image.Image:
    """An image with transparency composited on `BACKGROUND`, as RGB."""
    from PIL import Image

    rgba = (image.convert("LA") if image.mode == "La" else image).convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def load_image(path: str | Path, *, max_size: int | None = None) -> Image.Image:
    """Open an image file fully, turned upright by its EXIF orientation, in a standard mode.

    Every mode PIL opens is read without clipping, or refused in one line:

    - 8-bit colour (RGB, P, CMYK, YCbCr, LAB, HSV) becomes RGB as PIL converts it; 8-bit
      grey (L, 1) stays grey (L).
    - Transparency (RGBA, LA, PA, or P, L and RGB with a transparent colour) is composited
      on white (`BACKGROUND`) into RGB, as viewers and browsers show it: a dark drawing on
      a transparent background stays visible, where black would hide it.
    - 16-bit grey (I;16, I;16B, I;16L, I;16N) is scaled by its full range, v / 65535, to
      floats in [0, 1] (mode F); 32-bit integers (I) the same when all lie in 0..65535,
      else refused.
    - Floats (F) are used as they are when all lie in [0, 1]; else (NaN too) refused.
    - Any other mode is refused.

    The transforms keep F images in floats all the way to the tensor. An image of more
    than `PIL.Image.MAX_IMAGE_PIXELS` pixels is read with a one-line warning on the `zoo`
    logger; one of more than twice as many is refused (PIL's decompression-bomb limits).

    Args:
        path: The file.
        max_size: Give a reduced copy instead, for showing: its longer side at most
            `max_size` pixels (`bounded_size` of the full size). A JPEG is decoded at a
            reduced scale (`Image.draft`), so its full size is never in memory; other
            formats are reduced after decoding. It is read without the warning on large
            images (given when the image itself is read), within the same hard limit.

    Raises:
        ImageError: the file is missing, unreadable, not an image PIL can decode, too
            large, or of values that would be clipped.
    """
    from PIL import Image

    path = Path(path)
    target = None
    with _reading(path), Image.open(path) as opened:
        if max_size is None:
            _warn_if_large(opened.size, path)
        else:
            target = bounded_size(_upright_size(opened), max_size)
            opened.draft(None, target if not _turns(opened) else target[::-1])
        opened.load()
        image = _upright(opened)
    image = standard_image(image, str(path))
    if target is not None and image.size != target:
        image = image.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return image


def bounded_size(size: tuple[int, int], max_size: int) -> tuple[int, int]:
    """(width, height) of `size` scaled down so that its longer side is at most `max_size`."""
    width, height = size
    scale = max_size / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


_EXIF_ORIENTATION = 0x0112


def _turns(image: Image.Image) -> bool:
    """Whether the EXIF orientation of `image` turns it by 90 degrees (swaps its sides)."""
    return image.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8)


def _upright_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if _turns(image) else (width, height)


def _upright(image: Image.Image) -> Image.Image:
    """A loaded image turned by its EXIF orientation, in place (no second copy)."""
    from PIL import ImageOps

    ImageOps.exif_transpose(image, in_place=True)
    return image


def _warn_if_large(size: tuple[int, int], path: Path) -> None:
    """One line on the `zoo` logger for an image above PIL's warning limit."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    pixels = size[0] * size[1]
    if limit is not None and pixels > limit:
        logging.getLogger("zoo").warning(
            f"{path} is {_megapixels(pixels)} ({size[0]}x{size[1]}), above PIL's "
            f"{_megapixels(limit)} limit for images it trusts; reading it anyway"
        )


def _megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.3g} MP"


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Errors of opening and decoding `path` as one-line `ImageError`s; PIL's
    decompression-bomb warning left to `_warn_if_large`."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except FileNotFoundError:
        raise ImageError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ImageError(str(path), "is a directory") from None
    except PermissionError:
        raise ImageError(str(path), "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(str(path), "not an image (or a format PIL cannot read)") from None
    except Image.DecompressionBombError as error:
        raise ImageError(str(path), _bomb_reason(str(error))) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(str(path), f"cannot read the image: {error}") from None


def _bomb_reason(message: str) -> str:
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", message)
    size = f"is {_megapixels(int(found.group(1)))}, " if found else ""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (
        f"{size}more than PIL's limit of {_megapixels(limit)} (it could be a decompression bomb); "
        "raise PIL.Image.MAX_IMAGE_PIXELS to read it"
    )
