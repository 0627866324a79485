"""MAX-style user code, written fresh, runs on ember with only `max` renamed to `ember`.

Each test is what someone porting a MAX 26 program would write: the module-level imports are
MAX's with `max` replaced by `ember`, the rest is untouched MAX usage. Where MAX raises a
`TypeError` or a `ValueError`, ember must raise that class or a subclass, so the user's
`except` clauses keep working. GPUs of the originals are CPU devices here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.driver import CPU, Buffer, Tensor
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Dim, Graph, TensorType, TensorValue, Weight, ops


@pytest.fixture
def cpu_session(backend: str) -> InferenceSession:
    """What a MAX user opens: a session on the host CPU (on each of ember's backends)."""
    return InferenceSession(devices=[CPU()], backend=backend)


@pytest.fixture
def two_cpu_session(backend: str) -> InferenceSession:
    return InferenceSession(devices=[CPU(0), CPU(1)], backend=backend)


def table(vocab: int, hidden: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((vocab, hidden)).astype(np.float32)


def embedding_v2_graph(vocab: int, hidden: int, ids_dtype: DType = DType.int64) -> Graph:
    embedding = nn.EmbeddingV2(vocab, hidden, DType.float32, DeviceRef.CPU(), name="emb")
    with Graph("tokens", input_types=[TensorType(ids_dtype, ["batch", "seq"])]) as graph:
        graph.output(embedding(graph.inputs[0]))
    return graph


# -- out-of-range ids at execute: a ValueError as in MAX, an IndexError too, saying where ---------


def assert_names_the_bad_id(error: BaseException, bad_id: int, position: str, vocab: int) -> None:
    message = str(error)
    assert str(bad_id) in message
    assert position in message
    assert str(vocab) in message


@pytest.mark.parametrize("caught", [ValueError, IndexError])
def test_embedding_v2_out_of_range_id(cpu_session, caught):
    model = cpu_session.load(embedding_v2_graph(10, 4), weights_registry={"emb": table(10, 4)})
    ids = np.array([[1, 2, 3], [4, 5, 13]], dtype=np.int64)
    with pytest.raises(caught) as info:
        model.execute(ids)
    assert_names_the_bad_id(info.value, 13, "(1, 2)", 10)


@pytest.mark.parametrize("caught", [ValueError, IndexError])
def test_embedding_of_a_weight_out_of_range_id(cpu_session, caught):
    weights = Weight("vocab_table", DType.float32, [10, 4], DeviceRef.CPU())
    embedding = nn.Embedding(weights)
    with Graph("tokens", input_types=[TensorType(DType.int32, ["seq"])]) as graph:
        graph.output(embedding(graph.inputs[0]))
    model = cpu_session.load(graph, weights_registry={"vocab_table": table(10, 4)})
    np.testing.assert_array_equal(
        model.execute(np.array([9, 0], np.int32))[0].to_numpy(), table(10, 4)[[9, 0]]
    )
    with pytest.raises(caught) as info:
        model.execute(np.array([0, 1, 2, 10], dtype=np.int32))
    assert_names_the_bad_id(info.value, 10, "(3,)", 10)


@pytest.mark.parametrize("caught", [ValueError, IndexError])
def test_vocab_parallel_embedding_out_of_range_id(two_cpu_session, caught):
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    embedding = nn.VocabParallelEmbedding(10, 4, DType.float32, devices, name="emb")
    with Graph("tokens", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as graph:
        graph.output(*embedding(graph.inputs[0]))
    model = two_cpu_session.load(graph, weights_registry={"emb": table(10, 4)})
    with pytest.raises(caught) as info:
        model.execute(np.array([[0, 9], [12, 3]], dtype=np.int64))
    assert_names_the_bad_id(info.value, 12, "(1, 0)", 10)


# -- a Weight is a graph value inside a graph ------------------------------------------------


W_VALUES = np.arange(12, dtype=np.float32).reshape(4, 3)
W2_VALUES = np.full((4, 3), 0.5, dtype=np.float32)


def run_weight_graph(session, build, weights=None):
    """Builds `graph.output(build(w, w2))` over two weights, executes it, returns numpy."""
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    w2 = Weight("w2", DType.float32, [4, 3], DeviceRef.CPU())
    with Graph("weights") as graph:
        graph.output(build(w, w2))
    registry = {"w": W_VALUES, "w2": W2_VALUES}
    used = {name for name in registry if name in graph.weights}
    model = session.load(graph, weights_registry={k: registry[k] for k in used})
    return model.execute()[0].to_numpy()


def test_weight_times_scalar(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w * 2)
    np.testing.assert_array_equal(out, W_VALUES * 2)


def test_scalar_plus_weight(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: 3 + w)
    np.testing.assert_array_equal(out, W_VALUES + 3)


def test_weight_plus_weight(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w + w2)
    np.testing.assert_array_equal(out, W_VALUES + W2_VALUES)


def test_weight_plus_value_of_a_weight(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: ops.add(w, w2) - ops.mul(w2, w2))
    np.testing.assert_array_equal(out, W_VALUES + W2_VALUES - W2_VALUES * W2_VALUES)


def test_weight_to_device(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w.to(DeviceRef.CPU()))
    np.testing.assert_array_equal(out, W_VALUES)


def test_weight_cast(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w.cast(DType.int32))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, W_VALUES.astype(np.int32))


def test_weight_reshape(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w.reshape((2, 6)))
    np.testing.assert_array_equal(out, W_VALUES.reshape(2, 6))


def test_weight_slices(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: w[1:3])
    np.testing.assert_array_equal(out, W_VALUES[1:3])
    out = run_weight_graph(cpu_session, lambda w, w2: w[:, 1:])
    np.testing.assert_array_equal(out, W_VALUES[:, 1:])


def test_gather_rows_of_a_weight(cpu_session):
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with Graph("rows", input_types=[TensorType(DType.int32, ["n"])]) as graph:
        graph.output(ops.gather(w, graph.inputs[0], axis=0))
    model = cpu_session.load(graph, weights_registry={"w": W_VALUES})
    out = model.execute(np.array([3, 0, 3], np.int32))[0].to_numpy()
    np.testing.assert_array_equal(out, W_VALUES[[3, 0, 3]])


def test_tensor_value_of_a_weight(cpu_session):
    out = run_weight_graph(cpu_session, lambda w, w2: ops.add(TensorValue(w), TensorValue(w2)))
    np.testing.assert_array_equal(out, W_VALUES + W2_VALUES)


def test_weight_arithmetic_outside_a_graph():
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with pytest.raises(ValueError, match=r"[Gg]raph"):
        w * 2


def test_weight_methods_outside_a_graph():
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with pytest.raises(ValueError, match=r"[Gg]raph"):
        w.to(DeviceRef.CPU())
    with pytest.raises(ValueError, match=r"[Gg]raph"):
        w.cast(DType.float64)


def test_two_weights_with_one_name_in_one_graph():
    first = Weight("shared_name", DType.float32, [4, 3], DeviceRef.CPU())
    second = Weight("shared_name", DType.float32, [4, 3], DeviceRef.CPU())
    with Graph("clash"):
        first.cast(DType.float64)
        with pytest.raises(ValueError, match="shared_name"):
            second.cast(DType.float64)


def test_one_weight_used_twice_is_one_weight(cpu_session):
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with Graph("twice", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        ids = graph.inputs[0]
        graph.output(ops.add(ops.gather(w, ids, axis=0), ops.gather(w, ids, axis=0)))
    model = cpu_session.load(graph, weights_registry={"w": W_VALUES})
    out = model.execute(np.array([1, 2], np.int64))[0].to_numpy()
    np.testing.assert_array_equal(out, 2 * W_VALUES[[1, 2]])


def test_graph_add_weight_as_maxs_weight_loading_does(cpu_session):
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with Graph("added", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        value = graph.add_weight(w)
        assert graph.add_weight(w) is value  # the same Weight again: its value
        graph.output(ops.gather(value, graph.inputs[0], axis=0) + ops.gather(w, graph.inputs[0], 0))
    model = cpu_session.load(graph, weights_registry={"w": W_VALUES})
    out = model.execute(np.array([3, 0], np.int64))[0].to_numpy()
    np.testing.assert_array_equal(out, 2 * W_VALUES[[3, 0]])


def test_graph_add_weight_refuses_a_second_weight_of_one_name_and_a_non_weight():
    with Graph("added") as graph:
        graph.add_weight(Weight("w", DType.float32, [2], DeviceRef.CPU()), False)
        with pytest.raises(ValueError, match="'w'"):
            graph.add_weight(Weight("w", DType.float32, [3], DeviceRef.CPU()))
        with pytest.raises(TypeError, match="takes a Weight, got a ndarray"):
            graph.add_weight(W_VALUES)


def test_collectives_take_maxs_signal_buffers(two_cpu_session):
    """MAX's calls pass signal buffers (required there); ember takes them and needs none."""
    devices = [DeviceRef.CPU(0), DeviceRef.CPU(1)]
    embedding = nn.VocabParallelEmbedding(10, 4, DType.float32, devices=devices, name="emb")
    types = [TensorType(DType.int64, ["n"]), *(TensorType(DType.float32, [2], d) for d in devices)]
    with Graph("signals", input_types=types) as graph:
        ids, *parts = graph.inputs
        rows = embedding(ids, [])
        gathered = ops.allgather(parts, [], axis=0)
        summed = ops.allreduce.sum(parts, signal_buffers=[])
        graph.output(*rows, *gathered, *summed)
    weights = table(10, 4, seed=3)
    parts = [np.array([1, 2], np.float32), np.array([10, 20], np.float32)]
    model = two_cpu_session.load(graph, weights_registry={"emb": weights})
    out = [o.to_numpy() for o in model.execute(np.array([9, 0, 5], np.int64), *parts)]
    for rows in out[:2]:
        np.testing.assert_array_equal(rows, weights[[9, 0, 5]])
    for gathered in out[2:4]:
        np.testing.assert_array_equal(gathered, [1, 2, 10, 20])
    for summed in out[4:]:
        np.testing.assert_array_equal(summed, [11, 22])


def test_an_axis_given_where_max_takes_signal_buffers_is_a_type_error():
    types = [TensorType(DType.float32, [2], DeviceRef.CPU(i)) for i in range(2)]
    with Graph("axis", input_types=types) as graph:
        with pytest.raises(TypeError, match=r"signal_buffers .* got 0; give what follows it by"):
            ops.allgather(graph.inputs, 0)
        with pytest.raises(TypeError, match=r"allreduce\.sum: signal_buffers"):
            ops.allreduce.sum(graph.inputs, 1)


def test_int_of_a_symbolic_dim_is_a_type_error_that_says_so():
    for dim in (Dim("x"), Dim("x") * 2 + 1):
        with pytest.raises(
            TypeError, match="conversions only supported for static dims; this one is symbolic"
        ):
            int(dim)
    assert int(Dim(3)) == 3


def test_max_pipeline_idioms_of_embeddings_and_heads(cpu_session):
    """What MAX's pipelines write around their embeddings and tied heads: `x @ weight.T`,
    `TensorValue(dim)`, `Graph.current`, `offsets[1:] - 1` on a symbolic dim, and the type
    and device helpers."""
    from ember.graph import TensorValueLike  # noqa: F401 - MAX exports it from max.graph

    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    types = [TensorType(DType.float32, ["tokens", 3]), TensorType(DType.uint32, ["offsets"])]
    with Graph("head", input_types=types) as graph:
        assert Graph.current is graph
        hidden, offsets = graph.inputs
        last = ops.gather(hidden, offsets[1:] - 1, axis=0)
        logits = last @ w.T
        sizes = TensorValue(hidden.shape)  # a shape: its sizes, as shape_to_tensor gives them
        graph.output(logits, w.transpose(0, 1) + 0, TensorValue(hidden.shape[0]), sizes)
    hidden = np.arange(15, dtype=np.float32).reshape(5, 3)
    model = cpu_session.load(graph, weights_registry={"w": W_VALUES})
    results = model.execute(hidden, np.uint32([0, 2, 5]))
    logits, transposed, tokens, sizes = (t.to_numpy() for t in results)
    assert sizes.dtype == np.int64 and sizes.tolist() == [5, 3]
    np.testing.assert_allclose(logits, hidden[[1, 4]] @ W_VALUES.T, rtol=1e-6)
    np.testing.assert_array_equal(transposed, W_VALUES.T)
    assert tokens.shape == () and tokens.dtype == np.int64 and int(tokens) == 5
    assert TensorType(DType.float32, [2, 3]).num_elements() == 6
    with pytest.raises(RuntimeError, match="symbolic dims"):
        TensorType(DType.float32, ["n", 3]).num_elements()
    assert DeviceRef.from_device(DeviceRef.CPU(1)) == DeviceRef.CPU(1)
    assert DeviceRef.CPU(0).to_device() == CPU()


# -- the driver: Buffer beside Tensor, and the model's devices -------------------------------


def test_buffer_is_the_driver_tensor():
    assert Buffer is Tensor or issubclass(Buffer, Tensor) or issubclass(Tensor, Buffer)


def test_buffer_from_numpy_and_back():
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    buffer = Buffer.from_numpy(array)
    assert buffer.shape == (2, 3)
    assert buffer.dtype == DType.int32
    assert buffer.device == CPU()
    np.testing.assert_array_equal(buffer.to_numpy(), array)


def test_buffer_from_dlpack_of_numpy_and_jax():
    array = np.linspace(0, 1, 8, dtype=np.float32)
    np.testing.assert_array_equal(Buffer.from_dlpack(array).to_numpy(), array)
    jnp = pytest.importorskip("jax.numpy")
    buffer = Buffer.from_dlpack(jnp.arange(5, dtype=jnp.int32))
    assert buffer.dtype == DType.int32
    np.testing.assert_array_equal(buffer.to_numpy(), np.arange(5))


def test_buffer_zeros_and_to_device():
    zeros = Buffer.zeros((3, 2), DType.float32, device=CPU())
    assert zeros.shape == (3, 2)
    assert zeros.dtype == DType.float32
    moved = zeros.to(CPU())
    assert moved.device == CPU()
    np.testing.assert_array_equal(moved.to_numpy(), np.zeros((3, 2), np.float32))


def test_model_devices_and_integration_test_idiom(cpu_session):
    vocab, hidden = 16, 8
    weights = table(vocab, hidden, seed=3)
    model = cpu_session.load(embedding_v2_graph(vocab, hidden), weights_registry={"emb": weights})
    assert model.input_devices == [CPU()]
    assert model.output_devices == [CPU()]
    assert model.devices == [CPU()]
    from ember.engine.api import InferenceSession  # where MAX's code imports it from

    assert InferenceSession is type(cpu_session)

    ids = np.array([[1, 15, 0], [7, 7, 2]], dtype=np.int64)
    ids_buffer = Buffer.from_dlpack(ids).to(model.input_devices[0])
    (executed,) = model.execute(ids_buffer)
    (called,) = model(ids_buffer)
    for result in (executed, called):
        assert isinstance(result, Buffer)
        assert result.shape == (2, 3, hidden)
        assert result.dtype == DType.float32
        assert result.device == model.output_devices[0]
        np.testing.assert_array_equal(result.to_numpy(), weights[ids])


def test_jax_ids_through_dlpack(cpu_session):
    jnp = pytest.importorskip("jax.numpy")
    weights = table(16, 8, seed=4)
    graph = embedding_v2_graph(16, 8, DType.int32)
    model = cpu_session.load(graph, weights_registry={"emb": weights})
    ids = jnp.array([[3, 4]], dtype=jnp.int32)
    out = model.execute(Buffer.from_dlpack(ids).to(model.input_devices[0]))[0].to_numpy()
    np.testing.assert_array_equal(out, weights[np.asarray(ids)])


# -- build-time errors of MAX's classes ------------------------------------------------------


def test_float_indices_to_gather_are_a_type_error():
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with (
        Graph("float_ids", input_types=[TensorType(DType.float32, ["n"])]) as graph,
        pytest.raises(TypeError),
    ):
        ops.gather(w, graph.inputs[0], axis=0)


def test_float_indices_to_an_embedding_are_a_type_error():
    embedding = nn.EmbeddingV2(10, 4, DType.float32, DeviceRef.CPU(), name="emb")
    with (
        Graph("float_ids", input_types=[TensorType(DType.float32, ["n"])]) as graph,
        pytest.raises(TypeError),
    ):
        embedding(graph.inputs[0])


def test_gather_across_devices_is_a_value_error():
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU(0))
    ids_type = TensorType(DType.int64, ["n"], device=DeviceRef.CPU(1))
    with Graph("two_devices", input_types=[ids_type]) as graph, pytest.raises(ValueError):
        ops.gather(w, graph.inputs[0], axis=0)


def test_elementwise_across_devices_is_a_value_error():
    a = Weight("a", DType.float32, [3], DeviceRef.CPU(0))
    b = Weight("b", DType.float32, [3], DeviceRef.CPU(1))
    with Graph("two_devices"), pytest.raises(ValueError):
        ops.add(a, b)


@pytest.mark.parametrize("caught", [ValueError, IndexError])
@pytest.mark.parametrize("axis", [2, -3])
def test_gather_axis_out_of_range(caught, axis):
    w = Weight("w", DType.float32, [4, 3], DeviceRef.CPU())
    with (
        Graph("bad_axis", input_types=[TensorType(DType.int64, ["n"])]) as graph,
        pytest.raises(caught),
    ):
        ops.gather(w, graph.inputs[0], axis=axis)


def test_weight_of_the_wrong_dtype_at_load_is_a_type_error(cpu_session):
    graph = embedding_v2_graph(10, 4)
    with pytest.raises(TypeError):
        cpu_session.load(graph, weights_registry={"emb": table(10, 4).astype(np.float64)})


def test_weight_of_the_wrong_shape_at_load_is_a_value_error(cpu_session):
    graph = embedding_v2_graph(10, 4)
    with pytest.raises(ValueError):
        cpu_session.load(graph, weights_registry={"emb": table(10, 5)})
    with pytest.raises(ValueError):
        cpu_session.load(graph, weights_registry={"emb": table(4, 10)})


# -- the seed document's examples, `max` replaced by `ember` ---------------------------------


def test_seed_module_example_builds_as_written(capsys):
    with Graph(name="embedding_example") as graph:
        batch_size = 4
        seq_length = 16
        vocab_size = 10000
        hidden_dim = 256

        input_data = np.random.randint(0, vocab_size, (batch_size, seq_length), dtype=np.int32)
        input_indices = ops.constant(input_data, dtype=DType.int32)

        embedding = nn.EmbeddingV2(
            vocab_size=vocab_size,
            hidden_dim=hidden_dim,
            dtype=DType.float32,
            device=DeviceRef.GPU(),
            name="token_embeddings",
        )

        embeddings = embedding(input_indices)
        print(f"Embedding output shape: {embeddings.shape}")
    assert capsys.readouterr().out == "Embedding output shape: [Dim(4), Dim(16), Dim(256)]\n"
    assert graph.name == "embedding_example"
    assert embeddings.device == DeviceRef.GPU()
    assert embeddings.dtype == DType.float32


def test_seed_module_example_executes_on_cpu(cpu_session):
    with Graph(name="embedding_example") as graph:
        batch_size = 4
        seq_length = 16
        vocab_size = 10000
        hidden_dim = 256

        input_data = np.random.randint(0, vocab_size, (batch_size, seq_length), dtype=np.int32)
        input_indices = ops.constant(input_data, dtype=DType.int32)

        embedding = nn.EmbeddingV2(
            vocab_size=vocab_size,
            hidden_dim=hidden_dim,
            dtype=DType.float32,
            device=DeviceRef.CPU(),
            name="token_embeddings",
        )

        embeddings = embedding(input_indices)
        graph.output(embeddings)
    weights = table(vocab_size, hidden_dim, seed=5)
    model = cpu_session.load(graph, weights_registry={"token_embeddings": weights})
    (out,) = model.execute()
    assert out.shape == (4, 16, 256)
    np.testing.assert_array_equal(out.to_numpy(), weights[input_data])


def test_seed_embedding_v2_example(cpu_session):
    embedding_layer = nn.EmbeddingV2(
        vocab_size=1000,
        hidden_dim=256,
        dtype=DType.float32,
        device=DeviceRef.CPU(),
        name="embeddings",
    )
    assert embedding_layer.device == DeviceRef.CPU()
    assert isinstance(embedding_layer.weight, Weight)
    with Graph("v2", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as graph:
        token_indices = graph.inputs[0]
        embeddings = embedding_layer(token_indices)
        graph.output(embeddings)
    assert [str(d) for d in embeddings.shape][-1] == "256"
    weights = table(1000, 256, seed=6)
    ids = np.array([[999, 0, 512]], dtype=np.int64)
    out = cpu_session.load(graph, weights_registry={"embeddings": weights}).execute(ids)[0]
    np.testing.assert_array_equal(out.to_numpy(), weights[ids])


def test_seed_vocab_parallel_example(two_cpu_session):
    embedding_layer = nn.VocabParallelEmbedding(
        vocab_size=1000,
        hidden_dim=256,
        dtype=DType.float32,
        device=[DeviceRef.CPU(0), DeviceRef.CPU(1)],
        name="embeddings",
    )
    with Graph("vp", input_types=[TensorType(DType.int64, ["batch", "seq"])]) as graph:
        token_indices = graph.inputs[0]
        embeddings = embedding_layer(token_indices)
        graph.output(*embeddings)
    weights = table(1000, 256, seed=7)
    ids = np.array([[0, 499, 500, 999]], dtype=np.int64)
    outputs = two_cpu_session.load(graph, weights_registry={"embeddings": weights}).execute(ids)
    assert len(outputs) == 2
    assert [o.device for o in outputs] == [CPU(0), CPU(1)]
    for out in outputs:
        np.testing.assert_array_equal(out.to_numpy(), weights[ids])


def test_seed_vocab_parallel_example_with_devices_keyword(two_cpu_session):
    embedding_layer = nn.VocabParallelEmbedding(
        vocab_size=10,
        hidden_dim=4,
        dtype=DType.float32,
        devices=[DeviceRef.CPU(0), DeviceRef.CPU(1)],
        name="embeddings",
    )
    with Graph("vp", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(*embedding_layer(graph.inputs[0]))
    weights = table(10, 4, seed=8)
    outputs = two_cpu_session.load(graph, weights_registry={"embeddings": weights}).execute(
        np.array([9, 4, 5], np.int64)
    )
    for out in outputs:
        np.testing.assert_array_equal(out.to_numpy(), weights[[9, 4, 5]])


def test_seed_embedding_of_an_array(cpu_session):
    weights = table(6, 3, seed=9)
    embedding = nn.Embedding(weights)
    with Graph("embedding_of_array", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(embedding(graph.inputs[0]))
    out = cpu_session.load(graph).execute(np.array([5, 0, 2], np.int64))[0]
    np.testing.assert_array_equal(out.to_numpy(), weights[[5, 0, 2]])


# -- ids as users hold them ------------------------------------------------------------------


def test_python_list_of_ids_as_a_tokenizer_gives_them(cpu_session):
    weights = table(32, 4, seed=10)
    embedding = nn.EmbeddingV2(32, 4, DType.float32, DeviceRef.CPU(), name="emb")
    with Graph("encode", input_types=[TensorType(DType.int64, ["seq"])]) as graph:
        graph.output(embedding(graph.inputs[0]))
    model = cpu_session.load(graph, weights_registry={"emb": weights})
    enc_ids = [2, 31, 0, 17]  # what `tokenizer.encode(text).ids` returns
    np.testing.assert_array_equal(model.execute(enc_ids)[0].to_numpy(), weights[enc_ids])


def test_python_list_of_id_lists_into_an_int32_graph(cpu_session):
    weights = table(32, 4, seed=11)
    model = cpu_session.load(embedding_v2_graph(32, 4, DType.int32), {"emb": weights})
    batch = [[1, 2, 3], [30, 31, 0]]
    np.testing.assert_array_equal(model.execute(batch)[0].to_numpy(), weights[np.array(batch)])


def test_python_list_with_an_out_of_range_id(cpu_session):
    model = cpu_session.load(embedding_v2_graph(8, 4), {"emb": table(8, 4)})
    with pytest.raises(ValueError) as info:
        model.execute([[0, 1, 8]])
    assert_names_the_bad_id(info.value, 8, "(0, 2)", 8)


def test_int64_numpy_ids_into_an_int32_graph(cpu_session):
    weights = table(20, 4, seed=12)
    model = cpu_session.load(embedding_v2_graph(20, 4, DType.int32), {"emb": weights})
    ids = np.array([[19, 0], [5, 6]], dtype=np.int64)  # numpy's default integer type
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), weights[ids])
    ids = np.random.randint(0, 20, (3, 5))
    np.testing.assert_array_equal(model(ids)[0].to_numpy(), weights[ids])


def test_max_graph_test_idioms_value_tensor_static_dims_and_extra_graph_arguments():
    """MAX's own graph tests write `graph.inputs[0].tensor`, `shape.static_dims` and pass
    `output_types=` to `Graph`."""
    from ember.graph import Shape

    types = [TensorType(DType.float32, [2, "n"], DeviceRef.CPU())]
    with Graph("g", input_types=types, output_types=types) as graph:
        value = graph.inputs[0].tensor
        assert value is graph.inputs[0]
        assert value.shape.static_dims == [2]
        graph.output(value)
    assert Shape([2, "x", 3]).static_dims == [2, 3]


def test_graph_forward_takes_extra_arguments(cpu_session):
    """MAX calls `forward(*inputs, *args, **kwargs)`, its fourth argument being `path`; its
    MLIR parameters are refused by name."""
    graph = Graph(
        "scaled",
        lambda x, factor, *, offset: x * factor + offset,
        [TensorType(DType.float32, [3])],
        None,
        2.0,
        offset=1.0,
        custom_extensions=[],
    )
    for parameter in ("path", "context", "kernel_library", "module"):
        with pytest.raises(NotImplementedError, match=f"Graph\\({parameter}=...\\)"):
            Graph("g", input_types=[], **{parameter: object()})
    with pytest.raises(NotImplementedError, match="custom_extensions"):
        Graph("g", custom_extensions=["ops.mojopkg"])
    out = cpu_session.load(graph).execute(np.array([1, 2, 3], np.float32))[0]
    np.testing.assert_array_equal(out.to_numpy(), [3.0, 5.0, 7.0])


def test_embedding_by_keywords_only_and_maxs_default_weight_name(cpu_session, two_cpu_session):
    """MAX's documented `Embedding(vocab_size=..., ...)`, and its weight named "weight"
    when no name is given, for every embedding layer."""
    layers = [
        nn.Embedding(vocab_size=10, hidden_dim=4, dtype=DType.float32, device=DeviceRef.CPU()),
        nn.EmbeddingV2(10, 4, DType.float32, DeviceRef.CPU()),
        nn.VocabParallelEmbedding(10, 4, DType.float32, [DeviceRef.CPU(0), DeviceRef.CPU(1)]),
        nn.EmbeddingBag(10, 4, DType.float32, DeviceRef.CPU()),
    ]
    assert [layer.weight.name for layer in layers] == ["weight"] * 4
    weights = table(10, 4, seed=9)
    with Graph("kw", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(layers[0](graph.inputs[0]))
    ids = np.array([9, 0, 3], np.int64)
    out = cpu_session.load(graph, weights_registry={"weight": weights}).execute(ids)[0]
    np.testing.assert_array_equal(out.to_numpy(), weights[ids])


def test_integer_division_is_true_division_in_float64(cpu_session):
    """MAX's `ops.div` casts two integer operands to float64 first, as Python's `/` does."""
    with Graph("div", input_types=[TensorType(DType.int32, [2], DeviceRef.CPU())] * 2) as g:
        quotient = ops.div(*g.inputs)
        assert quotient.dtype == DType.float64
        g.output(quotient, g.inputs[0] / 4)
    a, b = np.array([7, -7], np.int32), np.array([2, 2], np.int32)
    quotient, quarter = (t.to_numpy() for t in cpu_session.load(g).execute(a, b))
    assert quotient.tolist() == [3.5, -3.5] and quarter.tolist() == [1.75, -1.75]


def test_the_value_errors_max_raises_are_value_errors_here(cpu_session):
    cpu = DeviceRef.CPU()
    types = [TensorType(DType.int8, [2], cpu), TensorType(DType.uint8, [2], cpu),
             TensorType(DType.bool, [2], cpu)]  # fmt: skip
    with Graph("errors", input_types=types) as g:
        signed, unsigned, flags = g.inputs
        for build in (
            lambda: signed - unsigned,  # "Unsafe cast" in MAX
            lambda: flags / 2,
            lambda: ops.concat([signed, unsigned]),
            lambda: ops.stack([signed, unsigned]),
            lambda: ops.shape_to_tensor("not a shape"),
            lambda: ops.constant([[0, 1, 2], [3, 4]], dtype=DType.int8, device=cpu),
            lambda: ops.constant(np.array([70000.0]), dtype=DType.float16, device=cpu),
            lambda: ops.constant(300, dtype=DType.int8, device=cpu),
        ):
            with pytest.raises(ValueError):
                build()


def test_graph_values_are_neither_iterable_nor_containers():
    """`list(x)` on a symbolic first dim would never end by indexing; MAX raises TypeError."""
    with Graph("iter", input_types=[TensorType(DType.float32, ["a", "b"], DeviceRef.CPU())]) as g:
        with pytest.raises(TypeError, match="not iterable"):
            list(g.inputs[0])
        with pytest.raises(TypeError, match="not a container"):
            _ = 1 in g.inputs[0]


def test_graph_and_buffer_forms_max_accepts(cpu_session):
    with Graph("", input_types=[TensorType(DType.float32, [4, 3], DeviceRef.CPU())]) as g:
        first = ops.slice_tensor(g.inputs[0], [slice(0, 1)])  # any sequence, not only a tuple
        table = ops.constant(Buffer.from_dlpack(np.arange(6).reshape(2, 3)))  # dtype its own
        assert first.shape == [1, 3] and table.dtype == DType.int64
        g.output(first, table)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    first, table = (t.to_numpy() for t in cpu_session.load(g).execute(x))
    assert np.array_equal(first, x[:1]) and np.array_equal(table, np.arange(6).reshape(2, 3))
    buffer = Buffer(DType.bfloat16, (2, 3), CPU())  # MAX's Buffer(dtype, shape, device)
    assert buffer.shape == (2, 3) and buffer.dtype == DType.bfloat16 and buffer.is_host
    assert DType.float4_e2m1fn.size_in_bits == 4 and DType.bfloat16.size_in_bits == 16
    with pytest.raises(TypeError, match="needs a shape"):
        Buffer(DType.int8)
    with pytest.raises(TypeError, match=r"Tensor\(array, device=None\) got 3 positional"):
        Tensor(np.ones(2), CPU(), 3)


def test_a_range_of_int64_extent_has_its_exact_length():
    with Graph("range", input_types=()):
        cpu = DeviceRef.CPU()
        assert ops.range(0, 2**53 + 1, 1, dtype=DType.int64, device=cpu).shape == [2**53 + 1]
        assert ops.range(0, 2**63 - 1, 1, dtype=DType.int64, device=cpu).shape == [2**63 - 1]
        with pytest.raises(ValueError, match="fits int64"):
            ops.range(-(2**63), 2**63 - 1, 1, dtype=DType.int64, device=cpu)


def test_reshapes_of_empty_and_of_algebraic_dims(cpu_session):
    cpu = DeviceRef.CPU()
    with Graph("empty", input_types=[TensorType(DType.float32, [0, "batch"], cpu)]) as g:
        assert g.inputs[0].reshape([0]).shape == [0]
    with Graph("quarters", input_types=[TensorType(DType.float32, ["n", 3], cpu)]) as g:
        g.output(g.inputs[0].reshape([Dim("n") // 4, 4, 3]))
    model = cpu_session.load(g)
    assert model.execute(np.zeros((8, 3), np.float32))[0].to_numpy().shape == (2, 4, 3)
    with pytest.raises(ValueError, match=r"\[6, 3\] cannot be viewed as .* \(\[1, 4, 3\] at this"):
        model.execute(np.zeros((6, 3), np.float32))


def test_a_python_float_past_a_float_dtype_is_inf_as_in_max(cpu_session):
    """MAX: "floats are always promotable to float dtypes"; an array of another dtype that does
    not fit is refused."""
    with Graph("scalar", input_types=[TensorType(DType.float16, [1], DeviceRef.CPU())]) as g:
        g.output(g.inputs[0] / 1e6, ops.constant(1e6, DType.float16))
        with pytest.raises(ValueError, match="overflow float16"):
            ops.constant(np.array([1e6]), DType.float16)
        with pytest.raises(TypeError, match="chunks must be an int"):
            ops.chunk(g.inputs[0], 1.0)
    quotient, big = cpu_session.load(g).execute(np.array([1000.0], np.float16))
    assert quotient.to_numpy().tolist() == [0.0] and np.isinf(big.to_numpy())


def test_where_and_the_argmax_method(cpu_session):
    with Graph("where", input_types=[TensorType(DType.float32, [2, 3], DeviceRef.CPU())]) as g:
        x = g.inputs[0]
        g.output(ops.where(x > 0, x, 0.0), x.argmax(), x.argmax(axis=0))
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, 0.5]], np.float32)
    kept, rows, columns = (t.to_numpy() for t in cpu_session.load(g).execute(x))
    assert np.array_equal(kept, np.where(x > 0, x, 0.0))
    assert rows.ravel().tolist() == [2, 1] and columns.ravel().tolist() == [0, 1, 0]
