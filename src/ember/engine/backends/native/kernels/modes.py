"""What a gather does with an id outside the table: shared by every native gather kernel."""

MODE_ERROR = 0
MODE_ZERO = 1
MODE_CLAMP = 2
MODE_WRAP = 3
