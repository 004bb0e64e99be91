"""The family contract: what a model family provides, and the tasks weights are published for.

A *family* is one architecture with its config schema, registered under a builder name by
a plugin (`PluginContext.add_builder("resnet", "my_plugin.models.resnet:family")`). It
subclasses `Family` and provides:

- `config`: its pydantic config model (`extra="forbid"`, frozen): the builder arguments;
- `tasks`: the tasks its models can be built for (keys of `TASKS`);
- `build(config, *, device=None, dtype=None) -> nn.Module`;
- `example_input(config, *, batch, seq_len, device, dtype) -> tuple`: positional inputs of a
  forward pass, used by `zoo bench` and by the contract tests;
- `test_args`: builder arguments of a small instance, for the contract tests (forward and
  backward run at that size; full sizes are built on `meta` only).

The models a family builds may implement the optional hooks below (typed protocols, checked
with `isinstance`): the loader asks them to adapt a checkpoint to changed arguments
(`HasClassifier`, `HasFirstConv`, `AdaptsPretrained`) and to initialise the modules a
checkpoint lacks (`InitialisesModules`), `zoo attn` for attention maps (`HasAttentionMaps` over
images, `HasSequenceMaps` over tokens and frames), and training code for the repeated
blocks (`HasBlocks`).

Image models also offer timm's training interface, with timm's meanings
(`HasTrainingInterface`): `get_classifier()`, `reset_classifier(num_classes,
global_pool=None)`, `forward_features`, `forward_head(x, pre_logits=False)`,
`set_grad_checkpointing(enable)`, `no_weight_decay()`, and `global_pool` as a builder
argument (CNNs: `avg`, `max`, `avgmax`, `catavgmax`, `""`; token models: `token`, `avg`,
`""`; `""` keeps every position). They describe their feature maps (`HasFeatureInfo`: a
`feature_info` list of `{"module", "num_chs", "reduction"}`, one per stage or block, as
timm's), from which the zoo builds `features_only` models: through the model's
`forward_intermediates` (`HasIntermediates`, indexed as `feature_info`) if it has one,
else by hooks on the modules `feature_info` names; `feature_take_indices` is the one rule
for choosing features by index.

A *task* says what a weight tag's checkpoint does, and so which fields the tag carries and
which builder arguments it fixes (`zoo.registry.schema`):

image-classification
    images (B, C, H, W) -> logits (B, num_classes). Tag: `num_classes`, `preprocessing`,
    `labels`; the family takes `num_classes`, and where it has them `in_chans` and
    `img_size`, which preprocessing reads and loading adapts (a new head through
    `HasClassifier`, a new first conv through `HasFirstConv`, anything else that changed
    with them through `AdaptsPretrained`).
image-embedding
    images (B, C, H, W) -> embeddings (B, output_dim). Tag: `output_dim`, `preprocessing`; the
    family takes `num_classes` and builds no classifier for 0.
sequence-classification
    token ids (B, L) or frames (B, T, F) -> logits (B, num_classes). Tag: `num_classes` and,
    for token inputs, `vocab_size`; no image preprocessing.
sequence-to-sequence
    source ids (B, S) and target ids (B, T) -> logits (B, T, tgt_vocab_size). Tag:
    `src_vocab_size`, `tgt_vocab_size`; no image preprocessing.

A plain builder function `build(config, *, device=None, dtype=None)` is still accepted in
place of a `Family`, as the zoo took builders before families: it is taken to build image
models (`IMAGE_TASKS`) and has no example input of its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    import torch

__all__ = [
    "TASKS",
    "IMAGE_TASKS",
    "AdaptsPretrained",
    "Family",
    "FunctionFamily",
    "HasAttentionMaps",
    "HasBlocks",
    "HasClassifier",
    "FeatureInfo",
    "HasFeatureInfo",
    "HasFirstConv",
    "HasIntermediates",
    "HasSequenceMaps",
    "HasTrainingInterface",
    "ImageFamily",
    "InitialisesModules",
    "SequenceInput",
    "SequenceMap",
    "feature_take_indices",
    "image_size",
    "model_of",
    "reset_to_defaults",
]

TASKS: dict[str, str] = {
    "image-classification": "images (B, C, H, W) -> logits (B, num_classes)",
    "image-embedding": "images (B, C, H, W) -> embeddings (B, output_dim)",
    "sequence-classification": "token ids (B, L) or frames (B, T, F) -> logits (B, num_classes)",
    "sequence-to-sequence": "source ids (B, S), target ids (B, T) -> logits (B, T, tgt_vocab_size)",
}
"""Every task a weight tag can be published for, with what its models map."""

IMAGE_TASKS = ("image-classification", "image-embedding")
"""The tasks whose inputs are images: preprocessing, `zoo predict` and `zoo attn` apply."""


def image_size(config: Any) -> tuple[int, int] | None:
    """(height, width) of the images a config's model takes: its `img_size`, one number for a
    square or a pair; None for a family without `img_size` (it takes any size)."""
    size = getattr(config, "img_size", None) if not isinstance(config, dict) else config.get("img_size")
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    height, width = size
    return (int(height), int(width))


def model_of(task: str | None) -> str:
    """`"a sequence-to-sequence model"`, for messages; a family may declare no task."""
    return f"a {task} model" if task else "a model of no declared task"


class Family(ABC):
    """A model family: config schema, tasks, builder and example input (see the module docstring)."""

    config: ClassVar[type[BaseModel]]
    tasks: ClassVar[tuple[str, ...]]
    test_args: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def build(self, config: Any, *, device: Any = None, dtype: Any = None) -> torch.nn.Module:
        """A model of this family for `config` (an instance of `self.config`)."""

    @abstractmethod
    def example_input(
        self,
        config: Any,
        *,
        batch: int = 2,
        seq_len: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> tuple[Any, ...]:
        """Positional inputs of one forward pass of a `config` model: random data of the
        shapes it takes, `batch` samples, sequences of `seq_len` steps where it applies.
        Floating-point inputs take `dtype`; integer ones (token ids) keep theirs."""


class ImageFamily(Family):
    """A family of image models: its example input is a batch of random images of the
    config's `in_chans` and `img_size` (224 for a family without `img_size`)."""

    tasks: ClassVar[tuple[str, ...]] = IMAGE_TASKS

    def example_input(
        self,
        config: Any,
        *,
        batch: int = 2,
        seq_len: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> tuple[Any, ...]:
        import torch

        height, width = image_size(config) or (224, 224)
        return (torch.randn(batch, config.in_chans, height, width, device=device, dtype=dtype),)


class FunctionFamily(Family):
    """A bare builder function seen as a family: an image model, as the zoo assumed before
    families declared their tasks; it has no example input of its own."""

    tasks: ClassVar[tuple[str, ...]] = IMAGE_TASKS

    def __init__(self, function: Callable[..., Any], config: type[BaseModel]) -> None:
        self.function = function
        self.config = config  # type: ignore[misc]  # per instance: each function has its own

    def build(self, config: Any, *, device: Any = None, dtype: Any = None) -> torch.nn.Module:
        return self.function(config, device=device, dtype=dtype)

    def example_input(self, config: Any, **_: Any) -> tuple[Any, ...]:
        raise NotImplementedError("a bare builder function declares no example input")


@runtime_checkable
class HasClassifier(Protocol):
    """A model whose classifier head(s) may be replaced when `num_classes` changes: the
    modules named here are left out of loading and initialised by `init_classifier`."""

    classifier_names: tuple[str, ...]

    def init_classifier(self) -> None: ...


@runtime_checkable
class HasFirstConv(Protocol):
    """A model whose first convolution reads the image: adapted when `in_chans` changes."""

    first_conv: str


@runtime_checkable
class AdaptsPretrained(Protocol):
    """A model that fits other tensors of a checkpoint built with other arguments (position
    embeddings for another `img_size`, say). Returns None for a tensor it cannot adapt; must
    also accept `meta` tensors, on which loading is rehearsed before the file is read."""

    def adapt_pretrained(self, name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, str] | None: ...


@runtime_checkable
class HasBlocks(Protocol):
    """A model made of repeated blocks (transformer blocks, residual stages), in order."""

    def blocks_in_order(self) -> list[torch.nn.Module]: ...


@runtime_checkable
class HasAttentionMaps(Protocol):
    """A model that implements the attention-map protocol (see `zoo.tasks.maps`)."""

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class SequenceInput:
    """One input of a sequence model, as `HasSequenceMaps.sequence_inputs` declares it.

    Attributes:
        name: What the model calls it (`"tokens"`, `"source"`, `"target"`, `"features"`): the
            key of `inputs` and `lengths` in `sequence_maps`, and what a map's axes name.
        kind: `"tokens"`, integer ids (B, L); or `"frames"`, feature vectors (B, T, F).
        size: For tokens, the vocabulary size (ids are below it); for frames, F.
        max_length: The longest input the model takes, in positions; None: any.
    """

    name: str
    kind: Literal["tokens", "frames"]
    size: int
    max_length: int | None = None


@dataclass(frozen=True)
class SequenceMap:
    """Attention weights between two sequences, as a model computed them.

    Attributes:
        weights: (B, heads, Q, K), non-negative; each query's row sums to 1 over the keys, or
            is all zeros where a query sees nothing; keys past an input's length get 0.
        queries: The input whose positions are the rows, after `query_prefix`; None when
            the rows are the prefix alone (a pooling query).
        keys: The input whose positions are the columns, after `key_prefix`.
        query_prefix: Names of positions the model puts before the input's (`"[CLS]"`).
        key_prefix: The same for the columns.
    """

    weights: torch.Tensor
    queries: str | None
    keys: str
    query_prefix: tuple[str, ...] = ()
    key_prefix: tuple[str, ...] = ()


@runtime_checkable
class HasSequenceMaps(Protocol):
    """A sequence model that shows its attention weights (see `zoo.tasks.sequence_maps`):
    the inputs it takes, and its named maps for them, the one shown by default first."""

    def sequence_inputs(self) -> tuple[SequenceInput, ...]: ...

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]: ...


