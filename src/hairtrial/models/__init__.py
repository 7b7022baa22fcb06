"""Models: arrays and DataFrames in, result objects out; never a config.

The models import ``scipy`` and call ``scipy.optimize`` / ``scipy.linalg`` through it, which
scipy loads on first use: the figure, notebook and report processes import the models (for
their column lists and result types) but fit nothing, and skip that import (about 0.5 s in
each).
"""
