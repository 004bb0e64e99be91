"""The typed `attn` argument of model configs: an attention variant by name, with options.

A family's config declares `attn: ChannelAttention` (or `TokenAttention`, ...); validated
with a registry in the pydantic context, the name must be a registered variant of that kind
and the options must fit the variant's class (see `zoo.registry.attention` for the kinds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, ValidationInfo, model_validator

from ..errors import ArgumentError, ZooError
from .source import NO_BOOLEAN, YAML_BOOLEANS, describe_errors, misplaced_bool

if TYPE_CHECKING:
    import torch

    from .registry import AttentionVariant, Registry

__all__ = [
    "AlignmentAttention",
    "AttentionSpec",
    "ChannelAttention",
    "ClassAttention",
    "ConvAttention",
    "MapAttention",
    "MapPoolingAttention",
    "LatentPoolAttention",
    "PoolingAttention",
    "SequenceAttention",
    "TokenAttention",
    "WindowAttention",
    "attention_in",
    "registry_form",
]


class AttentionSpec(BaseModel):
    """An attention variant by name with its options.

    Accepts `"cbam"`, `{"name": "cbam", "kernel_size": 3}` or
    `{"name": "cbam", "options": {"kernel_size": 3}}`. Validated with a registry in the
    validation context, the name and options are checked against the registered class.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = "channel"

    name: str
    options: dict[str, Any] = {}
    _variant: AttentionVariant | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, Mapping) and "name" in value and "options" not in value:
            return {"name": value["name"], "options": {k: v for k, v in value.items() if k != "name"}}
        return value

    @model_validator(mode="after")
    def _check_against_registry(self, info: ValidationInfo) -> AttentionSpec:
        registry = (info.context or {}).get("registry")
        if registry is not None:
            try:
                self._bind(registry)
            except ZooError as error:  # reported by pydantic at this field's location
                raise ValueError(str(error)) from None
        return self

    def _bind(self, registry: Registry) -> AttentionVariant:
        variant = registry.attention(self.name, kind=self.kind)
        misplaced = misplaced_bool(variant.options_model(), self.options)
        if misplaced is not None:
            where, value = misplaced
            raise ArgumentError(
                f"attention '{self.name}': option '{where}' {NO_BOOLEAN}, not {value!r} {YAML_BOOLEANS}"
            )
        try:
            variant.options_model().model_validate(self.options)
        except ValidationError as error:
            options = list(variant.options_model().model_fields)
            message = describe_errors(error, label="option", known=options, owner=f"'{variant.name}'")
            raise ArgumentError(f"attention '{self.name}': {message}") from None
        self._variant = variant
        return variant

    def build(self, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Instantiate the variant with the interface arguments of its kind (an optional
        keyword only if the variant's constructor names it)."""
        variant = self._variant
        if variant is None:
            from .plugins import default_registry

            variant = self._bind(default_registry())
        options = variant.options_model().model_validate(self.options)
        return variant.instantiate(*args, **kwargs, **dict(options))

    def __str__(self) -> str:
        if not self.options:
            return self.name
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.name}({options})"


class ChannelAttention(AttentionSpec):
    """A channel attention for conv blocks (SE, CBAM, ECA, ...)."""

    kind: ClassVar[str] = "channel"


class TokenAttention(AttentionSpec):
    """A token attention for transformer blocks."""

    kind: ClassVar[str] = "token"


class SequenceAttention(AttentionSpec):
    """A masked multi-head attention for sequence models (self- or cross-attention)."""

    kind: ClassVar[str] = "sequence"


class PoolingAttention(AttentionSpec):
    """An attention that pools a sequence to one vector (soft or hard attention)."""

    kind: ClassVar[str] = "pooling"


class AlignmentAttention(AttentionSpec):
    """An attention that aligns a decoder state with encoder outputs (additive, ...)."""

    kind: ClassVar[str] = "alignment"


class WindowAttention(AttentionSpec):
    """A self-attention within the windows of a token grid (Swin's window attention)."""

    kind: ClassVar[str] = "window"


class ClassAttention(AttentionSpec):
    """An attention from the class token over all tokens (CaiT's class attention)."""

    kind: ClassVar[str] = "class"


class ConvAttention(AttentionSpec):
    """An attention that is a residual block's spatial convolution (Selective Kernel, split
    attention, bottleneck self-attention)."""

    kind: ClassVar[str] = "conv"


class MapAttention(AttentionSpec):
    """A self-attention among the positions of a feature map (MobileNetV4's multi-query
    attention)."""

    kind: ClassVar[str] = "map"


class MapPoolingAttention(AttentionSpec):
    """An attention that pools a feature map to one vector (CLIP's attention pooling)."""

    kind: ClassVar[str] = "map_pooling"


class LatentPoolAttention(AttentionSpec):
    """An attention-pooling head: learned queries attend over the tokens (SigLIP's MAP)."""

    kind: ClassVar[str] = "latent_pool"


def attention_in(config: Any) -> list[AttentionVariant]:
    """The attention variants a validated config names, in any of its fields (nested
    configs and lists included)."""
    found: list[AttentionVariant] = []
    if isinstance(config, AttentionSpec):
        if config._variant is not None:
            found.append(config._variant)
    elif isinstance(config, BaseModel):
        for name in type(config).model_fields:
            found.extend(attention_in(getattr(config, name)))
    elif isinstance(config, (list, tuple)):
        for item in config:
            found.extend(attention_in(item))
    return found


def registry_form(value: Any) -> Any:
    """A dumped attention spec as registry files write it (`"cbam"`, `{"name": "cbam",
    "kernel_size": 3}`); any other value unchanged."""
    if not (isinstance(value, Mapping) and set(value) == {"name", "options"}):
        return value
    return {"name": value["name"], **value["options"]} if value["options"] else value["name"]
