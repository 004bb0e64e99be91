"""The shape of registry data: model entries and their published weight tags.

These models only check structure. Whether an entry's `args` fit its builder is checked by
`Registry.validate`, which knows the builders.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .labels import LABEL_SETS

__all__ = ["Preprocessing", "WeightTag", "ModelEntry", "RegistryFile", "NAME_PATTERN"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_]*$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_]*$"
HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"

UnitFloat = Annotated[float, Field(gt=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Preprocessing(_Strict):
    """Eval preprocessing the weights were trained for (timm's data config)."""

    input_size: tuple[int, int, int] = Field(description="(channels, height, width)")
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: UnitFloat = 0.875
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bicubic"
    test_input_size: tuple[int, int, int] | None = None

    @model_validator(mode="after")
    def _one_value_per_channel(self) -> Preprocessing:
        channels = self.input_size[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values, one per input channel")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


class WeightTag(_Strict):
    """One published checkpoint of a model."""

    hf_hub_id: str = Field(pattern=HUB_ID_PATTERN)
    filename: str = Field(default="model.safetensors", pattern=r"\.safetensors$")
    revision: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    num_classes: int = Field(ge=0, description="0: the checkpoint has no classifier head")
    preprocessing: Preprocessing
    license: str
    adapter: str | None = Field(
        default=None, description="key adapter for checkpoints whose tensor names differ"
    )
    description: str | None = None
    labels: str | None = Field(
        default=None, description="label set the head's outputs follow: " + ", ".join(LABEL_SETS)
    )

    @field_validator("labels")
    @classmethod
    def _labels_fit_the_head(cls, labels: str | None, info: ValidationInfo) -> str | None:
        if labels is None:
            return labels
        if labels not in LABEL_SETS:
            raise ValueError(f"unknown label set '{labels}' (known: {', '.join(LABEL_SETS)})")
        num_classes = info.data.get("num_classes")
        if num_classes is not None and num_classes != LABEL_SETS[labels]:
            raise ValueError(
                f"label set '{labels}' has {LABEL_SETS[labels]} classes but the checkpoint has "
                + (f"{num_classes}" if num_classes else "no head (num_classes 0)")
            )
        return labels


class ModelEntry(_Strict):
    """A registry name: a builder, its arguments and the weights published for it."""

    builder: str = Field(pattern=NAME_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    paper: str | None = None
    default_tag: str | None = None
    weights: dict[Annotated[str, Field(pattern=TAG_PATTERN)], WeightTag] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_tag_is_published(self) -> ModelEntry:
        if self.default_tag is not None and self.default_tag not in self.weights:
            raise ValueError(f"default_tag '{self.default_tag}' is not one of its weights")
        return self

    @property
    def default_weight_tag(self) -> str | None:
        """The tag `pretrained=True` uses: `default_tag`, else the first one listed."""
        if self.default_tag is not None:
            return self.default_tag
        return next(iter(self.weights), None)

    @property
    def attention(self) -> str | None:
        """The attention variant named by the builders' shared `attn` argument, if any."""
        attn = self.args.get("attn")
        if isinstance(attn, dict):
            return attn.get("name")
        return attn if isinstance(attn, str) else None


class RegistryFile(_Strict):
    """A registry file: `models:` maps names to entries; `defaults:` holds YAML anchors."""

    models: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ModelEntry]
    defaults: Any = Field(default=None, description="free space for YAML anchors")
