"""`Module`'s weight names (attribute paths, as MAX's modules name them), state dicts,
`LayerList` / `Sequential`, against numpy for what runs."""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.driver import Buffer
from ember.dtype import DType
from ember.engine import InferenceSession
from ember.graph import DeviceRef, Graph, QuantizationEncoding, TensorType, Weight, ops
from ember.nn.module import StateDictError


class Lin(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = Weight("weight", DType.float32, (out_dim, in_dim), DeviceRef.CPU())

    def __call__(self, x):
        return x @ self.weight.T


class MLP(nn.Module):
    """MAX's `Module` example: three layers whose weights are all called `weight`, and no
    `super().__init__()`."""

    def __init__(self) -> None:
        self.up = Lin(5, 10)
        self.gate = Lin(5, 10)
        self.down = Lin(10, 5)

    def __call__(self, x):
        return self.down(ops.silu(self.gate(x)) + self.up(x))


def silu(x):
    return x / (1 + np.exp(-x))


def test_maxs_module_example_names_weights_by_attribute_path_and_runs():
    model = MLP()
    assert list(model.raw_state_dict()) == ["up.weight", "gate.weight", "down.weight"]
    rng = np.random.default_rng(0)
    arrays = {
        "up.weight": rng.standard_normal((10, 5)).astype(np.float32),
        "gate.weight": rng.standard_normal((10, 5)).astype(np.float32),
        "down.weight": rng.standard_normal((5, 10)).astype(np.float32),
    }
    model.load_state_dict(arrays)
    assert model.up.weight.name == "up.weight"  # the graph's name for it from now on
    with Graph("mlp", input_types=[TensorType(DType.float32, [3, 5])]) as g:
        g.output(model(g.inputs[0]))
    x = rng.standard_normal((3, 5)).astype(np.float32)
    [y] = InferenceSession().load(g, model.state_dict()).execute(x)
    x64 = x.astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in arrays.items()}
    expected = (silu(x64 @ w["gate.weight"].T) + x64 @ w["up.weight"].T) @ w["down.weight"].T
    np.testing.assert_allclose(y.to_numpy(), expected, rtol=1e-5, atol=1e-5)
    # names are not prefixed twice: the same dict loads again
    model.load_state_dict(arrays)
    assert list(model.raw_state_dict()) == list(arrays)


def test_the_same_weights_without_full_names_say_how_to_get_them():
    model = MLP()
    with (
        Graph("mlp", input_types=[TensorType(DType.float32, [3, 5])]) as g,
        pytest.raises(ValueError, match=r"load_state_dict\(\) or state_dict\(\) gives"),
    ):
        model(g.inputs[0])


def test_two_different_weights_with_one_full_name_are_refused():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = Weight("w", DType.float32, [2])
            self.b = Weight("w", DType.float32, [2])

    with pytest.raises(ValueError, match="two weights would be named 'w'"):
        Twice().raw_state_dict()


def test_lists_tuples_and_dicts_of_layers_are_named_by_position_and_key():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = [Lin(2, 2), (Lin(2, 2),)]
            self.named = {"left": Lin(2, 2)}
            self.stack = nn.LayerList([Lin(2, 2), Lin(2, 2)])

    names = list(Holder().raw_state_dict())
    assert names == [
        "blocks.0.weight",
        "blocks.1.0.weight",
        "named.left.weight",
        "stack.0.weight",
        "stack.1.weight",
    ]


def test_a_tied_weight_is_named_once_where_it_is_first_found():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.EmbeddingV2(16, 4, DType.float32, name="tok")
            self.head = nn.LMHead(self.embed)
            self.proj = nn.ColumnParallelLinear(
                4, 16, DType.float32, devices=[DeviceRef.CPU()], tied_weight=self.embed.weight
            )

    model = Tied()
    assert list(model.raw_state_dict()) == ["embed.tok"]
    # alone, the head reads the table by the embedding's name; the tied linear owns nothing
    assert list(model.head.raw_state_dict()) == ["tok"]
    assert model.proj.raw_state_dict() == {}
    assert model.proj.layer_weights == {}
    assert model.embed.layer_weights == {"tok": model.embed.weight}


