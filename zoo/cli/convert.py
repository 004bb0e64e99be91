"""`zoo convert`: a PyTorch pickle checkpoint written as safetensors, in one explicit step."""

from __future__ import annotations

from pathlib import Path

import click

from .options import input_file
from .output import echo_json, json_option

__all__ = ["convert_command"]


@click.command("convert")
@click.argument("source", metavar="FILE", type=input_file)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="The safetensors file to write."
)
@click.option(
    "--key",
    help="Where the state dict is in FILE (state_dict_ema, model.state_dict) "
    "[default: the first of state_dict, model, state_dict_ema, model_ema, nested once].",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@json_option
def convert_command(source: Path, output: Path, key: str | None, force: bool, as_json: bool) -> None:
    """Convert a PyTorch checkpoint (pytorch_model.bin, .pt, .pth) to safetensors.

    The zoo loads safetensors only and never unpickles while loading. This command is the
    one place it reads a pickle, with torch.load(FILE, weights_only=True, map_location="cpu"):
    tensors and plain containers only, no code run. Convert only files you mean to use.

    It unwraps the state dict (state_dict, model, state_dict_ema, model_ema, nested once),
    strips a prefix every name carries (module., _orig_mod., model.), clones tensors that
    share memory (tied weights, which safetensors cannot store twice) and records the ties
    in the file's metadata as "aliases", and refuses values that are not tensors. The file
    is written whole or not at all.

    \b
    Examples:
      zoo convert pytorch_model.bin -o model.safetensors
      zoo convert last.pth -o ema.safetensors --key state_dict_ema
      zoo create resnet50 --checkpoint model.safetensors --num-classes 10

    \b
    --json prints one object:
      {"input": str, "output": str, "tensors": int, "key": str | null, "prefix": str | null,
       "aliases": {str: str}, "sha256": str, "size": int}
    key is where the state dict was (null: the top); prefix what was stripped; aliases
    maps each cloned tensor to the one it shared memory with.
    """
    from ..weights.convert import convert_checkpoint

    converted = convert_checkpoint(source, output, key=key, force=force)
    if as_json:
        echo_json(converted.as_dict())
        return
    details = [f"{converted.tensors} tensors"]
    if converted.key:
        details.append(f"from '{converted.key}'")
    if converted.prefix:
        details.append(f"prefix '{converted.prefix}' stripped")
    if converted.aliases:
        ties = ", ".join(f"{clone} = {name}" for clone, name in converted.aliases.items())
        details.append(f"{len(converted.aliases)} tied tensor(s) cloned ({ties})")
    click.echo(f"{converted.output}: {', '.join(details)}; sha256 {converted.sha256}")
