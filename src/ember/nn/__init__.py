"""Layers that compose graph ops."""

from .clamp import clamp
from .comm import Allreduce, Signals
from .embedding import Embedding, EmbeddingV2, VocabParallelEmbedding
from .embedding_bag import EmbeddingBag
from .embedding_bag_collection import EmbeddingBagCollection
from .identity import Identity
from .layer_hooks import Layer, add_layer_hook, clear_hooks
from .layer_list import LayerList, Sequential
from .linear import ColumnParallelLinear, Linear
from .lm_head import LMHead
from .mlp import MLP, activation_function_from_name
from .module import Module, recursive_named_layers
from .norm import ConstantLayerNorm, LayerNorm, RMSNorm
from .rotary_embedding import (
    DeepseekYarnRopeScalingParams,
    DeepseekYarnRotaryEmbedding,
    Llama3RopeScalingParams,
    Llama3RotaryEmbedding,
    LongRoPERotaryEmbedding,
    LongRoPEScalingParams,
    RotaryEmbedding,
    YarnRotaryEmbedding,
    YarnScalingParams,
)

__all__ = [
    "MLP",
    "Allreduce",
    "ColumnParallelLinear",
    "ConstantLayerNorm",
    "DeepseekYarnRopeScalingParams",
    "DeepseekYarnRotaryEmbedding",
    "Embedding",
    "EmbeddingBag",
    "EmbeddingBagCollection",
    "EmbeddingV2",
    "Identity",
    "LMHead",
    "Layer",
    "LayerList",
    "LayerNorm",
    "Linear",
    "Llama3RopeScalingParams",
    "Llama3RotaryEmbedding",
    "LongRoPERotaryEmbedding",
    "LongRoPEScalingParams",
    "Module",
    "RMSNorm",
    "RotaryEmbedding",
    "Sequential",
    "Signals",
    "VocabParallelEmbedding",
    "YarnRotaryEmbedding",
    "YarnScalingParams",
    "activation_function_from_name",
    "add_layer_hook",
    "clamp",
    "clear_hooks",
    "recursive_named_layers",
]
