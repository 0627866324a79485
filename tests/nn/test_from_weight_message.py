"""`from_weight` given something other than a checkpoint tensor names its type and shape, not
the whole array's values."""

import numpy as np
import pytest

import ember.nn as nn


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (np.zeros((1000, 4)), "got a ndarray of shape (1000, 4), float64"),
        ([[0.0] * 4] * 1000, "got a list"),
    ],
)
def test_from_weight_names_what_it_got(value, described):
    with pytest.raises(TypeError) as error:
        nn.EmbeddingV2.from_weight(value)
    message = str(error.value)
    assert message.endswith(described) and "\n" not in message and len(message) < 120, message
