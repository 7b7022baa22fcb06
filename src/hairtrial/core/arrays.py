"""Array helpers shared by the scalar-or-array numeric modules."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatOrArray = float | NDArray[np.float64]


def as_float(x: ArrayLike) -> NDArray[np.float64]:
    """``x`` as a float ndarray (0-d for a scalar)."""
    return np.asarray(x, dtype=float)


def output(x: Any) -> FloatOrArray:
    """A Python float for 0-d results, an ndarray otherwise."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    return arr
