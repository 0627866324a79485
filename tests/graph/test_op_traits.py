"""Op traits are declared once, on each op's symbol: each trait holds for exactly the ops
whose meaning has it, and every backend reads it from there."""

from __future__ import annotations

import numpy as np

from ember.dtype import DType
from ember.engine.backends.native.plan import build_plan
from ember.graph import Graph, Op, TensorType, Weight, all_ops, ops
from ember.graph.graph import INPUT
from ember.graph.ops.allgather import ALLGATHER
from ember.graph.ops.allreduce import ALLREDUCE_SUM
from ember.graph.ops.call import CALL
from ember.graph.ops.check_indices import CHECK_INDICES
from ember.graph.ops.cond import COND
from ember.graph.ops.constant import CONSTANT, WEIGHT
from ember.graph.ops.debug_print import PRINT
from ember.graph.ops.distributed_broadcast import BROADCAST
from ember.graph.ops.embedding_bag import EMBEDDING_BAG
from ember.graph.ops.embedding_bag_collection import EMBEDDING_BAG_COLLECTION
from ember.graph.ops.gather import GATHER
from ember.graph.ops.rebind import REBIND
from ember.graph.ops.reducescatter import REDUCESCATTER_SUM
from ember.graph.ops.reshape import RESHAPE
from ember.graph.ops.sharded_embedding_bag_collection import SHARDED_EMBEDDING_BAG_COLLECTION
from ember.graph.ops.sharded_gather import SHARDED_GATHER
from ember.graph.ops.sharded_logsumexp import SHARDED_LOGSUMEXP
from ember.graph.ops.sharded_top_k import SHARDED_TOP_K
from ember.graph.ops.slice import SLICE
from ember.graph.ops.transfer import TRANSFER_TO
from ember.graph.ops.transpose import TRANSPOSE
from ember.graph.ops.while_loop import WHILE_LOOP


def ops_with(trait: str) -> set[Op]:
    return {op for op in all_ops() if getattr(op, trait)}


def test_source_ops_are_the_inputs_constants_and_weights():
    assert ops_with("source") == {INPUT, CONSTANT, WEIGHT}


def test_lookup_ops_read_rows_by_id():
    assert ops_with("lookup") == {
        GATHER,
        SHARDED_GATHER,
        EMBEDDING_BAG,
        EMBEDDING_BAG_COLLECTION,
        SHARDED_EMBEDDING_BAG_COLLECTION,
    }


def test_may_alias_ops_can_return_their_input_memory():
    assert ops_with("may_alias") == {
        RESHAPE,
        REBIND,
        SLICE,
        TRANSPOSE,
        TRANSFER_TO,
        BROADCAST,
        CHECK_INDICES,
        WHILE_LOOP,  # a loop that runs no step returns its initial values
        COND,  # a branch may return a captured value as it is
        CALL,  # so may a subgraph its argument
    }


def test_the_print_acts_outside_the_graph():
    assert ops_with("effect") == {PRINT}


def test_cross_device_ops_move_values_between_devices():
    assert ops_with("cross_device") == {
        TRANSFER_TO,
        BROADCAST,
        ALLREDUCE_SUM,
        REDUCESCATTER_SUM,
        ALLGATHER,
        SHARDED_GATHER,
        SHARDED_TOP_K,
        SHARDED_LOGSUMEXP,
        SHARDED_EMBEDDING_BAG_COLLECTION,
    }


def test_the_native_plan_reads_the_traits():
    """A lookup on known values still runs per execute; a view's result is marked borrowed."""
    with Graph("traits", input_types=[TensorType(DType.int32, [2, 1])]) as g:
        table = Weight("t", DType.float32, [4, 3])
        ids = ops.constant(np.array([1, 2]), DType.int32)
        g.output(ops.gather(table, ids, axis=0), g.inputs[0].reshape([2]))
    plan = build_plan(g, {"t": np.zeros((4, 3), np.float32)})
    assert [step.op for step in plan.steps] == ["gather", "reshape"]
    assert plan.steps[1].outputs[0] in plan.borrowed
    assert plan.steps[0].outputs[0] not in plan.borrowed
