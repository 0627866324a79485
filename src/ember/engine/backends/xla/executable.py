"""`XlaExecutable`: a graph as jitted segments, one per device and stage, joined by transfers
and collectives.

At load, work on weights and constants alone is done once (a shard sliced from a table moves
only its rows to its device), and every value the executions read is placed on its device.
A graph on one device is one segment: one jitted function, compiled by `jax.jit` once per
input signature. Each stage runs its segments, then the cross-device ops that follow them;
out-of-range checks come back from each segment as flags and raise on the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import SingleDeviceSharding

from ember.engine.debug_print import DebugPrintOptions
from ember.errors import out_of_range_ids
from ember.graph import DeviceRef, Graph, Node, StaticDim, TensorValue
from ember.graph.block import with_blocks
from ember.graph.graph import INPUT
from ember.graph.ops.allgather import ALLGATHER
from ember.graph.ops.check_indices import CHECK_INDICES
from ember.graph.ops.constant import CONSTANT, WEIGHT
from ember.graph.ops.cumsum import CUMSUM
from ember.graph.ops.gather import GATHER
from ember.graph.ops.range import RANGE
from ember.graph.ops.sharded_embedding_bag_collection import SHARDED_EMBEDDING_BAG_COLLECTION
from ember.graph.ops.sharded_gather import SHARDED_GATHER
from ember.graph.ops.sharded_logsumexp import SHARDED_LOGSUMEXP
from ember.graph.ops.sharded_top_k import SHARDED_TOP_K
from ember.graph.ops.transfer import TRANSFER_TO

from ..base import Executable
from .lowering import LOWERINGS, Check, LoweringContext, Requirement
from .nonzero import refuse_data_sized

__all__ = ["XlaExecutable", "lower_node"]

DeviceOf = Callable[[DeviceRef], jax.Device]

_ACROSS_PROCESSES = (
    SHARDED_GATHER,
    SHARDED_TOP_K,
    SHARDED_LOGSUMEXP,
    ALLGATHER,
    SHARDED_EMBEDDING_BAG_COLLECTION,
)
"""The cross-device ops whose lowerings run one exchange over all their devices' processes."""


class XlaExecutable(Executable):
    """In a job of several processes each runs the same graph: values on another process's
    devices are not computed here (that process computes them), and outputs on them come back
    as None."""

    def __init__(
        self,
        graph: Graph,
        weights: Mapping[str, np.ndarray],
        device_of: DeviceOf,
        debug_print: DebugPrintOptions | None = None,
    ) -> None:
        self._device_of = device_of
        self._debug_print = debug_print
        self._inputs = [id(v) for v in graph.inputs]
        self._outputs = [id(v) for v in graph.outputs]
        self.borrowed_outputs = frozenset(
            i for i, v in enumerate(self._outputs) if v in set(self._inputs)
        )
        live = graph.live_nodes()
        refuse_data_sized(list(with_blocks(live)))
        self._x64 = _needs_x64(list(with_blocks(live)))
        with self._precision():
            static, dynamic = self._fold(live, weights)
            self._static = self._place(static, dynamic, graph.outputs)
        _check_crossings(dynamic, self._is_local)
        local = [n for n in dynamic if n.op.cross_device or self._is_local(n)]
        self._host_checks = _host_checks(local, graph.inputs)
        checked = frozenset(check[0] for check in self._host_checks)
        self._stages = _stages(local, set(self._outputs), device_of, checked, debug_print)
        for segments, _ in self._stages:
            for segment in segments:  # a placed argument commits the segment to its device
                segment.pinned = any(key in self._static for key in segment.args)
        self._memo: dict = {}  # what cross-device lowerings keep between executes

    def _precision(self) -> contextlib.AbstractContextManager:
        """64-bit types on, where the graph holds any (JAX would narrow them otherwise)."""
        return jax.enable_x64(True) if self._x64 else contextlib.nullcontext()

    def _is_local(self, node_or_ref: Node | DeviceRef) -> bool:
        """Whether this process owns the device (a node's: its first result's)."""
        ref = (
            node_or_ref
            if isinstance(node_or_ref, DeviceRef)
            else node_or_ref.result_types[0].device
        )
        return self._device_of(ref).process_index == jax.process_index()

    def _fold(
        self, live: list[Node], weights: Mapping[str, np.ndarray]
    ) -> tuple[dict[int, tuple[TensorValue, Any]], list[Node]]:
        """Values known at load (weights, constants and what depends on them alone, lookups
        aside), and the nodes left to run per execute. A value bound for another process's
        device is None: only the rows of this process's shards are ever read."""
        static: dict[int, tuple[TensorValue, Any]] = {}
        dynamic: list[Node] = []
        here = jax.local_devices()[0]
        for node in live:
            if node.op is INPUT:
                continue
            value = node.results[0]
            if node.op is CONSTANT:
                static[id(value)] = (value, node.attrs["value"])
            elif node.op is WEIGHT:
                static[id(value)] = (value, weights[node.attrs["name"]])
            elif (
                not node.op.lookup
                and not node.binds_dims
                and not node.has_effect
                and not node.blocks  # a block may hold lookups, which run at every execute
                and all(id(v) in static for v in node.inputs)
            ):
                inputs = [static[id(v)][1] for v in node.inputs]
                if any(x is None for x in inputs) or (
                    node.op is TRANSFER_TO and not self._is_local(node)
                ):
                    results: tuple = (None,) * len(node.results)
                else:
                    ctx = LoweringContext({}, self._device_of)
                    device = self._device_of(node.result_types[0].device)
                    with jax.default_device(device if self._is_local(node) else here):
                        results = lower_node(ctx, node, inputs)
                    _raise_first(ctx.checks, [np.asarray(c.row) for c in ctx.checks])
                for v, result in zip(node.results, results, strict=True):
                    static[id(v)] = (v, result)
            else:
                dynamic.append(node)
        return static, dynamic

    def _place(
        self,
        static: dict[int, tuple[TensorValue, Any]],
        dynamic: list[Node],
        outputs: Sequence[TensorValue],
    ) -> dict[int, jax.Array | None]:
        """The known values executions read, each on its device once (None on another
        process's devices)."""
        read = {id(v) for node in dynamic for v in node.inputs} | {id(v) for v in outputs}
        placed: dict[int, jax.Array | None] = {}
        for key, (value, array) in static.items():
            if key in read:
                local = array is not None and self._is_local(value.device)
                placed[key] = (
                    jax.device_put(array, self._device_of(value.device)) if local else None
                )
        return placed

    def run(
        self,
        inputs: Sequence[Any],
        bindings: Mapping[str, int],
        targets: Sequence[np.ndarray | None] | None,
    ) -> list[Any]:
        for _, position, size, out_of_range, axis in self._host_checks:
            out_of_range_ids(np.asarray(inputs[position]), size, out_of_range, axis)
        env: dict[int, Any] = dict(self._static)
        for key, array in zip(self._inputs, inputs, strict=True):
            env[key] = array
        signature = tuple(sorted(bindings.items()))
        with self._precision():
            for segments, crossings in self._stages:
                for segment in segments:
                    segment.run(env, signature)
                for node in crossings:
                    ctx = LoweringContext(
                        bindings, self._device_of, memo=self._memo, debug_print=self._debug_print
                    )
                    inputs = [env.get(id(v)) for v in node.inputs]  # None: another process's
                    results = lower_node(ctx, node, inputs)
                    for v, result in zip(node.results, results, strict=True):
                        env[id(v)] = result
        return [env.get(key) for key in self._outputs]


