"""Devices and Tensors: numpy and DLPack share memory, for every dtype."""

import sys
import warnings

import ml_dtypes
import numpy as np
import pytest

from ember import dlpack
from ember.driver import CPU, Accelerator, Buffer, Tensor, accelerator_count
from ember.dtype import DType


def test_an_accelerator_jax_does_not_see_is_a_clear_error():
    count = accelerator_count()
    assert CPU(1).id == 1
    with pytest.raises(ValueError, match=rf"no accelerator {count}: JAX sees {count} .*CPU\(\)"):
        Accelerator(count)


def test_tensor_shares_memory_with_numpy():
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    tensor = Tensor.from_numpy(array)
    assert tensor.to_numpy() is array and np.shares_memory(np.from_dlpack(tensor), array)
    assert Tensor.from_dlpack(array).to_numpy().ctypes.data == array.ctypes.data
    with pytest.raises(TypeError, match="complex64 has no DType"):
        Tensor(np.zeros(2, np.complex64))


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(ml_dtypes.bfloat16, 4), (ml_dtypes.float8_e4m3fn, 10), (ml_dtypes.float8_e5m2, 12)],
)
def test_narrow_floats_export_their_dlpack_type(dtype, code):
    array = np.arange(12, dtype=np.float32).astype(dtype).reshape(3, 4)[:, ::2]
    owner = array.base  # views share their owner, which is what the capsule must keep alive
    baseline = sys.getrefcount(owner)
    capsule = Tensor.from_numpy(array).__dlpack__()
    t = dlpack.managed_tensor(capsule)
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == (code, 8 * array.itemsize, 1)
    assert t.data == array.ctypes.data and t.ndim == 2
    assert [t.shape[i] for i in range(2)] == [3, 2] and [t.strides[i] for i in range(2)] == [4, 2]
    assert sys.getrefcount(owner) > baseline  # the capsule keeps the memory alive
    del capsule, t
    assert sys.getrefcount(owner) == baseline  # and an unconsumed one lets it go


def test_a_consumer_that_rejects_the_type_fails_cleanly():
    array = np.zeros((2, 3), ml_dtypes.bfloat16)
    baseline = sys.getrefcount(array)
    with pytest.raises(RuntimeError, match="Unsupported dtype"):
        np.from_dlpack(Tensor.from_numpy(array))
    assert sys.getrefcount(array) == baseline


def test_torch_reads_bfloat16_without_a_copy():
    torch = pytest.importorskip("torch")
    array = np.linspace(-2, 2, 8, dtype=np.float32).astype(ml_dtypes.bfloat16)
    shared = torch.from_dlpack(Tensor.from_numpy(array))
    assert shared.dtype == torch.bfloat16 and shared.data_ptr() == array.ctypes.data
    assert torch.equal(shared.float(), torch.from_numpy(array.astype(np.float32)))


def test_narrow_floats_import_through_dlpack():
    array = np.arange(6, dtype=np.float32).astype(ml_dtypes.bfloat16)

    class Producer:  # exports bfloat16 as torch does
        def __dlpack__(self, **kwargs):
            return Tensor.from_numpy(array).__dlpack__()

        def __dlpack_device__(self):
            return (1, 0)

    imported = Tensor.from_dlpack(Producer()).to_numpy()
    assert imported.dtype == ml_dtypes.bfloat16 and np.shares_memory(imported, array)
    with pytest.raises(TypeError, match="not a DLPack producer"):
        Tensor.from_dlpack([1, 2])


def test_torch_bfloat16_weights_and_ids():
    torch = pytest.importorskip("torch")
    weights = torch.arange(12, dtype=torch.float32).reshape(4, 3).to(torch.bfloat16)
    imported = Tensor.from_dlpack(weights).to_numpy()
    assert imported.ctypes.data == weights.data_ptr()
    np.testing.assert_array_equal(imported.astype(np.float32), weights.float().numpy())


def test_array_protocol_copies_only_when_allowed():
    tensor = Tensor.from_numpy(np.arange(3, dtype=np.int32))
    assert np.asarray(tensor) is tensor.to_numpy()
    assert np.asarray(tensor, dtype=np.int64).dtype == np.int64
    with pytest.raises(ValueError, match="without a copy"):
        tensor.__array__(np.int64, copy=False)


def test_buffer_as_max_26_names_it():
    from ember.driver import Buffer

    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    buffer = Buffer.from_dlpack(array).to(CPU())
    assert buffer.to_numpy() is array or np.shares_memory(buffer.to_numpy(), array)
    assert buffer.shape == (2, 3) and buffer.device == CPU()
    moved = buffer.to(CPU(1))
    assert moved.device == CPU(1) and np.shares_memory(moved.to_numpy(), array)
    zeros = Buffer.zeros((2, 2), DType.bfloat16)
    assert zeros.dtype is DType.bfloat16 and not zeros.to_numpy().astype(np.float32).any()
    with pytest.raises(TypeError, match=r"expected an ember\.driver device"):
        buffer.to("gpu")


