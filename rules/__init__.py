"""Pure domain rules of grid-based social governance: no I/O, no engine, no web."""