class _Segment:
    """Nodes on one device in one stage, traced into one jitted function."""

    def __init__(
        self,
        nodes: list[Node],
        device: jax.Device,
        exports: list[int],
        checked: frozenset[int],
        debug_print: DebugPrintOptions | None,
        moved: frozenset[int] = frozenset(),
    ) -> None:
        self._debug_print = debug_print
        self._moved = moved
        """Arguments on another device (a `cond`'s CPU predicate beside values on a GPU),
        moved to this segment's device as it runs."""
        produced = {id(v) for node in nodes for v in node.results}
        args: list[int] = []
        for node in nodes:
            for v in node.inputs:
                if id(v) not in produced and id(v) not in args:
                    args.append(id(v))
        self.nodes, self.device, self.args, self.exports = nodes, device, args, exports
        self._checked_on_host = checked
        self.pinned = False
        self._checks: dict[tuple, list[Check | Requirement]] = {}
        """Each signature's checks, in the order its trace stacked their rows (a trace's
        shapes may decide which checks it makes, and jit keeps every signature's trace)."""
        # results stay on the segment's device even when they read none of its arguments
        self._jitted = jax.jit(
            self._trace, static_argnums=0, out_shardings=SingleDeviceSharding(device)
        )

    def _trace(self, signature: tuple, *args: jax.Array) -> tuple:
        ctx = LoweringContext(
            dict(signature), lambda ref: self.device, debug_print=self._debug_print
        )
        ctx.checked_on_host = self._checked_on_host
        env = dict(zip(self.args, args, strict=True))
        for node in self.nodes:
            results = lower_node(ctx, node, [env[id(v)] for v in node.inputs])
            for v, result in zip(node.results, results, strict=True):
                env[id(v)] = result
        self._checks[signature] = ctx.checks
        rows = jax.numpy.stack([c.row for c in ctx.checks]) if ctx.checks else None
        return tuple(env[key] for key in self.exports), rows

    def run(self, env: dict[int, Any], signature: tuple) -> None:
        args = [env[k] for k in self.args]
        if self._moved:
            args = [
                jax.device_put(a, self.device) if k in self._moved else a
                for k, a in zip(self.args, args, strict=True)
            ]
        if self.pinned or self._moved:
            exports, rows = self._jitted(signature, *args)
        else:  # host arrays alone: they go to this segment's device
            with jax.default_device(self.device):
                exports, rows = self._jitted(signature, *args)
        if rows is not None:
            _raise_first(self._checks[signature], np.asarray(rows))
        for key, value in zip(self.exports, exports, strict=True):
            env[key] = value


