"""Graph operations: each is a type rule that adds one node; backends execute them."""

from . import allreduce, random, reducescatter
from .allgather import allgather
from .argmax import argmax
from .argmin import argmin
from .argsort import argsort
from .axis import AxisError
from .band_part import band_part
from .broadcast_to import broadcast_to
from .call import call
from .cast import cast
from .check_indices import check_indices
from .comparison import equal, greater, greater_equal, less, less_equal, not_equal
from .concat import concat
from .cond import cond
from .constant import TensorValueLike, as_value, constant, constant_external
from .cumsum import cumsum
from .debug_print import print
from .dequantize import dequantize
from .distributed_broadcast import distributed_broadcast
from .distributed_scatter import distributed_scatter
from .elementwise import abs, add, div, floor_div, max, min, mod, mul, negate, pow, sub
from .embedding_bag import embedding_bag
from .embedding_bag_collection import embedding_bag_collection
from .gather import gather
from .gather_nd import gather_nd
from .layer_norm import layer_norm
from .logical import logical_and, logical_not, logical_or, logical_xor
from .logsumexp import logsumexp
from .masked_scatter import masked_scatter
from .matmul import matmul
from .nonzero import nonzero
from .pad import pad
from .qmatmul import qmatmul
from .range import range
from .rearrange import as_interleaved_complex, chunk, flatten, outer, split, tile
from .rebind import rebind
from .reduction import reduce_mean as mean
from .reduction import reduce_prod as prod
from .reduction import reduce_sum as sum
from .repeat_interleave import repeat_interleave
from .reshape import reshape
from .rms_norm import rms_norm
from .scatter import (
    scatter,
    scatter_add,
    scatter_max,
    scatter_min,
    scatter_mul,
    scatter_nd,
    scatter_nd_add,
    scatter_nd_max,
    scatter_nd_min,
    scatter_nd_mul,
)
from .select import select, where
from .shape_to_tensor import shape_to_tensor
from .shard_and_stack import shard_and_stack
from .sharded_embedding_bag_collection import sharded_embedding_bag_collection
from .sharded_gather import sharded_gather
from .sharded_logsumexp import sharded_logsumexp
from .sharded_top_k import sharded_top_k
from .slice import slice_tensor
from .softmax import logsoftmax, softmax
from .squeeze import squeeze, unsqueeze
from .stack import stack
from .top_k import bottom_k, top_k
from .transfer import transfer_to
from .transpose import permute, transpose
from .unary import (
    acos,
    atanh,
    ceil,
    cos,
    erf,
    exp,
    floor,
    gelu,
    is_inf,
    is_nan,
    log,
    log1p,
    relu,
    round,
    rsqrt,
    sigmoid,
    silu,
    sin,
    sqrt,
    tanh,
    trunc,
)
from .while_loop import while_loop

__all__ = [
    "AxisError",
    "TensorValueLike",
    "abs",
    "acos",
    "add",
    "allgather",
    "allreduce",
    "argmax",
    "argmin",
    "argsort",
    "as_interleaved_complex",
    "as_value",
    "atanh",
    "band_part",
    "bottom_k",
    "broadcast_to",
    "call",
    "cast",
    "ceil",
    "check_indices",
    "chunk",
    "concat",
    "cond",
    "constant",
    "constant_external",
    "cos",
    "cumsum",
    "dequantize",
    "distributed_broadcast",
    "distributed_scatter",
    "div",
    "embedding_bag",
    "embedding_bag_collection",
    "equal",
    "erf",
    "exp",
    "flatten",
    "floor",
    "floor_div",
    "gather",
    "gather_nd",
    "gelu",
    "greater",
    "greater_equal",
    "is_inf",
    "is_nan",
    "layer_norm",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logsoftmax",
    "logsumexp",
    "masked_scatter",
    "matmul",
    "max",
    "mean",
    "min",
    "mod",
    "mul",
    "negate",
    "nonzero",
    "not_equal",
    "outer",
    "pad",
    "permute",
    "pow",
    "print",
    "prod",
    "qmatmul",
    "random",
    "range",
    "rebind",
    "reducescatter",
    "relu",
    "repeat_interleave",
    "reshape",
    "rms_norm",
    "round",
    "rsqrt",
    "scatter",
    "scatter_add",
    "scatter_max",
    "scatter_min",
    "scatter_mul",
    "scatter_nd",
    "scatter_nd_add",
    "scatter_nd_max",
    "scatter_nd_min",
    "scatter_nd_mul",
    "select",
    "shape_to_tensor",
    "shard_and_stack",
    "sharded_embedding_bag_collection",
    "sharded_gather",
    "sharded_logsumexp",
    "sharded_top_k",
    "sigmoid",
    "silu",
    "sin",
    "slice_tensor",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "tanh",
    "tile",
    "top_k",
    "transfer_to",
    "transpose",
    "trunc",
    "unsqueeze",
    "where",
    "while_loop",
]
