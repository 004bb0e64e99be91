"""`zoo.tasks.flops`: what a forward pass costs, counted on meta, by operator and by module."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

import zoo
from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term
from zoo.registry import Registry
from zoo.registry.family import ImageFamily
from zoo.registry.flop_terms import current_term
from zoo.tasks.flops import ATTENTION_TERMS, SOFTMAX_FLOPS, count_flops, flops, growth, report_size
from zoo.tasks.flops_plot import COLOURS, HEIGHT, WIDTH, exponent, growth_chart, series

from ...kinds import entries_of_each_kind

# What the papers and timm's model cards quote (timm counts with fvcore: the multiply-adds
# of convolutions and matrix products, plus 5 per element of each layer norm). Our MACs leave
# the norms out; they are 0.1% of these.
PUBLISHED = [
    ("vit_base_patch16_224", 17.6e9, 23.9e6),
    ("resnet50", 4.1e9, 11.1e6),
    ("vit_huge_patch14_224_in21k.orig_in21k", 167.4e9, 139.4e6),
]
PRODUCT_ROWS = ("conv", "linear", "matmul", ATTENTION_QK, ATTENTION_AV)


@pytest.mark.parametrize(("name", "gmacs", "activations"), PUBLISHED, ids=lambda v: str(v))
def test_totals_agree_with_the_published_figures(name, gmacs, activations):
    report = flops(name)
    assert report.macs == pytest.approx(gmacs, rel=0.01)
    assert report.flops == 2 * report.macs
    assert report.activations == pytest.approx(activations, rel=0.01)  # timm's "Activations (M)"
    assert report.input_size == (3, 224, 224) and report.batch == 1


def test_vit_b16_by_operator_written_out():
    """ViT-B/16 at 224: 197 tokens of width 768, 12 blocks of 12 heads of 64."""
    report = flops("vit_base_patch16_224")
    tokens, dim, heads, depth = 197, 768, 12, 12
    assert report.operator("conv").macs == 196 * dim * (3 * 16 * 16)
    linear = depth * tokens * dim * (3 * dim + dim + 2 * 4 * dim) + dim * 1000
    assert report.operator("linear").macs == linear
    for term in (ATTENTION_QK, ATTENTION_AV):
        row = report.operator(term)
        assert row.macs == depth * heads * tokens * tokens * (dim // heads)  # grows as N^2
        assert (row.calls, row.scores) == (depth, ((tokens, tokens),))
    softmax = report.operator(ATTENTION_SOFTMAX)
    assert softmax.macs == 0 and softmax.flops == SOFTMAX_FLOPS * depth * heads * tokens * tokens
    assert report.operator("layer norm").flops == 5 * (2 * depth + 1) * tokens * dim
    assert report.operator("gelu").flops == depth * tokens * 4 * dim
    assert report.other_flops == sum(report.operator(label).flops for label in ("layer norm", "gelu")) + (
        softmax.flops
    )
    assert [row.label for row in report.operators][:3] == ["conv", "layer norm", "linear"]  # forward order


def _one_entry_per_family() -> list[str]:
    registry = zoo.default_registry()
    first: dict[str, str] = {}
    for name in registry.model_names():
        first.setdefault(registry.source(name).entry.builder, name)
    return sorted(first.values())


@pytest.mark.parametrize("name", entries_of_each_kind())
def test_each_kind_of_name_counts_on_meta(name):
    report = flops(name)
    assert report.macs > 0 and report.flops == 2 * report.macs and report.other_flops >= 0
    for row in report.operators:
        if row.label in PRODUCT_ROWS:
            assert row.flops == 2 * row.macs, row  # 2 FLOPs per multiply-add
        if row.label in ATTENTION_TERMS:
            assert row.scores and all(lq > 0 and lk > 0 for lq, lk in row.scores), row
    model = zoo.create(name, device="meta")
    assert report.params == sum(p.numel() for p in model.parameters())
    whole = report.module("")
    assert (whole.macs, whole.params, whole.activations) == (report.macs, report.params, report.activations)
    assert whole.flops == sum(row.flops for row in report.operators)
    paths = dict(model.named_modules())
    assert all(row.name in paths for row in report.modules)
    for row in report.modules:  # a module costs at least what its children cost together
        children = [r for r in report.modules if r.depth == row.depth + 1 and r.name.startswith(row.name)]
        if row.name:
            children = [r for r in children if r.name.startswith(row.name + ".")]
        assert sum(r.macs for r in children) <= row.macs


@pytest.mark.parametrize("name", _one_entry_per_family())
def test_every_family_counts_its_batch(name):
    args = zoo.default_registry().builder(zoo.default_registry().source(name).entry.builder).family.test_args
    one, three = flops(name, model_args=args), flops(name, model_args=args, batch=3)
    assert three.macs == 3 * one.macs and three.activations == 3 * one.activations
    assert three.batch == 3 and three.params == one.params


class Attending(nn.Module):
    """Queries over keys and values of other lengths and widths, fused or step by step."""

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused

    def forward(self, q, k, v):
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        with flop_term(ATTENTION_QK):
            scores = q @ k.transpose(-2, -1)
        with flop_term(ATTENTION_SOFTMAX):
            weights = scores.softmax(-1)
        with flop_term(ATTENTION_AV):
            return weights @ v


SHAPES = {"batch": 2, "heads": 3, "queries": 5, "keys": 7, "depth": 4, "value_depth": 6}


def attention_inputs(device: str) -> tuple[torch.Tensor, ...]:
    b, h, lq, lk, d, dv = SHAPES.values()
    return (
        torch.randn(b, h, lq, d, device=device),
        torch.randn(b, h, lk, d, device=device),
        torch.randn(b, h, lk, dv, device=device),
    )


@pytest.mark.parametrize(
    ("fused", "device"),
    [(True, "meta"), (True, "cpu"), (False, "meta"), (False, "cpu")],
    ids=["fused-meta", "fused-cpu-kernel", "steps-meta", "steps-cpu"],
)
def test_attention_is_split_into_its_terms_by_shape(fused, device):
    b, h, lq, lk, d, dv = SHAPES.values()
    count = count_flops(Attending(fused), attention_inputs(device))
    rows = {row.label: row for row in count.operators}
    assert list(rows) == [ATTENTION_QK, ATTENTION_SOFTMAX, ATTENTION_AV]
    assert (rows[ATTENTION_QK].macs, rows[ATTENTION_AV].macs) == (b * h * lq * lk * d, b * h * lq * lk * dv)
    assert rows[ATTENTION_SOFTMAX].flops == SOFTMAX_FLOPS * b * h * lq * lk
    assert rows[ATTENTION_QK].activations == b * h * lq * lk  # the scores, as if written
    assert all(row.scores == ((lq, lk),) for row in rows.values())


def test_the_fused_and_the_eager_attention_of_a_variant_count_alike():
    model_args = {**zoo.default_registry().builder("vit").family.test_args}
    fused = flops("vit_tiny_patch16_224", model_args={**model_args, "attn": {"name": "mhsa", "fused": True}})
    eager = flops("vit_tiny_patch16_224", model_args={**model_args, "attn": {"name": "mhsa", "fused": False}})
    assert fused.operators == eager.operators


def test_a_variant_names_rows_of_its_own_and_the_innermost_term_wins():
    class Mixing(nn.Module):
        def forward(self, x, w):
            with flop_term("outer"):
                y = x @ w
                with flop_term("inner"):
                    return torch.relu(y @ w)

    x, w = torch.zeros(4, 8, device="meta"), torch.zeros(8, 8, device="meta")
    count = count_flops(Mixing(), (x, w))
    assert [(row.label, row.macs, row.flops) for row in count.operators] == [
        ("outer", 4 * 8 * 8, 2 * 4 * 8 * 8),
        ("inner", 4 * 8 * 8, 2 * 4 * 8 * 8 + 4 * 8),  # the product and the relu
    ]


def test_flop_term_does_nothing_outside_a_count():
    with flop_term(ATTENTION_QK):
        assert current_term() is None


def test_the_talking_heads_mixing_is_a_term_of_its_own():
    report = flops("cait_xxs24_224")
    mixing = report.operator("attention head mixing")
    tokens, heads, blocks = 196, 4, 24  # patch blocks: 14x14 tokens, no class token yet
    assert mixing.macs == 2 * blocks * tokens * tokens * heads * heads
    assert (tokens, tokens) in report.operator(ATTENTION_QK).scores
    assert (1, tokens + 1) in report.operator(ATTENTION_QK).scores  # class attention: one query


def test_a_training_step_counts_the_backward_pass():
    args = zoo.default_registry().builder("vit").family.test_args
    model = zoo.create("vit_tiny_patch16_224", device="meta", **args)
    x = torch.zeros(2, 3, 32, 32, device="meta")
    forward = count_flops(model.eval(), (x,))
    train = count_flops(
        model.train(), (x,), step=lambda m, inputs: m(*inputs).logsumexp(-1).mean().backward()
    )
    assert 2.5 < train.macs / forward.macs < 3.5


def test_sizes_change_the_model_and_the_input():
    default, larger = flops("vit_base_patch16_224"), flops("vit_base_patch16_224", img_size=384)
    assert larger.input_size == (3, 384, 384) and larger.params > default.params  # position embeddings
    assert larger.operator(ATTENTION_QK).scores == ((577, 577),)
    resnet = flops("resnet50", img_size=448)
    assert resnet.macs == pytest.approx(4 * flops("resnet50").macs, rel=0.01)
    text = flops("text_transformer_small", seq_len=64)
    assert text.input_size == (64,) and text.operator(ATTENTION_QK).scores == ((65, 65),)  # and a class token


def test_activation_memory_follows_the_dtype():
    float32, bfloat16 = flops("resnet18"), flops("resnet18", dtype="bfloat16")
    assert float32.activations == bfloat16.activations
    assert (float32.activation_bytes, bfloat16.activation_bytes) == (
        4 * float32.activations,
        2 * float32.activations,
    )


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("vit_base_patch16_224", {"img_size": 100}, "img_size 100 is not a multiple of patch_size 16"),
        ("swin_tiny_patch4_window7_224", {"img_size": 256}, "does not fit patch_size 4"),
        ("resnet50", {"seq_len": 8}, "'resnet50' takes images: seq_len does not apply"),
        ("text_transformer_small", {"img_size": 224}, "takes no images, so img_size does not apply"),
        ("text_transformer_small", {"seq_len": 5000}, "cannot take sequences of 5000 steps"),
    ],
)
def test_inputs_a_model_cannot_take_are_one_line(name, kwargs, message):
    with pytest.raises(zoo.ArgumentError, match=message) as raised:
        flops(name, **kwargs)
    assert "\n" not in str(raised.value)


class PickyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    in_chans: int = 3
    num_classes: int = 10


class Picky(nn.Module):
    def __init__(self, config, *, device=None, dtype=None):
        super().__init__()
        self.fc = nn.Linear(config.in_chans, config.num_classes, device=device, dtype=dtype)

    def forward(self, x):
        if x.shape[-1] % 32:
            raise ValueError(f"width {x.shape[-1]} is not a multiple of 32\nsecond line")
        return self.fc(x.mean((2, 3)))


class PickyFamily(ImageFamily):
    config = PickyConfig

    def build(self, config, *, device=None, dtype=None):
        return Picky(config, device=device, dtype=dtype)


def test_a_forward_that_fails_on_an_input_is_a_one_line_refusal(tmp_path):
    registry = Registry()
    registry.add_builder("picky", PickyFamily(), owner="test")
    entries = tmp_path / "registry.yaml"
    entries.write_text("models:\n  picky:\n    builder: picky\n")
    registry.add_models(entries, owner="test")
    assert flops("picky", img_size=64, registry=registry).macs == 3 * 10
    with pytest.raises(zoo.ArgumentError) as raised:
        flops("picky", img_size=40, registry=registry)
    assert str(raised.value) == "'picky' cannot run on 1x3x40x40: width 40 is not a multiple of 32"


def test_growth_skips_sizes_a_model_cannot_take_unless_they_are_asked_for():
    axis, reports = growth("vit_base_patch16_224")
    assert axis == "image size"
    assert [report_size(r, axis) for r in reports] == [112, 224, 336, 448]  # 168, 280, 392: not /16
    with pytest.raises(zoo.ArgumentError, match="not a multiple of patch_size"):
        growth("vit_base_patch16_224", [112, 168])
    axis, reports = growth("text_transformer_small", [8, 32])
    assert axis == "sequence length" and [r.input_size for r in reports] == [(8,), (32,)]


def test_attention_grows_with_the_square_of_the_tokens():
    args = zoo.default_registry().builder("vit").family.test_args
    axis, reports = growth("vit_tiny_patch16_224", [32, 64, 128], model_args=args)
    sizes, lines = [report_size(r, axis) for r in reports], series(reports)
    assert exponent(sizes, lines["linear"]) == pytest.approx(2, abs=0.1)  # tokens ~ S^2
    for term in ATTENTION_TERMS:
        assert exponent(sizes, lines[term]) == pytest.approx(4, abs=0.2)  # tokens^2 ~ S^4
    assert lines["total"] == [sum(row.flops for row in r.operators) for r in reports]


def test_the_growth_chart_draws_a_line_per_operator():
    args = zoo.default_registry().builder("vit").family.test_args
    axis, reports = growth("vit_tiny_patch16_224", [32, 64], model_args=args)
    image = growth_chart(axis, reports)
    assert image.size == (WIDTH, HEIGHT)
    colours = {colour for _, colour in image.getcolors(WIDTH * HEIGHT)}
    drawn = len(series(reports)) - 1  # the total is black
    assert all(colour in colours for colour in COLOURS[:drawn])


def test_exponent_needs_two_positive_points():
    assert exponent([1, 2, 4], [3, 12, 48]) == pytest.approx(2)
    assert exponent([1, 2], [0, 5]) is None
    assert math.isclose(exponent([2, 4], [1, 8]), 3)