@runtime_checkable
class InitialisesModules(Protocol):
    """A model that initialises some of its submodules as building it does.

    The loader asks it for the modules a checkpoint lacks entirely (the attention modules a
    variant adds to borrowed weights, say), named as in `named_modules()`, once they have
    memory on the target device and undefined values. It must give every tensor of those
    modules its initial value; `reset_to_defaults` does PyTorch's part. A model without
    the hook gets `reset_to_defaults` alone.
    """

    def init_modules(self, names: Sequence[str]) -> None: ...


def reset_to_defaults(module: torch.nn.Module) -> list[str]:
    """Initialise `module` as building it on a device does, as far as PyTorch knows how:
    `reset_parameters()` on every submodule that has one (BatchNorm's resets its running
    statistics too).

    Returns:
        The names (relative to `module`) of the tensors held by submodules that have no
        `reset_parameters`, which were left as they were: the caller initialises them, or
        refuses.
    """
    left = []
    for name, submodule in module.named_modules():
        own = [*submodule.named_parameters(recurse=False), *submodule.named_buffers(recurse=False)]
        if callable(getattr(submodule, "reset_parameters", None)):
            submodule.reset_parameters()
        else:
            left += [f"{name}.{key}" if name else key for key, _ in own]
    return left


@runtime_checkable
class HasTrainingInterface(Protocol):
    """timm's training interface, which the models of every image family offer.

    - `get_classifier()`: the classifier module (`nn.Identity` without classes);
    - `reset_classifier(num_classes, global_pool=None)`: a new head, initialised as the
      family initialises one, on the model's device and dtype; `global_pool` changes the
      pooling too (`""` with 0 classes gives `forward_head` the unpooled features);
    - `forward_features(x)` and `forward_head(x, pre_logits=False)`: their composition is
      `forward`; with `pre_logits`, the pooled features the classifier reads;
    - `set_grad_checkpointing(enable=True)`: recompute each block in the backward pass
      (`torch.utils.checkpoint`) instead of keeping its activations;
    - `no_weight_decay()`: names of parameters to train without weight decay (position
      embeddings, tokens, relative position bias tables), as timm's;
    - `num_features`: the width `forward_features` gives per position.
    """

    num_features: int

    def get_classifier(self) -> torch.nn.Module: ...

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None: ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def set_grad_checkpointing(self, enable: bool = True) -> None: ...

    def no_weight_decay(self) -> set[str]: ...


