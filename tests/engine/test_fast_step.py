"""Models of one bag or one bag collection take the fast step (a call skips the general path's
fixed costs): same results, same errors, every check kept, and the general path wherever the
inputs need what only it does."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import ember.nn as nn
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native.executable import NativeExecutable
from ember.engine.model import _Execution
from ember.errors import OutOfRangeError
from ember.graph import Graph, QuantizationEncoding, TensorType, ops
from ember.quant import FORMATS

VOCAB, HIDDEN = 50, 32


@pytest.fixture
def generals(count_calls):
    """How many calls the general path took (patched before any model is made: the fast
    step's fallback is bound at load)."""
    return count_calls(_Execution, "execute")


@pytest.fixture
def runs(count_calls):
    """How many times the general path ran a plan."""
    return count_calls(NativeExecutable, "run")


def table(seed=0):
    return np.random.default_rng(seed).standard_normal((VOCAB, HIDDEN)).astype(np.float32)


def bag_model(weights=None, types=None, **options):
    data = table() if weights is None else weights
    encoding = options.pop("quantization_encoding", None)
    dtype = DType.uint8 if encoding else DType.float32
    bag = nn.EmbeddingBag(VOCAB, data.shape[1], dtype, name="t", quantization_encoding=encoding,
                          **options)  # fmt: skip
    types = types or [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"])]
    with Graph("bags", input_types=types) as g:
        g.output(bag(*g.inputs))
    return InferenceSession(backend="native").load(g, {"t": data})


def reference(rows, ids, offsets, weights=None):
    bounds = [*offsets, len(ids)]
    out = np.zeros((len(offsets), rows.shape[1]), np.float32)
    for b in range(len(offsets)):
        for j in range(bounds[b], bounds[b + 1]):
            row = rows[ids[j]] if weights is None else rows[ids[j]] * weights[j]
            out[b] += row
    return out


def outcome(call):
    try:
        return call()[0].to_numpy().copy()
    except Exception as exc:
        return exc


def test_bags_take_the_fast_step_and_give_the_general_paths_sums(runs):
    model = bag_model()
    rng = np.random.default_rng(1)
    for batch in (1, 3, 17):
        ids = rng.integers(0, VOCAB, 5 * batch)
        offsets = np.arange(batch, dtype=np.int64) * 5
        general = model._execution.execute(ids, offsets)[0].to_numpy().copy()
        before = runs[0]
        got = model.execute(ids, offsets)[0].to_numpy()
        assert runs[0] == before, "the fast step was not taken"
        assert got.tobytes() == general.tobytes()
        np.testing.assert_array_equal(got, reference(table(), ids, offsets))


@pytest.mark.filterwarnings("error")  # overflow to inf is IEEE's result, not a warning
@pytest.mark.parametrize("dtype", [DType.bfloat16, DType.float16])
def test_a_bag_then_a_cast_takes_it(runs, dtype):
    """A cast of the pooled bags follows them in the fast step, weighted and quantized too."""
    packed = FORMATS["rowwise_int8"].quantize(table() * 1e4)  # float16 overflows: no warning
    encoding = QuantizationEncoding.ROWWISE_INT8
    bag = nn.EmbeddingBag(VOCAB, packed.shape[1], DType.uint8, name="t",
                          quantization_encoding=encoding)  # fmt: skip
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"]),
             TensorType(DType.float32, ["n"])]  # fmt: skip
    with Graph("bags", input_types=types) as g:
        g.output(bag(*g.inputs).cast(dtype))
    model = InferenceSession(backend="native").load(g, {"t": packed})
    ids, offsets = np.array([3, 9, 9, 0, 49]), np.array([0, 2])
    weights = np.array([0.5, -2.0, 1.0, 3.0, 8.0], np.float32)
    want = model._execution.execute(ids, offsets, weights)[0].to_numpy().copy()
    before = runs[0]
    for _ in range(3):  # the float32 sums' buffer is handed out again
        got = model.execute(ids, offsets, weights)[0].to_numpy()
        assert got.dtype == dtype.to_numpy() and got.tobytes() == want.tobytes()
    assert runs[0] == before, "the fast step was not taken"
    assert np.isinf(want).any() == (dtype is DType.float16)


def test_weighted_quantized_bags_and_torch_inputs_take_it(runs):
    torch = pytest.importorskip("torch")
    fmt = FORMATS["rowwise_int8"]
    packed = fmt.quantize(table())
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, ["bags"]),
             TensorType(DType.float32, ["n"])]  # fmt: skip
    model = bag_model(packed, types, quantization_encoding=QuantizationEncoding.ROWWISE_INT8)
    ids, offsets = np.array([3, 9, 9, 0, 49]), np.array([0, 2])
    weights = np.array([0.5, -2.0, 1.0, 3.0, 0.25], np.float32)
    want = model._execution.execute(ids, offsets, weights)[0].to_numpy().copy()
    before = runs[0]
    for inputs in [(ids, offsets, weights), tuple(map(torch.from_numpy, (ids, offsets, weights)))]:
        assert model.execute(*inputs)[0].to_numpy().tobytes() == want.tobytes()
    assert runs[0] == before
    np.testing.assert_allclose(want, reference(fmt.dequantize(packed), ids, offsets, weights),
                               rtol=1e-6, atol=1e-6)  # fmt: skip


