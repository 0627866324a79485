"""`GGUFFile.metadata_array`: an array the index skipped, read on demand as gguf wrote it; a
flaw in its items is a CheckpointError naming the key."""

import gguf
import numpy as np
import pytest

from ember.weights import CheckpointError
from ember.weights.gguf import read_gguf


def write(path, **arrays):
    writer = gguf.GGUFWriter(str(path), "test")
    for key, values in arrays.items():
        writer.add_array(key, values)
    writer.add_tensor("t", np.zeros((2, 2), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return read_gguf(path)


def test_arrays_read_back_as_written(tmp_path):
    tokens = ["<s>", "▁héllo", "", "東京", "a b"]
    file = write(tmp_path / "m.gguf", tokens=tokens, scores=[0.5, -1.25], types=[1, 3, 6])
    assert file.metadata["tokens"] == ("array", 8, 5)
    assert file.metadata_array("tokens") == tokens
    scores, types = file.metadata_array("scores"), file.metadata_array("types")
    assert scores.dtype == np.float32 and scores.tolist() == [0.5, -1.25]
    assert types.dtype == np.int32 and types.tolist() == [1, 3, 6]
    with pytest.raises(KeyError, match=r"no array metadata 'general\.architecture'"):
        file.metadata_array("general.architecture")


def test_an_item_that_is_not_utf8_names_the_key(tmp_path):
    file = write(tmp_path / "m.gguf", tokens=[b"ok", b"\xff\xfe"])
    with pytest.raises(CheckpointError, match="an item of 'tokens' is not valid UTF-8"):
        file.metadata_array("tokens")
