"""zoo: a plugin-based PyTorch model zoo with a weight hub.

    >>> import zoo
    >>> zoo.list_models("resnet50*")
    >>> model = zoo.create("resnet50_cbam", num_classes=10)
    >>> model = zoo.create("vit_base_patch16_224", pretrained=True, device="cuda")

Importing `zoo` does not import torch; building a model does.
"""

from __future__ import annotations

from .attention import AttentionSpec, ChannelAttention, TokenAttention
from .catalog import ModelInfo, WeightInfo, list_models, list_pretrained, model_info
from .errors import (
    ArgumentError,
    CheckpointError,
    DeviceError,
    HubError,
    IntegrityError,
    NameConflictError,
    NotCachedError,
    NoWeightsError,
    PluginError,
    RegistryError,
    UnknownModelError,
    ZooError,
)
from .export import export
from .hub import get
from .loader import create, load_checkpoint
from .plugins import ENTRY_POINT_GROUP, PluginContext, PluginManager
from .registry import Registry, default_registry

__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArgumentError",
    "AttentionSpec",
    "ChannelAttention",
    "CheckpointError",
    "DeviceError",
    "HubError",
    "IntegrityError",
    "ModelInfo",
    "NameConflictError",
    "NotCachedError",
    "NoWeightsError",
    "PluginContext",
    "PluginError",
    "PluginManager",
    "Registry",
    "RegistryError",
    "TokenAttention",
    "UnknownModelError",
    "WeightInfo",
    "ZooError",
    "create",
    "default_registry",
    "export",
    "get",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "model_info",
]
