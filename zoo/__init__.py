"""zoo: a plugin-based PyTorch model zoo with a weight hub.

    >>> import zoo
    >>> zoo.list_models("resnet50*")
    >>> model = zoo.create("resnet50_cbam", num_classes=10)
    >>> model = zoo.create("vit_base_patch16_224", pretrained=True, device="cuda")
    >>> x = zoo.transforms("vit_base_patch16_224")(zoo.load_image("cat.jpg"))

Importing `zoo` does not import torch; building a model does.
"""

from __future__ import annotations

from .errors import (
    ArgumentError,
    AttentionMapError,
    CheckpointError,
    DeviceError,
    HubError,
    ImageError,
    IntegrityError,
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
    PoolingAttention,
    SequenceAttention,
    TokenAttention,
)
from .registry.plugins import ENTRY_POINT_GROUP, PluginContext, PluginManager
from .tasks.catalog import ModelInfo, WeightInfo, list_models, list_pretrained, model_info
from .tasks.maps import attention_maps
from .tasks.preprocessing import data_config, load_image, transforms
from .weights.export import export
from .weights.factory import create, get
from .weights.loading import load_checkpoint

__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "AlignmentAttention",
    "ArgumentError",
    "AttentionMapError",
    "AttentionSpec",
    "ChannelAttention",
    "CheckpointError",
    "DeviceError",
    "HubError",
    "ImageError",
    "IntegrityError",
    "ModelInfo",
    "NameConflictError",
    "NotCachedError",
    "NoWeightsError",
    "PluginContext",
    "PluginError",
    "PluginManager",
    "PoolingAttention",
    "Registry",
    "RegistryError",
    "SequenceAttention",
    "TokenAttention",
    "UnknownModelError",
    "WeightInfo",
    "ZooError",
    "attention_maps",
    "create",
    "data_config",
    "default_registry",
    "export",
    "get",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "load_image",
    "model_info",
    "transforms",
]
