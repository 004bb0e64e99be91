"""`zoo info`: everything the zoo knows about one model."""

from __future__ import annotations

import click

from .output import echo_json, json_option

__all__ = ["info_command"]


@click.command("info")
@click.argument("name")
@json_option
def info_command(name: str, as_json: bool) -> None:
    """Describe a model: architecture, tasks, parameters, GMACs, weights and preprocessing.

    Parameters and multiply-adds (GMACs, as papers and timm count them) are counted on the
    meta device, with no weights: images at the input size of the weights' preprocessing
    (input_size, not test_input_size), other models on their family's example input.

    NAME takes every form: name, name.tag, hf-hub:ORG/REPO[@REV], or a folder written by
    zoo export.

    \b
    Examples:
      zoo info resnet50_cbam
      zoo info vit_base_patch16_224_in21k.orig_in21k --json
      zoo info ./resnet18-cbam-cifar10

    \b
    --json prints zoo.model_info(NAME).model_dump(): one object
      {"name", "tag", "builder", "tasks": [str], "task", "plugin", "distribution",
       "version", "source", "description", "paper", "attention", "config": {...},
       "num_params": int, "macs": int | null, "macs_input_size": [int, ...] | null,
       "default_tag", "weights": [{"name", "tag", "default", "task",
       "hf_hub_id", "path", "filename", "revision", "sha256", "license", "paper", "args",
       "adapter",
       "num_classes", "output_dim", "vocab_size", "src_vocab_size", "tgt_vocab_size",
       "preprocessing": {...} | null, "labels", "num_params": int | null,
       "gmacs": float | null, "imagenet": {"top1", "top5", "img_size", "crop_pct",
       "interpolation"} | null}, ...],
       "backbone": {"name": "name.tag", "new_modules": {module: class}, "new_tensors": [str],
                    "message": str | null} | null}
    backbone is the published weights an entry without its own borrows: pretrained=True
    loads them, and initialises the modules they lack.
    """
    from ..tasks.catalog import model_info

    info = model_info(name)
    if as_json:
        echo_json(info.model_dump(mode="json"))
        return
    title = next((weights.name for weights in info.weights if weights.tag == info.tag), info.name)
    click.echo(title)
    if info.description:
        click.echo(f"  {info.description}")
    fields = [
        ("builder", info.builder),
        ("task", info.task or "-"),
        ("tasks", ", ".join(info.tasks) or "-"),
        ("attention", info.attention or "-"),
        ("parameters", f"{info.num_params:,}"),
        ("GMACs", _macs(info)),
        ("paper", info.paper or "-"),
        ("provided by", _provider(info)),
    ]
    for label, value in fields:
        click.echo(f"  {label + ':':<13}{value}")
    click.echo("  arguments:")
    for key, value in info.config.items():
        click.echo(f"    {key} = {_as_yaml(value)}")
    if info.backbone is not None:
        new = f" ({info.backbone.message})" if info.backbone.message else ""
        click.echo(f"  backbone:    {info.backbone.name}{new}")
        click.echo(f"  weights:     none of its own; pretrained=True loads {info.backbone.name}")
        return
    if not info.weights:
        click.echo("  weights:     none published (build it with pretrained=False)")
        return
    click.echo("  weights:")
    for weights in info.weights:
        marks = " (default)" if weights.default else ""
        where = weights.hf_hub_id or weights.path
        click.echo(
            f"    {weights.tag}{marks}: {where}, {weights.task}, {_outputs(weights)}, {weights.license}"
        )
        p = weights.preprocessing
        if p is not None:
            size = "x".join(map(str, p.input_size))
            normalised = f"mean {list(p.mean)}, std {list(p.std)}"
            click.echo(f"      input {size}, crop {p.crop_pct} {p.interpolation}, {normalised}")
        facts = _published_facts(weights)
        if facts:
            click.echo(f"      {facts}")
        if weights.args:
            fixed = ", ".join(f"{key}={_as_yaml(value)}" for key, value in weights.args.items())
            click.echo(f"      fixes {fixed}")
        if weights.paper and weights.paper != info.paper:
            click.echo(f"      paper {weights.paper}")


def _macs(info) -> str:
    """`17.6 at 3x224x224 (...)`: the count and the input it was counted on."""
    if info.macs is None:
        return "- (not countable on meta)"
    size = info.macs_input_size or []
    if info.task in ("image-classification", "image-embedding"):
        where = f"{'x'.join(map(str, size))}, the input size of the weights' preprocessing"
    else:
        where = f"{size[0]} steps, the family's example input" if size else "the family's example input"
    return f"{info.macs / 1e9:.4g} at {where} ({2 * info.macs / 1e9:.4g} GFLOPs)"


def _published_facts(weights) -> str:
    """`ImageNet-1k top-1 80.38, top-5 94.60 at 224 (crop 0.95 bicubic); 25.6 M parameters,
    4.089 GMACs`: what the registry states of a checkpoint, as far as it does."""
    accuracy = ""
    if weights.imagenet is not None:
        result = weights.imagenet
        accuracy = (
            f"ImageNet-1k top-1 {result.top1:.2f}, top-5 {result.top5:.2f} at {result.img_size} "
            f"(crop {result.crop_pct} {result.interpolation})"
        )
    params = f"{weights.num_params / 1e6:.1f} M parameters" if weights.num_params is not None else ""
    gmacs = f"{weights.gmacs:.4g} GMACs" if weights.gmacs is not None else ""
    return "; ".join(filter(None, [accuracy, ", ".join(filter(None, [params, gmacs]))]))


def _outputs(weights) -> str:
    if weights.num_classes is not None:
        return f"{weights.num_classes} classes" + (f" ({weights.labels})" if weights.labels else "")
    if weights.output_dim is not None:
        return f"{weights.output_dim}-wide embeddings, no head"
    return f"vocabularies {weights.src_vocab_size} -> {weights.tgt_vocab_size}"


def _provider(info) -> str:
    distribution = " ".join(filter(None, [info.distribution, info.version]))
    origin = f" from {distribution}" if distribution else ""
    return f"plugin '{info.plugin}'{origin} ({info.source})"


def _as_yaml(value: object) -> str:
    """One-line YAML, the form `zoo create -a KEY=VALUE` reads back."""
    import yaml

    from ..registry.attention_spec import registry_form

    return (
        yaml.safe_dump(registry_form(value), default_flow_style=True, width=1000)
        .strip()
        .removesuffix("...")
        .strip()
    )
