"""The shape of registry data: model entries and their published weight tags.

These models only check structure. Whether an entry's `args` fit its builder is checked by
`Registry.validate`, which knows the builders.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .family import TASKS
from .labels import LABEL_SETS

__all__ = [
    "HUB_ID_PATTERN",
    "IMAGENET_MEAN",
    "IMAGENET_PREPROCESSING",
    "IMAGENET_STD",
    "NAME_PATTERN",
    "WEIGHTS_NAME_PATTERN",
    "WEIGHT_TYPES",
    "ImageClassificationWeights",
    "ImageEmbeddingWeights",
    "ImageNetResult",
    "ModelEntry",
    "Preprocessing",
    "RegistryFile",
    "SequenceClassificationWeights",
    "SequenceToSequenceWeights",
    "WeightTag",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_]*$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_]*$"
WEIGHTS_NAME_PATTERN = r"^[a-z0-9][a-z0-9_]*\.[a-z0-9][a-z0-9_]*$"
"""`name.tag`: one published checkpoint of a registry entry."""
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
    crop_mode: Literal["center", "squash"] = Field(
        default="center",
        description="center: resize keeping the aspect ratio, then crop the centre; squash: resize "
        "each side to its size / crop_pct (the aspect ratio is not kept), then crop the centre",
    )

    @model_validator(mode="after")
    def _one_value_per_channel(self) -> Preprocessing:
        channels = self.input_size[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} values, one per input channel")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_PREPROCESSING = Preprocessing(
    input_size=(3, 224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=0.875, interpolation="bicubic"
)
"""What a model without published weights is fed: ImageNet's statistics at 224 pixels."""


class ImageNetResult(_Strict):
    """A checkpoint's published ImageNet-1k validation accuracy and the eval it holds at."""

    top1: float = Field(gt=0.0, le=100.0, description="top-1 accuracy, percent")
    top5: float = Field(gt=0.0, le=100.0, description="top-5 accuracy, percent")
    img_size: int = Field(ge=1, description="the square image size it was evaluated at")
    crop_pct: UnitFloat
    interpolation: Literal["nearest", "bilinear", "bicubic"] = "bicubic"

    @model_validator(mode="after")
    def _top5_holds_top1(self) -> ImageNetResult:
        if self.top1 > self.top5:
            raise ValueError(f"top1 {self.top1} is above top5 {self.top5}")
        return self


class _Weights(_Strict):
    """Where a published checkpoint is and what it may be used for; the task's fields follow."""

    hf_hub_id: str | None = Field(default=None, pattern=HUB_ID_PATTERN)
    path: str | None = Field(
        default=None, description="a local safetensors file, instead of a Hub repository"
    )
    filename: str = Field(
        default="model.safetensors",
        pattern=r"\.safetensors(\.index\.json)?$",
        description="the safetensors file, or a sharded checkpoint's index (model.safetensors.index.json)",
    )
    revision: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    license: str
    adapter: str | None = Field(
        default=None, description="key adapter for checkpoints whose tensor names differ"
    )
    description: str | None = None
    paper: str | None = Field(default=None, description="the paper the checkpoint was published with")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="builder arguments the checkpoint fixes beyond its head (the activation it was "
        "trained with, a projection's width)",
    )
    num_params: int | None = Field(
        default=None, ge=0, description="parameters (not buffers) of the model the checkpoint loads into"
    )
    gmacs: float | None = Field(
        default=None,
        ge=0.0,
        description="billions of multiply-adds of one sample's forward pass, as zoo.flops counts "
        "them at the input size of the preprocessing",
    )

    def builder_args(self) -> dict[str, Any]:
        """The builder arguments this checkpoint fixes: its own `args`, its head, its vocabularies."""
        return {**self.args, **self.head_args()}

    def head_args(self) -> dict[str, Any]:
        """The arguments of the task's head (classes, vocabularies): none here."""
        return {}

    @property
    def preprocessing_or_none(self) -> Preprocessing | None:
        """The image preprocessing the weights were trained for, for image tasks."""
        return getattr(self, "preprocessing", None)