def _needs_x64(nodes: list[Node]) -> bool:
    for node in nodes:
        if (
            node.op is RANGE
            and node.attrs["dtype"].is_float()
            and any(isinstance(a, tuple) for a in node.attrs["args"])
        ):
            return True  # graph-value ends of floats are counted in float64
        if node.op is CUMSUM and node.result_types[0].dtype.to_numpy() == np.float32:
            return True  # float32 is summed in float64
        for t in (*(v.type for v in node.inputs), *node.result_types):
            dtype = t.dtype.to_numpy()
            if dtype.itemsize == 8 and dtype.kind in "iuf":
                return True
    return False


def _host_checks(nodes: list[Node], inputs: Sequence[TensorValue]) -> list[tuple]:
    """(node id, input position, size, out_of_range, axis) for each lookup whose ids are a graph
    input and whose size is static: a numpy pass on the host checks them before anything is
    dispatched, cheaper than a flag computed on the device and read back."""
    position = {id(v): i for i, v in enumerate(inputs)}
    checks = []
    for node in nodes:
        if node.op is GATHER:
            out_of_range, axis = node.attrs["out_of_range"], node.attrs["axis"]
            size = node.inputs[0].shape[axis]
        elif node.op is CHECK_INDICES and node.attrs["out_of_range"] == "error":
            out_of_range, axis, size = "error", 0, StaticDim(node.attrs["size"])
        else:
            continue
        ids = id(node.inputs[-1])
        if out_of_range in ("error", "wrap") and ids in position and isinstance(size, StaticDim):
            checks.append((id(node), position[ids], int(size), out_of_range, axis))
    return checks


def _check_crossings(dynamic: list[Node], is_local: Callable[[DeviceRef], bool]) -> None:
    """Across processes, values move only through the ops whose lowerings exchange over a
    mesh of all their devices: `sharded_gather`, `sharded_top_k`, `sharded_logsumexp` and
    `allgather`.

    Raises:
        NotImplementedError: a transfer, broadcast or all-reduce reaches another process.
    """
    for node in dynamic:
        if node.op.cross_device and node.op not in _ACROSS_PROCESSES:
            refs = [v.device for v in node.inputs] + [t.device for t in node.result_types]
            if not all(is_local(ref) for ref in refs):
                across = ", ".join(op.name for op in _ACROSS_PROCESSES)
                raise NotImplementedError(
                    f"{node.op} between processes: a value reaches another process's device "
                    f"only through {across} (give each device its own input, e.g. the "
                    "sharded head one hidden-state input per device)"
                )


def lower_node(ctx: LoweringContext, node: Node, inputs: list[Any]) -> tuple:
    """The node's results, a tuple of arrays."""
    result = LOWERINGS[node.op](ctx, node, *inputs)
    return result if isinstance(result, tuple) else (result,)


def _raise_first(checks: list[Check | Requirement], rows: np.ndarray) -> None:
    for check, row in zip(checks, rows, strict=True):
        if row[0] >= 0:
            raise check.error(row)


def _stages(
    dynamic: list[Node],
    outputs: set[int],
    device_of: DeviceOf,
    checked: frozenset[int],
    debug_print: DebugPrintOptions | None,
) -> list[tuple[list[_Segment], list[Node]]]:
    """Stage k holds the on-device nodes that follow k cross-device ops (grouped into one
    segment per device), then the cross-device ops that read only what came before."""
    depth: dict[int, int] = {}
    last_effect: tuple[int, DeviceRef] | None = None
    for node in dynamic:
        here = node.result_types[0].device
        depth[id(node)] = max(
            (  # a value another device's segment makes is read in a later stage
                depth[id(v.node)] + int(v.node.op.cross_device or v.device != here)
                for v in node.inputs
                if id(v.node) in depth
            ),
            default=0,
        )
        if node.has_effect:  # effects in the graph's order: one on another device comes later
            if last_effect is not None:
                at, where = last_effect
                depth[id(node)] = max(depth[id(node)], at + int(where != here))
            last_effect = depth[id(node)], here
    read_by: dict[int, set[int]] = {}
    for node in dynamic:
        for v in node.inputs:
            read_by.setdefault(id(v), set()).add(id(node))
    stages = []
    for k in range(max(depth.values(), default=-1) + 1):
        local: dict[DeviceRef, list[Node]] = {}
        crossings = []
        for node in dynamic:
            if depth[id(node)] != k:
                continue
            if node.op.cross_device:
                crossings.append(node)
            else:
                local.setdefault(node.result_types[0].device, []).append(node)
        segments = []
        for ref, nodes in local.items():
            inside = {id(n) for n in nodes}
            exports = [
                id(v)
                for n in nodes
                for v in n.results
                if id(v) in outputs or read_by.get(id(v), set()) - inside
            ]
            moved = frozenset(id(v) for n in nodes for v in n.inputs if v.device != ref)
            segment = _Segment(nodes, device_of(ref), exports, checked, debug_print, moved)
            segments.append(segment)
        stages.append((segments, crossings))
    return stages
