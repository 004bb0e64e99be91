"""Measuring translated architectures against their weights, and writing registry files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .facts import Architecture, Weight, layout_differences

TRANSLATORS = {
    "vision_transformer": "vision_transformer",
    "deit": "deit",
    "swin_transformer": "swin_transformer",
    "cait": "cait",
    "resnet": "resnet",
    "resnest": "resnet",
    "sknet": "resnet",
    "efficientnet": "efficientnet",
    "mobilenetv3": "mobilenetv3",
    "regnet": "regnet",
    "byobnet": "byobnet",
}
"""timm module -> translator module of this package."""

LABEL_SETS = {1000: "imagenet-1k", 21843: "imagenet-21k"}
CLASS_COUNTS = {1000, 11221, 11821, 21841, 21843, 115217}
"""Head widths that are classes (ImageNet-1k, the ImageNet-21k and -12k subsets, ...); any
other width of a published head is an embedding projection (CLIP's, say)."""

DEFAULT_TAGS = {
    "vit_base_patch16_224": "augreg2_in21k_ft_in1k",
    "resnet18": "a1_in1k",
    "resnet34": "a1_in1k",
    "resnet50": "a1_in1k",
    "resnet101": "a1h_in1k",
    "seresnet50": "a1_in1k",
    "efficientnet_b0": "ra_in1k",
    "mobilenetv3_large_100": "ra_in1k",
    "regnety_032": "ra_in1k",
}
"""Default tags where the rule of `default_tag` would change what the zoo already loads."""


@dataclass
class Outcome:
    """One weight against its architecture: measured, or the problem that keeps it out."""

    weight: Weight
    architecture: Architecture | None
    problem: str | None = None
    args: dict[str, Any] | None = None
    num_params: int | None = None
    gmacs: float | None = None
    output_dim: int | None = None


def is_classifier(weight: Weight) -> bool:
    return weight.num_classes in CLASS_COUNTS


def weight_args(architecture: Architecture, weight: Weight) -> dict[str, Any]:
    """What the weight fixes beyond the architecture: its head, and the translator's extras."""
    extra = architecture.tag_args(weight) if architecture.tag_args else {}
    return dict(extra or {})


def builder_args(architecture: Architecture, weight: Weight) -> dict[str, Any]:
    head = {"num_classes": weight.num_classes if is_classifier(weight) else 0}
    return {**architecture.args, **head, **weight_args(architecture, weight)}


@cache
def components() -> Any:
    """A registry of the built-in plugin's builders, attention variants and key adapters, and
    no model entries: the files this package writes are not read while it writes them."""
    import zoo_plugins
    from zoo.registry import Registry
    from zoo.registry.plugins import PluginContext

    class WithoutModels(PluginContext):
        def add_models(self, path: Any, *, override: bool = False) -> None:
            pass

    context = WithoutModels("builtin")
    zoo_plugins.register(context)
    registry = Registry()
    registry.add(context.staged)
    return registry


def adapted_state(adapter: str, state: dict[str, Any]) -> dict[str, Any]:
    """A timm-format state dict as the zoo's key adapter of that name hands it to the model."""
    return dict(components().adapter(adapter)(state))


def adapted_layout(adapter: str, layout: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, tuple]]:
    import torch

    state = {name: torch.empty(shape, device="meta") for name, shape in layout}
    return [(name, tuple(tensor.shape)) for name, tensor in adapted_state(adapter, state).items()]


