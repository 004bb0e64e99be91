"""`features_only`: feature maps from any model that declares `feature_info`.

Models with `forward_intermediates` are covered over every image family by
tests/test_training_interface.py; here, a model that only declares `feature_info` gets its
maps through hooks, and `zoo.create` takes the options.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.checkpoint import checkpoint

import zoo
from zoo.errors import ArgumentError
from zoo.weights.features import FeatureExtractor


class TinyCNN(nn.Module):
    """Two stages, then a conv head that needs the last stage's width, as EfficientNets have."""

    def __init__(self, checkpointed: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.stage1 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.conv_head = nn.Conv2d(16, 32, 1)
        self.fc = nn.Linear(32, 10)
        self.checkpointed = checkpointed
        self.head_runs = 0
        self.feature_info = [
            {"module": "stem", "num_chs": 4, "reduction": 2},
            {"module": "stage1", "num_chs": 8, "reduction": 4},
            {"module": "stage2", "num_chs": 16, "reduction": 8},
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in (self.stage1, self.stage2):
            x = checkpoint(stage, x, use_reentrant=False) if self.checkpointed else stage(x)
        self.head_runs += 1
        return self.conv_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean((2, 3)))


def test_a_model_declaring_feature_info_gives_the_outputs_of_those_modules():
    model = TinyCNN()
    x = torch.randn(2, 3, 32, 32)
    expected = [model.stem(x), model.stage1(model.stem(x))]

    extractor = FeatureExtractor(model, out_indices=(0, 1))
    maps = extractor(x)

    assert [tuple(m.shape) for m in maps] == [(2, 4, 16, 16), (2, 8, 8, 8)]
    torch.testing.assert_close(maps, expected)
    assert extractor.feature_info.channels() == [4, 8] and extractor.feature_info.reduction() == [2, 4]
    assert extractor.feature_info.module_name() == ["stem", "stage1"]


def test_the_forward_pass_stops_at_the_last_map_and_later_stages_are_dropped():
    extractor = FeatureExtractor(TinyCNN(), out_indices=(1,))

    extractor(torch.randn(1, 3, 32, 32))

    assert extractor.model.head_runs == 0  # the conv head never ran
    assert isinstance(extractor.model.stage2, nn.Identity)


def test_hooks_survive_recomputation_in_the_backward_pass():
    extractor = FeatureExtractor(TinyCNN(checkpointed=True))
    x = torch.randn(2, 3, 32, 32, requires_grad=True)

    maps = extractor(x)
    sum(m.sum() for m in maps).backward()

    assert len(maps) == 3 and x.grad is not None


def test_a_model_without_feature_info_or_an_index_out_of_range_is_one_clear_error():
    with pytest.raises(ArgumentError, match="declares no feature_info"):
        FeatureExtractor(nn.Linear(2, 2))
    with pytest.raises(ArgumentError, match=r"out_indices \(5,\): feature indices \[5\] out of range for 3"):
        FeatureExtractor(TinyCNN(), out_indices=(5,))


def test_create_builds_features_with_weights_and_keeps_what_loading_did(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("resnet18", layers=[1, 1, 1, 1], num_classes=10).eval()
    path = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    x = torch.randn(1, 3, 64, 64)

    features = zoo.create(
        "resnet18", checkpoint=path, layers=[1, 1, 1, 1], num_classes=10, features_only=True
    )

    with torch.no_grad():
        last = features.eval()(x)[-1]
        torch.testing.assert_close(last, model.forward_features(x))
    assert features.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert features.load_report.checkpoint == "resnet18"


def test_out_indices_alone_is_refused():
    with pytest.raises(ArgumentError, match="features_only=True"):
        zoo.create("resnet18", out_indices=(1, 2), device="meta")


def test_a_changed_pooling_gives_a_fresh_head_over_the_loaded_body(tmp_path):
    model = zoo.create("resnet18", layers=[1, 1, 1, 1], num_classes=10)
    path = tmp_path / "resnet.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))

    wider = zoo.create(
        "resnet18", checkpoint=path, layers=[1, 1, 1, 1], num_classes=10, global_pool="catavgmax"
    )

    assert wider.fc.in_features == 2 * model.num_features
    assert set(wider.load_report.fresh) == {"fc.weight", "fc.bias"}
    assert "reads features of another width" in wider.load_report.messages[0]
