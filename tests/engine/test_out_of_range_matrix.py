"""Every embedding layer x out-of-range policy x ids dtype, on both backends, against an
independent numpy reference: "error" raises `OutOfRangeError` naming the first bad id, its
position and the vocab size; "zero" writes zero rows; "clamp" reads row 0 below the table and
row vocab-1 above it (compared in the ids' own type, so a huge uint64 clamps high).
`ops.gather` on axes other than 0 is checked the same way against `np.take`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_same_bits

import ember.nn as nn
from ember.dtype import DType
from ember.errors import OutOfRangeError
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.quant import FORMATS

VOCAB = 100  # fits int8, so 127 and -128 are both out of range
HIDDEN = 256  # one Q4_K super-block, eight Q8_0 blocks
SHAPE = (2, 4)  # every execute of a model uses this ids shape
POLICIES = ["error", "zero", "clamp"]
LAYERS = ["dense", "q4_k", "q8_0", "embedding_np", "vp1", "vp2", "vp3"]

BAD_IDS = {
    np.int8: [VOCAB, 127, -1, -128],
    np.int32: [VOCAB, -1, 2**31 - 1, -(2**31)],
    np.int64: [VOCAB, -1, 2**63 - 1, -(2**63)],
    np.uint8: [VOCAB, 255],
    np.uint64: [VOCAB, 2**63, 2**63 + 1, 2**64 - 1],
}
"""Per ids dtype, the out-of-range values it can hold."""

GOOD_IDS = [0, VOCAB - 1, 37, 1, 98, 50, 2]
"""In-range ids, the two ends included (the rows a swapped clamp would read)."""


# ---- the layers ---------------------------------------------------------------------------------


def float_table(seed: int = 0) -> np.ndarray:
    table = np.random.default_rng(seed).standard_normal((VOCAB, HIDDEN)).astype(np.float32)
    table[3] = -0.0  # a row whose sign bits a value comparison would not see
    return table


def build(layer: str, policy: str, ids_dtype) -> tuple[Graph, dict, np.ndarray, str | None]:
    """(graph, weights to bind, the stored table, its quantization format name or None)."""
    ids_type = TensorType(DType.from_numpy(ids_dtype), list(SHAPE))
    if layer in ("q4_k", "q8_0"):
        encoding = QuantizationEncoding[layer.upper()]
        table = FORMATS[layer].quantize(float_table(1))
        emb = nn.EmbeddingV2(
            VOCAB, table.shape[1], DType.uint8, DeviceRef.CPU(), encoding, "q",
            out_of_range=policy,
        )  # fmt: skip
        with Graph(f"{layer}_{policy}", input_types=[ids_type]) as g:
            g.output(emb(g.inputs[0]))
        return g, {"q": table}, table, layer
    table = float_table()
    if layer == "dense":
        emb = nn.EmbeddingV2(VOCAB, HIDDEN, DType.float32, name="t", out_of_range=policy)
        with Graph(f"dense_{policy}", input_types=[ids_type]) as g:
            g.output(emb(g.inputs[0]))
        return g, {"t": table}, table, None
    if layer == "embedding_np":
        with Graph(f"np_{policy}", input_types=[ids_type]) as g:
            g.output(nn.Embedding(table, out_of_range=policy)(g.inputs[0]))
        return g, {}, table, None
    devices = [DeviceRef.CPU(i) for i in range(int(layer[2:]))]
    emb = nn.VocabParallelEmbedding(
        VOCAB, HIDDEN, DType.float32, devices=devices, name="t", out_of_range=policy
    )
    with Graph(f"{layer}_{policy}", input_types=[ids_type]) as g:
        g.output(*emb(g.inputs[0]))
    return g, {"t": table}, table, None


# ---- the reference ------------------------------------------------------------------------------


def as_ints(ids: np.ndarray) -> list[int]:
    """The ids as Python ints, flat in C order: no wraparound, whatever their dtype."""
    return [int(x) for x in ids.reshape(-1).tolist()]


def reference(table: np.ndarray, fmt: str | None, ids: np.ndarray, policy: str) -> np.ndarray:
    """The expected rows for "zero" or "clamp"."""
    flat = as_ints(ids)
    valid = np.array([0 <= x < VOCAB for x in flat])
    rows = np.array([0 if x < 0 else VOCAB - 1 if x >= VOCAB else x for x in flat], np.int64)
    want = table[rows] if fmt is None else FORMATS[fmt].dequantize(table[rows])
    want = np.ascontiguousarray(want, np.float32)
    if policy == "zero":
        want[~valid] = 0.0
    return want.reshape(*ids.shape, -1)


def first_bad(ids: np.ndarray, size: int, low: int = 0) -> tuple[int, tuple[int, ...]]:
    """The first id outside ``[low, size)`` in C order and its position as a tuple."""
    for flat, x in enumerate(as_ints(ids)):
        if not low <= x < size:
            return x, tuple(int(i) for i in np.unravel_index(flat, ids.shape))
    raise AssertionError("no bad id")


def cases(ids_dtype) -> list[np.ndarray]:
    """Ids of SHAPE: each bad value alone among good ids (at a different position each time),
    and one array holding every bad value, so "error" must pick the first of several."""
    bad = BAD_IDS[ids_dtype]
    out = []
    for k, value in enumerate(bad):
        flat = list(GOOD_IDS)
        flat.insert((2 * k + 3) % 8, value)
        out.append(np.array(flat[:8], dtype=ids_dtype).reshape(SHAPE))
    mixed = [GOOD_IDS[0], *bad, *GOOD_IDS, *bad][:8]
    out.append(np.array(mixed, dtype=ids_dtype).reshape(SHAPE))
    return out


def error_pattern(bad: int, position: tuple[int, ...], size: int) -> str:
    return (
        rf"^id {bad} at position {re.escape(str(position))} is out of range: "
        rf"the table has {size} rows \(vocab_size={size}\), so ids must be in \[0, {size}\)$"
    )


# ---- the matrix ---------------------------------------------------------------------------------


def test_the_reference_sees_a_swapped_clamp():
    """Self-check: the clamp reference tells the two ends apart for every ids dtype."""
    table = float_table()
    for ids_dtype in BAD_IDS:
        for ids in cases(ids_dtype):
            want = reference(table, None, ids, "clamp")
            flat = as_ints(ids)
            swapped_rows = [VOCAB - 1 if x < 0 else 0 if x >= VOCAB else x for x in flat]
            swapped = table[swapped_rows].reshape(want.shape)
            assert want.tobytes() != swapped.tobytes()


@pytest.mark.parametrize("ids_dtype", list(BAD_IDS), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("layer", LAYERS)
def test_out_of_range_matrix(session, layer, policy, ids_dtype):
    graph, weights, table, fmt = build(layer, policy, ids_dtype)
    model = session.load(graph, weights)
    devices = int(layer[2:]) if layer.startswith("vp") else 1

    good = np.array([*GOOD_IDS, 5], ids_dtype).reshape(SHAPE)
    outputs = model.execute(good)
    assert len(outputs) == devices
    for out in outputs:
        assert_same_bits(out.to_numpy(), reference(table, fmt, good, "zero"))

    for ids in cases(ids_dtype):
        if policy == "error":
            bad, position = first_bad(ids, VOCAB)
            with pytest.raises(OutOfRangeError, match=error_pattern(bad, position, VOCAB)) as info:
                model.execute(ids)
            assert isinstance(info.value, IndexError) and isinstance(info.value, ValueError)
            try:
                model.execute(ids)
            except ValueError as error:  # the same error, caught as a ValueError
                assert str(error) == str(info.value)
            else:
                pytest.fail("no ValueError")
            try:
                model.execute(ids)
            except IndexError as error:
                assert str(error) == str(info.value)
            else:
                pytest.fail("no IndexError")
            continue
        want = reference(table, fmt, ids, policy)
        outputs = model.execute(ids)
        assert len(outputs) == devices
        for out in outputs:
            assert_same_bits(out.to_numpy(), want)

    if policy != "error":  # the model is still sound after the bad ids
        for out in model.execute(good):
            assert_same_bits(out.to_numpy(), reference(table, fmt, good, "zero"))


# ---- ops.gather on other axes -------------------------------------------------------------------

TABLE_3D = (3, 5, 6)
GATHER_BAD = {
    np.int8: {1: [5, -1, 127, -128], 2: [6, -1, -7, 127]},
    np.int64: {1: [5, -6, 2**62, -(2**63)], 2: [-1, 6, 2**63 - 1, -7]},
    np.uint64: {1: [5, 2**63, 2**64 - 1, 7], 2: [6, 2**64 - 1, 2**63, 100]},
}
"""Per ids dtype and axis, four values outside ``[0, size)``; under "wrap" some of the negative
ones are valid, so the first bad id it reports can be a later one."""


def gather_ids(ids_dtype, axis: int) -> np.ndarray:
    """2-D ids mixing both ends of the axis, in-range ids, and its bad values."""
    size = TABLE_3D[axis]
    bad = GATHER_BAD[ids_dtype][axis]
    flat = [0, bad[0], size - 1, bad[1], 1, bad[2], bad[3], size - 2]
    return np.array(flat, ids_dtype).reshape(2, 4)


def take_reference(table: np.ndarray, ids: np.ndarray, axis: int, policy: str) -> np.ndarray:
    size = table.shape[axis]
    flat = as_ints(ids)
    valid = np.array([0 <= x < size for x in flat]).reshape(ids.shape)
    clipped = np.array([min(max(x, 0), size - 1) for x in flat], np.int64).reshape(ids.shape)
    want = np.take(table, clipped, axis=axis)  # shape[:axis] + ids.shape + shape[axis + 1:]
    if policy == "zero":
        mask = valid.reshape((1,) * axis + ids.shape + (1,) * (table.ndim - axis - 1))
        want = np.where(mask, want, np.float32(0))
    return np.ascontiguousarray(want, np.float32)


def gather_model(session, ids_dtype, axis: int, policy: str):
    with Graph(
        f"take_{axis}_{policy}", input_types=[TensorType(DType.from_numpy(ids_dtype), [2, 4])]
    ) as g:
        g.output(ops.gather(Weight("t", DType.float32, list(TABLE_3D)), g.inputs[0], axis,
                            out_of_range=policy))  # fmt: skip
    return session.load(g, {"t": gather_table()})


def gather_table() -> np.ndarray:
    # distinct values everywhere, so any wrong slice (a swapped clamp included) shows
    return (np.arange(np.prod(TABLE_3D), dtype=np.float32) + 1).reshape(TABLE_3D)


@pytest.mark.parametrize("ids_dtype", list(GATHER_BAD), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("policy", ["zero", "clamp"])
@pytest.mark.parametrize("axis", [1, 2])
def test_gather_on_other_axes_zero_and_clamp(session, axis, policy, ids_dtype):
    table = gather_table()
    ids = gather_ids(ids_dtype, axis)
    want = take_reference(table, ids, axis, policy)
    assert want.shape == (*TABLE_3D[:axis], 2, 4, *TABLE_3D[axis + 1 :])
    if policy == "clamp":  # self-check: a clamp to the wrong end gives other values
        flat = as_ints(ids)
        size = TABLE_3D[axis]
        swapped = [size - 1 if x < 0 else 0 if x >= size else x for x in flat]
        swapped = np.take(table, np.array(swapped).reshape(ids.shape), axis=axis)
        assert swapped.tobytes() != want.tobytes()
    got = gather_model(session, ids_dtype, axis, policy).execute(ids)[0].to_numpy()
    assert_same_bits(got, want)


@pytest.mark.parametrize("ids_dtype", list(GATHER_BAD), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("policy", ["wrap", "error"])
@pytest.mark.parametrize("axis", [1, 2])
def test_gather_on_other_axes_wrap_and_error_raise(session, axis, policy, ids_dtype):
    table = gather_table()
    size = TABLE_3D[axis]
    model = gather_model(session, ids_dtype, axis, policy)
    ids = gather_ids(ids_dtype, axis)
    low = -size if policy == "wrap" else 0
    bad, position = first_bad(ids, size, low)
    pattern = (
        rf"^id {bad} at position {re.escape(str(position))} is out of range: "
        rf"axis {axis} has size {size}, so ids must be in \[{low}, {size}\)$"
    )
    with pytest.raises(OutOfRangeError, match=pattern):
        model.execute(ids)
    # in-range ids (and, for "wrap", negative ones counting from the end) still work
    lowest = -size if policy == "wrap" and np.dtype(ids_dtype).kind == "i" else 0
    fine = np.array([0, size - 1, lowest, 1, size - 2, lowest + 1, 2, 0], ids_dtype).reshape(2, 4)
    wrapped = np.array([x % size for x in as_ints(fine)]).reshape(fine.shape)
    got = model.execute(fine)[0].to_numpy()
    assert_same_bits(got, np.ascontiguousarray(np.take(table, wrapped, axis=axis)))


@pytest.mark.parametrize(("shape", "axis"), [((5, 0), 1), ((0, 3), 0), ((2, 0, 3), 1)])
def test_an_empty_axis_zeroes_every_id_and_clamps_none(session, shape, axis):
    """Every id lies outside an empty axis: "zero" gives zero slices; "clamp" has no slice to
    clamp to, so it raises as "error" does, on both backends."""
    table = np.zeros(shape, np.float32)
    ids = np.array([2, 0], np.int32)
    results = {}
    for policy in ("zero", "clamp"):
        types = [TensorType(DType.float32, list(shape)), TensorType(DType.int32, [2])]
        with Graph("empty_axis", input_types=types) as g:
            g.output(ops.gather(g.inputs[0], g.inputs[1], axis, out_of_range=policy))
        model = session.load(g)
        if policy == "zero":
            results[policy] = model.execute(table, ids)[0].to_numpy()
        else:
            with pytest.raises(OutOfRangeError, match=r"id 2 at position \(0,\) is out of range"):
                model.execute(table, ids)
    want_shape = (*shape[:axis], 2, *shape[axis + 1 :])
    assert_same_bits(results["zero"], np.zeros(want_shape, np.float32))
