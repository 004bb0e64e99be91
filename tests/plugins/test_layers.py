"""Layers shared by the families: each model file imports them, never another model file;
one patch embedding and one classifier head for every layout; stochastic depth (DropPath)."""

import ast
from pathlib import Path

import pytest
import torch

import zoo_plugins.models
from zoo_plugins.layers import ClassifierHead, DropPath, PatchEmbed, drop_path_rates

MODELS = Path(zoo_plugins.models.__file__).parent
MODEL_FILES = sorted(path for path in MODELS.glob("*.py") if path.name != "__init__.py")
PACKAGE = "zoo_plugins.models"


def imported_names(path: Path) -> set[str]:
    """Every name a file of `zoo_plugins.models` imports, made absolute, at module level or
    inside functions; `from m import x` counts as `m` and `m.x` (x may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = PACKAGE.rsplit(".", node.level - 1)[0]
                base = f"{package}.{base}" if base else package
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def models_imported_by(path: Path) -> set[str]:
    """The modules of `zoo_plugins.models` a file imports."""
    prefix = f"{PACKAGE}."
    return {
        name.removeprefix(prefix).split(".")[0] for name in imported_names(path) if name.startswith(prefix)
    }


def test_there_are_model_files_to_check():
    assert len(MODEL_FILES) > 5 and MODELS / "vit.py" in MODEL_FILES


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda path: path.name)
def test_a_model_file_imports_no_other_model_file_only_shared_layers(path):
    assert models_imported_by(path) == set(), f"{path.name}: what it shares belongs in zoo_plugins.layers"


def test_the_import_check_sees_every_way_of_naming_a_model_module(tmp_path):
    source = tmp_path / "family.py"
    source.write_text(
        "from .vit import Mlp\n"
        "from . import regnet\n"
        "from ..layers import DropPath\n"
        "import zoo_plugins.models.swin\n"
        "def build():\n"
        "    from zoo_plugins.models.cait import CaiT\n"
    )
    assert models_imported_by(source) == {"vit", "regnet", "swin", "cait"}


def test_patch_embedding_gives_the_same_tokens_as_a_sequence_or_as_a_grid():
    torch.manual_seed(0)
    sequence = PatchEmbed(16, 4, 3, 8, norm=True)
    grid = PatchEmbed(16, 4, 3, 8, norm=True, output_fmt="NHWC")
    grid.load_state_dict(sequence.state_dict())
    x = torch.randn(2, 3, 16, 16)
    assert sequence(x).shape == (2, 16, 8) and grid(x).shape == (2, 4, 4, 8)
    torch.testing.assert_close(grid(x).flatten(1, 2), sequence(x))


def test_patch_embedding_holds_a_norm_only_when_asked():
    assert set(PatchEmbed(16, 4, 3, 8).state_dict()) == {"proj.weight", "proj.bias"}
    assert set(PatchEmbed(16, 4, 3, 8, norm=True, bias=False).state_dict()) == {
        "proj.weight",
        "norm.weight",
        "norm.bias",
    }
    with pytest.raises(ValueError, match=r"this model takes 16x16"):
        PatchEmbed(16, 4, 3, 8)(torch.randn(1, 3, 12, 12))


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax", "catavgmax"])
def test_the_classifier_head_pools_a_channels_last_map_as_a_channels_first_one(pool):
    torch.manual_seed(0)
    first = ClassifierHead(6, 5, pool)
    last = ClassifierHead(6, 5, pool, input_fmt="NHWC")
    last.load_state_dict(first.state_dict())
    x = torch.randn(2, 6, 3, 4)
    torch.testing.assert_close(last(x.permute(0, 2, 3, 1)), first(x))
    assert set(first.state_dict()) == {"fc.weight", "fc.bias"}


def test_the_classifier_head_without_pooling_gives_logits_per_position_and_resets_in_place():
    head = ClassifierHead(6, 5, "", input_fmt="NHWC")
    assert head(torch.randn(2, 3, 4, 6)).shape == (2, 3, 4, 5)
    head.reset(0, "avg")
    assert isinstance(head.fc, torch.nn.Identity)
    assert head(torch.randn(2, 3, 4, 6)).shape == (2, 6)
    assert head.global_pool.input_fmt == "NHWC", "a reset keeps where the channels are"


def test_drop_path_drops_whole_samples_and_scales_the_survivors_by_one_over_keep():
    torch.manual_seed(0)
    drop = DropPath(0.25).train()
    x = torch.randn(4000, 3, 5).abs() + 0.1  # no zeros of its own
    out = drop(x)
    dropped = (out == 0).flatten(1).all(dim=1)
    kept = (out != 0).flatten(1).all(dim=1)
    assert torch.all(dropped | kept), "a sample is dropped whole or kept whole"
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    assert dropped.float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert out.mean().item() == pytest.approx(x.mean().item(), rel=0.05), "unbiased in expectation"


def test_drop_path_draws_a_new_choice_each_call_and_passes_gradients_to_survivors():
    torch.manual_seed(1)
    drop = DropPath(0.5).train()
    x = torch.ones(64, 8, requires_grad=True)
    first, second = drop(x), drop(x)
    assert not torch.equal(first, second)
    first.sum().backward()
    kept = first[:, 0] != 0
    assert torch.all(x.grad[kept] == 2.0) and torch.all(x.grad[~kept] == 0)


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_drop_path_is_the_identity_in_evaluation_and_at_rate_zero(rate):
    x = torch.randn(16, 4)
    assert DropPath(rate).eval()(x) is x
    assert DropPath(0.0).train()(x) is x
    assert "drop_prob=0.5" in repr(DropPath(0.5))


def test_drop_path_rates_rise_linearly_from_zero_over_the_blocks():
    assert drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert drop_path_rates(0.3, 1) == [0.0]


@pytest.mark.parametrize(("std", "bounds"), [(0.02, (-2.0, 2.0)), (0.5, (-2.0, 2.0)), (0.1, (-0.5, 1.0))])
def test_trunc_normal_draws_what_torch_draws(std, bounds):
    from torch import nn

    from zoo_plugins.layers import trunc_normal_

    ours, torchs = torch.empty(300, 200), torch.empty(300, 200)
    torch.manual_seed(0)
    trunc_normal_(ours, std=std, a=bounds[0], b=bounds[1])
    torch.manual_seed(0)
    nn.init.trunc_normal_(torchs, std=std, a=bounds[0], b=bounds[1])
    assert torch.equal(ours, torchs)


def test_a_bare_conv_is_registered_where_the_model_is_built_and_left_to_the_family():
    from torch import nn

    from zoo_plugins.layers import bare_conv2d

    conv = bare_conv2d(3, 8, 3, stride=2, padding=1, dtype=torch.float64)
    assert (conv.weight.device.type, conv.weight.dtype, conv.bias) == ("cpu", torch.float64, None)
    assert (conv.stride, conv.padding) == ((2, 2), (1, 1))
    with torch.device("meta"):
        assert bare_conv2d(3, 8, 1).weight.is_meta
    moved = []
    hook = nn.modules.module.register_module_parameter_registration_hook(lambda *args: moved.append(args[1]))
    try:
        bare_conv2d(3, 8, 1)
    finally:
        hook.remove()
    assert moved.count("weight") == 2  # on meta, then where it is built: a loader's hook sees it
