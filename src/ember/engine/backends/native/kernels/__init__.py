"""Numba kernels of the native CPU backend: plain functions over numpy arrays.

Host side (what runs in Python around a kernel):

- `gather`, `dequantize_gather`: argument checks, the choice of kernel, direct calls.
- `lookup`: `RowLookup`, one lookup's kernels, through numpy until they are compiled.
- `background`, `launch`: compiling off the caller's thread; one parallel kernel at a time.
- `numpy_gather`, `reference_gather`: the same lookups in numpy, with nothing to compile.
- `out_of_range`: the integer codes for ids outside a table; `id_range.first_outside`: the
  first such id, in the ids' own type.
- `entry`, `inputs`: calling a compiled kernel without dispatch; read-only inputs.

What numba compiles is in `compiled` (see there): the device helpers, id resolution, the row
decoders by family, and the kernels.

A new block format on the native side, once it has its entry in ``ember.quant.FORMATS``:

1. its row decoder ``row(src, dst, f16)`` in its family's module of ``compiled/decoders/``
   (a new family: a new module there, added to ``decoders._FAMILIES``), entered in that
   module's ``ROW_DECODERS`` under the registry's name. It must give the reference
   ``dequantize``'s float32 bits: the same operations in the same order.
2. its fp16 scale fields in ``tests/block_fields.py``, which puts it through the bit-exact
   tests; every other list (the kernels' dispatch, the lookup tests, the benchmarks) derives
   from the registry.

Until step 1 lands, the format is decoded by its reference decoder (`reference_gather`).
"""