@runtime_checkable
class HasFeatureInfo(Protocol):
    """A model that describes its feature maps, one dict per stage (CNN, Swin) or block (ViT),
    in order, as timm's: `module` (its name in `named_modules()`), `num_chs` (channels) and
    `reduction` (input pixels per feature-map position, non-decreasing)."""

    feature_info: list[dict[str, Any]]


@runtime_checkable
class HasIntermediates(Protocol):
    """A model that gives the feature maps of `feature_info` itself, as timm's
    `forward_intermediates`: the features at `indices` (of `feature_info`: all for None, the
    last n for an int), each (B, C, H, W) for `output_fmt="NCHW"`; `norm` passes them through
    the final norm; with `intermediates_only` the list alone, else `(final features, list)`."""

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]: ...


def feature_take_indices(count: int, indices: int | Sequence[int] | None = None) -> list[int]:
    """timm's rule for choosing among `count` features (blocks, stages): all for None, the
    last n for an int, else the ones named (negative ones count from the end).

    Raises:
        ValueError: An index out of range, or a count of none or more than `count`.
    """
    if indices is None:
        return list(range(count))
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"the last {indices} of {count} features: take 1 to {count}")
        return list(range(count - indices, count))
    taken = [count + index if index < 0 else index for index in indices]
    if not taken or not all(0 <= index < count for index in taken):
        raise ValueError(f"feature indices {list(indices)} out of range for {count} features")
    return taken