def test_a_layer_that_omits_its_attribute_name():
    class Group(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj, self.k_proj = Lin(2, 2), Lin(2, 2)

        @property
        def _omit_module_attr_name(self) -> bool:
            return True

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qk = Group()

    assert list(Attention().raw_state_dict()) == ["q_proj.weight", "k_proj.weight"]


def test_strict_loads_name_what_is_missing_and_what_is_unused():
    model = MLP()
    good = {name: np.zeros(w.type.shape.static_dims, np.float32)
            for name, w in model.raw_state_dict().items()}  # fmt: skip
    missing = {k: v for k, v in good.items() if k != "gate.weight"}
    missing["gate.wieght"] = good["gate.weight"]
    with pytest.raises(StateDictError) as caught:
        model.load_state_dict(missing)
    message = str(caught.value)
    assert "no array for weights ['gate.weight']" in message
    assert "did you mean 'gate.wieght'?" in message
    assert "arrays ['gate.wieght'] match no weight" in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, KeyError)
    assert model.up.weight.name == "weight"  # nothing renamed, nothing bound
    with pytest.raises(ValueError, match=r"'up\.weight' has no array"):
        model.state_dict(auto_initialize=False)


def test_a_failed_check_binds_nothing():
    model = MLP()
    shapes = {"up.weight": (10, 5), "gate.weight": (10, 5), "down.weight": (5, 10)}
    arrays = {name: np.ones(shape, np.float32) for name, shape in shapes.items()}
    model.load_state_dict(arrays)
    bad = dict(arrays, **{"down.weight": np.ones((5, 9), np.float32)})
    bad["up.weight"] = np.full((10, 5), 7, np.float32)
    with pytest.raises(ValueError, match=r"'down.weight': expected shape \(5, 10\)"):
        model.load_state_dict(bad)
    assert (model.state_dict()["up.weight"] == 1).all()


def test_non_strict_loads_leave_weights_unbound_and_state_dict_fills_zeros():
    model = MLP()
    up = np.ones((10, 5), np.float32)
    model.load_state_dict({"up.weight": up, "other": np.zeros(3)}, strict=False)
    with pytest.raises(ValueError, match=r"'gate\.weight' has no array"):
        model.state_dict(auto_initialize=False)
    with pytest.warns(UserWarning, match=r"\['gate\.weight', 'down\.weight'\] were never given"):
        arrays = model.state_dict()
    assert arrays["up.weight"] is up
    assert arrays["down.weight"].shape == (5, 10) and not arrays["down.weight"].to_numpy().any()
    assert isinstance(arrays["down.weight"], Buffer)  # as MAX's: Buffer.zeros
    assert arrays["down.weight"].dtype is DType.float32


def test_a_wrong_dtype_is_the_error_class_of_maxs_and_of_embers_earlier_one():
    with pytest.raises(ValueError, match="expected dtype float32, got float64") as caught:
        Lin(2, 2).load_state_dict({"weight": np.zeros((2, 2), np.float64)})
    assert isinstance(caught.value, TypeError)


def test_load_state_dict_options():
    layer = Lin(4, 4)
    table = np.zeros(17, np.float32)[1:].reshape(4, 4)  # 4 bytes past a 64-byte boundary
    assert table.ctypes.data % 8
    with pytest.raises(ValueError, match="not a multiple of weight_alignment=8 bytes"):
        layer.load_state_dict({"weight": table}, weight_alignment=8)
    layer.load_state_dict({"weight": table}, weight_alignment=4)
    assert layer.weight.align == 4  # as MAX's: the weight keeps it, and load checks it
    for bad in (0, -8, 2.0, True, 12):
        with pytest.raises(ValueError, match="weight_alignment must be a positive int"):
            layer.load_state_dict({"weight": table}, weight_alignment=bad)
    layer.load_state_dict({"weight": table}, override_quantization_encoding=True)  # dense: as is


