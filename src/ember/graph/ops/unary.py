"""MAX's elementwise functions of one value: the math of floats (`exp`, `log`, `sqrt`, ...,
`floor`, `round`), the activations (`relu`, `sigmoid`, `silu`, `gelu`) and the predicates
`is_nan` / `is_inf`. Each keeps its input's shape; all but the predicates keep its dtype.

>>> import numpy as np
>>> from ember.graph import Graph
>>> with Graph("g") as g:
...     y = sqrt(np.array([[4.0, 9.0]], np.float32))
...     nan = is_nan(y)
>>> y.shape, y.dtype, nan.dtype
([Dim(1), Dim(2)], float32, bool)

How each backend computes (the tests hold them to it):
- `floor`, `ceil`, `round` (half to even, as numpy, torch and JAX), `trunc`, `sqrt`, `relu`,
  `is_nan` and `is_inf` are exact: the same bits on every backend (but for subnormal inputs
  on `xla`, below: `ceil(1e-45)` is 0 there, 1 natively).
- The others round a value near the exact one. Natively a float32 or narrower input is
  computed in float64 and rounded once to its dtype (bfloat16 and float8 included: not
  through float32). On `xla` it is computed in float32: the math functions within
  8 units in the last place of the exact result; the activations, whose arguments are
  rounded to float32 first (`x / sqrt 2` for `gelu`), within 8 units plus 4 per unit of
  their condition number `|x f'(x) / f(x)|` (`gelu(-10)`: about 400). float64 inputs are
  computed in float64 on both. `silu` and `gelu` of -inf are NaN (`-inf * 0`), as in torch
  and JAX.
- On `xla` on a CPU, subnormal inputs, results and intermediate values count as zero (XLA's
  CPU code flushes them), as in its comparisons: `silu` below about -88, `gelu` below about
  -13 and `gelu(approximate="quick")` below about -52 give -0.0 there, where the exact
  result is a normal float32 under 1e-36. float64 on `xla` is XLA's own float64 arithmetic:
  `log1p` and `atanh` within about 128 units in the last place, the others within 8.
"""

from __future__ import annotations

from typing import Any

from ember.dtype import DType

from ..errors import GraphTypeError
from ..op import Op
from ..value import TensorValue
from .broadcasting import elementwise_node
from .constant import as_value

__all__ = [
    "ACOS",
    "ATANH",
    "CEIL",
    "COS",
    "ERF",
    "EXP",
    "FLOOR",
    "GELU",
    "GELU_QUICK",
    "GELU_TANH",
    "IS_INF",
    "IS_NAN",
    "LOG",
    "LOG1P",
    "RELU",
    "ROUND",
    "RSQRT",
    "SIGMOID",
    "SILU",
    "SIN",
    "SQRT",
    "TANH",
    "TRUNC",
    "acos",
    "atanh",
    "ceil",
    "cos",
    "erf",
    "exp",
    "floor",
    "gelu",
    "is_inf",
    "is_nan",
    "log",
    "log1p",
    "relu",
    "round",
    "rsqrt",
    "sigmoid",
    "silu",
    "sin",
    "sqrt",
    "tanh",
    "trunc",
]

EXP = Op("exp")
LOG = Op("log")
LOG1P = Op("log1p")
SQRT = Op("sqrt")
RSQRT = Op("rsqrt")
TANH = Op("tanh")
ATANH = Op("atanh")
SIN = Op("sin")
COS = Op("cos")
ACOS = Op("acos")
ERF = Op("erf")
FLOOR = Op("floor")
CEIL = Op("ceil")
ROUND = Op("round")
TRUNC = Op("trunc")
SIGMOID = Op("sigmoid")
SILU = Op("silu")
GELU = Op("gelu")
GELU_TANH = Op("gelu_tanh")
GELU_QUICK = Op("gelu_quick")
RELU = Op("relu")
IS_NAN = Op("is_nan")
IS_INF = Op("is_inf")

_GELUS = {"none": GELU, "tanh": GELU_TANH, "quick": GELU_QUICK}


