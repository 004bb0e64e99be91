"""Check the translations against the checkpoint layouts, and write the registry files.

    python -m tools.catalogue check [--module M ...] [--arch GLOB] [-v]
    python -m tools.catalogue write [--module M ...]

`check` builds every architecture on `meta` with each head its weights have, and compares the
state dict with the checkpoint layout name for name. `write` does the same, then writes
`plugins/registry/<module>.yaml` with every weight that passed: its repository, head, license,
preprocessing, parameters and GMACs (counted here by the zoo's counter) and, where published,
its ImageNet-1k result. What is left out, and why, goes to `tests/data/catalogue/left_out.txt`,
which the catalogue contract reads.
The facts are read from `$ZOO_CATALOGUE_FACTS` (default `../shared/reference/catalogue`).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import sys
import traceback
from pathlib import Path

from .facts import Architecture, Unsupported, Weight, by_architecture
from .writer import TRANSLATORS, Outcome, measured, write_module

REPOSITORY = Path(__file__).resolve().parents[2]


def translator(module: str):
    return importlib.import_module(f"{__package__}.{TRANSLATORS[module]}")


def translate(module: str, arch: str, weights: list[Weight]) -> Architecture:
    return translator(module).translate(arch, weights)


def outcomes(module: str, pattern: str, verbose: bool) -> list[Outcome]:
    results = []
    for arch, weights in by_architecture((module,)).items():
        if not fnmatch.fnmatch(arch, pattern):
            continue
        try:
            architecture = translate(module, arch, weights)
        except Unsupported as reason:
            results.extend(Outcome(weight, None, f"not translated: {reason}") for weight in weights)
            continue
        except Exception as error:  # a translator bug: say where, keep going
            detail = traceback.format_exc() if verbose else f"{type(error).__name__}: {error}"
            results.extend(Outcome(weight, None, f"translator failed: {detail}") for weight in weights)
            continue
        results.extend(measured(architecture, weight) for weight in weights)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.catalogue")
    parser.add_argument("command", choices=("check", "write"))
    parser.add_argument("--module", action="append", help="timm module (default: every one)")
    parser.add_argument("--arch", default="*", help="architectures matching this glob (check only)")
    parser.add_argument("-v", "--verbose", action="store_true")
    options = parser.parse_args(argv)
    modules = options.module or list(TRANSLATORS)
    failed = 0
    left_out: list[str] = []
    for module in modules:
        results = outcomes(module, options.arch, options.verbose)
        good = [r for r in results if r.problem is None]
        for result in results:
            if result.problem is not None:
                failed += 1
                left_out.append(f"{result.weight.row['tag']}: {result.problem}")
                print(f"FAIL {result.weight.row['tag']}: {result.problem}")
            elif options.verbose:
                print(f"ok   {result.weight.row['tag']}")
        print(f"{module}: {len(good)}/{len(results)} weights build with their exact layout")
        if options.command == "write":
            path = write_module(module, results, REPOSITORY / "plugins" / "registry")
            print(f"wrote {path.relative_to(REPOSITORY)}")
    if options.command == "write" and options.module is None:
        listing = REPOSITORY / "tests" / "data" / "catalogue" / "left_out.txt"
        listing.write_text("".join(f"{line}\n" for line in left_out))
    return 1 if failed and options.command == "check" else 0


if __name__ == "__main__":
    sys.exit(main())