class ImageClassificationWeights(_Weights):
    """Images to class logits: `num_classes`, image preprocessing, class names."""

    task: Literal["image-classification"] = "image-classification"
    num_classes: int = Field(ge=1)
    preprocessing: Preprocessing
    labels: str | None = Field(
        default=None, description="label set the head's outputs follow: " + ", ".join(LABEL_SETS)
    )
    label_names: tuple[str, ...] | None = Field(
        default=None, description="the checkpoint's own class names, in class-index order (a fine-tune's)"
    )
    label_descriptions: tuple[str, ...] | None = Field(
        default=None, description="a longer description of each of `label_names`, in the same order"
    )
    imagenet: ImageNetResult | None = None

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
                f"label set '{labels}' has {LABEL_SETS[labels]} classes but the checkpoint has {num_classes}"
            )
        return labels

    @model_validator(mode="after")
    def _label_names_fit_the_head(self) -> ImageClassificationWeights:
        if self.label_names is not None:
            if self.labels is not None:
                raise ValueError("labels (a label set) and label_names are given both: keep one")
            if len(self.label_names) != self.num_classes:
                raise ValueError(
                    f"{len(self.label_names)} label_names for a checkpoint of {self.num_classes} classes"
                )
        if self.label_descriptions is not None and len(self.label_descriptions) != len(
            self.label_names or ()
        ):
            raise ValueError("label_descriptions need label_names, one description per name")
        return self

    def head_args(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}


class ImageEmbeddingWeights(_Weights):
    """Images to embeddings: the embedding width and image preprocessing, no classifier."""

    task: Literal["image-embedding"]
    output_dim: int = Field(ge=1, description="width of the embeddings the model outputs")
    preprocessing: Preprocessing

    def head_args(self) -> dict[str, Any]:
        return {"num_classes": 0}


class SequenceClassificationWeights(_Weights):
    """Sequences to class logits: `num_classes` and, for token inputs, the vocabulary size."""

    task: Literal["sequence-classification"]
    num_classes: int = Field(ge=1)
    vocab_size: int | None = Field(default=None, ge=1, description="None for frame inputs (speech)")

    def head_args(self) -> dict[str, Any]:
        sizes = {"num_classes": self.num_classes}
        return sizes if self.vocab_size is None else {**sizes, "vocab_size": self.vocab_size}


class SequenceToSequenceWeights(_Weights):
    """Source to target sequences: both vocabulary sizes."""

    task: Literal["sequence-to-sequence"]
    src_vocab_size: int = Field(ge=1)
    tgt_vocab_size: int = Field(ge=1)

    def head_args(self) -> dict[str, Any]:
        return {"src_vocab_size": self.src_vocab_size, "tgt_vocab_size": self.tgt_vocab_size}


def _task_of(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("task", "image-classification")
    return getattr(value, "task", "image-classification")


WeightTag = Annotated[
    Annotated[ImageClassificationWeights, Tag("image-classification")]
    | Annotated[ImageEmbeddingWeights, Tag("image-embedding")]
    | Annotated[SequenceClassificationWeights, Tag("sequence-classification")]
    | Annotated[SequenceToSequenceWeights, Tag("sequence-to-sequence")],
    Discriminator(
        _task_of,
        custom_error_type="task",
        custom_error_message="unknown task (tasks: " + ", ".join(TASKS) + ")",
    ),
]
"""One published checkpoint of a model; its `task` (default image-classification) decides
its fields: see `zoo.registry.family` for the tasks."""

WEIGHT_TYPES: dict[str, type[_Weights]] = {
    "image-classification": ImageClassificationWeights,
    "image-embedding": ImageEmbeddingWeights,
    "sequence-classification": SequenceClassificationWeights,
    "sequence-to-sequence": SequenceToSequenceWeights,
}


class ModelEntry(_Strict):
    """A registry name: a builder, its arguments and the weights published for it."""

    builder: str = Field(pattern=NAME_PATTERN)
    args: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    paper: str | None = None
    default_tag: str | None = None
    weights: dict[Annotated[str, Field(pattern=TAG_PATTERN)], WeightTag] = Field(default_factory=dict)
    backbone: str | None = Field(
        default=None,
        pattern=WEIGHTS_NAME_PATTERN,
        description="published weights (name.tag) of the architecture this entry extends, which "
        "pretrained=True loads; the modules they lack are initialised fresh",
    )

    @model_validator(mode="after")
    def _weights_say_where_they_are(self) -> ModelEntry:
        for tag, weights in self.weights.items():
            if (weights.hf_hub_id is None) == (weights.path is None):
                raise ValueError(
                    f"weights '{tag}' need one of hf_hub_id (a Hub repository) and path (a file)"
                )
        return self

    @model_validator(mode="after")
    def _borrows_only_without_weights_of_its_own(self) -> ModelEntry:
        if self.backbone is not None and self.weights:
            raise ValueError(
                f"backbone '{self.backbone}' is borrowed by an entry with weights of its own: "
                "remove one of the two"
            )
        return self

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
