"""Models: arrays and DataFrames in, result objects out; never a config."""
