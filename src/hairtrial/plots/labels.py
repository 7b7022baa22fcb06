"""The label placer: point labels next to their points, overlapping as little as possible.

The Baujat plot, the L'Abbé plot, the bubble plot and the trajectory plot all label points
the same way: the points in crowded places are labelled first (they have the fewest free
positions), and each label takes the cheapest of a fixed sequence of candidate positions,
tried ring by ring at growing distances around its point; a position that costs nothing ends
the search. What a position costs (overlapping other labels, markers, lines, the frame) is
the plot's own business: it passes a cost function. Everything is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Choice", "best_position", "crowded_first"]


@dataclass
class Choice:
    """The position chosen for one label.

    Attributes
    ----------
    cost : float
        Its cost (0: it overlaps nothing the plot cares about).
    ring : int
        Index of its ring (0: nearest the point).
    index : int
        Index of the candidate within the ring.
    candidate : object
        The candidate as given.
    info : object
        What the cost function returned with the cost (e.g. the measured box).
    """

    cost: float
    ring: int
    index: int
    candidate: Any
    info: Any


def best_position(
    rings: Sequence[Sequence[Any]],
    cost: Callable[[int, int, Any], tuple[float, Any]],
    ring_done: Callable[[Choice, int], bool] | None = None,
) -> Choice:
    """The cheapest candidate position of one label.

    Candidates are tried ring by ring, in order; the first of equal costs wins. The search
    ends at a candidate of cost 0, or after a ring when ``ring_done(best, ring)`` says the
    best so far is good enough.

    Parameters
    ----------
    rings : sequence of sequences
        Candidate positions, nearest ring first (at least one candidate).
    cost : callable
        ``cost(ring, index, candidate) -> (cost >= 0, info)``.
    ring_done : callable, optional
        Stop rule checked after each ring.

    Returns
    -------
    Choice

    Examples
    --------
    >>> rings = [[3, 1], [0, 5]]
    >>> best_position(rings, lambda r, k, c: (float(c), None)).candidate
    0
    >>> best_position(rings, lambda r, k, c: (float(c), None), lambda b, r: b.cost < 2).candidate
    1
    """
    best: Choice | None = None
    for r, ring in enumerate(rings):
        for k, candidate in enumerate(ring):
            c, info = cost(r, k, candidate)
            if best is None or c < best.cost:
                best = Choice(c, r, k, candidate, info)
            if c == 0:
                return best
        if best is not None and ring_done is not None and ring_done(best, r):
            break
    if best is None:
        raise ValueError("no candidate positions")
    return best


def crowded_first(
    points: Sequence[Sequence[float]] | np.ndarray,
    radius: float,
    tiebreak: Callable[[int], tuple[Any, ...]] = lambda i: (),
) -> list[int]:
    """Indices of the points, those with the most neighbours within `radius` first.

    A point counts itself; ties keep `tiebreak` order, then the input order.

    Examples
    --------
    >>> crowded_first([(0.0, 0.0), (5.0, 0.0), (5.5, 0.0)], 1.0)
    [1, 2, 0]
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)

    def crowd(i: int) -> float:
        d = np.hypot(*(pts - pts[i]).T)
        return float(np.sum(d < radius))

    return sorted(range(len(pts)), key=lambda i: (-crowd(i), *tiebreak(i)))