def test_a_collection_takes_it(runs):
    bags = [nn.EmbeddingBag(VOCAB, HIDDEN, DType.float32, name=f"t{k}") for k in range(2)]
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, [2, "batch"])]
    with Graph("c", input_types=types) as g:
        g.output(nn.EmbeddingBagCollection(bags)(*g.inputs))
    tables = {"t0": table(0), "t1": table(1)}
    model = InferenceSession(backend="native").load(g, tables)
    values, lengths = np.array([1, 2, 3, 4, 5, 6]), np.array([[2, 1], [0, 3]])
    want = model._execution.execute(values, lengths)[0].to_numpy().copy()
    before = runs[0]
    assert model.execute(values, lengths)[0].to_numpy().tobytes() == want.tobytes()
    assert runs[0] == before
    np.testing.assert_array_equal(want[:, :HIDDEN], reference(tables["t0"], [1, 2, 3], [0, 2]))
    np.testing.assert_array_equal(want[:, HIDDEN:], reference(tables["t1"], [4, 5, 6], [0, 0]))


@pytest.mark.parametrize(
    "case",
    [
        "rank",  # 2-D ids to a 1-D input
        "static",  # a static dim of another size
        "symbol",  # one symbol, two sizes
        "dtype",  # uint64 ids for int64: converted by the general path, once all fit
        "read-only",
        "strided",
        "list",
        "out of range",  # raised by the step itself, fast or not
        "bad offsets",  # the same
    ],
)
def test_what_the_fast_step_does_not_fit_goes_the_general_way(generals, case):
    types = [TensorType(DType.int64, ["n"]), TensorType(DType.int64, [2]),
             TensorType(DType.float32, ["n"])]  # fmt: skip
    model = bag_model(types=types)
    ids, offsets = np.array([1, 2, 3, 4]), np.array([0, 1])
    weights = np.ones(4, np.float32)
    general = (ids, offsets, weights)
    inputs = {
        "rank": (ids.reshape(2, 2), offsets, weights),
        "static": (ids, np.array([0, 1, 2]), weights),
        "symbol": (ids, offsets, np.ones(3, np.float32)),
        "dtype": (ids.astype(np.uint64), offsets, weights),
        "read-only": (np.frombuffer(ids.tobytes(), np.int64), offsets, weights),
        "strided": (np.repeat(ids, 2)[::2], offsets, weights),
        "list": (ids.tolist(), offsets, weights),
        "out of range": (np.array([1, 2, 3, VOCAB]), offsets, weights),
        "bad offsets": (ids, np.array([0, 9]), weights),
    }[case]
    want = outcome(lambda: model._execution.execute(*inputs))
    calls = generals[0]
    got = outcome(lambda: model.execute(*inputs))
    fell_back = generals[0] > calls
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
        if case == "out of range":
            assert isinstance(got, OutOfRangeError)  # raised by the step, fast or not
    else:
        assert got.tobytes() == want.tobytes()
        np.testing.assert_array_equal(got, reference(table(), ids, offsets, weights))
    raised_by_the_step = case in ("out of range", "bad offsets")
    assert fell_back != raised_by_the_step, "the fast step served what it should not"
    calls = generals[0]
    model.execute(*general)
    assert generals[0] == calls, "inputs that fit did not take the fast step"


