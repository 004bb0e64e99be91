"""Running an AOTInductor package that `zoo export --format pt2` wrote, with no model code.

The package records the model it was exported from (`zoo.tasks.graph_export`): its name
and weights, the preprocessing of its images, its class names, and what each output is.
`package_predictor` reads that, loads the compiled model and gives a `Predictor` as
`zoo.predict.predictor` does: nothing is built, fetched or compiled. The package runs on
the CPU, in the dtype it was exported in.

    >>> ready = package_predictor("resnet18.pt2")
    >>> [top5] = ready.predict([zoo.load_image("cat.jpg")])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArgumentError, ZooError
from ..registry.family import IMAGE_TASKS, model_of
from ..registry.labels import LabelSet, label_set, read_labels_file
from ..registry.schema import Preprocessing
from . import export_pt2
from .graph_export import METADATA_KEY
from .predict import Predictor
from .preprocessing import ImageTransform

if TYPE_CHECKING:
    import torch

__all__ = ["PackagedPredictor", "is_package", "package_metadata", "package_predictor"]


def is_package(name: str | Path) -> bool:
    """Whether a model name is the path of an AOTInductor package (an existing `*.pt2` file)."""
    path = Path(name)
    return path.suffix.lower() == export_pt2.SUFFIX and path.is_file()


def package_metadata(path: str | Path) -> dict[str, Any]:
    """What a package records of the model it was exported from (see `zoo.tasks.graph_export`).

    Raises:
        ZooError: Not a package, or one the zoo did not write.
    """
    recorded = export_pt2.read_metadata(path).get(METADATA_KEY)
    if recorded is None:
        raise ZooError(
            f"{path}: an AOTInductor package that records no zoo model; export it with 'zoo export'"
        )
    return json.loads(recorded)


@dataclass
class PackagedPredictor(Predictor):
    """A `Predictor` whose model is a compiled package: its outputs are named, not methods."""

    runner: Callable[[Sequence[torch.Tensor]], list[torch.Tensor]] | None = None
    outputs: tuple[str, ...] = ()
    dtype: str = "float32"
    path: str = field(default="")

    def stack(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        import torch

        return torch.stack(list(tensors)).to(dtype=getattr(torch, self.dtype))

    def run(self, x: torch.Tensor, *, topk: int = 5, embeddings: bool = False):
        """As `Predictor.run`: the package gives logits and embeddings in one pass."""
        results = dict(zip(self.outputs, self.runner([x]), strict=True))
        if not self.has_head:
            return None, self._as_embeddings(self._finite(results["embeddings"]))
        predictions = self._top(self._finite(results["logits"]), topk)
        if not embeddings:
            return predictions, None
        return predictions, self._as_embeddings(self._finite(results["embeddings"]))


def package_predictor(path: str | Path, *, labels: LabelSet | str | Path | None = None) -> PackagedPredictor:
    """A predictor that runs an AOTInductor package written by `zoo export --format pt2`.

    Args:
        path: The `.pt2` file.
        labels: Class names instead of those the package records (a `LabelSet`, or a text
            file with one name per line).

    Raises:
        ArgumentError: A package of a model that does not take images.
        ZooError: Not a package the zoo wrote, or one this machine cannot run.
    """
    metadata = package_metadata(path)
    task = metadata.get("task")
    if task not in IMAGE_TASKS:
        raise ArgumentError(
            f"{path}: {metadata.get('name')} is {model_of(task)}; prediction serves "
            f"{' and '.join(IMAGE_TASKS)} models: run the package on its own inputs"
        )
    classes = metadata.get("num_classes")
    return PackagedPredictor(
        name=metadata["name"],
        model=None,
        transform=ImageTransform(Preprocessing.model_validate(metadata["preprocessing"])),
        num_classes=classes,
        labels=_labels(labels, metadata.get("labels"), classes),
        weights=metadata.get("weights"),
        runner=export_pt2.load(path),
        outputs=tuple(metadata["outputs"]),
        dtype=metadata.get("dtype", "float32"),
        path=str(path),
    )


def _labels(
    given: LabelSet | str | Path | None, recorded: dict[str, Any] | None, classes: int | None
) -> LabelSet | None:
    if given is not None:
        names = given if isinstance(given, LabelSet) else read_labels_file(given)
        if classes is not None and len(names) != classes:
            raise ArgumentError(f"{len(names)} class names for a model with {classes} classes")
        return names
    if recorded is None:
        return None
    if recorded.get("set"):
        return label_set(recorded["set"])
    return LabelSet("recorded", tuple(recorded["names"]))
