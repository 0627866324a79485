"""Layers that compose graph ops."""

from .embedding import Embedding, EmbeddingV2, VocabParallelEmbedding
from .module import Module

__all__ = ["Embedding", "EmbeddingV2", "Module", "VocabParallelEmbedding"]
