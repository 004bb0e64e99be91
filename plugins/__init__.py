"""The zoo's built-in plugin: its attention variants, model families and registry.

It registers through the `zoo.plugins` entry-point group exactly as a third-party plugin
does, and names its modules as strings so that listing the zoo never imports torch.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.plugins import PluginContext

__all__ = ["register"]


def register(zoo: PluginContext) -> None:
    zoo.require_interface("1.4")
    zoo.add_attention("se", f"{__name__}.attention.se:SqueezeExcite", kind="channel")
    zoo.add_attention("cbam", f"{__name__}.attention.cbam:CBAM", kind="channel")
    zoo.add_attention("eca", f"{__name__}.attention.eca:EfficientChannelAttention", kind="channel")
    zoo.add_attention("mhsa", f"{__name__}.attention.mhsa:MultiHeadSelfAttention", kind="token")
    zoo.add_builder("vit", f"{__name__}.models.vit:family")
    zoo.add_builder("resnet", f"{__name__}.models.resnet:family")
    zoo.add_attention("mha", f"{__name__}.attention.mha:MultiHeadAttention", kind="sequence")
    zoo.add_attention("soft", f"{__name__}.attention.soft:SoftAttentionPooling", kind="pooling")
    zoo.add_attention("hard", f"{__name__}.attention.hard:HardAttentionPooling", kind="pooling")
    zoo.add_attention("additive", f"{__name__}.attention.additive:AdditiveAttention", kind="alignment")
    zoo.add_builder("text_transformer", f"{__name__}.models.text_transformer:family")
    zoo.add_builder("seq2seq_lstm", f"{__name__}.models.seq2seq_lstm:family")
    zoo.add_builder("speech_lstm", f"{__name__}.models.speech_lstm:family")
    # Swin Transformer: window attention, a kind of its own.
    zoo.add_attention("wmsa", f"{__name__}.attention.window:WindowSelfAttention", kind="window")
    zoo.add_builder("swin", f"{__name__}.models.swin:family")

    # CaiT: talking-heads attention (a token attention), class attention and the family.
    zoo.add_attention(
        "talking_heads", f"{__name__}.attention.talking_heads:TalkingHeadsAttention", kind="token"
    )
    zoo.add_attention(
        "class_attention", f"{__name__}.attention.class_attention:MultiHeadClassAttention", kind="class"
    )
    zoo.add_builder("cait", f"{__name__}.models.cait:family")

    # Transformer encoder-decoder: sequence attention in its self- and cross-attention.
    zoo.add_builder("transformer_seq2seq", f"{__name__}.models.transformer_seq2seq:family")
    # Squeeze-and-Excitation CNNs: EfficientNet, MobileNetV3, RegNet.
    zoo.add_builder("efficientnet", f"{__name__}.models.efficientnet:family")
    zoo.add_builder("mobilenetv3", f"{__name__}.models.mobilenetv3:family")
    zoo.add_builder("regnet", f"{__name__}.models.regnet:family")
    # Attention as a block's spatial conv: Selective Kernel, split attention (ResNeSt) and
    # bottleneck self-attention (BoTNet), with BoTNet's own block network.
    zoo.add_attention(
        "selective_kernel", f"{__name__}.attention.selective_kernel:SelectiveKernel", kind="conv"
    )
    zoo.add_attention("split_attention", f"{__name__}.attention.split_attention:SplitAttention", kind="conv")
    zoo.add_attention("bot", f"{__name__}.attention.bot:BottleneckSelfAttention", kind="conv")
    zoo.add_builder("byob", f"{__name__}.models.byob:family")
    # The registry: one file per family (the catalogue's are written from timm's facts by
    # tools/catalogue), in name order.
    for path in sorted((files(__name__) / "registry").iterdir(), key=lambda path: path.name):
        if path.name.endswith(".yaml"):
            zoo.add_models(path)

    # Attention as the tutorials write it: heads with their own key and value widths.
    zoo.add_attention("self_attention", f"{__name__}.attention.mha:SelfAttention", kind="sequence")

    # MobileNetV4's mobile multi-query attention: a map attention (interface 1.4).
    zoo.add_attention("mqa", f"{__name__}.attention.multi_query:MultiQueryAttention2d", kind="map")
    # The catalogue's byob networks: global context (a channel attention) and CLIP's
    # attention pooling of a feature map (a kind of its own).
    zoo.add_attention("gc", f"{__name__}.attention.global_context:GlobalContext", kind="channel")
    zoo.add_attention(
        "attention_pool", f"{__name__}.attention.attention_pool:AttentionPool2d", kind="map_pooling"
    )
    # The catalogue's ViTs: differential attention (a token attention taking its block's
    # index) and the attention-pooling head of SigLIP (MAP).
    zoo.add_attention("diff", f"{__name__}.attention.diff:DifferentialAttention", kind="token")
    zoo.add_attention(
        "map", f"{__name__}.attention.latent_pool:MultiheadAttentionPooling", kind="latent_pool"
    )
