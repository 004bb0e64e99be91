"""Makes `weights.jsonl` from the catalogue facts (timm 1.0.31's published weights): one line
per weight with what the contract tests need, so that the repository stands alone.

    python tests/data/catalogue/distil.py ../shared/reference/catalogue tests/data/catalogue/weights.jsonl

Each line: `tag` (timm's `architecture.tag`), `hf_hub_id`, `module`, `arch`, `num_classes`,
`tensors` and `layout` (the sha256 of the checkpoint's `name shape` lines, sorted by name: the
layout a model must take name for name), `num_params` (parameters only, as timm counts them:
the layout's own count includes BatchNorm statistics) and,
where published, `imagenet` (`top1`, `top5`, `img_size`, `crop_pct`, `interpolation`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

BATCHNORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def parameter_count(state_dict: list[list]) -> int:
    """Values of the parameters alone, as timm counts them: BatchNorm statistics left out."""
    count = 0
    for name, shape, *_ in state_dict:
        if not name.endswith(BATCHNORM_STATISTICS):
            count += math.prod(shape)
    return count


def layout_digest(state_dict: list[list]) -> str:
    """The sha256 of `name shape` lines, sorted by name (dtypes aside: a model takes any float)."""
    lines = sorted(f"{name} {list(shape)}" for name, shape, *_ in state_dict)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def distilled(row: dict, facts: Path) -> dict:
    layout = json.loads((facts / "layouts" / row["layout"]).read_text())
    imagenet = row.get("imagenet")
    kept = ("top1", "top5", "img_size", "crop_pct", "interpolation")
    return {
        "tag": row["tag"],
        "hf_hub_id": row["pretrained_cfg"]["hf_hub_id"],
        "module": row["module"],
        "arch": row["arch"],
        "num_classes": row["pretrained_cfg"].get("num_classes"),
        "tensors": len(layout["state_dict"]),
        "layout": layout_digest(layout["state_dict"]),
        "num_params": parameter_count(layout["state_dict"]),
        "imagenet": {key: imagenet[key] for key in kept if key in imagenet} if imagenet else None,
    }


def main(facts: Path, output: Path) -> None:
    rows = [json.loads(line) for line in (facts / "tags.jsonl").read_text().splitlines() if line.strip()]
    lines = [
        json.dumps(distilled(row, facts), sort_keys=True) for row in sorted(rows, key=lambda r: r["tag"])
    ]
    output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
