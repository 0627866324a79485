"""The fast path of one-lookup models (small calls skip the general path's fixed costs) gives
what the general path gives, keeps every check, never hands out memory a caller still holds,
and is taken only where it applies."""

from __future__ import annotations

import threading

import ml_dtypes
import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.executable import NativeExecutable
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.quant import FORMATS

VOCAB, HIDDEN = 40, 24


def model_of(table, ids_dtype=DType.int64, policy="error", encoding=None, dims=("n",)):
    dtype = DType.uint8 if encoding else DType.from_numpy(table.dtype)
    if policy == "wrap":
        with Graph("g", input_types=[TensorType(ids_dtype, list(dims))]) as g:
            weight = Weight("t", dtype, list(table.shape), DeviceRef.CPU())
            g.output(ops.gather(weight, g.inputs[0], 0, out_of_range="wrap"))
    else:
        emb = nn.EmbeddingV2(
            len(table),
            table.shape[1],
            dtype,
            DeviceRef.CPU(),
            name="t",
            quantization_encoding=encoding,
            out_of_range=policy,
        )
        with Graph("g", input_types=[TensorType(ids_dtype, list(dims))]) as g:
            g.output(emb(g.inputs[0]))
    return InferenceSession(num_threads=2, backend="native").load(g, {"t": table})


@pytest.fixture
def runs(count_calls):
    """How many times the general path ran a plan."""
    return count_calls(NativeExecutable, "run")


def table_of(dtype, seed=0):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 1 << 16, (VOCAB, HIDDEN * np.dtype(dtype).itemsize // 2), np.uint16)
    return bits.view(dtype)


def outcome(call):
    try:
        return call()[0].to_numpy().copy()
    except Exception as exc:
        return exc


def assert_same(got, want):
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("policy", ["error", "zero", "clamp", "wrap"])
@pytest.mark.parametrize("ids_dtype", [DType.int64, DType.int32, DType.uint16, DType.int8])
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int8])
def test_matches_the_general_path(runs, dtype, ids_dtype, policy):
    table = table_of(dtype)
    model = model_of(table, ids_dtype, policy)
    info = np.iinfo(ids_dtype.to_numpy())
    cases = [[3], [0, 39, 5], [40], [-1, 2], [2, -41], [info.max, 0], [info.min], []]
    for values in cases:
        values = [v for v in values if info.min <= v <= info.max]
        ids = np.array(values, ids_dtype.to_numpy())
        first = outcome(lambda ids=ids: model.execute(ids))  # general path: checks the shape
        before = runs[0]
        again = outcome(lambda ids=ids: model.execute(ids))
        assert_same(again, first)
        if ids.size:
            assert runs[0] == before, "a checked shape took the general path"


@pytest.mark.parametrize("encoding", [QuantizationEncoding.Q4_K, QuantizationEncoding.Q8_0])
@pytest.mark.parametrize("ids_dtype", [DType.int64, DType.int32, DType.uint64])
def test_quantized_tables(encoding, ids_dtype):
    fmt = FORMATS[encoding.name]
    values = np.random.default_rng(1).standard_normal((VOCAB, 2 * fmt.block_elements))
    table = fmt.quantize(values.astype(np.float32))
    model = model_of(table, ids_dtype, "zero", encoding)
    ids = np.array([7, 0, 39, 41], ids_dtype.to_numpy())
    want = fmt.dequantize(table[[7, 0, 39, 0]])
    want[3] = 0
    for _ in range(3):
        assert model.execute(ids)[0].to_numpy().tobytes() == want.tobytes()
    big = np.array([2**64 - 1, 3], np.uint64) if ids_dtype is DType.uint64 else None
    if big is not None:  # beyond int64: a zero row, never wrapped into the table
        for _ in range(2):
            got = model.execute(big)[0].to_numpy()
            assert not got[0].any() and got[1].tobytes() == fmt.dequantize(table[[3]]).tobytes()


