"""`zoo mask`: draw a causal or padding attention mask, as the tutorials do."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ArgumentError
from .output import echo_json, json_option
from .overwrite import check_output

__all__ = ["mask_command"]


@click.command("mask")
@click.argument("kind", type=click.Choice(["causal", "padding"]))
@click.option(
    "--lengths",
    "--length",
    "lengths",
    required=True,
    metavar="N[,N...]",
    help="Length of each sequence: one for a causal mask, one or more for padding.",
)
@click.option(
    "--max-len", type=click.IntRange(min=1), help="Positions per sequence  [default: the longest length]"
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The picture to write: .png, .jpg, .jpeg or .webp.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@json_option
def mask_command(
    kind: str, lengths: str, max_len: int | None, output: Path, force: bool, as_json: bool
) -> None:
    """Draw an attention mask: kept positions yellow, masked ones dark.

    causal: query i may attend to keys j <= i (the "subsequent" mask of a decoder), an
    L x L picture, queries down and keys across. With several lengths, one panel per
    sequence, each also masking the keys past its length (causal and padding together).

    padding: True at each sequence's first `length` positions, one row per sequence and
    one column per position (`padding_mask(lengths)` of zoo_plugins.attention.functional).

    \b
    Examples:
      zoo mask causal --length 6 -o causal.png
      zoo mask padding --lengths 6,4,2 -o padding.png
      zoo mask causal --lengths 6,3 -o both.png

    \b
    --json prints one object:
      {"output": str, "kind": str, "lengths": [int, ...], "size": [width, height],
       "shape": [int, ...]}
    shape is the mask's: [L, L], [B, L, L] or [B, L].
    """
    from ..tasks.maps import picture_format
    from ..tasks.sequence_maps import mask_picture, masks

    try:
        picture_format(output)
    except ArgumentError as error:
        raise ArgumentError(f"--output {error}") from None
    check_output(output, "--output", inputs=[], force=force)
    parsed = _lengths(lengths)
    mask = masks(kind, parsed, max_len)
    picture = mask_picture(kind, parsed, max_len)
    picture.save(output)
    width, height = picture.image.size
    if as_json:
        echo_json(
            {
                "output": str(output),
                "kind": kind,
                "lengths": parsed,
                "size": [width, height],
                "shape": list(mask.shape),
            }
        )
        return
    shape = " x ".join(str(size) for size in mask.shape)
    click.echo(f"wrote {output} ({width}x{height}): {kind} mask of shape {shape}")


def _lengths(text: str) -> list[int]:
    words = [word.strip() for word in text.split(",")] if "," in text else text.split()
    if not words or not all(word.isdigit() for word in words):  # an empty item too: 1,,2
        raise ArgumentError(f"--lengths {text}: give positive integers separated by commas (6,4,2)")
    return [int(word) for word in words]
