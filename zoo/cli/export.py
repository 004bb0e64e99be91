"""`zoo export`: a folder to publish on the Hub, that `hf-hub:` names load back (the default),
or one ONNX or AOTInductor file that runs without the zoo (`export_file`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .export_file import FORMATS, export_file_options, export_to_file, refuse_file_options
from .options import args_option, checkpoint, num_classes_option, parse_assignments, split_assignments
from .output import echo_json, json_option

__all__ = ["export_command"]


@click.command("export")
@click.argument("name")
@click.option(
    "--checkpoint",
    type=checkpoint,
    help="The trained safetensors file [required for a folder; onnx, pt2: default the published weights].",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder to write (new or empty), or the .onnx or .pt2 file.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="folder",
    show_default=True,
    help="folder: to publish on the Hub; onnx: for ONNX Runtime; pt2: an AOTInductor package.",
)
@num_classes_option
@args_option("A builder argument the checkpoint was trained with (repeatable; values are YAML).")
@click.option(
    "-p",
    "--preprocessing",
    "preprocessing",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preprocessing field: input_size, mean, std, crop_pct, interpolation.",
)
@click.option("--license", "license_", help="License of the weights [default: the tag's].")
@click.option("--repo-id", help="ORG/REPO it will be published as, for the model card's examples.")
@click.option("--description", help="One line about the weights (data, recipe).")
@export_file_options
@json_option
def export_command(
    name: str,
    checkpoint: Path | None,
    output: Path,
    format_: str,
    num_classes: int | None,
    assignments: tuple[str, ...],
    preprocessing: tuple[str, ...],
    license_: str | None,
    repo_id: str | None,
    description: str | None,
    as_json: bool,
    **file_options: Any,
) -> None:
    """Write a folder to publish on the Hub (model.safetensors, zoo_config.json, README.md),
    or with --format onnx|pt2 one file that runs without the zoo (see the end).

    The checkpoint must fit NAME (with the given arguments) exactly. Once the folder is in
    a Hub repository, `zoo.create("hf-hub:ORG/REPO", pretrained=True)` loads it back. For a
    timm architecture (changed in head, in_chans, img_size, drop rates or global_pool at
    most), timm's config.json is written too, so that timm loads it as well.

    \b
    Examples:
      zoo export resnet18_cbam --checkpoint run/best.safetensors --num-classes 10 \\
          --license mit -o resnet18-cbam-cifar10
      zoo export vit_tiny_patch16_224.augreg_in21k_ft_in1k --checkpoint ft.safetensors \\
          -a img_size=384 -p crop_pct=1.0 -o vit-tiny-384 --repo-id me/vit-tiny-384

    \b
    --json prints one object:
      {"output": str, "files": [str, ...], "sha256": str, "config": {...}}
    files are the paths written; sha256 is the weights'; config is zoo_config.json's content.

    \b
    --format onnx|pt2 writes one file that runs without the zoo, verified before it is kept
    (see the end).
    """
    if format_ != "folder":
        folder_options = {"--preprocessing": preprocessing, "--license": license_, "--repo-id": repo_id,
                          "--description": description}  # fmt: skip
        export_to_file(name, checkpoint, output, format_, num_classes, assignments, as_json, folder_options,
                       **file_options)  # fmt: skip
        return
    if checkpoint is None:
        raise click.UsageError(
            "Missing option '--checkpoint': a folder to publish holds a trained checkpoint."
        )
    from ..weights.export import export

    flags, overrides = split_assignments(
        assignments, {"num_classes": num_classes, "dtype": file_options["dtype"]}
    )
    refuse_file_options({**file_options, "dtype": flags.pop("dtype")})
    if flags["num_classes"] is not None:
        overrides["num_classes"] = flags["num_classes"]
    changes = parse_assignments(preprocessing)
    config = export(
        name,
        checkpoint,
        output,
        license=license_,
        preprocessing=changes,
        repo_id=repo_id,
        description=description,
        **overrides,
    )
    from ..weights.hub_config import CONFIG_FILENAME, WEIGHTS_FILENAME
    from ..weights.timm_config import TIMM_CONFIG_FILENAME

    written = [output / WEIGHTS_FILENAME, output / CONFIG_FILENAME, output / "README.md"]
    written += [path for path in [output / TIMM_CONFIG_FILENAME] if path.is_file()]  # a timm architecture's
    if as_json:
        echo_json(
            {
                "output": str(output),
                "files": [str(path) for path in written],
                "sha256": config.weights.sha256,
                "config": config.model_dump(mode="json", exclude_none=True),
            }
        )
        return
    also = "".join(f", {path.name}" for path in written[3:])
    click.echo(
        f"{output}: {WEIGHTS_FILENAME} (sha256 {config.weights.sha256}), {CONFIG_FILENAME}, README.md{also}"
    )