def test_a_result_the_caller_holds_is_never_reused():
    table = table_of(np.float32)
    model = model_of(table)
    kept_tensor = model.execute(np.array([1, 2]))[0]
    kept_array = model.execute(np.array([3, 4]))[0].to_numpy()
    kept_view = model.execute(np.array([5, 6]))[0].to_numpy()[1:]
    dropped = model.execute(np.array([7, 8]))[0].to_numpy().__array_interface__["data"][0]
    for k in range(20):
        result = model.execute(np.array([k, k + 1]))[0].to_numpy()
        np.testing.assert_array_equal(result, table[[k, k + 1]])
        del result
    np.testing.assert_array_equal(kept_tensor.to_numpy(), table[[1, 2]])
    np.testing.assert_array_equal(kept_array, table[[3, 4]])
    np.testing.assert_array_equal(kept_view, table[[6]])
    assert isinstance(dropped, int)


def table_at(offset, dtype=np.float32):
    """A `table_of` copy that starts ``offset`` bytes past a cache line."""
    source = table_of(dtype)
    memory = np.empty(source.nbytes + 128, np.uint8)
    start = (offset - memory.ctypes.data) % 64
    table = memory[start : start + source.nbytes].view(dtype).reshape(source.shape)
    table[...] = source
    return table


@pytest.mark.parametrize("offset", [0, 16, 40])
def test_results_start_where_the_table_rows_do_and_are_fresh_per_kept_call(offset):
    table = table_at(offset)
    model = model_of(table)
    model.execute(np.array([0]))  # the general path checks the shape; then the fast one serves
    results = [model.execute(np.array([k]))[0].to_numpy() for k in range(5)]
    addresses = {r.__array_interface__["data"][0] for r in results}
    assert len(addresses) == 5 and all(a % 64 == offset for a in addresses)
    for k, result in enumerate(results):
        assert result.flags.c_contiguous and result.shape == (1, HIDDEN)
        np.testing.assert_array_equal(result, table[[k]])


def test_decoded_results_are_cache_line_aligned():
    encoding = QuantizationEncoding.Q8_0
    rows = np.random.default_rng(0).standard_normal((VOCAB, 32)).astype(np.float32)
    quantized = FORMATS[encoding.name].quantize(rows)
    memory = np.empty(quantized.nbytes + 128, np.uint8)
    start = (16 - memory.ctypes.data) % 64
    table = memory[start : start + quantized.nbytes].reshape(quantized.shape)
    table[...] = quantized
    model = model_of(table, encoding=encoding)
    model.execute(np.array([0]))
    results = [model.execute(np.array([k]))[0].to_numpy() for k in range(3)]
    assert all(r.__array_interface__["data"][0] % 64 == 0 for r in results)