def measured(architecture: Architecture, weight: Weight) -> Outcome:
    """Build on meta, compare with the layout, count parameters and GMACs at the input size."""
    import torch

    from zoo.tasks.flops import count_flops

    registry = components()
    args = builder_args(architecture, weight)
    try:
        config = registry.checked_config(architecture.builder, args, label=weight.row["tag"])
        model = registry.builder(architecture.builder).build(config, device="meta").eval()
    except Exception as error:
        return Outcome(weight, architecture, f"does not build: {type(error).__name__}: {error}")
    expected = weight.layout()
    if architecture.adapter:
        expected = adapted_layout(architecture.adapter, expected)
    differences = layout_differences(expected, model.state_dict())
    if differences:
        return Outcome(weight, architecture, "layout differs: " + "; ".join(differences))
    sample = torch.empty(1, *weight.cfg["input_size"], device="meta")
    try:
        with torch.no_grad():
            count = count_flops(model, [sample])
            output = model(sample)
    except Exception as error:
        return Outcome(weight, architecture, f"forward fails: {type(error).__name__}: {error}")
    output = output[0] if isinstance(output, tuple) else output
    return Outcome(
        weight,
        architecture,
        args=args,
        num_params=sum(p.numel() for p in model.parameters()),
        gmacs=float(f"{count.macs / 1e9:.4g}"),  # four significant digits, tiny models too
        output_dim=int(output.shape[-1]),
    )


# ---------------------------------------------------------------------------------------------
# Writing


def default_tag(arch: str, outcomes: list[Outcome]) -> str:
    """The zoo's default weight of an architecture: the best published ImageNet-1k top-1 (the
    weights most users want), else the first by name."""
    tags = [o.weight.tag for o in outcomes]
    if DEFAULT_TAGS.get(arch) in tags:
        return DEFAULT_TAGS[arch]
    ranked = [o for o in outcomes if o.weight.row.get("imagenet") and o.weight.num_classes == 1000]
    if ranked:
        return max(ranked, key=lambda o: o.weight.row["imagenet"]["top1"]).weight.tag
    return tags[0]


def default_args(architecture: Architecture, weight: Weight) -> dict[str, Any]:
    """The architecture's arguments with what its default weight fixes (its head above all), so
    that the name alone builds what `pretrained=True` loads, as timm does."""
    args = builder_args(architecture, weight)
    if args.get("num_classes") == 1000:  # the builders' default
        del args["num_classes"]
    return args


def paper_url(paper_id: str) -> str | None:
    if paper_id.startswith("arXiv:"):
        return "https://arxiv.org/abs/" + paper_id.removeprefix("arXiv:").split("v")[0]
    return None


def preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    data = {
        "input_size": list(cfg["input_size"]),
        "mean": list(cfg["mean"]),
        "std": list(cfg["std"]),
        "crop_pct": cfg.get("crop_pct", 0.875),
        "interpolation": cfg.get("interpolation", "bicubic"),
    }
    if cfg.get("test_input_size") and list(cfg["test_input_size"]) != list(cfg["input_size"]):
        data["test_input_size"] = list(cfg["test_input_size"])
    if cfg.get("crop_mode", "center") != "center":
        data["crop_mode"] = cfg["crop_mode"]
    return data


def weight_entry(outcome: Outcome) -> dict[str, Any]:
    weight, cfg = outcome.weight, outcome.weight.cfg
    entry: dict[str, Any] = {"hf_hub_id": cfg["hf_hub_id"]}
    if is_classifier(weight):
        entry["num_classes"] = weight.num_classes
        if weight.num_classes in LABEL_SETS:
            entry["labels"] = LABEL_SETS[weight.num_classes]
    else:
        entry["task"] = "image-embedding"
        entry["output_dim"] = outcome.output_dim
    entry["license"] = cfg.get("license") or "unknown"
    papers = [p for p in _listed(cfg.get("paper_ids")) if paper_url(p)]
    if papers:
        entry["paper"] = paper_url(papers[0])
    extra = weight_args(outcome.architecture, weight)
    if extra:
        entry["args"] = extra
    entry["num_params"] = outcome.num_params
    entry["gmacs"] = outcome.gmacs
    imagenet = weight.row.get("imagenet")
    if imagenet:
        kept = ("top1", "top5", "img_size", "crop_pct", "interpolation")
        entry["imagenet"] = {key: imagenet[key] for key in kept if key in imagenet}
    entry["preprocessing"] = preprocessing(cfg)
    return entry


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def model_entry(arch: str, outcomes: list[Outcome]) -> dict[str, Any]:
    architecture = outcomes[0].architecture
    entry: dict[str, Any] = {"builder": architecture.builder}
    if architecture.description:
        entry["description"] = architecture.description
    if architecture.paper:
        entry["paper"] = architecture.paper
    default = default_tag(arch, outcomes)
    entry["args"] = default_args(architecture, next(o for o in outcomes if o.weight.tag == default).weight)
    if default != sorted(o.weight.tag for o in outcomes)[0]:
        entry["default_tag"] = default
    entry["weights"] = {o.weight.tag: weight_entry(o) for o in sorted(outcomes, key=lambda o: o.weight.tag)}
    if architecture.adapter:
        for weights in entry["weights"].values():
            weights["adapter"] = architecture.adapter
    return entry


