"""zoo: a plugin-based PyTorch model zoo with a weight hub.

    >>> import zoo
    >>> zoo.list_models("resnet50*")
    >>> model = zoo.create("resnet50_cbam", num_classes=10)
    >>> model = zoo.create("vit_base_patch16_224", pretrained=True, device="cuda")
    >>> x = zoo.transforms("vit_base_patch16_224")(zoo.load_image("cat.jpg"))
    >>> zoo.flops("vit_base_patch16_224").macs    # 17.6 G multiply-adds, counted on meta

Importing `zoo` imports nothing but this module and `zoo.version`: each public name is
imported from the module that defines it on first access, so that `zoo --help` and
`zoo list` stay fast.
Building a model imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .version import INTERFACE_VERSION, __version__

# Where each public name is defined, relative to this package.
_LOCATIONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ArgumentError",
            "AttentionMapError",
            "CheckpointError",
            "DeviceError",
            "HubError",
            "ImageError",
            "InputError",
            "IntegrityError",
            "MissingFileError",
            "NameConflictError",
            "NotCachedError",
            "NoWeightsError",
            "PluginError",
            "RegistryError",
            "UnknownModelError",
            "ZooError",
        ),
        ".errors",
    ),
    "Registry": ".registry",
    "default_registry": ".registry",
    **dict.fromkeys(
        (
            "AlignmentAttention",
            "AttentionSpec",
            "ChannelAttention",
            "ClassAttention",
            "PoolingAttention",
            "SequenceAttention",
            "TokenAttention",
            "WindowAttention",
        ),
        ".registry.attention_spec",
    ),
    **dict.fromkeys(("ENTRY_POINT_GROUP", "PluginContext", "PluginManager"), ".registry.plugins"),
    **dict.fromkeys(
        ("ModelInfo", "WeightInfo", "list_models", "list_pretrained", "model_info"), ".tasks.catalog"
    ),
    "attention_maps": ".tasks.maps",
    "sequence_maps": ".tasks.sequence_maps",
    **dict.fromkeys(("FlopReport", "flops"), ".tasks.flops"),
    **dict.fromkeys(("data_config", "load_image", "transforms"), ".tasks.preprocessing"),
    **dict.fromkeys(("PredictedFiles", "embed_files", "predict_files", "predictor"), ".tasks.predict"),
    "export": ".weights.export",
    "export_graph": ".tasks.graph_export",
    "create": ".weights.factory",
    "get": ".weights.factory",
    "load_checkpoint": ".weights.loading",
    **dict.fromkeys(("create_sharded", "shard_model"), ".weights.sharded"),
}

__all__ = sorted(["INTERFACE_VERSION", *_LOCATIONS])


__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` provides these
    from .errors import (
        ArgumentError,
        AttentionMapError,
        CheckpointError,
        DeviceError,
        HubError,
        ImageError,
        InputError,
        IntegrityError,
        MissingFileError,
        NameConflictError,
        NotCachedError,
        NoWeightsError,
        PluginError,
        RegistryError,
        UnknownModelError,
        ZooError,
    )
    from .registry import Registry, default_registry
    from .registry.attention_spec import (
        AlignmentAttention,
        AttentionSpec,
        ChannelAttention,
        ClassAttention,
        PoolingAttention,
        SequenceAttention,
        TokenAttention,
        WindowAttention,
    )
    from .registry.plugins import ENTRY_POINT_GROUP, PluginContext, PluginManager
    from .tasks.catalog import ModelInfo, WeightInfo, list_models, list_pretrained, model_info
    from .tasks.flops import FlopReport, flops
    from .tasks.graph_export import export_graph
    from .tasks.maps import attention_maps
    from .tasks.predict import PredictedFiles, embed_files, predict_files, predictor
    from .tasks.preprocessing import data_config, load_image, transforms
    from .tasks.sequence_maps import sequence_maps
    from .weights.export import export
    from .weights.factory import create, get
    from .weights.loading import load_checkpoint
    from .weights.sharded import create_sharded, shard_model
