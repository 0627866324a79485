"""The backend seam: every op lowered (or declined with a reason) on every backend, how a
session picks its backend, and the seed's GPU examples executed on XLA devices."""

from __future__ import annotations

import numpy as np
import pytest

import ember.nn as nn
from ember.driver import CPU, Accelerator, Tensor, accelerator_count
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.engine.backends.native import NativeBackend
from ember.graph import DeviceRef, Graph, TensorType, all_ops, ops

jax = pytest.importorskip("jax")
from ember.engine.backends.xla import XlaBackend  # noqa: E402

BACKEND_CLASSES = [NativeBackend, XlaBackend]


@pytest.mark.parametrize("backend_class", BACKEND_CLASSES, ids=lambda c: c.name)
@pytest.mark.parametrize("op", [op for op in all_ops() if not op.source], ids=str)
def test_every_op_is_lowered_or_declined_with_a_reason(backend_class, op):
    declined = backend_class.unsupported.get(op)
    assert op in backend_class.lowerings or (declined and declined.strip()), (
        f"{backend_class.name} has no lowering for {op} and gives no reason"
    )


def test_auto_picks_native_for_the_host_and_xla_when_asked():
    assert InferenceSession().backend == "native"
    assert InferenceSession(devices=[CPU(), CPU(1)]).backend == "native"
    assert InferenceSession(backend="xla").backend == "xla"
    assert InferenceSession(backend="xla").num_threads is None
    if accelerator_count():
        assert InferenceSession(devices=[Accelerator()]).backend == "xla"


def test_native_for_several_devices_in_a_job_of_several_processes_is_an_error(monkeypatch):
    """Each process would compute every device's share itself: the job's devices are shared."""
    import ember.engine.backends as backends

    monkeypatch.setattr(backends, "_in_job", lambda: True)
    with pytest.raises(ValueError, match="backend='native' runs every device in this one process"):
        InferenceSession(devices=[CPU(0), CPU(1)], backend="native")
    assert InferenceSession(devices=[CPU(0)], backend="native").backend == "native"
    assert InferenceSession(devices=[CPU(0), CPU(1)]).backend == "xla"


def test_bad_backend_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'native', 'xla'\)"):
        InferenceSession(backend="cuda")
    with pytest.raises(ValueError, match="num_threads sets the native backend"):
        InferenceSession(backend="xla", num_threads=2)
    with pytest.raises(
        ValueError, match=r"cpu:99 is not a device of the xla backend.*it has cpu:0"
    ):
        InferenceSession(devices=[CPU(99)], backend="xla")


def test_a_device_no_backend_has_names_the_devices_that_exist():
    emb = nn.EmbeddingV2(10, 4, DType.float32, DeviceRef.CPU(99), name="t")
    with Graph("far", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    where = r"on cpu:99 \(its .*\), which the xla backend.*it has cpu:0, cpu:1"
    with pytest.raises(ValueError, match=where):
        InferenceSession(backend="xla").load(g, {"t": np.zeros((10, 4), np.float32)})


def _device(index: int, of: int = 1) -> DeviceRef:
    """The seed's GPU(i) where JAX sees `of` GPUs; a CPU device in its place elsewhere (one
    collective never mixes the two)."""
    return DeviceRef.GPU(index) if accelerator_count() >= of else DeviceRef.CPU(index)


def _xla_session() -> InferenceSession:
    accelerators = [Accelerator(i) for i in range(accelerator_count())]
    return InferenceSession(devices=[CPU(), *accelerators], backend="xla")


def test_seed_embedding_example_executes_on_xla():
    input_data = np.random.randint(0, 10000, (4, 16), dtype=np.int32)
    with Graph(name="embedding_example") as graph:
        input_indices = ops.constant(input_data, dtype=DType.int32)
        embedding = nn.EmbeddingV2(
            vocab_size=10000,
            hidden_dim=256,
            dtype=DType.float32,
            device=_device(0),
            name="token_embeddings",
        )
        graph.output(embedding(input_indices))
    table = np.random.default_rng(0).standard_normal((10000, 256)).astype(np.float32)
    model = _xla_session().load(graph, {"token_embeddings": table})
    [result] = model.execute()
    assert isinstance(result, Tensor) and result.shape == (4, 16, 256)
    assert isinstance(result._array, jax.Array)  # the device array itself, not a host copy
    np.testing.assert_array_equal(result.to_numpy(), table[input_data])
    if _device(0).is_cpu():  # DLPack hands the device array on; numpy reads host memory only
        np.testing.assert_array_equal(np.from_dlpack(result), table[input_data])


def test_seed_vocab_parallel_example_executes_on_xla():
    embedding_layer = nn.VocabParallelEmbedding(
        vocab_size=1000,
        hidden_dim=256,
        dtype=DType.float32,
        device=[_device(0, of=2), _device(1, of=2)],
        name="embeddings",
    )
    with Graph("vp", input_types=[TensorType(DType.int64, ["batch", "n"])]) as g:
        g.output(*embedding_layer(g.inputs[0]))
    table = np.random.default_rng(1).standard_normal((1000, 256)).astype(np.float32)
    ids = np.array([[0, 499, 500, 999], [3, 3, 700, 1]], np.int64)
    outputs = _xla_session().load(g, {"embeddings": table}).execute(ids)
    assert [o.device for o in outputs] == [
        CPU(d.id) if d.is_cpu() else Accelerator(d.id) for d in (_device(0, of=2), _device(1, of=2))
    ]
    for out in outputs:
        np.testing.assert_array_equal(out.to_numpy(), table[ids])


def test_xla_results_live_on_their_devices():
    layer = nn.VocabParallelEmbedding(
        10, 4, DType.float32, devices=[DeviceRef.CPU(i) for i in range(3)], name="t"
    )
    with Graph("vp", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(*layer(g.inputs[0]))
    outputs = InferenceSession(backend="xla").load(g, {"t": np.eye(10, 4, dtype=np.float32)})
    results = outputs.execute(np.array([9, 0], np.int32))
    assert [r._array.devices() for r in results] == [{jax.devices("cpu")[i]} for i in range(3)]


def test_xla_takes_its_own_device_arrays_as_inputs():
    emb = nn.EmbeddingV2(10, 4, DType.float32, name="t")
    with Graph("g", input_types=[TensorType(DType.int32, ["n"])]) as g:
        g.output(emb(g.inputs[0]))
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = InferenceSession(backend="xla").load(g, {"t": table})
    ids = jax.numpy.asarray([7, 2], jax.numpy.int32)
    np.testing.assert_array_equal(model.execute(ids)[0].to_numpy(), table[[7, 2]])