class _Producer:
    """A bare DLPack producer (as torch is) around a numpy array, speaking DLPack 1.x."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return Tensor(self.array).__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return Tensor(self.array).__dlpack_device__()


def test_a_writeable_bfloat16_producer_reads_back_writeable():
    array = np.zeros(4, ml_dtypes.bfloat16)
    view = dlpack.from_dlpack(_Producer(array))
    assert view.flags.writeable and np.shares_memory(view, array)
    frozen = np.zeros(4, ml_dtypes.bfloat16)
    frozen.flags.writeable = False
    assert not dlpack.from_dlpack(_Producer(frozen)).flags.writeable


def test_out_may_be_a_bfloat16_dlpack_tensor_and_jax_arrays_go_in():
    jnp = pytest.importorskip("jax.numpy")
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType, ops

    with Graph(
        "g", input_types=[TensorType(DType.bfloat16, [5, 3]), TensorType(DType.int32, ["n"])]
    ) as g:
        g.output(ops.gather(g.inputs[0], g.inputs[1], 0))
    model = InferenceSession().load(g)
    table = jnp.arange(15, dtype=jnp.bfloat16).reshape(5, 3)  # a real framework's bfloat16
    target = np.zeros((2, 3), ml_dtypes.bfloat16)
    model.execute(table, np.array([4, 1], np.int32), out=_Producer(target))
    np.testing.assert_array_equal(target, np.asarray(table)[[4, 1]])


def test_buffer_by_keywords_as_max_documents_it():
    from ember.driver import Buffer

    buffer = Buffer(shape=[2, 3], dtype=DType.bfloat16, device=CPU(1))
    assert buffer.shape == (2, 3) and buffer.dtype is DType.bfloat16 and buffer.is_host
    assert buffer.device == CPU(1) and not buffer.to_numpy().astype(np.float32).any()
    with pytest.raises(TypeError, match="array, or a dtype and a shape"):
        Buffer()
    with pytest.raises(TypeError, match="dtype twice"):
        Buffer(DType.int8, [2], dtype=DType.int8)
    with pytest.raises(TypeError, match="takes no dtype"):
        Buffer(np.zeros(2), dtype=DType.int8)


def test_max_s_buffer_helpers_index_write_and_read_scalars():
    """MAX's `Buffer` API beside numpy's: slices share memory, ints alone give rank 0,
    writes land in place, and scalars come back as Python values."""
    array = np.arange(20, dtype=np.float32).reshape(2, 10)
    buffer = Buffer.from_numpy(array)
    head = buffer[0, :5]
    assert head.shape == (5,) and np.shares_memory(head.to_numpy(), array)
    one = buffer[1, 2]
    assert one.shape == () and one.item() == 12.0 and type(one.item()) is float
    buffer[0] = 5.0
    buffer[1, :2] = Buffer.from_numpy(np.array([-1, -2], np.float32))
    assert array[0].tolist() == [5.0] * 10 and array[1, :2].tolist() == [-1.0, -2.0]
    assert buffer.num_elements == 20 and buffer.element_size == 4
    assert Buffer.scalar(3, DType.int32).item() == 3
    assert Buffer.scalar(1.5, DType.bfloat16).item() == 1.5
    assert Buffer.scalar(True, DType.bool).item() is True
    assert Buffer.scalar(7, DType.int64).num_elements == 1
    with pytest.raises(ValueError, match="holds 20 elements, not one"):
        buffer.item()
    for value, dtype in ((300, DType.uint8), (np.int64(300), DType.int8), (3.7, DType.int32),
                         (2**64, DType.uint64), (-1, DType.uint8), (2, DType.bool)):  # fmt: skip
        with pytest.raises(OverflowError, match="is not a"):
            Buffer.scalar(value, dtype)
    assert Buffer.scalar(2**64 - 1, DType.uint64).item() == 2**64 - 1
    for not_a_number in ("1", None):
        with pytest.raises(TypeError, match="takes a number"):
            Buffer.scalar(not_a_number, DType.int32)
    assert Buffer.scalar(3.0, DType.int32).item() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Buffer.scalar(1e40, DType.float32).item() == float("inf")


def test_max_s_buffer_copies_views_and_layout():
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    buffer = Buffer.from_numpy(array)
    copy = buffer.copy()
    copy[0, 0] = 99
    assert array[0, 0] == 0 and copy.to_numpy()[0, 0] == 99 and copy.device == buffer.device
    strided = buffer[:, ::2]
    assert not strided.is_contiguous and buffer.is_contiguous
    packed = strided.contiguous()
    assert packed.is_contiguous and packed.to_numpy().tolist() == array[:, ::2].tolist()
    assert buffer.view(DType.uint8).shape == (3, 16)
    assert buffer.view(DType.float32, [12]).to_numpy().tobytes() == array.tobytes()
    target = Buffer.zeros((3, 4), DType.int32)
    target.inplace_copy_from(buffer)
    assert target.to_numpy().tolist() == array.tolist()
    with pytest.raises(ValueError, match=r"int32 \(4,\) into int32 \(3, 4\)"):
        target.inplace_copy_from(np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="the dtype and shape must be the same"):
        target.inplace_copy_from(np.full((3, 4), 1e10))  # never a silent cast


def test_buffer_takes_numpy_index_arrays_and_xla_results_take_writes():
    buffer = Buffer.from_numpy(np.arange(6, dtype=np.float32))
    assert buffer[np.array([0, 2])].to_numpy().tolist() == [0.0, 2.0]
    assert buffer[np.arange(6) > 3].to_numpy().tolist() == [4.0, 5.0]
    pytest.importorskip("jax")
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    with Graph("twice", input_types=[TensorType(DType.float32, [2])]) as g:
        g.output(g.inputs[0] * 2)
    result = InferenceSession(backend="xla").load(g).execute(np.ones(2, np.float32))[0]
    assert result.is_host
    result[0] = 5.0  # a JAX array on a CPU device: the tensor takes a host copy to write
    assert result.to_numpy().tolist() == [5.0, 2.0]
    assert result.view(DType.int32).shape == (2,)
    again = InferenceSession(backend="xla").load(g).execute(np.ones(2, np.float32))[0]
    view = again[1:]
    view[0] = 7.0  # a view writes through, as numpy's
    assert again.to_numpy().tolist() == [2.0, 7.0]
    with pytest.raises(IndexError):
        again[5]  # numpy's bounds, not JAX's clamping
