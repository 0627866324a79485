"""MAX's `max.graph.weights.weights` (the module its `Weights` protocol and `WeightData` are
defined in): the same names."""

from ember.graph.shape import Shape
from ember.weights.data import WeightData
from ember.weights.tree import Weights, WeightsAdapter

__all__ = ["Shape", "WeightData", "Weights", "WeightsAdapter"]
