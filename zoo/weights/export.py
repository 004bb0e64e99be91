"""Publishing a model trained with the zoo: a folder that `hf-hub:ORG/REPO` loads back.

`export` writes three files: `model.safetensors` (a byte-for-byte copy of the checkpoint,
checked against the model first), `zoo_config.json` (the builder, its full arguments and
the weights' metadata, in the registry's own schemas) and `README.md` (a model card with the
parameter count, the preprocessing, the license and how to load it); and, for a model of a
timm architecture, timm's `config.json` (`zoo.weights.timm_config`). Upload the folder to a Hub repository and
`zoo.create("hf-hub:ORG/REPO", pretrained=True)` builds the same model with its weights.

The folder appears whole or not at all: it is written under a temporary name beside the
destination and renamed into place once complete; an error, Ctrl-C or a SIGTERM (see
`zoo.files`) removes the temporary folder.

The card counts parameters as `zoo create` and `zoo info` do (`model.parameters()`, from the
model built on `meta`), and states the values in buffers (BatchNorm statistics and counters)
apart: they are in the file but are not parameters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Argument, ArgumentError
from ..files import raise_on_sigterm, sha256_of, unwritable
from ..registry import Registry, Resolved, default_registry
from ..registry.attention_spec import registry_form
from ..registry.family import IMAGE_TASKS, Family, image_size
from ..registry.schema import HUB_ID_PATTERN, IMAGENET_PREPROCESSING, WEIGHT_TYPES, Preprocessing, WeightTag
from ..registry.source import describe_errors
from .header import check_state_names, read_header
from .hub_config import CONFIG_FILENAME, WEIGHTS_FILENAME, HubConfig
from .resolve import ConfigResolved, resolve
from .timm_config import TIMM_CONFIG_FILENAME, timm_config_for

__all__ = ["export", "model_card"]


def export(
    name: str | Resolved,
    checkpoint: str | Path,
    output: str | Path,
    *,
    license: str | None = None,
    preprocessing: dict[str, Any] | None = None,
    repo_id: str | None = None,
    description: str | None = None,
    task: str | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> HubConfig:
    """Write a folder that `hf-hub:ORG/REPO` loads: weights, zoo config and model card.

    Args:
        name: The registry name the checkpoint was trained from (a `name.tag` also takes that
            tag's preprocessing and license as defaults).
        checkpoint: A safetensors file that fits the model exactly (checked, not adapted).
        output: The folder to create; it must not exist, or be empty.
        license: The weights' license; defaults to the tag's (required when there is none).
        preprocessing: Fields replacing the tag's preprocessing (`{"mean": [...], ...}`).
        repo_id: Where the folder will be published, to show in the model card's examples.
        description: One line about the weights (dataset, recipe) for the card and config.
        task: What the weights are for (`zoo.registry.family.TASKS`); default: the tag's, else
            the first of the family's tasks that the model's arguments fit (a ViT without head
            is exported for image-embedding).
        registry: The registry to use instead of the installed plugins' one.
        **overrides: Builder arguments the checkpoint was trained with (`num_classes=10`, ...).

    Returns:
        The config written.
    """
    _check_destination(Path(output), repo_id)
    registry = registry if registry is not None else default_registry()
    resolved = resolve(name, registry)
    entry = resolved.entry
    config = registry.build_config(resolved, overrides)
    model = registry.builder(entry.builder).build(config, device="meta")
    checkpoint = Path(checkpoint)
    header = read_header(checkpoint)
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    check_state_names(expected, header.shapes, checkpoint)

    args = config.model_dump(mode="json")
    published = resolved.published.weights if resolved.published is not None else None
    license = license or (published.license if published else None)
    if not license:
        raise ArgumentError(f"'{name}' has no published weights to take a license from; pass a license")
    described = {"filename": WEIGHTS_FILENAME, "license": license, "description": description}
    family = registry.builder(entry.builder).family
    weights_meta = _weights_metadata(
        name, task, family, config, model, published, preprocessing or {}, described
    )

    output = Path(output)
    num_params, num_buffer_values = _value_counts(model)
    with raise_on_sigterm(), _staged_folder(output) as staging:  # a SIGTERM cleans up too
        digest = sha256_of(checkpoint, copy_to=staging / WEIGHTS_FILENAME)
        hub_config = HubConfig(
            architecture=_architecture(resolved),
            builder=entry.builder,
            args={key: registry_form(value) for key, value in args.items()},
            description=entry.description,
            paper=entry.paper,
            weights=weights_meta.model_copy(update={"sha256": digest}),
        )
        _write_text(staging / CONFIG_FILENAME, hub_config.model_dump_json(indent=2, exclude_none=True) + "\n")
        with_timm_config = _write_timm_config(staging, resolved, registry, hub_config, model)
        card = model_card(
            hub_config,
            repo_id=repo_id,
            num_params=num_params,
            num_buffer_values=num_buffer_values,
            file_size=checkpoint.stat().st_size,
            timm_config=with_timm_config,
        )
        _write_text(staging / "README.md", card)
    return hub_config


def _write_timm_config(
    folder: Path, resolved: Resolved, registry: Registry, config: HubConfig, model: Any
) -> bool:
    """timm's `config.json` beside the zoo's, where the model is a timm architecture, so that
    timm (and the zoo, through it) loads the folder too; whether it was written."""
    timm_config = timm_config_for(resolved, registry, config, model)
    if timm_config is not None:
        _write_text(folder / TIMM_CONFIG_FILENAME, json.dumps(timm_config, indent=2) + "\n")
    return timm_config is not None


def _value_counts(model: Any) -> tuple[int, int]:
    """Parameters, counted as `zoo create` and `zoo info` count them, and the values in the
    buffers the file also holds (normalisation statistics, counters), counted apart."""
    num_params = sum(p.numel() for p in model.parameters())
    parameter_names = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    stored = model.state_dict(keep_vars=True)
    num_buffer_values = sum(t.numel() for key, t in stored.items() if key not in parameter_names)
    return num_params, num_buffer_values


def _check_destination(output: Path, repo_id: str | None) -> None:
    """Refuse, before anything is read, an output that is a file, a folder with files in it or
    one that cannot be made where it would go, and a repo_id the Hub (and a registry's
    hf_hub_id) would not take."""
    if output.is_file():
        raise ArgumentError(f"output '{output}' is a file; name a new or empty folder to write")
    if output.is_dir() and any(output.iterdir()):
        raise ArgumentError(f"output folder '{output}' already exists and is not empty")
    problem = unwritable(output.parent, created=True)
    if problem is not None:
        raise ArgumentError(f"output folder '{output}': {problem}")
    if repo_id is not None and not re.fullmatch(HUB_ID_PATTERN, repo_id):
        raise ArgumentError(
            "{repo_id} is not a Hub repository id: give ORG/REPO (letters, digits, '_', '.', '-')",
            arguments=[Argument("repo_id", repo_id)],
        )


@contextmanager
def _staged_folder(output: Path) -> Iterator[Path]:
    """A temporary folder beside `output`, renamed onto it (new or empty) if the block
    succeeds and removed otherwise."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if output.exists():
            output.rmdir()  # empty, checked by the caller
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _architecture(resolved: Resolved) -> str | None:
    """The registry name a model comes from: a re-exported config keeps the one it records."""
    return resolved.architecture if isinstance(resolved, ConfigResolved) else resolved.name


def _weights_metadata(
    name: str,
    task: str | None,
    family: Family,
    config: Any,
    model: Any,
    published: WeightTag | None,
    preprocessing: dict[str, Any],
    described: dict[str, Any],
) -> WeightTag:
    """The weight tag of an exported checkpoint: the first task (`task`, the published tag's,
    then the family's) whose fields the model's arguments fill."""
    preferred = [published.task] if published is not None else []
    candidates = [task] if task else list(dict.fromkeys([*preferred, *family.tasks]))
    if not candidates:
        raise ArgumentError(f"'{name}': its family declares no task, so its weights cannot be described")
    errors = []
    for candidate in candidates:
        weights_type = WEIGHT_TYPES.get(candidate)
        if weights_type is None:
            raise ArgumentError(f"unknown task '{candidate}' (tasks: {', '.join(WEIGHT_TYPES)})")
        values = {"task": candidate, **described}
        values.update(
            {key: getattr(config, key) for key in weights_type.model_fields if hasattr(config, key)}
        )
        if "output_dim" in weights_type.model_fields:
            values["output_dim"] = _output_width(family, config, model)
        if candidate in IMAGE_TASKS:
            values["preprocessing"] = _preprocessing(
                config.model_dump(mode="json"),
                published.preprocessing_or_none if published else None,
                preprocessing,
            )
        try:
            weights = weights_type.model_validate(values)
        except ValidationError as error:
            errors.append(f"{candidate}: {describe_errors(error)}")
            continue
        same_head = published is not None and published.builder_args() == weights.builder_args()
        if same_head:  # the published class names still apply
            names = {
                key: getattr(published, key, None) for key in ("labels", "label_names", "label_descriptions")
            }
            weights = weights.model_copy(update={key: value for key, value in names.items() if value})
        return weights
    raise ArgumentError(f"'{name}': the model's arguments fit no task: " + "; ".join(errors))


def _output_width(family: Family, config: Any, model: Any) -> int:
    """The width of what the model outputs, from a forward pass on `meta` (no memory)."""
    import torch

    with torch.no_grad():
        inputs = family.example_input(config, batch=1, device="meta")
        return int(model.eval()(*inputs).shape[-1])


def _preprocessing(
    args: dict[str, Any], published: Preprocessing | None, changes: dict[str, Any]
) -> Preprocessing:
    values = (published or IMAGENET_PREPROCESSING).model_dump()
    channels, height, width = values["input_size"]
    channels = int(args.get("in_chans", channels))
    if image_size(args) is not None:
        height, width = image_size(args)
        if values.get("test_input_size") and tuple(values["test_input_size"][1:]) != (height, width):
            values["test_input_size"] = None  # a fixed-size model is tested at its own size
    values["input_size"] = (channels, height, width)
    values.update(changes)
    try:
        return Preprocessing.model_validate(values)
    except ValidationError as error:
        raise ArgumentError(f"preprocessing: {describe_errors(error)}") from None


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


_PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "image-embedding": "image-feature-extraction",
    "sequence-classification": "text-classification",
    "sequence-to-sequence": "text2text-generation",
}
"""The Hub's name for what the weights do, by task."""


