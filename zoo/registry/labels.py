"""Class names: which label set a checkpoint's outputs follow, and the names in it.

The label sets ship with the package (`zoo/data/*.tsv`, one row per class index:
`index<TAB>wordnet_id<TAB>names`). A weight tag names its set in the registry
(`labels: imagenet-1k`), so the set a checkpoint uses is data, not code:

    >>> import zoo.labels
    >>> zoo.labels.label_set("imagenet-1k")[281]
    'tabby'

A fine-tuned model's own names come from a text file with one name per line
(`read_labels_file`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from ..errors import ArgumentError, UnknownModelError

__all__ = ["LABEL_SETS", "LabelSet", "label_set", "read_labels_file"]

LABEL_SETS: dict[str, int] = {"imagenet-1k": 1000, "imagenet-21k": 21843}
"""The label sets that ship with the zoo, by name, with their number of classes."""


@dataclass(frozen=True)
class LabelSet:
    """Class names in class-index order.

    `names[i]` is the full description of class `i` ("tabby, tabby cat"), `label_set[i]`
    its first name ("tabby"), or its name in `labels` where the set gives them (a checkpoint's
    own class names, whose descriptions are not lists of names), `wordnet_ids[i]` its WordNet
    id where the set has them.
    """

    name: str
    names: tuple[str, ...]
    wordnet_ids: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> str:
        if self.labels is not None:
            return self.labels[index]
        return self.names[index].split(",")[0].strip()


def label_set(name: str) -> LabelSet:
    """A label set that ships with the zoo (`"imagenet-1k"`, `"imagenet-21k"`)."""
    if name not in LABEL_SETS:
        raise UnknownModelError("label set", name, difflib.get_close_matches(name, LABEL_SETS, n=2))
    return _read_shipped(name)


@cache
def _read_shipped(name: str) -> LabelSet:
    text = (files("zoo") / "data" / f"{name}.tsv").read_text(encoding="utf-8")
    wordnet_ids, names = [], []
    for index, line in enumerate(text.splitlines()):
        number, wordnet_id, description = line.split("\t")
        if int(number) != index:  # the file is data we ship: a broken one is a bug
            raise ValueError(f"{name}.tsv: row {index} is numbered {number}")
        wordnet_ids.append(wordnet_id)
        names.append(description)
    if len(names) != LABEL_SETS[name]:
        raise ValueError(f"{name}.tsv has {len(names)} rows, not {LABEL_SETS[name]}")
    return LabelSet(name, tuple(names), tuple(wordnet_ids))


def read_labels_file(path: str | Path) -> LabelSet:
    """Class names from a UTF-8 text file, one per line in class-index order.

    Trailing empty lines are ignored; an empty line in between is an error, since it would
    shift every later class.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ArgumentError(f"cannot read labels file '{path}': {reason}") from None
    names = _strip_trailing_empty([line.strip() for line in lines])
    if not names:
        raise ArgumentError(f"labels file '{path}' has no names")
    empty = [number for number, name in enumerate(names, 1) if not name]
    if empty:
        raise ArgumentError(f"labels file '{path}': line {empty[0]} is empty (one class name per line)")
    return LabelSet(path.name, tuple(names))


def _strip_trailing_empty(names: Sequence[str]) -> list[str]:
    names = list(names)
    while names and not names[-1]:
        names.pop()
    return names