def test_narrower_integers_are_widened_and_take_it(generals):
    model = bag_model()
    ids, offsets = np.array([3, 9, 9, 0, 49]), np.array([0, 2])
    want = reference(table(), ids, offsets)
    for ids_dtype, offsets_dtype in [
        (np.int32, np.int64),
        (np.uint16, np.int32),
        (np.int8, np.uint8),
    ]:
        calls = generals[0]
        got = model.execute(ids.astype(ids_dtype), offsets.astype(offsets_dtype))[0]
        assert generals[0] == calls, f"{ids_dtype.__name__} ids took the general path"
        np.testing.assert_array_equal(got.to_numpy(), want)
    for bad in (np.array([3, -1]), np.array([3, VOCAB])):  # still checked, in its own type
        narrow = bad.astype(np.int32)
        want_error = outcome(lambda b=bad: model._execution.execute(b, offsets))
        got_error = outcome(lambda n=narrow: model.execute(n, offsets))
        assert type(got_error) is type(want_error) and str(got_error) == str(want_error)
    floats = outcome(lambda: model.execute(ids.astype(np.float32), offsets))
    assert isinstance(floats, TypeError)  # never widened: the general path refuses them


def test_inputs_in_another_order_and_a_table_given_as_an_input():
    types = [TensorType(DType.int64, ["bags"]), TensorType(DType.float32, [VOCAB, HIDDEN]),
             TensorType(DType.int64, ["n"])]  # fmt: skip
    with Graph("g", input_types=types) as g:
        offsets, rows, ids = g.inputs
        g.output(ops.embedding_bag(rows, ids, offsets))
    model = InferenceSession(backend="native").load(g, {})
    ids, offsets = np.array([4, 5, 6]), np.array([0, 1])
    rows = table()
    assert model._executable.fast_step is not None
    np.testing.assert_array_equal(model.execute(offsets, rows, ids)[0].to_numpy(),
                                  reference(rows, ids, offsets))  # fmt: skip
    rows[5] += 1  # the same array, changed: read again
    np.testing.assert_array_equal(model.execute(offsets, rows, ids)[0].to_numpy(),
                                  reference(rows, ids, offsets))  # fmt: skip
    strided = np.asfortranarray(rows)  # copied to be read: every call, never kept stale
    for k in range(2):
        strided[6] = k
        np.testing.assert_array_equal(model.execute(offsets, strided, ids)[0].to_numpy(),
                                      reference(strided, ids, offsets))  # fmt: skip


def test_results_the_caller_holds_are_never_written_again():
    model = bag_model()
    one = np.array([0])
    held = [model.execute(np.array([k]), one)[0] for k in range(3)]  # Tensors
    arrays = [model.execute(np.array([k]), one)[0].to_numpy() for k in range(3, 6)]
    views = [model.execute(np.array([k]), one)[0].to_numpy()[0, 1:] for k in range(6, 9)]
    for k in range(9, 40):  # shapes come and go, as the spares do
        bags = 1 + k % 6
        got = model.execute(np.full(bags, k), np.arange(bags))[0].to_numpy()
        np.testing.assert_array_equal(got, np.repeat(table()[[k]], bags, axis=0))
    for k, result in enumerate(held):
        np.testing.assert_array_equal(result.to_numpy()[0], table()[k])
    for k, result in enumerate(arrays, 3):
        np.testing.assert_array_equal(result[0], table()[k])
    for k, result in enumerate(views, 6):
        np.testing.assert_array_equal(result, table()[k, 1:])


def test_a_dropped_result_is_handed_out_again():
    model = bag_model()
    one = np.array([0])
    address = model.execute(np.array([1]), one)[0].to_numpy().ctypes.data
    again = model.execute(np.array([2]), one)[0].to_numpy()
    assert again.ctypes.data == address and again.ctypes.data % 64 == 0
    np.testing.assert_array_equal(again[0], table()[2])


def test_threads_calling_one_model_each_get_their_own_results():
    model = bag_model()
    rows = table()
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        kept = []
        for call in range(150):
            bags = 1 + call % 3  # shapes shared with the other threads
            ids = rng.integers(0, VOCAB, 2 * bags)
            offsets = np.arange(bags, dtype=np.int64) * 2
            got = model.execute(ids, offsets)[0].to_numpy()
            want = reference(rows, ids, offsets)
            if call % 10 == 0:
                kept.append((got, want))  # held while the others run
            elif not np.array_equal(got, want):
                failures.append(f"thread {seed}, call {call}")
        failures.extend(f"thread {seed}: a held result changed" for got, want in kept
                        if not np.array_equal(got, want))  # fmt: skip

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