def _what_it_outputs(weights: WeightTag) -> str:
    if weights.task == "image-embedding":
        return f"{weights.output_dim}-wide embeddings (no classifier head)"
    if weights.task == "sequence-to-sequence":
        return f"source vocabulary {weights.src_vocab_size}, target vocabulary {weights.tgt_vocab_size}"
    return f"{weights.num_classes} classes"


def _preprocessing_section(prep: Preprocessing) -> list[str]:
    lines = [
        "",
        "## Preprocessing",
        "",
        "| | |",
        "| --- | --- |",
        f"| input size | {' x '.join(map(str, prep.input_size))} (channels, height, width) |",
        f"| resize | {prep.interpolation}, center crop {prep.crop_pct} |",
        f"| mean | {list(prep.mean)} |",
        f"| std | {list(prep.std)} |",
    ]
    if prep.test_input_size:
        lines.append(f"| test input size | {' x '.join(map(str, prep.test_input_size))} |")
    return [*lines, "", "Pixels are scaled to [0, 1], then normalised with the mean and std above."]


def _counted(num_params: int, num_buffer_values: int) -> str:
    if not num_buffer_values:
        return f"{num_params:,} parameters"
    return f"{num_params:,} parameters and {num_buffer_values:,} values in buffers"


def model_card(
    config: HubConfig,
    *,
    repo_id: str | None,
    num_params: int,
    file_size: int,
    num_buffer_values: int = 0,
    timm_config: bool = False,
) -> str:
    """The README.md of an exported folder: what it is, how to load it, how to feed it
    (`timm_config`: the folder holds timm's `config.json` too).

    `num_params` counts parameters only, as `zoo create` and `zoo info` do; the values in
    buffers (`num_buffer_values`: normalisation statistics, counters) are stated apart.
    """
    weights = config.weights
    prep = weights.preprocessing_or_none
    hub_name = f"hf-hub:{repo_id or 'ORG/REPO'}"
    title = repo_id.split("/")[-1] if repo_id else (config.architecture or config.builder)
    head = _what_it_outputs(weights)
    args = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in config.args.items())
    lines = [
        "---",
        f"license: {weights.license}",
        "library_name: zoo",
        f"pipeline_tag: {_PIPELINE_TAGS[weights.task]}",
        "tags:",
        "- zoo",
        f"- {config.builder}",
        "---",
        "",
        f"# {title}",
        "",
        f"A `{config.architecture or config.builder}` model (builder `{config.builder}`) "
        "exported with the zoo: "
        f"{_counted(num_params, num_buffer_values)}, {head}.",
    ]
    if weights.description:
        lines += ["", weights.description]
    if config.paper:
        lines += ["", f"Paper: {config.paper}"]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "import zoo",
        "",
        f'model = zoo.create("{hub_name}", pretrained=True)  # device="cuda", dtype="bfloat16", ...',
        "```",
        "",
        "or fetch the checked file into the Hugging Face cache:",
        "",
        "```console",
        f"zoo get {hub_name}",
        "```",
    ]
    if prep is not None:
        lines += _preprocessing_section(prep)
    lines += [
        "",
        "## Architecture",
        "",
        "| argument | value |",
        "| --- | --- |",
        args,
        "",
        "## Files",
        "",
        f"- `{weights.filename}`: {file_size:,} bytes, sha256 `{weights.sha256}` (checked on download)",
        f"- `{CONFIG_FILENAME}`: builder, arguments and preprocessing, read by `zoo`",
        *([f"- `{TIMM_CONFIG_FILENAME}`: the same in timm's vocabulary, for timm"] if timm_config else []),
        "",
        "## License",
        "",
        f"{weights.license}",
        "",
    ]
    return "\n".join(lines)
