"""`zoo create`: build a model and summarise it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .options import (
    args_option,
    checkpoint_option,
    device_option,
    dtype_option,
    num_classes_option,
    split_assignments,
)
from .output import echo_json, json_option

__all__ = ["create_command"]


@click.command("create")
@click.argument("name")
@device_option
@dtype_option
@click.option(
    "--pretrained", is_flag=True, help="Load the published weights (default tag unless NAME has one)."
)
@checkpoint_option
@click.option(
    "--fresh-modules",
    is_flag=True,
    help="Load --checkpoint as the backbone of NAME: initialise the modules it lacks, and list them.",
)
@num_classes_option
@args_option()
@json_option
def create_command(
    name: str,
    device: str | None,
    dtype: str | None,
    pretrained: bool,
    checkpoint: Path | None,
    fresh_modules: bool,
    num_classes: int | None,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Build a model and print a summary.

    \b
    Examples:
      zoo create resnet50_cbam
      zoo create resnet50 -a attn=eca -a drop_path_rate=0.05
      zoo create 'resnet18' -a 'attn={name: cbam, kernel_size: 3}'
      zoo create vit_large_patch16_224 --device meta
      zoo create vit_tiny_patch16_224 --checkpoint model.safetensors --num-classes 10
      zoo create resnet18_cbam --pretrained
      zoo create resnet18_cbam --checkpoint resnet18.safetensors --fresh-modules

    With --pretrained, an entry without weights of its own (resnet18_cbam) loads the ones
    it borrows (zoo info shows them), and -a arguments that add modules (-a attn=eca on
    resnet50) keep the published weights: either way the modules the weights lack are
    initialised fresh and listed in one line on stderr. --fresh-modules does the same for
    --checkpoint; without it a checkpoint must fit NAME exactly.

    `-a num_classes=N`, `-a device=D` and `-a dtype=T` are --num-classes, --device and
    --dtype.

    \b
    --json prints one object:
      {"name": str, "class": str, "parameters": int, "device": str, "dtype": str,
       "seconds": float, "modules": [str, ...]}
    parameters counts the model's parameters, not its buffers (BatchNorm statistics), as
    `zoo info` and the model card of `zoo export` count them.
    """
    from ..weights.factory import create

    flags, overrides = split_assignments(
        assignments, {"num_classes": num_classes, "device": device, "dtype": dtype}
    )
    started = time.perf_counter()
    model = create(
        name, pretrained=pretrained, checkpoint=checkpoint, fresh_modules=fresh_modules, **flags, **overrides
    )
    seconds = time.perf_counter() - started
    first = next(iter(model.parameters()), None)
    summary = {
        "name": name,
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(first.device) if first is not None else "cpu",
        "dtype": str(first.dtype).removeprefix("torch.") if first is not None else None,
        "seconds": round(seconds, 3),
        "modules": [child for child, _ in model.named_children()],
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"{name}: {summary['class']} with {summary['parameters']:,} parameters on "
        f"{summary['device']} ({summary['dtype']}), built in {seconds:.2f} s"
    )
    click.echo("  top-level modules: " + ", ".join(summary["modules"]))
