"""What a kernel does with an id outside its table: the integer codes every native gather kernel
takes as its ``out_of_range`` argument (numba compiles them in as constants)."""

ERROR = 0
"""Stop at the first such id and return its position."""
ZERO = 1
"""Write a zero row."""
CLAMP = 2
"""Read the nearest end row: row 0 below the table, the last row above it."""
WRAP = 3
"""Read ids in ``[-rows, -1]`` (relative to the table's first id) from ``row + rows``; stop at
any other."""
SKIP = 4
"""Leave the output row untouched: one shard of a split table writes only the rows it owns into
a result the shards share."""

CODES = (ERROR, ZERO, CLAMP, WRAP, SKIP)
