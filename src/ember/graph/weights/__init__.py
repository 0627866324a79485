"""MAX's `max.graph.weights`, where MAX's model code imports its checkpoint loaders from: the
names of `ember.weights`' `Weights` interface (`tree.py`, `weights_format.py`)."""

from ember.weights.data import WeightData
from ember.weights.tree import GGUFWeights, SafetensorWeights, Weights, WeightsAdapter
from ember.weights.weights_format import WeightsFormat, load_weights, weights_format

__all__ = [
    "GGUFWeights",
    "SafetensorWeights",
    "WeightData",
    "Weights",
    "WeightsAdapter",
    "WeightsFormat",
    "load_weights",
    "weights_format",
]
