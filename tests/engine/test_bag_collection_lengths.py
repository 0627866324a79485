"""A bag collection's lengths checked before anything is read, on both backends, sharded and
not: each length lies in `[0, number of values]`, compared in the lengths' own type, so that
no sum of 64-bit lengths can wrap around to the right count and no unsigned length is read as
negative. Before this check, such lengths read memory past the values natively (or crashed)
and pooled silently wrong bags on XLA."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.graph import DeviceRef, Graph, TensorType
from ember.graph.ops.embedding_bag_collection import check_lengths

TABLE = np.arange(20, dtype=np.float32).reshape(10, 2)
I64 = np.iinfo(np.int64).max


def collection_model(session, lengths_dtype, features=1, devices=None):
    bag = nn.EmbeddingBag(10, 2, DType.float32, name="t")
    collection = nn.EmbeddingBagCollection(
        [bag], {f"f{i}": 0 for i in range(features)}, devices=devices
    )
    types = [TensorType(DType.int64, ["n"]), TensorType(lengths_dtype, [features, "batch"])]
    with Graph("lengths", input_types=types) as g:
        out = collection(*g.inputs)
        g.output(*(out if isinstance(out, list) else [out]))
    return session.load(g, {"t": TABLE})


BAD = [
    # the int64 sum wraps to the 2 values: 2**63-1 twice, then 4
    (DType.int64, [[I64, I64, 4]], r"lengths\[0, 0\] = 9223372036854775807 is more than all 2"),
    (DType.int64, [[2**62, 2**62], [2**62, 2**62 + 2]], r"lengths\[0, 0\] = 4611686018427387904"),
    (DType.int64, [[1, I64], [I64, 4]], r"lengths\[0, 1\] = 9223372036854775807 is more than"),
    # unsigned lengths past int64, and past int32, are long, not negative
    (DType.uint64, [[2**64 - 1, 3]], r"lengths\[0, 0\] = 18446744073709551615 is more than all"),
    (DType.uint32, [[1, 2**32 - 1]], r"lengths\[0, 1\] = 4294967295 is more than all 2 values"),
    (DType.int32, [[-1, 3]], r"lengths\[0, 0\] = -1 is negative"),
    (DType.uint8, [[1, 0, 0]], r"lengths sum to 1, but there are 2 values"),
]


@pytest.mark.parametrize("sharded", [False, True], ids=["one device", "two devices"])
@pytest.mark.parametrize(("dtype", "lengths", "message"), BAD)
def test_bad_lengths_are_one_clear_error(session, sharded, dtype, lengths, message):
    lengths = np.array(lengths, dtype.to_numpy())
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)] if sharded else None
    model = collection_model(session, dtype, features=lengths.shape[0], devices=devices)
    with pytest.raises(ValueError, match=message):
        model.execute(np.array([1, 2]), lengths)


@pytest.mark.parametrize("dtype", [DType.uint64, DType.uint32, DType.int64, DType.uint8])
def test_lengths_of_every_integer_type_pool_the_same_bags(session, dtype):
    """The checks let every valid length through: [1, 2] then [0, 1] over values 1 2 3, 4."""
    model = collection_model(session, dtype, features=2)
    lengths = np.array([[1, 2], [0, 1]], dtype.to_numpy())
    [out] = model.execute(np.array([1, 2, 3, 4]), lengths)
    want = np.array([[2, 3, 0, 0], [10, 12, 8, 9]], np.float32)
    np.testing.assert_array_equal(out.to_numpy(), want)


def test_a_sum_past_int64_is_an_error_even_where_it_wraps_to_the_count():
    """Five lengths of 2**62, each within 2**62 values, sum to 2**64 + 2**62: the right count
    once wrapped."""
    lengths = np.full((1, 5), 2**62, np.int64)
    with pytest.raises(ValueError, match=f"lengths sum to more than {2**62} values"):
        check_lengths(lengths, 2**62)
    starts = check_lengths(np.array([[2, 0, 3]], np.uint64), 5)
    np.testing.assert_array_equal(starts, [0, 2, 2, 5])
