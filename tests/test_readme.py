"""The README's examples run as written, and what it says of the command line is what the
command does."""

import pathlib
import re
import warnings

import gguf
import numpy as np

from ember.quant import FORMATS

README = pathlib.Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    np.testing.assert_array_equal(namespace["vectors"], namespace["table"][np.array([[1, 2, 3]])])
    logits = namespace["vectors"][0].astype(np.float64) @ namespace["table"].T.astype(np.float64)
    ids, values = namespace["ids"], namespace["values"]  # the table is random: near-ties may
    np.testing.assert_allclose(values, np.take_along_axis(logits, ids, 1), rtol=1e-5)  # swap
    fifth = np.sort(logits, axis=1)[:, -5]
    assert (np.diff(values, axis=1) <= 0).all() and (values[:, -1] >= fifth * (1 - 1e-5)).all()
    _check_sampling(namespace)
    items, categories = namespace["tables"]["items"], namespace["tables"]["categories"]
    want = [  # sample 0, then 1: item, history (sums of items), category (mean of categories)
        [items[[4, 9]].sum(0), items[[1, 2, 3]].sum(0), categories[[7]].mean(0)],
        [items[[9]].sum(0), np.zeros(16, np.float32), categories[[0, 5]].mean(0)],
    ]
    np.testing.assert_allclose(namespace["pooled"], [np.concat(w) for w in want], rtol=1e-6)
    assert namespace["collection"].columns == {
        "item": (0, 16),
        "history": (16, 32),
        "category": (32, 40),
    }


def _check_sampling(namespace):
    """The README's sampler: top-40 candidates, softmax at temperature 0.8, the likeliest
    whose mass before them is under 0.9 kept, renormalized; a drawn id among those kept."""
    p, candidates = namespace["p"], namespace["candidates"]
    logits = namespace["hidden"].astype(np.float64) @ namespace["table"].T.astype(np.float64)
    assert p.shape == candidates.shape == (3, 40)
    chosen = np.take_along_axis(logits, candidates, 1)
    assert (np.diff(chosen, axis=1) <= 1e-5 * np.abs(chosen[:, :1])).all()  # largest first
    scaled = np.exp((chosen - chosen[:, :1]) / 0.8)
    probs = scaled / scaled.sum(axis=1, keepdims=True)
    ahead = np.cumsum(probs, axis=1) - probs
    kept = np.where(ahead < 0.9, probs, 0.0)
    clear = (np.abs(ahead - 0.9) > 1e-4).all(axis=1)  # rows with no candidate on the edge
    assert clear.any() and ((p > 0).sum(axis=1) > 1).all()  # several kept: top-p at work
    np.testing.assert_allclose(p[clear], (kept / kept.sum(1, keepdims=True))[clear], atol=1e-5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    for row_p, row_ids, drawn in zip(p, candidates, namespace["next_ids"], strict=True):
        assert drawn in row_ids[row_p > 0].tolist()


def test_readme_checkpoint_example_runs_and_binds_quietly(tmp_path, monkeypatch):
    """The checkpoint block, on a model.gguf with a Q4_K table and a tensor the graph does not
    read, then the binding its comments describe."""
    [block] = [b for b in _py_blocks() if "ember.weights.load(" in b]
    values = _write_model_gguf(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    from ember.dtype import DType
    from ember.engine import InferenceSession
    from ember.graph import Graph, TensorType

    with Graph("embed", input_types=[TensorType(DType.int64, ["n"])]) as graph:
        graph.output(namespace["layer"](graph.inputs[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = InferenceSession().load(graph, weights_registry=namespace["weights"])
    want = FORMATS["q4_k"].dequantize(FORMATS["q4_k"].quantize(values))[[5, 0]]
    np.testing.assert_array_equal(model.execute(np.array([5, 0]))[0].to_numpy(), want)


def test_readme_max_loader_example_runs(tmp_path, monkeypatch):
    [block] = [b for b in _py_blocks() if "GGUFWeights(" in b]
    values = _write_model_gguf(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert list(namespace["weights"].allocated_weights) == ["token_embd.weight"]
    want = FORMATS["q4_k"].dequantize(FORMATS["q4_k"].quantize(values))[[5, 0]]
    got = namespace["model"].execute(np.array([5, 0]))[0].to_numpy()
    np.testing.assert_array_equal(got, want)


def _py_blocks() -> list[str]:
    return re.findall(r"```py\n(.*?)```", README.read_text(), re.S)


def _write_model_gguf(folder: pathlib.Path) -> np.ndarray:
    """model.gguf: a Q4_K table of these values and a tensor the graphs do not read."""
    values = np.random.default_rng(0).standard_normal((16, 256)).astype(np.float32)
    writer = gguf.GGUFWriter(str(folder / "model.gguf"), "test")
    q4k = gguf.GGMLQuantizationType(FORMATS["q4_k"].ggml_type)
    writer.add_tensor("token_embd.weight", FORMATS["q4_k"].quantize(values), raw_dtype=q4k)
    writer.add_tensor("output_norm.weight", values[0].copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return values


def test_readme_states_the_commands_exit_statuses():
    from ember.cli import _CLOSED_PIPE_STATUS

    text = " ".join(README.read_text().split())
    assert "is one line on stderr and exit status 1" in text
    assert "usage errors: the usage text, a line naming the argument, and exit status 2" in text
    assert f"with status {_CLOSED_PIPE_STATUS} as for SIGPIPE" in text
