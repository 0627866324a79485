"""What a gather does with an id outside the table: shared by every native gather kernel."""

MODE_ERROR = 0
MODE_ZERO = 1
MODE_CLAMP = 2
MODE_WRAP = 3
MODE_SKIP = 4
"""Leave the output row of such an id untouched: one shard of a split table writes only the
rows it owns into a result the shards share."""
