"""Layers that compose graph ops."""

from .clamp import clamp
from .comm import Allreduce, Signals
from .embedding import Embedding, EmbeddingV2, VocabParallelEmbedding
from .embedding_bag import EmbeddingBag
from .embedding_bag_collection import EmbeddingBagCollection
from .linear import ColumnParallelLinear, Linear
from .lm_head import LMHead
from .module import Module
from .norm import LayerNorm, RMSNorm
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
    "Allreduce",
    "ColumnParallelLinear",
    "DeepseekYarnRopeScalingParams",
    "DeepseekYarnRotaryEmbedding",
    "Embedding",
    "EmbeddingBag",
    "EmbeddingBagCollection",
    "EmbeddingV2",
    "LMHead",
    "LayerNorm",
    "Linear",
    "Llama3RopeScalingParams",
    "Llama3RotaryEmbedding",
    "LongRoPERotaryEmbedding",
    "LongRoPEScalingParams",
    "Module",
    "RMSNorm",
    "RotaryEmbedding",
    "Signals",
    "VocabParallelEmbedding",
    "YarnRotaryEmbedding",
    "YarnScalingParams",
    "clamp",
]
