"""`zoo flops`: multiply-adds, FLOPs, parameters and activations of a model, counted on meta."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ArgumentError
from .options import args_option, dtype_option, split_assignments
from .output import echo_json, format_size, json_option, print_table
from .overwrite import check_output

__all__ = ["flops_command"]


class SizeList(click.ParamType):
    """`112,224,448`: positive integers, comma-separated."""

    name = "S,S,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            sizes = [int(part) for part in str(value).split(",") if part.strip()]
        except ValueError:
            self.fail(f"'{value}' is not a comma-separated list of integers", param, ctx)
        if not sizes or min(sizes) < 1:
            self.fail(f"'{value}': give positive sizes, such as 112,224,448", param, ctx)
        return sizes


@click.command("flops")
@click.argument("name")
@click.option("--img-size", type=click.IntRange(min=1), help="Images of SxS pixels [default: the weights'].")
@click.option(
    "--seq-len",
    type=click.IntRange(min=1),
    help="Steps of each sequence, for sequence models [default: the family's].",
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Samples counted.")
@click.option(
    "--by",
    type=click.Choice(["operator", "module"]),
    help="Rows of the table: one per operator (default) or one per module.",
)
@click.option(
    "--depth", type=click.IntRange(min=0), help="With --by module: modules this deep at most [default: 2]."
)
@dtype_option
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    help="Draw how each operator's cost grows with the input size to this picture (.png, ...).",
)
@click.option("--sizes", type=SizeList(), help="With --plot: the sizes to count at [default: S/2 to 2S].")
@click.option("--force", is_flag=True, help="With --plot: overwrite the picture if it exists.")
@args_option()
@json_option
def flops_command(
    name: str,
    img_size: int | None,
    seq_len: int | None,
    batch: int,
    by: str | None,
    depth: int | None,
    dtype: str | None,
    plot: Path | None,
    sizes: list[int] | None,
    force: bool,
    assignments: tuple[str, ...],
    as_json: bool,
) -> None:
    """Count what a forward pass costs: MACs, FLOPs, parameters, activations.

    Counted on the meta device: no weights are made, nothing is downloaded, and the count
    takes a fraction of a second. MACs are the multiply-adds of convolutions and matrix
    products (linear layers, attention's QK^T and AV, LSTM gates): what papers and timm
    quote as GMACs. FLOPs are 2 per multiply-add; softmax, normalisation and activations
    are counted apart, in rows of their own, as FLOPs outside the MACs. Attention is shown
    as its terms (QK^T, softmax, AV) with the queries and keys they grow with (Lq x Lk:
    the square of the tokens in self-attention). Activations are the elements the
    convolutions and matrix products write, and their size in --dtype.

    Image models are counted at the input size of their weights' preprocessing, or at
    --img-size (a family with an img_size argument is built for it); other families on
    their own example input, --seq-len steps long. --plot counts at several sizes (--sizes)
    and draws each operator's FLOPs against the size, on log-log axes.

    \b
    Examples:
      zoo flops vit_base_patch16_224
      zoo flops resnet50 --by module --depth 1
      zoo flops vit_base_patch16_224 --img-size 384 --json
      zoo flops text_transformer_small --seq-len 512
      zoo flops vit_base_patch16_224 --plot growth.png --sizes 112,224,448

    \b
    --json prints one object:
      {"name": str, "task": str, "input_size": [int, ...], "batch": int, "dtype": str,
       "params": int, "macs": int, "flops": int, "other_flops": int, "activations": int,
       "activation_bytes": int,
       "operators": [{"label": str, "calls": int, "macs": int, "flops": int,
                      "activations": int, "scores": [[Lq, Lk], ...]}, ...],
       "modules": [{"name": str, "depth": int, "params": int, "macs": int, "flops": int,
                    "activations": int}, ...]}
    flops is 2 * macs; other_flops is softmax, normalisation and activations; an operator's
    flops include both; modules are every module called, at every depth.
    With --plot:
      {"output": str, "name": str, "axis": "image size" | "sequence length",
       "sizes": [int, ...], "flops": {label: [int, ...], ..., "total": [int, ...]},
       "exponents": {label: float | null, ...}}
    """
    flags, model_args = split_assignments(assignments, {"dtype": dtype})
    if depth is not None and by != "module":
        raise ArgumentError("--depth applies to --by module")
    if plot is None:
        for option, value in (("--sizes", sizes), ("--force", force or None)):
            if value is not None:
                raise ArgumentError(f"{option} applies to --plot")
        from ..tasks.flops import flops

        report = flops(name, img_size=img_size, seq_len=seq_len, batch=batch, model_args=model_args, **flags)
        if as_json:
            echo_json(report.as_dict())
        elif by == "module":
            _print_modules(report, 2 if depth is None else depth)
        else:
            _print_operators(report)
        return
    for option, value in (("--img-size", img_size), ("--seq-len", seq_len), ("--by", by)):
        if value is not None:
            raise ArgumentError(f"{option} does not apply to --plot, which counts at --sizes")
    _plot(name, plot, sizes=sizes, batch=batch, model_args=model_args, force=force, as_json=as_json)


def _plot(name, output: Path, *, sizes, batch, model_args, force: bool, as_json: bool) -> None:
    from ..tasks.flops import growth, report_size
    from ..tasks.flops_plot import exponent, growth_chart, series
    from ..tasks.maps import picture_format, save_picture

    try:
        picture_format(output)
    except ArgumentError as error:
        raise ArgumentError(f"--plot {error}") from None
    check_output(output, "--plot", inputs=[], force=force)
    axis, reports = growth(name, sizes, batch=batch, model_args=model_args)
    save_picture(growth_chart(axis, reports), output)
    counted = [report_size(report, axis) for report in reports]
    lines = series(reports)
    exponents = {label: exponent(counted, values) for label, values in lines.items()}
    if as_json:
        echo_json(
            {
                "output": str(output),
                "name": reports[0].name,
                "axis": axis,
                "sizes": counted,
                "flops": lines,
                "exponents": exponents,
            }
        )
        return
    click.echo(f"wrote {output}: {reports[0].name} at {axis}s {', '.join(map(str, counted))}")
    symbol = "S" if axis == "image size" else "L"
    rows = [
        [label, _si(values[-1]), "-" if exponents[label] is None else f"{symbol}^{exponents[label]:.1f}"]
        for label, values in lines.items()
    ]
    print_table(rows, ["operator", f"FLOPs at {counted[-1]}", "grows as"], right=(1,))


def _print_operators(report) -> None:
    from ..tasks.flops import ATTENTION_TERMS

    click.echo(_title(report))
    total = sum(row.flops for row in report.operators) or 1
    rows = [
        [
            row.label,
            str(row.calls),
            _si(row.macs) if row.macs else "-",
            _si(row.flops),
            f"{row.flops / total:.1%}",
            _si(row.activations) if row.activations else "-",
            ", ".join(f"{lq}x{lk}" for lq, lk in row.scores[:3]) + (", ..." if len(row.scores) > 3 else ""),
        ]
        for row in report.operators
    ]
    rows.append(["total", "", _si(report.macs), _si(total), "", _si(report.activations), ""])
    print_table(
        rows, ["operator", "calls", "MACs", "FLOPs", "share", "activations", "Lq x Lk"], right=(1, 2, 3, 4, 5)
    )
    _print_totals(report)
    if any(row.label in ATTENTION_TERMS for row in report.operators):
        click.echo("attention terms grow with Lq x Lk, queries times keys: tokens squared in self-attention")


def _print_modules(report, depth: int) -> None:
    click.echo(_title(report))
    total = sum(row.flops for row in report.operators) or 1
    rows = [
        [
            "  " * max(row.depth - 1, 0) + (row.name or "(model)"),
            f"{row.params:,}",
            _si(row.macs) if row.macs else "-",
            _si(row.flops) if row.flops else "-",
            f"{row.flops / total:.1%}",
            _si(row.activations) if row.activations else "-",
        ]
        for row in report.modules
        if row.depth <= depth
    ]
    print_table(
        rows, ["module", "parameters", "MACs", "FLOPs", "share", "activations"], right=(1, 2, 3, 4, 5)
    )
    _print_totals(report)


def _title(report) -> str:
    size = "x".join(map(str, report.input_size))
    if report.task in ("image-classification", "image-embedding"):
        what = f"image{'s' if report.batch > 1 else ''} of {size}"
    else:
        steps = report.input_size[0]
        what = f"sequence{'s' if report.batch > 1 else ''} of {steps} step{'s' if steps != 1 else ''}"
    return f"{report.name}: {report.batch} {what}, counted on meta"


def _print_totals(report) -> None:
    click.echo(
        f"{report.macs / 1e9:.4g} GMACs = {report.flops / 1e9:.4g} GFLOPs of multiply-adds, "
        f"+ {_si(report.other_flops)} FLOPs outside them (softmax, normalisation, activations)"
    )
    memory = format_size(report.activation_bytes)
    click.echo(
        f"{report.params:,} parameters; {_si(report.activations)} activations, {memory} in {report.dtype}"
    )


def _si(value: float) -> str:
    """Three significant digits and a unit: 17.6G, 358M, 151K, 12."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"
