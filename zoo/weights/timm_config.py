"""`config.json` in timm's format: what Hub repositories of timm models hold beside their
`model.safetensors`, read into a registry entry; and written by `zoo export` for a model of a
timm architecture, so that timm loads it too.

timm writes (`save_config_for_hf`):

    {"architecture": "vit_small_patch16_224", "num_classes": 7, "num_features": 384,
     "global_pool": "token", "label_names": ["angry", ...], "model_args": {"img_size": [224, 224]},
     "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [...], "std": [...], ...}}

and it is read as timm reads it:

- `architecture` is the registry entry of that name (its builder and arguments; where
  `pretrained_cfg.tag` names one of its weight tags, with the arguments that tag fixes beyond
  its head, and its label set when the head is that tag's);
- `num_classes` (over `pretrained_cfg.num_classes`), `global_pool` and then `model_args`
  (which win) are builder arguments; a square `img_size` pair is given as one side;
- `pretrained_cfg` is the preprocessing (timm's defaults where it is silent);
- `label_names` (a list, or `{index: name}`) and `label_descriptions` (`{name: description}`)
  are the class names; timm's older flat form (no `pretrained_cfg`, `labels`) too.

Everything else timm writes is ignored, as timm ignores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import CheckpointError, HubError, UnknownModelError
from ..registry import Registry, Resolved
from ..registry.attention_spec import registry_form
from ..registry.family import IMAGE_TASKS
from ..registry.schema import (
    IMAGENET_PREPROCESSING,
    ImageClassificationWeights,
    ImageEmbeddingWeights,
    ModelEntry,
    Preprocessing,
    WeightTag,
)
from ..registry.source import describe_errors
from .hub_config import HubConfig, read_json_config

__all__ = [
    "TIMM_CONFIG_FILENAME",
    "TIMM_MODEL_ARGS",
    "TimmConfig",
    "first_difference",
    "read_timm_config",
    "timm_config_for",
]

TIMM_CONFIG_FILENAME = "config.json"

TIMM_MODEL_ARGS = ("in_chans", "img_size", "drop_rate", "drop_path_rate", "global_pool")
"""Constructor arguments that timm's image models and the zoo's builders share, by name and
meaning: an export may change these from its architecture's and still be that architecture."""