HEADER = """\
# timm's {module} architectures with their published weights (timm 1.0.31), in the zoo's own
# vocabulary: one entry per architecture (timm's name), one weight tag per checkpoint.
# Written by `python -m tools.catalogue write` from the catalogue facts; change the translator
# (tools/catalogue/{translator}.py) or the builder, not this file. The default tag is the
# weight with the best published ImageNet-1k top-1, unless `default_tag` says otherwise.

"""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a value written twice reads better than an anchor named &id001


def _flow(dumper: yaml.SafeDumper, data: dict | list) -> yaml.Node:
    if isinstance(data, dict):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


class _Flow(dict):
    pass


class _FlowList(list):
    pass


_Dumper.add_representer(_Flow, _flow)
_Dumper.add_representer(_FlowList, _flow)


def _flowed(value: Any, depth: int) -> Any:
    """Mappings below the weight level on one line each, so a weight reads as a short block."""
    if isinstance(value, (_Flow, _FlowList)):
        return value
    if isinstance(value, dict):
        inner = {key: _flowed(item, depth + 1) for key, item in value.items()}
        return _Flow(inner) if depth >= 5 else inner
    if isinstance(value, list):
        items = [_flowed(item, depth + 1) for item in value]
        return _FlowList(items) if depth >= 5 else items
    return value


def _flow_all(value: Any) -> Any:
    if isinstance(value, dict):
        return _Flow({key: _flow_all(item) for key, item in value.items()})
    if isinstance(value, list):
        return _FlowList(_flow_all(item) for item in value)
    return value


ONE_LINE = 100
"""Arguments that fit this many characters stay on one line; longer ones get a line each, and a
list of stages or blocks one line per item."""


def _readable_args(args: dict[str, Any]) -> dict[str, Any]:
    flowed = _flow_all(args)
    if len(yaml.dump(flowed, Dumper=_Dumper, width=math.inf).strip()) <= ONE_LINE:
        return flowed
    readable: dict[str, Any] = {}
    for key, value in args.items():
        nested = isinstance(value, list) and any(isinstance(item, (list, dict)) for item in value)
        readable[key] = [_flow_all(item) for item in value] if nested else _flow_all(value)
    return readable


def write_module(module: str, outcomes: list[Outcome], folder: Path) -> Path:
    by_arch: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.problem is None:
            by_arch.setdefault(outcome.weight.arch, []).append(outcome)
    models = {arch: model_entry(arch, items) for arch, items in sorted(by_arch.items())}
    for entry in models.values():
        entry["args"] = _readable_args(entry["args"])
    body = yaml.dump(
        {"models": {name: _flowed(entry, 2) for name, entry in models.items()}},
        Dumper=_Dumper,
        sort_keys=False,
        width=math.inf,
        allow_unicode=True,
    )
    lines = body.splitlines()
    spaced = []
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and spaced:
            spaced.append("")
        spaced.append(line)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}.yaml"
    path.write_text(HEADER.format(module=module, translator=TRANSLATORS[module]) + "\n".join(spaced) + "\n")
    return path
