"""The registry against the catalogue: timm's published weights of the families the zoo carries
(`tests/data/catalogue/weights.jsonl`, distilled from timm 1.0.31's facts by `distil.py` beside it).

Every catalogue weight is registered under its timm name (`architecture.tag`), or listed in
`left_out.txt` with the reason; at least 95% of each half (the transformers, the CNNs) is
registered. A registered weight resolves to its repository, builds a model that takes its
checkpoint's layout name for name and shape for shape, and states the parameter count and the
ImageNet-1k result the catalogue gives. Every registry weight kept in a `timm/` repository is
one the catalogue describes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

import zoo
from zoo.errors import ZooError

DATA = Path(__file__).parent / "data" / "catalogue"
HALVES = {
    "transformers": {"vision_transformer", "deit", "swin_transformer", "cait"},
    "cnns": {"resnet", "efficientnet", "regnet", "byobnet", "mobilenetv3", "resnest", "sknet"},
}
OUTSIDE_THE_CATALOGUE = {"timm/botnet26t_256.c1_in1k": "timm module byoanet, which the catalogue leaves out"}
REGISTRY = zoo.default_registry()


@cache
def weights_of_the_catalogue() -> list[dict]:
    return [json.loads(line) for line in (DATA / "weights.jsonl").read_text().splitlines() if line.strip()]


@cache
def left_out() -> dict[str, str]:
    """`tag: reason` lines of the weights the registry does not carry."""
    lines = (DATA / "left_out.txt").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@cache
def registered() -> dict[str, dict]:
    """The catalogue weights whose timm name the registry resolves, by that name."""
    found = {}
    for row in weights_of_the_catalogue():
        try:
            REGISTRY.resolve(row["tag"])
        except ZooError:
            continue
        found[row["tag"]] = row
    return found


def catalogue_by_repository() -> dict[str, dict]:
    return {row["hf_hub_id"]: row for row in weights_of_the_catalogue()}


def layout_digest(state: dict) -> str:
    """As `distil.py` digests a checkpoint: the sha256 of its sorted `name shape` lines."""
    lines = sorted(f"{name} {list(tensor.shape)}" for name, tensor in state.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def by_builder_config() -> dict[str, list[str]]:
    """Registered weights grouped by the model they build (one build checks them all)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for tag in registered():
        resolved = REGISTRY.resolve(tag)
        config = REGISTRY.build_config(resolved)
        key = f"{resolved.name}: {json.dumps(config.model_dump(mode='json'), sort_keys=True)}"
        groups[key].append(tag)
    return groups


def test_the_catalogue_holds_every_timm_weight_of_the_carried_families():
    modules = {row["module"] for row in weights_of_the_catalogue()}
    assert len(weights_of_the_catalogue()) == 805 and modules == set().union(*HALVES.values())


@pytest.mark.parametrize("half", HALVES)
def test_at_least_95_percent_of_each_half_of_the_catalogue_is_registered(half):
    rows = [row for row in weights_of_the_catalogue() if row["module"] in HALVES[half]]
    carried = [row for row in rows if row["tag"] in registered()]
    assert len(carried) >= 0.95 * len(rows), f"{len(carried)} of {len(rows)}"


def test_every_catalogue_weight_is_registered_or_left_out_with_a_reason():
    unregistered = {row["tag"] for row in weights_of_the_catalogue()} - set(registered())
    assert unregistered == set(left_out())
    assert all(reason.strip() for reason in left_out().values())


@pytest.mark.parametrize("tag", sorted(registered()))
def test_a_registered_weight_resolves_by_its_timm_name_to_its_repository_with_its_facts(tag):
    facts = registered()[tag]
    weights = REGISTRY.resolve(tag).selected.weights
    assert weights.hf_hub_id == facts["hf_hub_id"]
    assert weights.num_params == facts["num_params"]
    assert weights.gmacs is not None and weights.gmacs > 0
    published = weights.imagenet.model_dump() if getattr(weights, "imagenet", None) else None
    if facts["imagenet"] is None:
        assert published is None
    else:
        assert {key: published[key] for key in ("top1", "top5", "img_size")} == {
            key: facts["imagenet"][key] for key in ("top1", "top5", "img_size")
        }


@pytest.mark.parametrize("group", sorted(by_builder_config()), ids=lambda group: group.split(":")[0])
def test_a_registered_architecture_builds_with_exactly_the_layout_of_its_weights(group):
    tags = by_builder_config()[group]
    resolved = REGISTRY.resolve(tags[0])
    model = zoo.create(tags[0], device="meta")
    state = model.state_dict()
    if resolved.selected.weights.adapter:
        pytest.skip("a key adapter maps the checkpoint's names: checked by the layout tool")
    for tag in tags:
        facts = registered()[tag]
        assert (len(state), layout_digest(state)) == (facts["tensors"], facts["layout"]), tag
    assert sum(p.numel() for p in model.parameters()) == registered()[tags[0]]["num_params"]


def timm_weights() -> list[str]:
    """`name.tag` of every registry weight kept in a repository of the `timm/` organisation."""
    return [
        full
        for full in REGISTRY.pretrained_names()
        if (REGISTRY.resolve(full).selected.weights.hf_hub_id or "").startswith("timm/")
    ]


def test_every_timm_weight_of_the_registry_is_one_the_catalogue_describes_with_its_count():
    """Earlier names included: they state the parameters of the checkpoint they load."""
    facts = catalogue_by_repository()
    for full in timm_weights():
        weights = REGISTRY.resolve(full).selected.weights
        assert weights.hf_hub_id in facts or weights.hf_hub_id in OUTSIDE_THE_CATALOGUE, full
        if weights.hf_hub_id in facts:
            assert weights.num_params == facts[weights.hf_hub_id]["num_params"], full
