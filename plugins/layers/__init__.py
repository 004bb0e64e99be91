"""The building blocks shared by the model families, one concept per module.

A model file imports these, never another model file. The small layers are re-exported
here (`from zoo_plugins.layers import DropPath`); the trunk of the mobile networks is
imported from its module, `zoo_plugins.layers.mobile`.

- `activations`: activations by name (`activation`, `Activation`, `QuickGELU`);
- `conv`: conv, BatchNorm and activation as one module (`ConvNormAct`, `BatchNormAct2d`),
  `make_divisible` for their widths;
- `pooling`, `heads`: global pooling of a map (`GlobalPool`) and the classifier head
  reading it (`ClassifierHead`);
- `patch_embed`, `positions`, `mlp`: a transformer's patch embedding, position embeddings
  and feed-forward network;
- `relative_positions`: relative position bias tables resampled to another window;
- `drop`, `blocks`: stochastic depth and running the repeated blocks;
- `grids`: tokens and attention weights as maps over their grid;
- `init`, `reconfigure`: initialisations, and changing a built model's config;
- `recurrent`: an LSTM over padded batches;
- `mobile`: the inverted-residual trunk EfficientNet and MobileNetV3 share;
- `padding`: convs and pooling padded as TensorFlow's "SAME" (`conv2d`, `Padding`).
- `norm_act`, `reparam`: a network's norm and activation (BatchNorm, GroupNorm, LayerNorm or EvoNorm), and
  conv-and-BatchNorm branches folded into one conv (RepVGG, MobileOne).
"""

from .activations import ACTIVATIONS, Activation, QuickGELU, activation
from .blocks import run_blocks
from .conv import BatchNormAct2d, ConvNormAct, make_divisible
from .drop import DropPath, drop_path_rates
from .grids import attention_received, tokens_as_grid
from .heads import ClassifierHead
from .init import (
    bare_conv2d,
    init_convs,
    init_fan_out,
    init_linears,
    init_normal,
    init_submodules,
    trunc_normal_,
)
from .mlp import Mlp
from .norm_act import EvoNorm2dS0a, NormAct, NormLayer
from .patch_embed import PatchEmbed
from .pooling import GlobalPool, MapFormat, PoolType
from .positions import resample_pos_embed, sinusoidal_positions
from .reconfigure import factory_of, reconfigured
from .recurrent import LSTMEncoder
from .relative_positions import resample_relative_position_table
from .reparam import fused_conv

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BatchNormAct2d",
    "ClassifierHead",
    "ConvNormAct",
    "DropPath",
    "EvoNorm2dS0a",
    "GlobalPool",
    "LSTMEncoder",
    "MapFormat",
    "Mlp",
    "NormAct",
    "NormLayer",
    "PatchEmbed",
    "PoolType",
    "QuickGELU",
    "activation",
    "attention_received",
    "bare_conv2d",
    "drop_path_rates",
    "factory_of",
    "fused_conv",
    "init_convs",
    "init_fan_out",
    "init_linears",
    "init_normal",
    "init_submodules",
    "make_divisible",
    "reconfigured",
    "resample_pos_embed",
    "resample_relative_position_table",
    "run_blocks",
    "sinusoidal_positions",
    "tokens_as_grid",
    "trunc_normal_",
]