class _Open(BaseModel):
    """timm writes more than the zoo reads (`custom_load`, `pool_size`, ...): ignored, as timm does."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TimmPretrainedCfg(_Open):
    """`pretrained_cfg`: the data config the weights were trained with, timm's defaults where
    it is silent."""

    tag: str | None = None
    license: str | None = None
    num_classes: int | None = Field(default=None, ge=0)
    input_size: tuple[int, int, int] = IMAGENET_PREPROCESSING.input_size
    test_input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] = IMAGENET_PREPROCESSING.mean
    std: tuple[float, ...] = IMAGENET_PREPROCESSING.std
    crop_pct: float = IMAGENET_PREPROCESSING.crop_pct
    interpolation: str = IMAGENET_PREPROCESSING.interpolation
    crop_mode: str = "center"

    def preprocessing(self) -> Preprocessing:
        fields = ("input_size", "test_input_size", "mean", "std", "crop_pct", "interpolation", "crop_mode")
        return Preprocessing.model_validate({key: getattr(self, key) for key in fields})


class TimmConfig(_Open):
    """A timm model's `config.json`."""

    architecture: str = Field(min_length=1)
    num_classes: int | None = Field(default=None, ge=0)
    num_features: int | None = Field(default=None, ge=1)
    global_pool: str | None = None
    model_args: dict[str, Any] = Field(default_factory=dict)
    pretrained_cfg: TimmPretrainedCfg = Field(default_factory=TimmPretrainedCfg)
    label_names: tuple[str, ...] | None = None
    label_descriptions: dict[str, str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_flat_form(cls, data: Any) -> Any:
        """timm's first form: the data config at the top level, the class names as `labels`."""
        if not isinstance(data, dict) or "pretrained_cfg" in data or "architecture" not in data:
            return data
        top = {"architecture", "num_features", "label_names", "label_descriptions", "model_args"}
        flat = {key: value for key, value in data.items() if key not in top and key != "labels"}
        lifted = {key: data[key] for key in top if key in data}
        if "labels" in data and "label_names" not in data:
            lifted["label_names"] = data["labels"]
        return {**lifted, "num_classes": data.get("num_classes"), "pretrained_cfg": flat}

    @field_validator("label_names", mode="before")
    @classmethod
    def _names_by_index(cls, names: Any) -> Any:
        """`{index: name}`, as timm also writes them: every index from 0, once."""
        if not isinstance(names, dict):
            return names
        try:
            by_index = {int(index): name for index, name in names.items()}
        except (TypeError, ValueError):
            raise ValueError("an {index: name} mapping needs whole-number indices") from None
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(
                f"the indices of an {{index: name}} mapping are 0 to {len(by_index) - 1}, each once"
            )
        return [by_index[index] for index in range(len(by_index))]

    @property
    def head(self) -> int | None:
        """The classes of the head, as timm takes them: `model_args` over the top level over
        `pretrained_cfg`; None where none says."""
        for value in (self.model_args.get("num_classes"), self.num_classes, self.pretrained_cfg.num_classes):
            if value is not None:
                return value
        return None

    def builder_args(self) -> dict[str, Any]:
        """`global_pool` and `model_args` as builder arguments (the head is the weights')."""
        args: dict[str, Any] = {} if self.global_pool is None else {"global_pool": self.global_pool}
        args.update({key: value for key, value in self.model_args.items() if key != "num_classes"})
        if isinstance(args.get("img_size"), (list, tuple)) and len(set(args["img_size"])) == 1:
            args["img_size"] = args["img_size"][0]  # a square, as every image family takes it
        return args

    def descriptions(self) -> tuple[str, ...] | None:
        """`label_descriptions` in the order of `label_names` (a name without one is its own)."""
        if not self.label_descriptions or not self.label_names:
            return None
        return tuple(self.label_descriptions.get(label, label) for label in self.label_names)

    def to_entry(
        self,
        registry: Registry,
        *,
        name: str,
        tag: str,
        filename: str,
        repo_id: str | None = None,
        revision: str | None = None,
        folder: Path | None = None,
    ) -> tuple[ModelEntry, str]:
        """The registry entry this config stands for, and the architecture it names: its
        weights `filename` in the Hub repository `repo_id@revision`, or in `folder`.

        Raises:
            UnknownModelError: The zoo does not carry the architecture.
            HubError: The config does not describe an image model the zoo can build.
        """
        architecture = _architecture(registry, self.architecture, name)
        entry = architecture.entry
        tasks = registry.builder(entry.builder).tasks
        if not set(tasks) & set(IMAGE_TASKS):
            raise HubError(
                f"{name}: {TIMM_CONFIG_FILENAME} names '{self.architecture}', which is no image model"
            )
        published = architecture.weights or entry.weights.get(self.pretrained_cfg.tag or "")
        args = {**entry.args, **(published.args if published else {}), **self.builder_args()}
        where = (
            {"hf_hub_id": repo_id, "revision": revision, "filename": filename}
            if folder is None
            else {"path": str(Path(folder, filename).resolve())}
        )
        try:
            weights = self._weights(registry, entry.builder, args, published, where)
        except ValidationError as error:
            raise HubError(f"{name}: {TIMM_CONFIG_FILENAME}: {describe_errors(error)}") from None
        model_entry = ModelEntry(
            builder=entry.builder,
            args=args,
            description=entry.description,
            paper=entry.paper,
            weights={tag: weights},
        )
        return model_entry, architecture.name

    def _weights(
        self,
        registry: Registry,
        builder: str,
        args: dict[str, Any],
        published: WeightTag | None,
        where: dict[str, Any],
    ) -> WeightTag:
        num_classes = self.head
        if num_classes is None:  # the builder's own head, as timm builds it
            num_classes = getattr(
                registry.checked_config(builder, args, label=self.architecture), "num_classes", 0
            )
        common = {
            **where,
            "license": self.pretrained_cfg.license or "unknown",
            "adapter": published.adapter if published else None,
            "preprocessing": self.pretrained_cfg.preprocessing(),
        }
        if num_classes == 0:
            return ImageEmbeddingWeights.model_validate(
                {**common, "task": "image-embedding", "output_dim": self.num_features}
            )
        if isinstance(published, ImageEmbeddingWeights) and published.output_dim == num_classes:
            # timm keeps an embedding tower's projection (CLIP's) as its head; the registry's
            # weights of that tag say it is an embedding, and their arguments build it so
            return ImageEmbeddingWeights.model_validate(
                {**common, "task": "image-embedding", "output_dim": num_classes}
            )
        same_head = published is not None and getattr(published, "num_classes", None) == num_classes
        inherited = published.labels if same_head and not self.label_names else None
        return ImageClassificationWeights.model_validate(
            {
                **common,
                "num_classes": num_classes,
                "labels": inherited,
                "label_names": self.label_names,
                "label_descriptions": self.descriptions(),
            }
        )


def _architecture(registry: Registry, architecture: str, name: str) -> Resolved:
    try:
        return registry.resolve(architecture)
    except UnknownModelError as error:
        raise UnknownModelError(
            "architecture",
            architecture,
            error.suggestions,
            context=f"in {name}'s {TIMM_CONFIG_FILENAME}: the zoo does not carry it "
            "(`zoo list` lists the architectures it carries)",
        ) from None


def read_timm_config(path: Path, *, name: str) -> TimmConfig:
    """Read and validate a timm `config.json`; `HubError` in one line if it is not one."""
    return read_json_config(
        path, TimmConfig, name=name, what=f"{TIMM_CONFIG_FILENAME} is not a valid timm model config"
    )


# ---------------------------------------------------------------------- weights against config


def first_difference(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> str | None:
    """The first tensor, in the model's order (then the file's), that the model as configured
    (`expected`) and the file (`found`) disagree on, in words; None if they agree."""
    for key, shape in expected.items():
        if key not in found:
            return f"'{key}' {list(shape)} is not in the file"
        if tuple(found[key]) != tuple(shape):
            return f"'{key}' is {list(found[key])} in the file, {list(shape)} in the model it configures"
    for key, shape in found.items():
        if key not in expected:
            return f"'{key}' {list(shape)} is in the file, not in the model it configures"
    return None


def check_weights_fit_config(
    resolved: Resolved, registry: Registry, path: Path, *, config_file: str, key_adapter: Any = None
) -> None:
    """Refuse, naming the first tensor that differs, weights that the model their config
    builds does not take; built on `meta`, only the file's header is read.

    Raises:
        CheckpointError: The config contradicts the weights.
    """
    import torch

    from .header import read_checkpoint

    config = registry.build_config(resolved, weights=resolved.selected)
    model = registry.builder(resolved.entry.builder).build(config, device="meta")
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    found = read_checkpoint(path).shapes
    if key_adapter is not None:
        tensors = {key: torch.empty(shape, device="meta") for key, shape in found.items()}
        found = {key: tuple(t.shape) for key, t in key_adapter(tensors).items()}
    difference = first_difference(expected, found)
    if difference is not None:
        raise CheckpointError(
            f"{resolved.name}: {config_file} contradicts its weights {path.name}: {difference}"
        )


# ---------------------------------------------------------------------- writing one


def timm_config_for(resolved: Resolved, registry: Registry, exported: HubConfig, model: Any) -> dict | None:
    """timm's `config.json` for an export, or None where its model is no timm architecture.

    It is one when the architecture it was exported from (`exported.architecture`) is a
    registry entry of the same builder that publishes weights under timm's naming (a Hub
    repository named `ARCHITECTURE.TAG`), and the export changes only arguments timm's
    models share (`TIMM_MODEL_ARGS`) and the head. Read back, the config must build exactly
    the exported model.
    """
    weights = exported.weights
    architecture = exported.architecture
    if architecture is None or weights.task not in IMAGE_TASKS:
        return None
    try:
        source = registry.resolve(architecture)
    except UnknownModelError:
        return None
    if source.entry.builder != exported.builder or not _timm_named(source.name, source.entry):
        return None
    plain = registry.build_config(source).model_dump(mode="json")
    plain = {key: registry_form(value) for key, value in plain.items()}
    changed = {key: value for key, value in exported.args.items() if plain.get(key) != value}
    changed.pop("num_classes", None)
    if not set(changed) <= set(TIMM_MODEL_ARGS):
        return None
    config = _timm_config(source, exported, changed, model)
    if not _reads_back(config, registry, exported):
        return None
    return config


def _timm_named(name: str, entry: ModelEntry) -> bool:
    return any((w.hf_hub_id or "").endswith(f"/{name}.{tag}") for tag, w in entry.weights.items())


def _timm_config(source: Resolved, exported: HubConfig, model_args: dict[str, Any], model: Any) -> dict:
    weights = exported.weights
    prep = weights.preprocessing_or_none
    num_classes = weights.builder_args().get("num_classes", 0)
    config: dict[str, Any] = {"architecture": source.name, "num_classes": num_classes}
    num_features = getattr(model, "num_features", None)
    if isinstance(num_features, int):
        config["num_features"] = num_features
    if exported.args.get("global_pool"):
        config["global_pool"] = exported.args["global_pool"]
    names = getattr(weights, "label_names", None)
    if names:
        config["label_names"] = list(names)
        descriptions = getattr(weights, "label_descriptions", None)
        if descriptions:
            config["label_descriptions"] = dict(zip(names, descriptions, strict=True))
    config["model_args"] = {**model_args, "num_classes": num_classes}
    cfg: dict[str, Any] = {"tag": source.tag} if source.tag else {}
    cfg.update({key: value for key, value in prep.model_dump(mode="json").items() if value is not None})
    cfg["num_classes"] = num_classes
    for key, value in (("first_conv", getattr(model, "first_conv", None)), ("license", weights.license)):
        if isinstance(value, str):
            cfg[key] = value
    classifier = getattr(model, "classifier_names", None)
    if isinstance(classifier, tuple) and len(classifier) == 1:
        cfg["classifier"] = classifier[0]
    config["pretrained_cfg"] = cfg
    return config


def _reads_back(config: dict, registry: Registry, exported: HubConfig) -> bool:
    """Whether `config`, read as a repository's, builds the exported model with its weights'
    head, preprocessing and class names."""
    entry, _ = TimmConfig.model_validate(config).to_entry(
        registry,
        name=exported.architecture or "",
        tag="hub",
        filename=exported.weights.filename,
        repo_id="a/b",
    )
    weights = entry.weights["hub"]
    args = {**entry.args, **weights.builder_args()}
    built = registry.checked_config(entry.builder, args, label="config.json")
    own = registry.checked_config(exported.builder, exported.args, label="zoo_config.json")
    return built == own and disagreement(weights, exported.weights) is None


def disagreement(timm_weights: WeightTag, zoo_weights: WeightTag) -> str | None:
    """What a repository's two configs say differently of its weights (head, preprocessing,
    class names), in words; None if they agree."""
    if timm_weights.builder_args() != zoo_weights.builder_args():
        return "the head (num_classes)"
    if timm_weights.preprocessing_or_none != zoo_weights.preprocessing_or_none:
        return "the preprocessing"
    names = getattr(timm_weights, "label_names", None)
    if names and names != getattr(zoo_weights, "label_names", None):
        return "the class names (label_names)"
    return None
