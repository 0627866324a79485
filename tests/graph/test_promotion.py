"""Two dtypes meet as MAX promotes them: one of the two, at least as high in kind and as
wide, and only if it holds every value of the other; else a TypeError."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import Graph, TensorType, ops
from ember.graph.ops.promotion import promoted_dtype

D = DType
PROMOTED = [
    (D.int64, D.bool, D.int64),
    (D.uint8, D.int16, D.int16),
    (D.uint8, D.uint64, D.uint64),
    (D.int16, D.float32, D.float32),
    (D.uint16, D.float32, D.float32),
    (D.int8, D.bfloat16, D.bfloat16),
    (D.bfloat16, D.float32, D.float32),
    (D.float16, D.float64, D.float64),
    (D.float8_e4m3fn, D.float16, D.float16),
    (D.float8_e5m2, D.bfloat16, D.bfloat16),
]
REFUSED = [
    (D.uint8, D.int8),  # 255 is no int8
    (D.int8, D.uint64),  # -1 is no uint64
    (D.int32, D.float32),  # 2**24 + 1 is no float32
    (D.int64, D.float64),
    (D.uint32, D.float32),
    (D.float16, D.bfloat16),  # neither holds the other
    (D.float8_e8m0fnu, D.float16),  # 2**127 is no float16
    (D.bool, D.float8_e8m0fnu),  # False: e8m0 has no zero
    (D.float8_e5m2, D.float8_e5m2fnuz),  # infinities and -0.0: fnuz types have neither
    (D.float8_e4m3fn, D.float8_e4m3fnuz),  # -0.0
]


@pytest.mark.parametrize(("a", "b", "want"), PROMOTED, ids=str)
def test_dtypes_promote_to_the_one_that_holds_the_other(a, b, want):
    assert promoted_dtype("add", a, b) is want
    assert promoted_dtype("add", b, a) is want


@pytest.mark.parametrize(("a", "b"), REFUSED, ids=str)
def test_dtypes_where_neither_holds_the_other_are_a_type_error(a, b):
    with pytest.raises(TypeError, match=f"dtypes {a!r} and {b!r}, and neither holds"):
        promoted_dtype("add", a, b)


def test_every_value_of_a_promoted_dtype_survives_the_cast():
    """The rule's claim, checked on every value of the 8-bit and 16-bit types it promotes."""
    for a, b, want in PROMOTED:
        for source in (a, b):
            if source.size_in_bytes > 2 or source is want:
                continue
            bits = np.arange(1 << (8 * source.size_in_bytes), dtype=np.uint64)
            kind = {1: np.uint8, 2: np.uint16}[source.size_in_bytes]
            values = bits.astype(kind).view(source.to_numpy())
            if source is D.bool:
                values = np.array([False, True])
            with np.errstate(invalid="ignore"):
                back = values.astype(want.to_numpy()).astype(source.to_numpy())
                same = back == values
                if source.is_float():
                    same |= np.isnan(values.astype(np.float64))
            assert same.all(), (source, want)


@pytest.mark.parametrize("backend", ["native", "xla"])
def test_mixed_operands_execute_promoted(backend):
    """MAX's own vocabulary-parallel code multiplies int64 ids by a bool mask."""
    types = [
        TensorType(D.int64, [4]),
        TensorType(D.bool, [4]),
        TensorType(D.bfloat16, [2, 3]),
        TensorType(D.float32, [3, 2]),
    ]
    with Graph("mixed", input_types=types) as g:
        ids, mask, narrow, wide = g.inputs
        masked = ids * mask
        product = ops.matmul(narrow, wide)
        assert (masked.dtype, product.dtype) == (D.int64, D.float32)
        g.output(masked, product, narrow + wide.T)
    ids = np.array([5, 6, 7, 8], np.int64)
    mask = np.array([True, False, True, False])
    rng = np.random.default_rng(0)
    narrow = rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16)
    wide = rng.standard_normal((3, 2)).astype(np.float32)
    model = InferenceSession(backend=backend).load(g)
    masked, product, total = (t.to_numpy() for t in model.execute(ids, mask, narrow, wide))
    np.testing.assert_array_equal(masked, [5, 0, 7, 0])
    np.testing.assert_allclose(product, narrow.astype(np.float32) @ wide, rtol=1e-6)
    np.testing.assert_array_equal(total, narrow.astype(np.float32) + wide.T)