class FeatureInfo:
    """What each feature map of a model is (timm's `FeatureInfo`): the model's `feature_info`
    dicts, and the indices of those a feature extractor returns (`out_indices`).

    Accessors take `idx`: None for each returned feature, an int or a list for those
    entries of `feature_info` whatever is returned.
    """

    def __init__(
        self, info: Sequence[Mapping[str, Any]], out_indices: int | Sequence[int] | None = None
    ) -> None:
        reduction = 1
        for index, entry in enumerate(info):
            if not {"module", "num_chs", "reduction"} <= set(entry):
                raise ValueError(f"feature_info[{index}] needs module, num_chs and reduction: {dict(entry)}")
            if entry["num_chs"] <= 0 or entry["reduction"] < reduction:
                raise ValueError(
                    f"feature_info[{index}]: num_chs must be positive and reduction non-decreasing: "
                    f"{dict(entry)}"
                )
            reduction = entry["reduction"]
        self.info = [dict(entry, index=index) for index, entry in enumerate(info)]
        self.out_indices = tuple(feature_take_indices(len(self.info), out_indices))

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, int):
            return self.info[idx][key]
        return [self.info[i][key] for i in idx]

    def get_dicts(self, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [self.info[i] for i in self.out_indices]
        return self.info[idx] if isinstance(idx, int) else [self.info[i] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of each feature map (`num_chs`)."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Input pixels per position of each feature map (its output stride)."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """The module whose output each feature map is."""
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __repr__(self) -> str:
        channels, reduction = self.channels(), self.reduction()
        return f"FeatureInfo(out_indices={self.out_indices}, channels={channels}, reduction={reduction})"
