"""MAX's `ops.random` on every backend: Threefry-2x32 bits checked against JAX's own
`threefry_2x32`, uniform values equal to the formula applied to those bits (so the same on
every backend), MAX's seed rules (a fixed seed repeats, a seed input varies, each op moves the
seed on by one), normal values' moments, and the errors."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from ember.dtype import DType
from ember.engine.backends.threefry import threefry2x32
from ember.graph import DeviceRef, Graph, TensorType, ops
from ember.graph.errors import GraphTypeError

jax = pytest.importorskip("jax")
from jax.extend.random import threefry_2x32 as jax_threefry  # noqa: E402

CPU = DeviceRef.CPU()


def _jax_words(seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """JAX's Threefry-2x32 of the counters `(i, 0)` under the seed's two 32-bit halves."""
    key = jax.numpy.array([seed & 0xFFFFFFFF, seed >> 32], jax.numpy.uint32)
    counts = np.concatenate([np.arange(size), np.zeros(size)]).astype(np.uint32)
    words = np.asarray(jax_threefry(key, counts))
    return words[:size], words[size:]


def test_threefry_matches_jax_and_random123():
    rng = np.random.default_rng(0)
    key0, key1 = (rng.integers(0, 2**32, 50, dtype=np.uint32) for _ in range(2))
    count0, count1 = (rng.integers(0, 2**32, 50, dtype=np.uint32) for _ in range(2))
    for i in range(50):
        got = threefry2x32(key0[i], key1[i], count0[i : i + 1], count1[i : i + 1])
        key = jax.numpy.array([key0[i], key1[i]], jax.numpy.uint32)
        want = np.asarray(jax_threefry(key, np.array([count0[i], count1[i]], np.uint32)))
        assert [int(got[0][0]), int(got[1][0])] == want.tolist()
    zero = np.zeros(1, np.uint32)
    assert [hex(int(w[0])) for w in threefry2x32(np.uint32(0), np.uint32(0), zero, zero)] == [
        "0x6b200159", "0x99ba4efe",
    ]  # fmt: skip


def _draw(session, build, *inputs, types=None):
    types = types or [TensorType(DType.from_numpy(x.dtype), list(x.shape)) for x in inputs]
    with Graph("random", input_types=types) as g:
        outputs = build(*g.inputs)
        g.output(*(outputs if isinstance(outputs, tuple) else (outputs,)))
    model = session.load(g)
    return model, [r.to_numpy() for r in model.execute(*inputs)]


def test_uniform_is_the_formula_over_threefry_bits(session):
    seed = 0x0123456789ABCDEF
    like = TensorType(DType.float32, [40, 25])

    def build():
        ops.random.set_seed(seed)
        bounds = (ops.constant(-3.0, DType.float32), ops.constant(5, DType.int32))  # as MAX's
        return ops.random.uniform(like), ops.random.uniform(like, range=bounds)

    _, (unit, ranged) = _draw(session, build)
    x0, _ = _jax_words(seed, 1000)
    want = ((x0 >> 8).astype(np.float64) * 2.0**-24).astype(np.float32).reshape(40, 25)
    assert unit.tobytes() == want.tobytes()
    x0, _ = _jax_words(seed + 1, 1000)  # the second op draws under the seed moved on by one
    span = float(np.float32(8.0))
    want = (-3.0 + span * (x0 >> 8).astype(np.float64) * 2.0**-24).astype(np.float32)
    assert ranged.tobytes() == want.reshape(40, 25).tobytes()
    assert ranged.min() >= -3 and ranged.max() < 5


def test_seeds_repeat_vary_and_move_on(session):
    like = TensorType(DType.float32, [64])
    types = [ops.random.SeedType(CPU)]

    def build(seed):
        ops.random.set_seed(seed)
        return ops.random.uniform(like), ops.random.uniform(like)

    model, (first, second) = _draw(session, build, np.array([7], np.uint64), types=types)
    again = [r.to_numpy() for r in model.execute(np.array([7], np.uint64))]
    other = [r.to_numpy() for r in model.execute(np.array([8], np.uint64))]
    assert first.tobytes() == again[0].tobytes() and second.tobytes() == again[1].tobytes()
    assert first.tobytes() != second.tobytes()
    assert other[0].tobytes() == second.tobytes()  # seed 8 first is seed 7 second, as in MAX


def test_a_symbolic_shape_is_that_of_the_execution(session):
    def build(x):
        ops.random.set_seed(3)
        return ops.random.gaussian(x.type, mean=10, std=0.5)

    _, (values,) = _draw(session, build, np.zeros((5, 3), np.float32), types=[
        TensorType(DType.float32, ["n", 3])])  # fmt: skip
    assert values.shape == (5, 3) and values.dtype == np.float32


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16, np.float64])
def test_other_float_dtypes_stay_below_upper(session, dtype):
    like = TensorType(DType.from_numpy(np.dtype(dtype)), [20000])

    def build():
        ops.random.set_seed(11)
        return ops.random.uniform(like)

    _, (values,) = _draw(session, build)
    wide = values.astype(np.float64)
    assert values.dtype == dtype and wide.min() >= 0 and wide.max() < 1
    assert abs(wide.mean() - 0.5) < 5 * math.sqrt(1 / 12 / len(wide))
    if dtype is ml_dtypes.bfloat16:  # some draws round up to 1.0: each is moved below it
        assert (values == np.array(1 - 2**-8, dtype)).any()


def test_gaussian_moments_and_the_same_draws_on_every_backend():
    from ember.engine import InferenceSession

    like = TensorType(DType.float32, [50000])
    results = []
    for backend in ("native", "xla"):
        with Graph("normal") as g:
            ops.random.set_seed(1234)
            g.output(ops.random.gaussian(like, mean=2.0, std=3.0))
        results.append(InferenceSession(backend=backend).load(g).execute()[0].to_numpy())
    native, xla = results
    assert abs(native.mean() - 2) < 5 * 3 / math.sqrt(50000)
    assert abs(native.std() - 3) < 0.05
    z = (native.astype(np.float64) - 2) / 3
    assert (np.abs(native - xla) / 3 <= 2**-18 * (1 + np.abs(z))).all()


def test_errors():
    like = TensorType(DType.float32, [4])
    with Graph("e", input_types=[TensorType(DType.float32, [2])]) as g:
        with pytest.raises(RuntimeError, match="No seed set"):
            ops.random.uniform(like)
        with pytest.raises(ValueError, match="uint64"):
            ops.random.set_seed(-1)
        with pytest.raises(GraphTypeError, match="uint64"):
            ops.random.set_seed(g.inputs[0])
        with pytest.raises(ValueError, match=r"shape \[1\]"):
            ops.random.set_seed(np.zeros(2, np.uint64))
        ops.random.set_seed(0)
        with pytest.raises(TypeError, match="TensorType"):
            ops.random.uniform(g.inputs[0])
        with pytest.raises(GraphTypeError, match="draws floats"):
            ops.random.uniform(TensorType(DType.int32, [4]))
        with pytest.raises(ValueError, match="lower < upper"):
            ops.random.uniform(like, range=(1, 1))
        with pytest.raises(ValueError, match="finite"):
            ops.random.uniform(like, range=(0, np.inf))
        with pytest.raises(ValueError, match="no bfloat16 value"):
            ops.random.uniform(TensorType(DType.bfloat16, [4]), range=(1.001, 1.002))
        with pytest.raises(ValueError, match="std must be 0 or more"):
            ops.random.gaussian(like, std=-1)
        with pytest.raises(ValueError, match="scalar"):
            ops.random.gaussian(like, mean=np.zeros(2))
        with pytest.raises(TypeError, match="known when the graph is built"):
            ops.random.uniform(like, range=(0, g.inputs[0][0]))


def test_no_more_values_than_the_counters_reach():
    from ember.engine.backends.threefry import random_words

    with pytest.raises(ValueError, match="fewer than 2\\*\\*32 values"):
        random_words(np, np.zeros(1, np.uint64), 2**32)


def test_ranges_past_the_dtype_and_bad_seeds_and_ranges():
    with Graph("e") as g:
        ops.random.set_seed(0)
        with pytest.raises(ValueError, match="passes float16's largest"):
            ops.random.uniform(TensorType(DType.float16, [4]), range=(0, 1e5))
        # float4 and float6 saturate instead of overflowing: the range is still refused
        with pytest.raises(ValueError, match="passes float4_e2m1fn's largest"):
            ops.random.uniform(TensorType(DType.float4_e2m1fn, [4]), range=(-100, -50))
        with pytest.raises(ValueError, match="no float4_e2m1fn value lies in"):
            ops.random.uniform(TensorType(DType.float4_e2m1fn, [4]), range=(4.1, 5.9))
        for seed in (1.5, True, "7"):
            with pytest.raises(TypeError, match="a seed is a uint64"):
                ops.random.set_seed(seed)
        with pytest.raises(TypeError, match=r"range is \(lower, upper\)"):
            ops.random.uniform(TensorType(DType.float32, [4]), range=(0,))
        assert g is not None


def test_a_range_as_wide_as_float32_spreads(session):
    like = TensorType(DType.float32, [10000])

    def build():
        ops.random.set_seed(0)
        return ops.random.uniform(like, range=(-3e38, 3e38))

    with np.errstate(all="raise"):
        _, (values,) = _draw(session, build)
    assert np.isfinite(values).all() and values.min() < -2e38 and values.max() > 2e38
    assert len(np.unique(values)) > 9000