def test_out_arrays_keep_every_check():
    table = table_of(np.float32)
    model = model_of(table)
    ids = np.array([4, 9])
    model.execute(ids)
    out = np.empty((2, HIDDEN), np.float32)
    assert model.execute(ids, out=out)[0].to_numpy() is out
    np.testing.assert_array_equal(out, table[[4, 9]])
    out2 = np.empty((2, HIDDEN), np.float32)
    model.execute(np.array([1, 2]), out=out2)
    np.testing.assert_array_equal(out2, table[[1, 2]])
    with pytest.raises(ValueError, match="shape"):
        model.execute(ids, out=np.empty((3, HIDDEN), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        model.execute(ids, out=np.empty((2, HIDDEN), np.float64))
    frozen = np.empty((2, HIDDEN), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        model.execute(ids, out=frozen)
    with pytest.raises(OutOfRangeError):
        model.execute(np.array([4, 99]), out=out)


def test_out_overlapping_a_weight_is_refused_every_time():
    table = table_of(np.float32)
    model = model_of(table)
    ids = np.array([0, 1])
    model.execute(ids)
    for _ in range(2):
        with pytest.raises(ValueError, match="overlaps a weight"):
            model.execute(ids, out=table[2:4])


def test_out_ids_overlap_is_refused_through_views():
    table = table_of(np.float32)
    model = model_of(table, DType.int32)
    memory = np.zeros(2 * HIDDEN, np.int32)
    ids, out = memory[HIDDEN : HIDDEN + 2], memory.view(np.float32).reshape(2, HIDDEN)
    model.execute(np.array([0, 1], np.int32))
    model.execute(np.array([0, 1], np.int32), out=np.empty((2, HIDDEN), np.float32))
    with pytest.raises(ValueError, match="overlaps input"):
        model.execute(ids, out=out)


def test_inputs_the_fast_path_does_not_take_still_work(runs):
    table = table_of(np.float32)
    model = model_of(table, dims=("batch", "seq"))
    ids = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[ids])
    np.testing.assert_array_equal(model.execute(ids.T.copy())[0].to_numpy(), table[ids.T])
    before = runs[0]
    np.testing.assert_array_equal(model.execute(ids.T)[0].to_numpy(), table[ids.T])  # strided
    np.testing.assert_array_equal(model.execute(ids.tolist())[0].to_numpy(), table[ids])
    frozen = ids.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(model.execute(frozen)[0].to_numpy(), table[ids])
    np.testing.assert_array_equal(model(ids.astype(np.int32))[0].to_numpy(), table[ids])
    assert runs[0] == before + 4
    with pytest.raises(ValueError, match="rank"):
        model.execute(np.arange(3))
    with pytest.raises(TypeError):
        model.execute(ids, ids)


def test_many_threads_at_once_get_their_own_rows():
    table = table_of(np.float32)
    model = model_of(table)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(300):
                ids = rng.integers(0, VOCAB, 3)
                result = model.execute(ids)[0].to_numpy()
                if result.tobytes() != table[ids].tobytes():
                    errors.append(seed)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("policy", ["error", "zero"])
def test_large_lookups_use_the_pool_and_the_parallel_kernel(runs, policy):
    table = np.random.default_rng(3).standard_normal((8, 1 << 16)).astype(np.float32)
    model = model_of(table, policy=policy)  # 256 KiB rows: 4 ids make a 1 MiB result
    ids = np.array([1, 2, 3, 4])
    first = model.execute(ids)[0].to_numpy()
    kept = [model.execute(np.array([k, 0, 7, k])) for k in range(3)]
    assert runs[0] == 1
    np.testing.assert_array_equal(first, table[ids])
    for k, result in enumerate(kept):
        np.testing.assert_array_equal(result[0].to_numpy(), table[[k, 0, 7, k]])
    out = np.empty((4, 1 << 16), np.float32)
    assert model.execute(ids[::-1].copy(), out=out)[0].to_numpy() is out
    np.testing.assert_array_equal(out, table[ids[::-1]])
    bad = np.array([1, 2, 99, 4])
    if policy == "error":
        with pytest.raises(OutOfRangeError, match="99"):
            model.execute(bad)
    else:
        result = model.execute(bad)[0].to_numpy()
        assert not result[2].any() and np.array_equal(result[3], table[4])


def test_ids_viewing_the_out_array_are_refused():
    table = np.arange(VOCAB * HIDDEN, dtype=np.int32).reshape(VOCAB, HIDDEN)
    model = model_of(table, DType.int32)
    out = np.zeros((2, HIDDEN), np.int32)  # owns its memory; the ids below view it
    ids = out.reshape(-1)[:2]
    model.execute(np.array([0, 1], np.int32))
    model.execute(np.array([0, 1], np.int32), out=np.empty((2, HIDDEN), np.int32))
    with pytest.raises(ValueError, match="overlaps input"):
        model.execute(ids, out=out)
    rows = np.array([[3, 4], [5, 6]], np.int32)  # views of an array that owns its memory
    np.testing.assert_array_equal(model.execute(rows[1], out=out)[0].to_numpy(), table[[5, 6]])


def test_a_caller_keeping_the_last_result_reuses_the_one_before(monkeypatch):
    from ember.engine.backends.native.fast_lookup import FastLookup

    made = []
    original = FastLookup._new_buffer
    monkeypatch.setattr(
        FastLookup, "_new_buffer", lambda self, shape: made.append(1) or original(self, shape)
    )
    table = table_of(np.float32)
    model = model_of(table)
    last = None
    for k in range(12):
        ids = np.array([k, k + 1])
        result = model.execute(ids)[0].to_numpy()
        np.testing.assert_array_equal(result, table[ids])
        if last is not None:
            np.testing.assert_array_equal(last[1], table[last[0]])  # not overwritten
        last = (ids, result)
    assert len(made) <= 3


def test_out_as_a_list_of_its_one_array_takes_the_fast_path(runs):
    table = table_of(np.float32)
    model = model_of(table, dims=("batch",))
    ids = np.array([3, 1, 4])
    out = np.empty((3, table.shape[1]), np.float32)
    model.execute(ids, out=out)  # a shape's first call: the general path checks it
    before = runs[0]
    for form in ([out], (out,), out):
        model.execute(ids, out=form)
        np.testing.assert_array_equal(out, table[ids])
        out[:] = 0
    assert runs[0] == before  # none reached the general path
