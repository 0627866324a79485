"""MAX's `ops.random`: `set_seed`, then `uniform` and `gaussian` (`normal`) values shaped like a
`TensorType`, each op drawing under the graph's seed and moving it on by one, as MAX does.

>>> from ember.graph import Graph, TensorType
>>> types = [SeedType(DeviceRef.CPU()), TensorType(DType.float32, ["n", 4])]
>>> with Graph("noise", input_types=types) as g:
...     set_seed(g.inputs[0])  # a seed given at each execution; an int fixes one
...     u = uniform(g.inputs[1].type, range=(-1, 1))
>>> u.shape, u.dtype
([Dim('n'), Dim(4)], float32)

The draws are Threefry-2x32 (JAX's generator) of each position under the seed, evaluated with
the same integer arithmetic on every backend. `uniform` is in `[lower, upper)` (never
`upper`): float32 and narrower from 24 random bits, scaled in float64 where the product is
exact (then rounded to float32, then to the dtype), so that every backend gives the same
bits; float64 from 53 bits, the same on every backend but where XLA fuses the multiply-add
of a range other than `(0, 1)` (the last bit may differ).
`gaussian` is Box-Muller on two uniforms, computed in float64 natively and in float32 on
`xla` for float32 and narrower values (within `2**-18 * (1 + |z|)` standard deviations of
each other); float64 in float64 on both.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import ml_dtypes
import numpy as np

from ember.dtype import DType

from ..device import DeviceRef
from ..errors import GraphTypeError
from ..graph import Graph, current_graph
from ..op import Op
from ..type import TensorType
from ..value import TensorValue
from .constant import CONSTANT, as_value, constant
from .dim_binders import dim_binders
from .layer_norm import finite_number

__all__ = ["RANDOM", "SeedType", "gaussian", "normal", "set_seed", "uniform"]

RANDOM = Op("random")

_SEEDS: weakref.WeakKeyDictionary[Graph, TensorValue] = weakref.WeakKeyDictionary()


def SeedType(device: DeviceRef) -> TensorType:
    """The type of a seed given as a graph input: uint64 of shape `[1]` on `device`."""
    return TensorType(DType.uint64, [1], device)


def set_seed(seed: Any = 0) -> None:
    """The seed of the random values the current graph draws after this: a Python int, or a
    uint64 value of shape `[]` or `[1]` (a graph input: a new seed at each execution).

    Raises:
        ValueError: an int outside uint64, or a value of another shape.
        GraphTypeError: a value that is not integers.
    """
    graph = current_graph()
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_):
        if not 0 <= int(seed) < 2**64:
            raise ValueError(f"set_seed: a seed is a uint64, got {seed}")
        value = constant(np.array([int(seed)], np.uint64), DType.uint64, DeviceRef.CPU())
    elif not isinstance(seed, TensorValue | np.ndarray):
        raise TypeError(f"set_seed: a seed is a uint64: an int or a uint64 value, got {seed!r}")
    else:
        value = as_value(seed)
        if not value.dtype.is_integral():
            raise GraphTypeError(f"set_seed: a seed is a uint64 value, got {value.dtype!r}")
        if value.dtype is not DType.uint64:
            value = value.cast(DType.uint64)
        if value.rank == 0:
            value = value.reshape([1])
        if value.shape != [1]:
            raise ValueError(
                f"Seed must be a scalar or rank-1 tensor with shape [1], got shape {value.shape}."
            )
    _SEEDS[graph] = value


def uniform(like: TensorType, range: tuple[Any, Any] = (0, 1)) -> TensorValue:
    """Values drawn uniformly from `[lower, upper)`, of `like`'s dtype, shape and device.

    Raises:
        RuntimeError: no seed is set on the graph (`set_seed`).
        TypeError: `like` is not a TensorType, or a bound is not a number (or a constant).
        ValueError: a bound is not finite, or `lower >= upper`.
        GraphTypeError: `like` is not of a float dtype.
    """
    if not isinstance(range, tuple | list) or len(range) != 2:
        raise TypeError(f"uniform: range is (lower, upper), got {range!r}")
    lower, upper = range
    low = finite_number("uniform", "lower", _number("uniform", lower))
    high = finite_number("uniform", "upper", _number("uniform", upper))
    if not low < high:
        raise ValueError(f"uniform: the range is [lower, upper) with lower < upper, got {range}")
    dtype = _float_like("uniform", like).dtype.to_numpy()
    largest = float(ml_dtypes.finfo(dtype).max)  # float4/float6 saturate rather than overflow
    if max(abs(low), abs(high)) > largest:
        raise ValueError(f"uniform: the range {range} passes {np.dtype(dtype)}'s largest values")
    below = _below(high, low, dtype)
    if dtype != np.float64:  # 24 random bits times a 24-bit span: a product float64 holds
        low = float(np.float32(low))
        span = _to_24_bits(high - low)
    else:
        span = high - low
    attrs = {"distribution": "uniform", "low": low, "span": span, "high": high}
    return _draw("uniform", like, attrs | {"below_high": below})


def gaussian(like: TensorType, mean: Any = 0, std: Any = 1) -> TensorValue:
    """Values drawn from a normal distribution of `mean` and `std`, of `like`'s dtype, shape
    and device.

    Raises:
        RuntimeError: no seed is set on the graph (`set_seed`).
        TypeError: `like` is not a TensorType, or `mean` or `std` is not a number.
        ValueError: `mean` or `std` is not finite, or `std` is negative.
        GraphTypeError: `like` is not of a float dtype.
    """
    center = finite_number("gaussian", "mean", _number("gaussian", mean))
    spread = finite_number("gaussian", "std", _number("gaussian", std))
    if spread < 0:
        raise ValueError(f"gaussian: std must be 0 or more, got {std!r}")
    _float_like("gaussian", like)
    return _draw("gaussian", like, {"distribution": "normal", "mean": center, "std": spread})


normal = gaussian


def _number(op: str, value: Any) -> Any:
    """A scalar array's number (MAX takes scalars, and constants of the graph): a value of
    more elements is an error, and so is a graph value known only at execution."""
    if isinstance(value, TensorValue):
        if value.node.op is not CONSTANT:
            raise TypeError(
                f"{op}: takes numbers, or graph constants (known when the graph is built), "
                f"got {value!r}"
            )
        value = np.asarray(value.node.attrs["value"]).astype(np.float64)
    if isinstance(value, np.ndarray):
        if value.shape:
            raise ValueError(f"Expected a scalar value, got shape {value.shape}")
        return value.item()
    return value


def _float_like(op: str, like: Any) -> TensorType:
    if not isinstance(like, TensorType):
        raise TypeError(f"{op}: like must be a TensorType, got {like!r}")
    if not like.dtype.is_float():
        raise GraphTypeError(f"{op}: draws floats, got {like.dtype!r}; cast the values it gives")
    return like


def _to_24_bits(value: float) -> float:
    """`value` rounded to 24 significant bits (float32's), in float64: no overflow."""
    mantissa, exponent = math.frexp(value)
    return math.ldexp(round(mantissa * 2**24), exponent - 24)


def _below(high: float, low: float, dtype: np.dtype) -> float:
    """The largest value of `dtype` under `high`: what a draw rounded up to `high` becomes.

    Raises:
        ValueError: no value of `dtype` lies in `[low, high)`.
    """
    least = np.array(ml_dtypes.finfo(dtype).min, dtype)
    with np.errstate(over="ignore"):
        below = np.array(high, np.float64).astype(dtype)
    while float(below) >= high and below != least:
        below = np.nextafter(below, least)
    if not low <= float(below) < high:
        raise ValueError(f"uniform: no {np.dtype(dtype)} value lies in [{low}, {high})")
    return float(below)


def _draw(op: str, like: TensorType, attrs: dict[str, Any]) -> TensorValue:
    graph = current_graph()
    seed = _SEEDS.get(graph)
    if seed is None:
        raise RuntimeError("No seed set! Set with `ops.random.set_seed`.")
    _SEEDS[graph] = seed + 1  # the next op's seed, as MAX moves it on
    if seed.device != like.device:
        seed = seed.to(like.device)
    binders = dim_binders(op, graph, like.shape.symbols(), like.device, f"like {like}")
    attrs["shape"] = like.shape
    return graph.add_node(RANDOM, [seed, *binders], attrs, [like])[0]