def _of_floats(op: Op, x: Any) -> TensorValue:
    """A node of `op` on `x`, whose dtype must be a float's.

    Raises:
        GraphTypeError: `x` is not a float value (a `TypeError`, and MAX's `ValueError`).
    """
    value = as_value(x)
    if not value.dtype.is_float():
        raise GraphTypeError(
            f"{op}: takes a floating-point value, got {value.dtype!r}; cast it to a float first"
        )
    return elementwise_node(op, [value], value.dtype)


def exp(x: Any) -> TensorValue:
    """`e ** x`."""
    return _of_floats(EXP, x)


def log(x: Any) -> TensorValue:
    """The natural logarithm: -inf at 0, NaN below it."""
    return _of_floats(LOG, x)


def log1p(x: Any) -> TensorValue:
    """`log(1 + x)`, accurate where `x` is small."""
    return _of_floats(LOG1P, x)


def sqrt(x: Any) -> TensorValue:
    """The square root (correctly rounded on every backend); NaN below 0."""
    return _of_floats(SQRT, x)


def rsqrt(x: Any) -> TensorValue:
    """`1 / sqrt(x)`: inf at 0."""
    return _of_floats(RSQRT, x)


def tanh(x: Any) -> TensorValue:
    return _of_floats(TANH, x)


def atanh(x: Any) -> TensorValue:
    """The inverse hyperbolic tangent: ±inf at ±1, NaN beyond."""
    return _of_floats(ATANH, x)


def sin(x: Any) -> TensorValue:
    return _of_floats(SIN, x)


def cos(x: Any) -> TensorValue:
    return _of_floats(COS, x)


def acos(x: Any) -> TensorValue:
    """The arc cosine, in `[0, pi]`; `x` is clamped to `[-1, 1]` first, as MAX does (numpy and
    torch give NaN outside it)."""
    return _of_floats(ACOS, x)


def erf(x: Any) -> TensorValue:
    """The error function."""
    return _of_floats(ERF, x)


def floor(x: Any) -> TensorValue:
    return _of_floats(FLOOR, x)


def ceil(x: Any) -> TensorValue:
    return _of_floats(CEIL, x)


def round(x: Any) -> TensorValue:
    """The nearest integer, halves to the even one (`round(2.5) == 2`), as numpy, torch and
    JAX round."""
    return _of_floats(ROUND, x)


def trunc(x: Any) -> TensorValue:
    """The integer part, toward zero."""
    return _of_floats(TRUNC, x)


def sigmoid(x: Any) -> TensorValue:
    """`1 / (1 + exp(-x))`."""
    return _of_floats(SIGMOID, x)


def silu(x: Any) -> TensorValue:
    """`x * sigmoid(x)` (Swish)."""
    return _of_floats(SILU, x)


def gelu(x: Any, approximate: str = "none") -> TensorValue:
    """The GELU activation: `0.5 * x * (1 + erf(x / sqrt(2)))` for ``"none"``; for ``"tanh"``
    `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))`; for ``"quick"``
    `x * sigmoid(1.702 * x)`.

    Raises:
        ValueError: `approximate` is none of those.
        GraphTypeError: `x` is not a float value.
    """
    if approximate not in _GELUS:
        raise ValueError(
            f"Invalid approximation method: {approximate!r} (one of {', '.join(_GELUS)})"
        )
    return _of_floats(_GELUS[approximate], x)


def relu(x: Any) -> TensorValue:
    """`x` where it is above 0, else 0 (+0.0 for -0.0); NaN stays NaN. Integers too.

    Raises:
        GraphTypeError: `x` holds bools.
    """
    value = as_value(x)
    if value.dtype is DType.bool:
        raise GraphTypeError(f"{RELU}: takes numbers, got bool values; cast them first")
    return elementwise_node(RELU, [value], value.dtype)


def is_nan(x: Any) -> TensorValue:
    """Where `x` is NaN, as bools (all False for integers and bools)."""
    return elementwise_node(IS_NAN, [as_value(x)], DType.bool)


def is_inf(x: Any) -> TensorValue:
    """Where `x` is +inf or -inf, as bools (all False for integers and bools)."""
    return elementwise_node(IS_INF, [as_value(x)], DType.bool)
