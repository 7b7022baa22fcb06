"""Quantiles and tail probabilities of the normal, t, chi-squared and F distributions.

The numbers of ``scipy.stats`` (``norm``, ``t``, ``chi2``, ``f``: ``ppf``, ``isf``, ``cdf``,
``sf``) bit for bit, computed by the same ``scipy.special`` functions those methods call,
without importing ``scipy.stats``. Why not scipy.stats itself: importing it costs about 0.6 s
(it builds the docstrings of a hundred distributions), and a run pays that in every process
that imports the library - the seven jobs, four notebook kernels and the ``hairtrial``
command - for these few functions. ``tests/test_distributions.py`` compares every function
with scipy.stats on random and edge-case arguments.

Arguments are handled as ``scipy.stats.rv_continuous`` handles them: arrays broadcast; NaN
for an invalid parameter (degrees of freedom <= 0 or NaN), a probability outside [0, 1] or a
NaN argument; a probability of 0 or 1 gives the end of the support; an ``x`` outside the
support gives 0 or 1. Scalars in, NumPy scalars out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy  # scipy.special loads on first use (see hairtrial.models)

__all__ = [
    "chi2_cdf",
    "chi2_isf",
    "chi2_ppf",
    "chi2_sf",
    "f_sf",
    "norm_cdf",
    "norm_isf",
    "norm_ppf",
    "norm_sf",
    "t_isf",
    "t_ppf",
    "t_sf",
]

_INF = np.inf


def _positive(*params: np.ndarray) -> np.ndarray:
    """scipy.stats' default parameter check: every shape parameter > 0 (False for NaN)."""
    ok = np.ones(np.broadcast_shapes(*(p.shape for p in params)), bool)
    for p in params:
        ok = ok & (p > 0)
    return ok


def _result(out: np.ndarray) -> Any:
    return out[()] if out.ndim == 0 else out


def _quantile(
    fn: Callable[..., Any], q: Any, params: tuple[Any, ...], at0: float, at1: float
) -> Any:
    """``rv_continuous.ppf``/``isf``: `fn` inside (0, 1), `at0`/`at1` at 0/1, else NaN."""
    q, *ps = np.broadcast_arrays(np.asarray(q), *(np.asarray(p) for p in params))
    good = _positive(*ps) if ps else np.ones(q.shape, bool)
    out = np.full(q.shape, np.nan)
    out[good & (q == 0)] = at0
    out[good & (q == 1)] = at1
    inside = good & (q > 0) & (q < 1)
    if inside.any():
        # scipy computes `fn(...) * scale + loc` (scale 1, loc 0): + 0.0 turns -0.0 into 0.0
        out[inside] = fn(q[inside], *(p[inside] for p in ps)) + 0.0
    return _result(out)


def _probability(
    fn: Callable[..., Any],
    x: Any,
    params: tuple[Any, ...],
    low: float,
    high: float,
    below: float,
    above: float,
) -> Any:
    """``rv_continuous.cdf``/``sf`` on the support (`low`, `high`): `fn` inside, `below` at or
    below `low`, `above` at or above `high`, NaN for NaN `x` or an invalid parameter."""
    x, *ps = np.broadcast_arrays(np.asarray(x), *(np.asarray(p) for p in params))
    good = _positive(*ps) if ps else np.ones(x.shape, bool)
    out = np.zeros(x.shape, np.promote_types(x.dtype, np.float64))
    out[~good | np.isnan(x)] = np.nan
    out[good & (x <= low)] = below
    out[good & (x >= high)] = above
    inside = good & (low < x) & (x < high)
    if inside.any():
        out[inside] = fn(x[inside], *(p[inside] for p in ps))
    return _result(out)


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``."""
    return _quantile(scipy.special.ndtri, q, (), -_INF, _INF)


def norm_isf(q: Any) -> Any:
    """``scipy.stats.norm.isf(q)``."""
    return _quantile(lambda p: -scipy.special.ndtri(p), q, (), _INF, -_INF)


def norm_cdf(x: Any) -> Any:
    """``scipy.stats.norm.cdf(x)``."""
    return _probability(scipy.special.ndtr, x, (), -_INF, _INF, 0.0, 1.0)


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _probability(lambda v: scipy.special.ndtr(-v), x, (), -_INF, _INF, 1.0, 0.0)


def t_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.ppf(q, df)``."""
    return _quantile(lambda p, d: scipy.special.stdtrit(d, p), q, (df,), -_INF, _INF)


def t_isf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.isf(q, df)``."""
    return _quantile(lambda p, d: -scipy.special.stdtrit(d, p), q, (df,), _INF, -_INF)


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``."""
    return _probability(lambda v, d: scipy.special.stdtr(d, -v), x, (df,), -_INF, _INF, 1.0, 0.0)


def chi2_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.chi2.ppf(q, df)``."""
    return _quantile(lambda p, d: 2 * scipy.special.gammaincinv(d / 2, p), q, (df,), 0.0, _INF)


def chi2_isf(q: Any, df: Any) -> Any:
    """``scipy.stats.chi2.isf(q, df)``."""
    return _quantile(lambda p, d: scipy.special.chdtri(d, p), q, (df,), _INF, 0.0)


def chi2_cdf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.cdf(x, df)``."""
    return _probability(lambda v, d: scipy.special.chdtr(d, v), x, (df,), 0.0, _INF, 0.0, 1.0)


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``."""
    return _probability(lambda v, d: scipy.special.chdtrc(d, v), x, (df,), 0.0, _INF, 1.0, 0.0)


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """``scipy.stats.f.sf(x, dfn, dfd)``."""
    return _probability(
        lambda v, n, d: scipy.special.fdtrc(n, d, v), x, (dfn, dfd), 0.0, _INF, 1.0, 0.0
    )
