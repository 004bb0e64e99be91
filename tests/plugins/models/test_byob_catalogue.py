"""byob beyond BoTNet: timm's RepVGG, MobileOne, GENet, RegNetZ, q-net and CLIP ResNets, as
tiny timm checkpoints, the inference form of the re-parameterisable blocks, feature maps."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.registry.attention import ATTENTION_KINDS, probe_attention_class
from zoo_plugins.attention.attention_pool import AttentionPool2d
from zoo_plugins.attention.global_context import GlobalContext
from zoo_plugins.models.byob import ByobConfig, MobileOneBlock, RepVggBlock, Stem, build

from ...conftest import REFERENCE
from .tiny import assert_reproduces_timm

NAME = "botnet26t_256"  # the builder's registry entry; each case overrides its architecture
CASES = [
    "repvgg_tiny_cls10",
    "mobileone_tiny_cls10",
    "gcresnext_tiny_cls10",
    "regnetz_evos_tiny_cls10",
    "qnet_tiny_cls10",
    "resnet_clip_tiny_proj16",
]
NOT_ARGS = ("family", "shrinks", "note")


def keys(case: str) -> list[str]:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    return [key for key in description if key not in NOT_ARGS]


def loaded(case: str) -> torch.nn.Module:
    description = json.loads((REFERENCE / "tiny" / f"{case}.json").read_text())
    args = {key: description[key] for key in keys(case)}
    return zoo.create(NAME, checkpoint=REFERENCE / "tiny" / f"{case}.safetensors", **args).eval()


@pytest.mark.parametrize("case", CASES)
def test_the_tiny_reference_checkpoint_reproduces_timm_outputs_and_features(case):
    assert_reproduces_timm(NAME, case, keys(case))


@pytest.mark.parametrize(
    ("case", "block"), [("repvgg_tiny_cls10", RepVggBlock), ("mobileone_tiny_cls10", MobileOneBlock)]
)
def test_folding_the_branches_into_one_conv_gives_the_same_outputs(case, block):
    model = loaded(case).double()  # in float64, so that only a wrong fold shows
    x = load_file(REFERENCE / "tiny" / f"{case}.io.safetensors")["input"].double()
    with torch.no_grad():
        branched = model(x)
        model.reparameterize()
        folded = model(x)
    blocks = [m for m in model.modules() if isinstance(m, block)]
    assert blocks and all(b.reparam_conv is not None for b in blocks)
    assert not any("conv_kxk" in name or "identity" in name for name in model.state_dict())
    torch.testing.assert_close(folded, branched, atol=1e-10, rtol=0)
    model.reparameterize()  # a second time changes nothing


@pytest.mark.parametrize("case", CASES)
def test_feature_info_describes_the_intermediates(case):
    model, x = loaded(case), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
    assert [m.shape[1:] for m in maps] == [
        (i["num_chs"], 64 // i["reduction"], 64 // i["reduction"]) for i in model.feature_info
    ]


def test_a_stem_of_one_conv_is_the_first_feature_and_a_stem_stack_gives_its_map_of_stride_2():
    one_conv = build(ByobConfig(stem_type="3x3", stem_chs=16, stem_pool="", **SMALL), device="meta")
    assert one_conv.feature_info[0] == {"module": "stem", "num_chs": 16, "reduction": 2, "stage": 0}
    assert one_conv.first_conv == "stem.conv"
    stack = build(ByobConfig(stem_type="quad2", stem_chs=32, stem_pool="", **SMALL), device="meta")
    assert isinstance(stack.stem, Stem) and stack.stem.tap == "conv3"
    assert [tuple(stack.stem.conv1.weight.shape), stack.first_conv] == [(4, 3, 3, 3), "stem.conv1"]


SMALL = {
    "img_size": 64,
    "num_classes": 10,
    "blocks": [{"type": "bottle", "d": 1, "c": c, "s": 2, "br": 0.25} for c in (32, 64, 128, 256)],
}


def test_an_attention_pooling_head_projects_to_proj_dim_and_its_classifier_resets():
    model = loaded("resnet_clip_tiny_proj16")
    assert model.classifier_names == ("head.proj",) and model(torch.randn(1, 3, 64, 64)).shape == (1, 16)
    assert model(torch.randn(1, 3, 96, 96)).shape == (1, 16)  # positions resampled to a 3x3 map
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    model.reset_classifier(0, "avg")
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 256)


def test_proj_dim_and_classes_for_one_attention_pooling_are_refused():
    with pytest.raises(ValueError, match="proj_dim or to num_classes, not to both"):
        ByobConfig(**{**SMALL, "attn_pool": "attention_pool", "proj_dim": 16})


@pytest.mark.parametrize(("variant", "kind"), [(GlobalContext, "channel"), (AttentionPool2d, "map_pooling")])
def test_the_new_attention_variants_follow_their_kinds(variant, kind):
    probe_attention_class(variant, ATTENTION_KINDS[kind], name=variant.__name__)


def test_global_context_adds_the_attention_weighted_mean_of_the_positions():
    torch.manual_seed(0)
    attention, x = GlobalContext(8).eval(), torch.randn(2, 8, 3, 5)
    torch.nn.init.normal_(attention.mlp_add.fc2.weight)
    with torch.no_grad():
        weights = attention.conv_attn(x).flatten(1).softmax(-1)  # (B, HW)
        context = torch.einsum("bcn,bn->bc", x.flatten(2), weights)[..., None, None]
        torch.testing.assert_close(attention(x), x + attention.mlp_add(context))
