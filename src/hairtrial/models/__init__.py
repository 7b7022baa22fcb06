"""Models: arrays and DataFrames in, result objects out; never a config.

The models (and the other modules of the package that need scipy) import ``scipy`` and call
``scipy.optimize``, ``scipy.linalg`` and ``scipy.special`` through it, which scipy loads on
first use: the figure, notebook and report processes import the models (for their column
lists and result types) but fit nothing, and skip those imports (about 0.8 s in each).
"""
