"""Layers that compose graph ops."""

from .embedding import Embedding, EmbeddingV2, VocabParallelEmbedding
from .lm_head import LMHead
from .module import Module

__all__ = ["Embedding", "EmbeddingV2", "LMHead", "Module", "VocabParallelEmbedding"]
