"""torch's row gathers, on a zero-copy view of the same table."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from embedding_tables import THREADS
from harness import cycling

from contenders.contender import Contender


def torch_contenders(table: np.ndarray) -> list[Contender]:
    """``F.embedding`` (fresh output each call) and ``index_select(out=)`` on a zero-copy view."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    if table.dtype == ml_dtypes.bfloat16:
        weight = torch.from_numpy(table.view(np.int16)).view(torch.bfloat16)
    else:
        weight = torch.from_numpy(table)

    def as_numpy(out):
        return out.view(torch.int16).numpy() if out.dtype == torch.bfloat16 else out.numpy()

    def embedding(pool):
        return cycling(lambda ids: F.embedding(ids, weight), [torch.from_numpy(x) for x in pool])

    def index_select(pool):
        buf = torch.empty((pool[0].size, weight.shape[1]), dtype=weight.dtype)
        return cycling(
            lambda ids: torch.index_select(weight, 0, ids, out=buf),
            [torch.from_numpy(x) for x in pool],
        )

    return [
        Contender("torch embedding", embedding, as_numpy),
        Contender("torch index_select(out=)", index_select, as_numpy),
    ]