def test_sequential_chains_its_layers_and_nests_under_a_parent():
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential([Lin(3, 4), Lin(4, 2)])

    model = Model()
    assert list(model.raw_state_dict()) == ["layers.0.weight", "layers.1.weight"]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4)).astype(np.float32)
    model.load_state_dict({"layers.0.weight": a, "layers.1.weight": b})
    with Graph("seq", input_types=[TensorType(DType.float32, [5, 3])]) as g:
        g.output(model.layers(g.inputs[0]))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    [y] = InferenceSession().load(g, model.state_dict()).execute(x)
    expected = x.astype(np.float64) @ a.T.astype(np.float64) @ b.T.astype(np.float64)
    np.testing.assert_allclose(y.to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_layer_list_is_a_list():
    first, second, third = Lin(2, 2), Lin(2, 2), Lin(2, 2)
    layers = nn.LayerList([first])
    layers.append(second)
    layers.insert(0, third)
    layers.extend([Lin(2, 2)])
    assert len(layers) == 4 and layers[0] is third and list(layers)[1] is first
    layers[3] = second
    del layers[2]
    assert [id(x) for x in layers] == [id(third), id(first), id(second)]
    assert layers.sublayers == {"0": third, "1": first, "2": second}
    with pytest.raises(ValueError, match="LayerList has no layers to call"):
        nn.LayerList([])(1)


def test_replace_module_and_recursive_named_layers():
    model = MLP()
    new = Lin(5, 10)
    model.replace_module("up", new)
    assert model.up is new and model.sublayers["up"] is new
    with pytest.raises(KeyError, match="MLP has no sublayer 'missing'"):
        model.replace_module("missing", Lin(5, 10))
    names = [name for name, _ in nn.recursive_named_layers(model, "model")]
    assert names == ["model", "model.up", "model.gate", "model.down"]


def test_a_collections_bags_are_named_by_position():
    bags = [nn.EmbeddingBag(8, 4, DType.float32, name=f"t{i}") for i in range(2)]
    assert list(nn.EmbeddingBagCollection(bags).raw_state_dict()) == ["bags.0.t0", "bags.1.t1"]


def test_errors_name_a_weight_by_its_full_name():
    model = nn.Sequential([Lin(2, 2), Lin(2, 2)])
    arrays = {"0.weight": np.ones((2, 2), np.float32), "1.weight": np.ones((2, 3), np.float32)}
    with pytest.raises(ValueError, match=r"weight '1\.weight': expected shape \(2, 2\)"):
        model.load_state_dict(arrays)
    with pytest.raises(TypeError, match="takes a mapping of names to arrays, got a list"):
        model.load_state_dict([1, 2])


def test_replace_module_takes_any_sublayer_it_lists():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = [Lin(2, 2)]
            self.named = {"left": Lin(2, 2)}
            self.frozen = (Lin(2, 2),)

    holder, new = Holder(), Lin(2, 2)
    holder.replace_module("blocks.0", new)
    holder.replace_module("named.left", new)
    assert holder.blocks[0] is new and holder.named["left"] is new
    with pytest.raises(TypeError, match="is in a tuple"):
        holder.replace_module("frozen.0", new)
    with pytest.raises(TypeError, match="puts a Module in place, got int"):
        holder.replace_module("blocks.0", 5)
    stack = nn.Sequential([Lin(2, 2), Lin(2, 2)])
    stack.replace_module("1", new)
    assert stack[1] is new


def test_a_parents_state_dict_has_the_arrays_bound_through_a_child():
    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.child = MLP()

    parent = Parent()
    up = np.full((10, 5), 3, np.float32)
    parent.child.load_state_dict({"up.weight": up}, strict=False)
    with pytest.warns(UserWarning, match="never given an array"):
        arrays = parent.state_dict()
    assert arrays["child.up.weight"] is up
    assert not arrays["child.gate.weight"].to_numpy().any()  # never bound: zeros


def test_state_dict_has_each_weights_latest_array_and_no_stale_one():
    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = Lin(2, 2)

    parent = Parent()
    with pytest.warns(UserWarning, match="never given an array"):
        assert not parent.state_dict()["a.weight"].to_numpy().any()  # zeros, not kept
    ones = np.ones((2, 2), np.float32)
    parent.a.load_state_dict({"weight": ones})
    assert parent.state_dict()["a.weight"] is ones
    twos = np.full((2, 2), 2, np.float32)
    parent.load_state_dict({"a.weight": twos})
    assert parent.state_dict()["a.weight"] is twos
    parent.replace_module("a", Lin(3, 3))  # a new weight: the old array is not its
    with pytest.raises(ValueError, match=r"'a\.weight' has no array"):
        parent.state_dict(auto_initialize=False)


def test_an_override_lets_a_tensor_re_declare_its_tables_encoding(session):
    """A Q4_K_M file's Q6_K token table where Q4_K was declared, as MAX's loaders allow."""
    from ember.quant import FORMATS
    from ember.weights import WeightData

    values = np.random.default_rng(0).standard_normal((8, 256)).astype(np.float32)
    blocks = FORMATS["q6_k"].quantize(values)
    data = WeightData(blocks, "weight", DType.uint8, (8, 256), QuantizationEncoding.Q6_K)
    layer = nn.EmbeddingV2(8, 144, DType.uint8, quantization_encoding=QuantizationEncoding.Q4_K)
    with pytest.raises(ValueError, match=r"declared Q4_K blocks.*holds Q6_K blocks"):
        layer.load_state_dict({"weight": data})
    layer.load_state_dict({"weight": data}, override_quantization_encoding=True)
    assert layer.quantization_encoding is QuantizationEncoding.Q6_K and layer.hidden_dim == 210
    with Graph("g", input_types=[TensorType(DType.int64, [3], DeviceRef.CPU())]) as g:
        g.output(layer(g.inputs[0]))
    got = session.load(g, layer.state_dict()).execute(np.array([7, 0, 3]))[0].to_numpy()
    np.testing.assert_array_equal(got, FORMATS["q6_k"].dequantize(blocks)[[7, 0, 3]])


def test_an_override_keeps_the_declared_values():
    from ember.quant import FORMATS
    from ember.weights import WeightData

    blocks = FORMATS["q6_k"].quantize(np.zeros((8, 512), np.float32))
    data = WeightData(blocks, "weight", DType.uint8, (8, 512), QuantizationEncoding.Q6_K)
    layer = nn.EmbeddingV2(8, 144, DType.uint8, quantization_encoding=QuantizationEncoding.Q4_K)
    with pytest.raises(ValueError, match=r"declares \(8, 256\) values as Q4_K.*\(8, 512\) as Q6_K"):
        layer.load_state_dict({"weight": data}, override_quantization_encoding=True)
    assert layer.quantization_encoding is QuantizationEncoding.Q4_K  # nothing changed


def test_a_weight_re_declared_after_its_graph_was_built_is_refused_at_load(session):
    """Q4_0 rows are Q4_K's bytes: the graph built for Q4_K would decode them to garbage."""
    from ember.quant import FORMATS
    from ember.weights import WeightData

    values = np.random.default_rng(1).standard_normal((4, 256)).astype(np.float32)
    data = WeightData(FORMATS["q4_0"].quantize(values), "weight", DType.uint8, (4, 256),
                      QuantizationEncoding.Q4_0)  # fmt: skip
    layer = nn.EmbeddingV2(4, 144, DType.uint8, quantization_encoding=QuantizationEncoding.Q4_K)
    graph = Graph("g", layer, input_types=[TensorType(DType.int64, [2], DeviceRef.CPU())])
    layer.load_state_dict({"weight": data}, override_quantization_encoding=True)
    with pytest.raises(ValueError, match=r"re-declared .* after graph 'g' was built"):
        session.load(graph, layer.state_dict())


def test_a_refused_load_leaves_no_alignment_behind():
    layer = Lin(4, 4)
    table = np.zeros((4, 4), np.float32)
    with pytest.raises(StateDictError):
        layer.load_state_dict({"weight": table, "extra": table}, weight_alignment=4)
    assert layer.weight.align is None
