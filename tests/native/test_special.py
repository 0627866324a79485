"""The compiled `erf` / `erfc` give the bits of Python's `math.erf` / `math.erfc`, which serve
while they compile: a model's results do not depend on when its kernels became ready."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ember.engine.backends.native.kernels import special
from ember.engine.backends.native.kernels.compiled.special import erf_into, erfc_into


@pytest.mark.parametrize(("kernel", "each"), [(erf_into, math.erf), (erfc_into, math.erfc)])
def test_compiled_special_functions_give_math_bits(kernel, each):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(20000) * 4, rng.uniform(-30, 30, 2000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-310, 27.0]])  # fmt: skip
    out = np.empty_like(x)
    kernel(x, out)
    want = np.array([each(v) for v in x])
    assert out.view(np.int64).tolist() == want.view(np.int64).tolist()


def test_host_functions_keep_shape_and_take_any_float():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    got = special.erf(x)
    assert got.shape == (3, 2) and got.dtype == np.float64
    assert got.tolist() == [[math.erf(float(v)) for v in row] for row in x]
    assert special.erfc(np.array(1.5)).shape == ()
