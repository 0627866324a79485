"""`Module`: a layer that finds its weights and nested layers, names them by where they sit,
and binds arrays to them.

A weight's full name is the attribute path from the module it is asked of to the layer that
holds it, then the weight's own name, as MAX names them (`up.weight`), so that two layers'
`weight`s do not collide:

>>> from ember.dtype import DType
>>> from ember.graph import Weight
>>> class Scale(Module):
...     def __init__(self):
...         super().__init__()
...         self.weight = Weight("weight", DType.float32, [4])
>>> class Pair(Module):
...     def __init__(self):
...         self.first, self.second = Scale(), Scale()  # super().__init__() may be left out
>>> list(Pair().raw_state_dict())
['first.weight', 'second.weight']
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ember.driver import Buffer
from ember.graph import Graph, Weight
from ember.graph.graph import current_graph
from ember.graph.weight import is_power_of_two

from .layer_hooks import Layer

__all__ = ["Module", "StateDictError", "recursive_named_layers"]

_BOOKKEEPING = frozenset({"_bound", "_shared_weights"})
"""A module's own attributes that hold no layer or weight of the model."""


class StateDictError(KeyError, ValueError):
    """`load_state_dict` found a weight without an array, or an array without a weight.

    A `ValueError`, as MAX raises it, and a `KeyError`, as earlier versions of ember did."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Module(Layer):
    """Base of layers: weights and nested modules are found among attributes (and in lists,
    tuples and dicts held by attributes). Its subclasses' calls run the layer hooks."""

    def __init__(self) -> None:
        self.__dict__.setdefault("_bound", {})
        self.__dict__.setdefault("_shared_weights", {})

    _unprefixed_sublayers: frozenset[str] = frozenset()
    """Attributes holding a layer that belongs elsewhere (a tied head's embedding): its
    weights keep the names they have there, without this attribute's name before them."""

    @property
    def _omit_module_attr_name(self) -> bool:
        """Whether this module's attribute name is left out of its weights' full names (MAX's
        hook for a layer that only groups others)."""
        return False

    @property
    def sublayers(self) -> dict[str, Module]:
        """The modules this one holds, by attribute name (`name.0`, `name.key` in containers)."""
        return {path: value for path, value in _members(self) if isinstance(value, Module)}

    @property
    def layer_weights(self) -> dict[str, Weight]:
        """This layer's own weights (not its sublayers'), by their own names; shared weights
        (`set_shared_weight`) are left out."""
        return {_own_name(weight): weight for weight in _own_weights(self)}

    def set_shared_weight(self, name: str, weight: Weight) -> None:
        """Hold ``weight`` as attribute ``name`` without owning it: another layer (a tied
        embedding) names and binds it, and this layer's state dicts leave it out."""
        setattr(self, name, weight)
        self.__dict__.setdefault("_shared_weights", {})[name] = weight

    def replace_module(self, name: str, module: Module) -> None:
        """Put ``module`` where the sublayer ``name`` is.

        Raises:
            KeyError: this module holds no sublayer by that name (one of `sublayers`).
            TypeError: ``module`` is not a Module.
        """
        if name not in self.sublayers:
            raise KeyError(
                f"{type(self).__name__} has no sublayer {name!r}; its sublayers are "
                f"{sorted(self.sublayers)}"
            )
        if not isinstance(module, Module):
            raise TypeError(f"replace_module puts a Module in place, got {type(module).__name__}")
        self._put(name, module)

    def _put(self, path: str, module: Module) -> None:
        """Put ``module`` at ``path`` (an attribute, or an item of a list or dict it holds)."""
        attribute, *keys = path.split(".")
        if not keys:
            setattr(self, attribute, module)
            return
        holder = getattr(self, attribute)
        for key in keys[:-1]:
            holder = _item(holder, key)
        last = keys[-1]
        if isinstance(holder, tuple):
            raise TypeError(f"sublayer {path!r} is in a tuple, which cannot be changed")
        if isinstance(holder, list):
            holder[int(last)] = module
        else:
            holder[next(k for k in holder if str(k) == last)] = module

    def build_subgraph(
        self, name: str, input_types: Sequence[Any], weight_prefix: str = ""
    ) -> Graph:
        """A subgraph of the open graph that calls this layer (MAX's), for `ops.call`: built
        once from one layer of a stack, then called once per layer with ``prefix=`` that
        layer's prefix. Weights whose names start with ``weight_prefix`` are placeholders:
        a call reads ``prefix`` plus the rest of the name; the others are the same weight in
        every call (as in MAX, a prefix may begin no weight's name: a layer without weights, or
        whose weights are all shared). ``input_types`` may group types in lists: the layer
        gets each group as a list of values.
        """
        graph = current_graph()
        subgraph = graph.add_subgraph(name, input_types=_flat_types(input_types))
        if weight_prefix:
            weights = list(self.raw_state_dict().values())
            placeholders = {
                id(w): w.name.removeprefix(weight_prefix)
                for w in weights
                if w.name.startswith(weight_prefix)
            }
            if weights and not placeholders:
                warnings.warn(
                    f"build_subgraph: weight_prefix {weight_prefix!r} begins none of the layer's "
                    f"weight names ({sorted(w.name for w in weights)}), so every call of "
                    f"{name!r} reads these same weights (load_state_dict() on the whole model "
                    "first gives them their full names)",
                    UserWarning,
                    stacklevel=2,
                )
            subgraph.placeholders.update(placeholders)  # type: ignore[attr-defined]
        with subgraph:
            inputs = iter(subgraph.inputs)
            args = [
                [next(inputs) for _ in group] if isinstance(group, list | tuple) else next(inputs)
                for group in input_types
            ]
            result = self(*args)  # type: ignore[operator]
            subgraph.output(*(result if isinstance(result, list | tuple) else [result]))
        return subgraph

    def raw_state_dict(self) -> dict[str, Weight]:
        """Every weight, by full name.

        Raises:
            ValueError: two different weights would have the same full name.
        """
        return dict(_named_weights(self))

    def load_state_dict(
        self,
        state_dict: Mapping[str, Any],
        *,
        override_quantization_encoding: bool = False,
        weight_alignment: int | None = None,
        strict: bool = True,
    ) -> None:
        """Bind an array (numpy, DLPack or a checkpoint's tensor) to each weight by full name,
        checking shapes and dtypes, and give each weight its full name: the name the graph
        and `InferenceSession.load` then use. Nothing is bound when a check fails.

        ``override_quantization_encoding=True`` (MAX's) lets a checkpoint tensor that carries
        another block encoding than its weight's, of the same values (a Q6_K table in a Q4_K_M
        file where Q4_K was declared), re-declare the weight with its encoding and bytes: the
        layers holding it read the new format. Without it such a tensor is refused.

        ``strict=False`` leaves weights without an array unbound and ignores unused arrays.
        ``weight_alignment`` (bytes) requires each array's address to be a multiple of it,
        and becomes each bound weight's ``align`` (as in MAX; without it ember binds arrays at
        any address, where MAX requires its dtype's alignment).

        Raises:
            StateDictError (a ValueError and a KeyError): when `strict`, a weight has no
                array or an array has no weight.
            TypeError / ValueError: ``state_dict`` is not a mapping; an array's dtype or shape
                differs from its weight's (an overriding tensor's values from the declared
                ones), or it is not aligned to ``weight_alignment``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                "load_state_dict takes a mapping of names to arrays, got a "
                f"{type(state_dict).__name__}"
            )
        alignment = _checked_alignment(weight_alignment)
        named = _named_weights(self)
        bound: dict[int, tuple[Weight, Any, int]] = {}
        redeclared: dict[int, tuple[Weight, Weight]] = {}
        missing = []
        for full_name, weight in named:
            if full_name not in state_dict:
                missing.append(full_name)
                continue
            value, declared = state_dict[full_name], weight
            if override_quantization_encoding:
                declared = _declared_as_carried(weight, value, full_name)
                if declared is not weight:
                    redeclared[id(weight)] = (weight, declared)
            array = declared.check_array(value, full_name)
            if alignment and array.ctypes.data % alignment:
                raise ValueError(
                    f"weight {full_name!r}: its array is at an address that is not a multiple "
                    f"of weight_alignment={alignment} bytes"
                )
            bound[id(weight)] = (weight, array, next(_BINDINGS))
        used = {name for name, weight in named if id(weight) in bound}
        unused = sorted(str(key) for key in state_dict if key not in used)
        if strict and (missing or unused):
            raise StateDictError(_mismatch(missing, unused, state_dict))
        if alignment:
            for weight, _, _ in bound.values():
                weight.align = alignment  # as MAX's: load checks it again
        for weight, declared in redeclared.values():
            weight.type = declared.type
            weight.quantization_encoding = declared.quantization_encoding
        for full_name, weight in named:
            _rename(weight, full_name)
        self.__dict__.setdefault("_bound", {}).update(bound)

    def state_dict(self, auto_initialize: bool = True) -> dict[str, Any]:
        """Each weight's array by full name, ready for `InferenceSession.load`: the array
        last bound to that weight (by `load_state_dict` on this module or on any layer below
        it), and a `Buffer` of zeros for weights never given one (as MAX fills them; a warning
        names them), or an error with ``auto_initialize=False``. Weights take their full names.

        Raises:
            ValueError: ``auto_initialize`` is False and a weight has no array.
        """
        bound = _bound_arrays(self)
        arrays, zeros = {}, []
        for full_name, weight in _named_weights(self):
            array = bound.get(id(weight))
            if array is None:
                if not auto_initialize:
                    raise ValueError(
                        f"weight {full_name!r} has no array; bind one with load_state_dict()"
                    )
                array = Buffer.zeros(tuple(int(d) for d in weight.shape), weight.dtype)
                zeros.append(full_name)
            _rename(weight, full_name)
            arrays[full_name] = array
        if zeros:
            warnings.warn(
                f"state_dict(): weights {zeros} were never given an array and are zeros",
                stacklevel=2,
            )
        return arrays


def _flat_types(types: Any) -> list[Any]:
    if isinstance(types, list | tuple):
        return [t for item in types for t in _flat_types(item)]
    return [types]


def recursive_named_layers(parent: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """``(attribute path, layer)`` for ``parent`` (named ``prefix``) and every layer below it,
    breadth first, each layer once."""
    seen: set[int] = set()
    queue = deque([(prefix, parent)])
    while queue:
        name, layer = queue.popleft()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield name, layer
        for path, child in layer.sublayers.items():
            queue.append((f"{name}.{path}" if name else path, child))


_BINDINGS = itertools.count()
"""Orders bindings: the last array bound to a weight, on whichever layer, is its array."""


def _bound_arrays(root: Module) -> dict[int, Any]:
    """The array last bound to each weight on ``root`` or a layer below it, by weight `id`."""
    latest: dict[int, tuple[Any, int]] = {}
    for _, layer in recursive_named_layers(root):
        # each entry holds its weight too, so that its id is no other object's meanwhile
        for key, (_held, array, order) in layer.__dict__.get("_bound", {}).items():
            held = latest.get(key)
            if held is None or held[1] < order:
                latest[key] = (array, order)
    return {key: array for key, (array, _) in latest.items()}


def _members(module: Module) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for each module and weight among ``module``'s attributes, looking
    into lists, tuples and dicts."""

    def walk(path: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Module | Weight):
            yield path, value
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                yield from walk(f"{path}.{i}", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from walk(f"{path}.{key}", item)

    for name, value in vars(module).items():
        if name not in _BOOKKEEPING:
            yield from walk(name, value)


def _item(holder: Any, key: str) -> Any:
    if isinstance(holder, list | tuple):
        return holder[int(key)]
    return holder[next(k for k in holder if str(k) == key)]


def _own_weights(module: Module) -> list[Weight]:
    shared = {id(w) for w in module.__dict__.get("_shared_weights", {}).values()}
    seen: set[int] = set()
    weights = []
    for _, value in _members(module):
        if isinstance(value, Weight) and id(value) not in shared and id(value) not in seen:
            seen.add(id(value))
            weights.append(value)
    return weights


def _named_weights(root: Module) -> list[tuple[str, Weight]]:
    """``(full name, weight)`` for every weight below ``root``, breadth first; a weight held
    by two layers (a tied table) is named where it is first found."""
    named: list[tuple[str, Weight]] = []
    owners: dict[str, str] = {}
    weights_seen: set[int] = set()
    layers_seen: set[int] = set()
    queue = deque([("", "", root)])
    while queue:
        path, prefix, layer = queue.popleft()
        if id(layer) in layers_seen:
            continue
        layers_seen.add(id(layer))
        for weight in _own_weights(layer):
            if id(weight) in weights_seen:
                continue
            weights_seen.add(id(weight))
            full_name = prefix + _own_name(weight)
            if full_name in owners:
                raise ValueError(
                    f"two weights would be named {full_name!r}: one held by "
                    f"{owners[full_name]!r}, one by {path or '<root>'!r}; give them different "
                    "names or hold them under different attributes"
                )
            owners[full_name] = path or "<root>"
            named.append((full_name, weight))
        for name, child in layer.sublayers.items():
            child_path = f"{path}.{name}" if path else name
            unprefixed = child._omit_module_attr_name or name in layer._unprefixed_sublayers
            child_prefix = prefix if unprefixed else f"{prefix}{name}."
            queue.append((child_path, child_prefix, child))
    return named


def _own_name(weight: Weight) -> str:
    """The name the weight was declared with, before a state dict gave it its full name."""
    return weight.__dict__.get("_own_name", weight.name)


def _rename(weight: Weight, full_name: str) -> None:
    weight.__dict__.setdefault("_own_name", weight.name)
    weight.name = full_name


def _declared_as_carried(weight: Weight, value: Any, name: str) -> Weight:
    """``weight``, or (a checkpoint tensor of another block encoding than its own) a weight of
    the tensor's encoding and bytes, if the tensor holds the values ``weight`` declares.

    Raises:
        ValueError: the tensor holds other values a row, or another number of rows.
    """
    carried = getattr(value, "quantization_encoding", None)
    own = weight.quantization_encoding
    if not isinstance(getattr(value, "array", None), np.ndarray) or None in (carried, own):
        return weight
    if carried == own:
        return weight
    shape = tuple(int(d) for d in weight.shape)
    values = (*shape[:-1], own.hidden_size(shape[-1]))
    if tuple(value.shape) != values:
        raise ValueError(
            f"weight {name!r} declares {values} values as {own.value}; checkpoint tensor "
            f"{value.name!r} holds {tuple(value.shape)} as {carried.value}, so it cannot take "
            "the tensor's encoding"
        )
    return Weight(
        weight.name, weight.dtype, value.array.shape, weight.device, carried, weight.align
    )


def _checked_alignment(alignment: int | None) -> int | None:
    if alignment is None:
        return None
    if not is_power_of_two(alignment):
        raise ValueError(
            f"weight_alignment must be a positive int, a power of 2 (bytes), got {alignment!r}"
        )
    return alignment


def _mismatch(missing: list[str], unused: list[str], state_dict: Mapping[str, Any]) -> str:
    parts = []
    if missing:
        parts.append(f"Missing required weights: no array for weights {missing}")
        close = difflib.get_close_matches(missing[0], [str(k) for k in state_dict], n=1)
        if close:
            parts.append(f"for {missing[0]!r}, did you mean {close[0]!r}?")
    if unused:
        parts.append(f"Unexpected keys in state_dict: arrays {unused} match no weight")
    return "; ".join(parts)
