"""The univariate models of :mod:`hairtrial.models.univariate` vectorised over many data sets.

:func:`fit_batched` fits the same model (one tau^2 estimator, one CI method) to every row of
``yi`` and ``vi`` (replicates x k arrays, one data set per row; unequal k through a mask) and
returns the numbers :func:`hairtrial.models.univariate.fit` returns for each row, as arrays
(:class:`BatchedResult`). It is meant for simulation studies (issue 13): tens of thousands of
replicates per scenario. Only intercept-only models are batched (no meta-regression).

Design
------
* **Same definitions, closed forms.** With ``X = 1`` the projection ``P = W - w w'/sum(w)``
  never needs to be formed: ``y'Py = sum w (y - ybar_w)^2``, ``tr P = W - W2/W``,
  ``tr PP = W2 - 2 W3/W + (W2/W)^2`` (``Wj = sum w^j``), and the sums ``sum(P*P*a*b')`` of the
  SJ and HE standard errors likewise. Every estimator, standard error, stopping rule and
  boundary rule is the scalar one of :mod:`hairtrial.models.tau2` and
  :func:`hairtrial.models.univariate.fit` written over arrays; they agree to rounding
  (``tests/test_batched.py`` checks 1e-10).
* **Layout.** Each chunk of replicates is transposed to ``(k, n)`` so that every sum over the
  studies is a sequence of contiguous element-wise additions (fast for small k).
* **Iterations per replicate.** ML / REML / EB run Fisher scoring on all unfinished replicates
  at once, from metafor's start (the HE estimate truncated at 0), with the scalar rules: step
  halving to keep tau^2 >= 0, a non-finite step taken as 0, stop at
  ``|change| <= tol * max(1, tau2)``, the same ``maxiter``. Replicates leave the working set
  as they converge (compacted when an eighth has finished). Replicates still running after 50
  iterations are parked and pooled with those of later chunks, so the long tail (slow or
  oscillating replicates) is iterated once per pool of ``chunk_size`` replicates instead of
  once per chunk. A replicate still iterating after ``maxiter`` iterations gets the scalar
  fallback, vectorised: EB solves its (= PM) equation by the root finder below; ML / REML
  take the best point of the same log-likelihood grid and refine it by bisection on the score
  between its grid neighbours (the scalar code: Brent). ML / REML then get metafor's
  ``ll0check``. Such replicates are flagged in ``fallback``. (With k = 10 and sampling
  variances spread over two orders of magnitude, about 1.5% of data sets make REML Fisher
  scoring oscillate, in the scalar code as here; at ``maxiter`` iterations each they are
  about a third of the batched engine's Fisher-scoring work on such data.)
* **Root finding** (PM, Q-profile CI of tau^2). ``Q(t) = sum w (y - ybar_w)^2`` with
  ``w = 1/(v + t)`` is decreasing and, for the intercept-only model, convex in ``t``
  (``Q'' = 2 (sum w^3 r^2 - (sum w^2 r)^2 / W) >= 0`` by Cauchy-Schwarz), so Newton's method
  started at a point left of the root increases monotonically to it. The start is the bound
  ``S / c - max(v)`` (``S`` the unweighted sum of squares about the mean, ``c`` the target),
  since ``S/(max(v) + t) <= Q(t) <= S/(min(v) + t)``: the root lies in
  ``[S/c - max(v), S/c - min(v)]``; a Newton step from the right end also lands left of the
  root, so Newton starts at the larger of the two. Newton stops when a step is at most 4 ulp
  of ``t`` (or turns negative through rounding); the scalar code uses Brent's method with
  ``xtol = 1e-14``, so both give the root to rounding.
* **Chunks.** Replicates are processed ``chunk_size`` at a time into preallocated output
  arrays, so working memory is ``O(chunk_size * k)`` whatever the number of replicates, plus
  the per-replicate Fisher-scoring state (about 18 bytes per replicate, a tenth of the
  outputs' 150).

Differences from the scalar path: no notes (boolean arrays ``converged``, ``fallback`` and the
numbers themselves say what the notes say: tau2 == 0, bounds at 0, NaN for k = 1); no
``vcov``/``weights`` matrices (``se`` and, on request, percent weights); ``df`` is NaN instead
of None for z. The numbers agree with ``fit`` to rounding (worst observed ~1e-12 relative);
the Fisher-scoring iteration count can differ by a few where the last change is of the size
of rounding error (sums in another order). Unequal k: pass a ``mask`` (the replicates of
each k are then fitted together).

References
----------
.. [1] Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
   random-effects model. Journal of Educational and Behavioral Statistics 30:261-293.
.. [2] Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
   meta-analysis. Statistics in Medicine 26:37-52.
.. [3] Morris TP, White IR, Crowther MJ (2019). Using simulation studies to evaluate
   statistical methods. Statistics in Medicine 38:2074-2102.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy  # scipy.special loads on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.univariate import CI_METHODS, METHODS

__all__ = ["ARRAY_FIELDS", "DEFAULT_CHUNK_SIZE", "BatchedResult", "fit_batched"]

#: Replicates per chunk (working memory about 20 arrays of chunk_size x k doubles).
DEFAULT_CHUNK_SIZE = 4096

_EPS = float(np.finfo(float).eps)
_LL0_TOL = _EPS**0.25  # metafor's con$tol, as in hairtrial.models.tau2
_NEWTON_MAXITER = 100
_PARK_AFTER = 50  # Fisher-scoring iterations per chunk before a replicate is pooled

#: Per-replicate array fields of :class:`BatchedResult`, in table order.
ARRAY_FIELDS: tuple[str, ...] = (
    "estimate",
    "se",
    "statistic",
    "pvalue",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "s2w",
    "tau2",
    "tau2_se",
    "tau2_ci_lower",
    "tau2_ci_upper",
    "I2",
    "H2",
    "Q",
    "Q_pvalue",
    "vt",
    "converged",
    "iterations",
    "fallback",
)


@dataclass(frozen=True, eq=False)
class BatchedResult:
    """Results of one model fitted to many data sets (one entry per replicate).

    Attributes
    ----------
    method, ci_method : str
        As passed to :func:`fit_batched`.
    level : float
        Confidence level.
    k : ndarray of int
        Number of studies of each replicate (all equal unless a ``mask`` was given).
    df : ndarray
        t degrees of freedom (k - 1) for knha / adhoc; NaN for z and k = 1 (``fit``: None).
    Q_df : ndarray of int
        Degrees of freedom of Q (k - 1).
    estimate, se, statistic, pvalue : ndarray
        Pooled estimate, its standard error (including the Knapp-Hartung factor), z or t
        statistic and two-sided p-value.
    ci_lower, ci_upper, pi_lower, pi_upper : ndarray
        Confidence and prediction interval.
    s2w : ndarray
        Knapp-Hartung factor (1 for z).
    tau2, tau2_se, tau2_ci_lower, tau2_ci_upper : ndarray
        tau^2, metafor's ``se.tau2`` and the Q-profile CI (NaN for FE, k = 1, or when not
        requested).
    I2, H2, Q, Q_pvalue, vt : ndarray
        Heterogeneity statistics as :func:`hairtrial.models.univariate.fit` (NaN for k = 1).
    converged : ndarray of bool
        False when Fisher scoring (after the fallback) or a root search failed.
    iterations : ndarray of int
        Fisher-scoring iterations (ML / REML / EB; the scalar count where the fallback ran).
    fallback : ndarray of bool
        Fisher scoring did not converge in ``maxiter`` iterations and tau^2 comes from the
        fallback of :func:`hairtrial.models.tau2.estimate_tau2` (vectorised).
    weights : ndarray or None
        Percent weights (replicates x k) when requested (NaN where ``mask`` is False).
    """

    method: str
    ci_method: str
    level: float
    k: NDArray[np.int64]
    df: NDArray[np.float64]
    Q_df: NDArray[np.int64]
    estimate: NDArray[np.float64]
    se: NDArray[np.float64]
    statistic: NDArray[np.float64]
    pvalue: NDArray[np.float64]
    ci_lower: NDArray[np.float64]
    ci_upper: NDArray[np.float64]
    pi_lower: NDArray[np.float64]
    pi_upper: NDArray[np.float64]
    s2w: NDArray[np.float64]
    tau2: NDArray[np.float64]
    tau2_se: NDArray[np.float64]
    tau2_ci_lower: NDArray[np.float64]
    tau2_ci_upper: NDArray[np.float64]
    I2: NDArray[np.float64]
    H2: NDArray[np.float64]
    Q: NDArray[np.float64]
    Q_pvalue: NDArray[np.float64]
    vt: NDArray[np.float64]
    converged: NDArray[np.bool_]
    iterations: NDArray[np.int64]
    fallback: NDArray[np.bool_]
    weights: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.estimate.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """One row per replicate: method, ci_method, level, k, df, Q_df, then :data:`ARRAY_FIELDS`.

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> res = fit_batched([[0.1, 0.5, -0.2], [0.3, 0.2, 0.4]], [[0.02, 0.03, 0.05]] * 2)
        >>> res.to_frame().shape
        (2, 27)
        """
        n = len(self)
        cols: dict[str, object] = {
            "method": [self.method] * n,
            "ci_method": [self.ci_method] * n,
            "level": np.full(n, self.level),
            "k": self.k,
            "df": self.df,
            "Q_df": self.Q_df,
        }
        cols.update({name: getattr(self, name) for name in ARRAY_FIELDS})
        return pd.DataFrame(cols)


def _coerce(yi: ArrayLike, vi: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim == 1:
        y = y[None, :]
    if v.ndim == 1:
        v = v[None, :]
    if y.ndim != 2 or v.ndim != 2:
        raise ValueError("yi and vi must be two-dimensional (replicates x studies)")
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in shape ({y.shape} vs {v.shape})")
    if y.shape[1] == 0:
        raise ValueError("no studies (k = 0)")
    if y.shape[0] == 0:
        raise ValueError("no replicates (0 rows)")
    for name, arr in (("yi", y), ("vi", v)):
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))[:10].tolist()
            raise ValueError(f"{name} contains non-finite values in replicates {rows}")
    if np.any(v <= 0):
        rows = np.flatnonzero((v <= 0).any(axis=1))[:10].tolist()
        raise ValueError(f"sampling variances must be > 0; vi <= 0 in replicates {rows}")
    return y, v


# ---------------------------------------------------------------------------------------------
# closed forms for the intercept-only projection P = W - w w' / sum(w)  (all arrays (k, n))
# ---------------------------------------------------------------------------------------------
def _pp_sum(w: NDArray, W: NDArray, a: NDArray | float, b: NDArray | float) -> NDArray:
    """sum_ij P_ij^2 a_i b_j, i.e. numpy's ``sum(P * P * outer(a, b))`` of the scalar code."""
    w2 = w * w
    return (
        (w2 * a * b).sum(axis=0)
        - 2.0 * (w2 * w * a * b).sum(axis=0) / W
        + (w2 * a).sum(axis=0) * (w2 * b).sum(axis=0) / (W * W)
    )


def _rss(y: NDArray, w: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Weighted sum of squares about the weighted mean: (rss, residuals, W)."""
    W = w.sum(axis=0)
    r = y - (w * y).sum(axis=0) / W
    return (w * r * r).sum(axis=0), r, W


def _q_root(yc: NDArray, v: NDArray, target: NDArray) -> tuple[NDArray, NDArray]:
    """Solve ``Q(t) = target`` per column by Newton's method from a point left of the root.

    Every column must have ``Q(0) >= target > 0``. Returns (root, converged).
    """
    n = yc.shape[1]
    root = np.zeros(n)
    ok = np.zeros(n, dtype=bool)
    ss = ((yc - yc.mean(axis=0)) ** 2).sum(axis=0)
    tg = np.asarray(target, dtype=float) * np.ones(n)
    t = np.maximum(0.0, ss / tg - v.max(axis=0))
    # a Newton step from the right end of the bracket also lands left of the root (convexity)
    right = np.maximum(t, ss / tg - v.min(axis=0))
    w = 1.0 / (v + right)
    rss, r, _W = _rss(yc, w)
    wr = w * r
    with np.errstate(divide="ignore", invalid="ignore"):
        from_right = right + (rss - tg) / (wr * wr).sum(axis=0)
    t = np.where(from_right > t, from_right, t)
    idx = np.arange(n)
    ya, va = yc, v
    for _ in range(_NEWTON_MAXITER):
        w = 1.0 / (va + t)
        rss, r, _W = _rss(ya, w)
        wr = w * r
        with np.errstate(divide="ignore", invalid="ignore"):
            step = (rss - tg) / (wr * wr).sum(axis=0)
        new = np.maximum(t + step, 0.0)
        done = ~(step > 4.0 * _EPS * new)  # also stops on NaN (no information left)
        root[idx[done]] = new[done]
        ok[idx[done]] = np.isfinite(new[done])
        keep = ~done
        if not keep.any():
            break
        idx, t = idx[keep], new[keep]
        ya, va, tg = ya[:, keep], va[:, keep], tg[keep]
    else:
        root[idx] = t
    return root, ok


# ---------------------------------------------------------------------------------------------
# tau^2 estimators
# ---------------------------------------------------------------------------------------------
def _he(yc: NDArray, v: NDArray) -> NDArray:
    """Hedges' estimate (not truncated): metafor's HE and the start of Fisher scoring."""
    k = yc.shape[0]
    yPy = (yc * yc).sum(axis=0) - yc.sum(axis=0) ** 2 / k
    return (yPy - v.sum(axis=0) * (1.0 - 1.0 / k)) / (k - 1)


def _fisher_step(method: str, ya: NDArray, va: NDArray, t: NDArray, b1: NDArray, b2: NDArray):
    """The Fisher-scoring step of ML / REML / EB per column (``b1``, ``b2``: scratch arrays)."""
    k = ya.shape[0]
    w = np.add(va, t, out=b1)
    np.reciprocal(w, out=w)
    W = w.sum(axis=0)
    np.multiply(w, ya, out=b2)
    ybar = b2.sum(axis=0)
    ybar /= W
    r = np.subtract(ya, ybar, out=b2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method == "EB":
            r *= r
            r *= w
            return (r.sum(axis=0) * k / (k - 1) - k) / W
        r *= w
        r *= r
        pyy = r.sum(axis=0)
        w2 = np.multiply(w, w, out=b2)
        W2 = w2.sum(axis=0)
        if method == "ML":
            return (pyy - W) / W2
        w2 *= w
        W3 = w2.sum(axis=0)
        W2W = W2 / W
        return (pyy - (W - W2W)) / (W2 - 2.0 * W3 / W + W2W * W2W)


def _fisher_scoring(
    method: str,
    yc: NDArray,
    v: NDArray,
    t0: NDArray,
    it0: NDArray,
    tol: float,
    maxiter: int,
    park_after: int | None = None,
) -> tuple[NDArray, NDArray, NDArray]:
    """ML / REML / EB Fisher scoring per column from the state (``t0``, ``it0``).

    The rules are those of :func:`hairtrial.models.tau2.estimate_tau2`: a non-finite step is
    0, a step that would make tau2 negative is halved until it does not, a column stops when
    ``|change| <= tol * max(1, tau2)`` and fails when its iteration ``maxiter + 1`` is done.
    With ``park_after`` a column still running after that many iterations is returned
    unfinished (to be resumed later with the columns of other chunks). Finished columns are
    dropped from the working set once an eighth of it has finished.

    Returns
    -------
    t, iterations, status
        Per column; status 1 converged, 2 failed (fallback needed), 0 parked.
    """
    k, n = yc.shape
    t = t0.copy()
    it = it0.copy()
    status = np.zeros(n, dtype=np.int8)
    idx = np.arange(n)
    alive = np.ones(n, dtype=bool)
    ya, va, ta, ita = yc, v, t0.copy(), it0.copy()
    flat1, flat2 = np.empty(k * n), np.empty(k * n)
    while True:
        m = ta.size
        ita += 1
        adj = _fisher_step(
            method, ya, va, ta, flat1[: k * m].reshape(k, m), flat2[: k * m].reshape(k, m)
        )
        adj[~(np.isfinite(adj) & alive)] = 0.0
        # step halving (tau2.min = 0); from t = 0 a negative step halves down to -0.0
        adj[(ta == 0.0) & (adj < 0.0)] = 0.0
        neg = np.flatnonzero(ta + adj < 0.0)
        while neg.size:
            adj[neg] /= 2.0
            neg = neg[ta[neg] + adj[neg] < 0.0]
        new = ta + adj
        failed = ita > maxiter
        out = alive & ((np.abs(ta - new) <= tol * np.maximum(1.0, new)) | failed)
        status[idx[out]] = np.where(failed[out], 2, 1)
        if park_after is not None and ita[0] >= park_after:
            out = alive
        if out.any():
            t[idx[out]] = new[out]
            it[idx[out]] = ita[out]
            alive &= ~out
        ta = new
        n_alive = int(alive.sum())
        if n_alive == 0:
            break
        if 8 * (m - n_alive) >= m:
            idx, ta, ita = idx[alive], ta[alive], ita[alive]
            ya, va = ya[:, alive], va[:, alive]
            alive = np.ones(n_alive, dtype=bool)
    return t, it, status


def _iterative_tau2(
    y: NDArray, v: NDArray, method: str, tol: float, maxiter: int, chunk_size: int
) -> dict[str, NDArray]:
    """ML / REML / EB for every row of (n, k) ``y``, ``v``: Fisher scoring and fallback.

    Chunks run ``_PARK_AFTER`` iterations; replicates still running are pooled across chunks
    and finished together (so the long tail of slow or oscillating replicates costs its
    iterations once per pool, not once per chunk). Returns tau2 before ll0check, iterations,
    fallback and converged (False only where the fallback failed).
    """
    n, k = y.shape
    tau2 = np.empty(n)
    iters = np.zeros(n, dtype=np.int64)
    fallback = np.zeros(n, dtype=bool)
    converged = np.ones(n, dtype=bool)
    pool: list[NDArray] = []

    def finish(rows: NDArray, yT: NDArray, vT: NDArray, t0: NDArray, it0: NDArray) -> NDArray:
        yc = yT - yT.mean(axis=0)
        park = _PARK_AFTER if it0.size and it0[0] == 0 else None
        t, it, status = _fisher_scoring(method, yc, vT, t0, it0, tol, maxiter, park)
        tau2[rows], iters[rows] = t, it
        bad = status == 2
        if bad.any():
            q0, _, _ = _rss(yc[:, bad], 1.0 / vT[:, bad])
            tau2[rows[bad]], converged[rows[bad]] = _fallback(method, yc[:, bad], vT[:, bad], q0)
            fallback[rows[bad]] = True
        return rows[status == 0]

    def flush() -> None:
        rows = np.concatenate(pool)
        pool.clear()
        yT, vT = np.ascontiguousarray(y[rows].T), np.ascontiguousarray(v[rows].T)
        finish(rows, yT, vT, tau2[rows], iters[rows])

    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        yT = np.ascontiguousarray(y[start:stop].T)
        vT = np.ascontiguousarray(v[start:stop].T)
        init = np.maximum(0.0, _he(yT - yT.mean(axis=0), vT))
        parked = finish(np.arange(start, stop), yT, vT, init, np.zeros(stop - start, np.int64))
        if parked.size:
            pool.append(parked)
        if sum(p.size for p in pool) >= chunk_size:
            flush()
    if pool:
        flush()
    return {"tau2": tau2, "iterations": iters, "fallback": fallback, "converged": converged}


def _loglik(yc: NDArray, v: NDArray, tau2: NDArray | float, method: str) -> NDArray:
    """ML / REML log-likelihood per column, as the scalar ll0check (no metafor REMLf term)."""
    k = yc.shape[0]
    vt = v + tau2
    rss, _, W = _rss(yc, 1.0 / vt)
    if method == "REML":
        const = -0.5 * (k - 1) * np.log(2 * np.pi)
        return const - 0.5 * np.log(vt).sum(axis=0) - 0.5 * np.log(W) - 0.5 * rss
    return -0.5 * k * np.log(2 * np.pi) - 0.5 * np.log(vt).sum(axis=0) - 0.5 * rss


def _loglik_diff(yc: NDArray, v: NDArray, tau2: NDArray, method: str) -> NDArray:
    """logLik(tau2 = 0) - logLik(tau2), as in metafor's ll0check."""
    return _loglik(yc, v, 0.0, method) - _loglik(yc, v, tau2, method)


def _score(yc: NDArray, v: NDArray, t: NDArray, method: str) -> NDArray:
    """Twice the ML / REML score in tau2 (the Fisher-scoring numerator) per column."""
    w = 1.0 / (v + t)
    _, r, W = _rss(yc, w)
    wr = w * r
    if method == "REML":
        return (wr * wr).sum(axis=0) - (W - (w * w).sum(axis=0) / W)
    return (wr * wr).sum(axis=0) - W


def _fallback(method: str, yc: NDArray, v: NDArray, q0: NDArray) -> tuple[NDArray, NDArray]:
    """Solve ML / REML / EB directly where Fisher scoring did not converge (per column).

    The fallback of :func:`hairtrial.models.tau2.estimate_tau2`: EB solves its estimating
    equation ``Q(tau2) = k - 1`` (0 when ``Q(0) <= k - 1``); ML / REML take the global maximum
    of the log-likelihood on the grid ``0, scale * logspace(-8, 4, 241)`` (``scale`` the
    largest of ``var(yi)``, ``max(vi)`` and 1e-12), 0 when that is the first point and the
    score at 0 is not positive, otherwise the root of the score between the grid neighbours
    (found here by bisection to the last bit, where the scalar code uses Brent's method);
    when the neighbours do not bracket a root the grid point is returned, not converged.
    Returns (tau2, converged).
    """
    k, m = yc.shape
    if method == "EB":
        tau2 = np.zeros(m)
        conv = np.ones(m, dtype=bool)
        solve = ~(q0 <= k - 1)
        if solve.any():
            root, ok = _q_root(yc[:, solve], v[:, solve], np.full(int(solve.sum()), k - 1.0))
            tau2[solve], conv[solve] = root, ok
        return tau2, conv
    scale = np.maximum(np.maximum(((yc - yc.mean(axis=0)) ** 2).mean(axis=0), v.max(axis=0)), 1e-12)
    steps = np.concatenate([[0.0], np.logspace(-8, 4, 241)])
    best = np.full(m, -np.inf)
    arg = np.zeros(m, dtype=np.int64)
    for g, step in enumerate(steps):
        ll = _loglik(yc, v, scale * step, method)
        better = ll > best
        best = np.where(better, ll, best)
        arg[better] = g
    cols = np.arange(m)
    tau2 = scale * steps[arg]
    conv = np.ones(m, dtype=bool)
    at0 = arg == 0
    if at0.any():
        at0[at0] = _score(yc[:, at0], v[:, at0], np.zeros(int(at0.sum())), method) <= 0
    tau2[at0] = 0.0
    rest = cols[~at0]
    if rest.size:
        lo = scale[rest] * steps[np.maximum(arg[rest] - 1, 0)]
        hi = scale[rest] * steps[np.minimum(arg[rest] + 1, steps.size - 1)]
        ya, va = yc[:, rest], v[:, rest]
        bracket = (_score(ya, va, lo, method) > 0) & (_score(ya, va, hi, method) < 0)
        conv[rest[~bracket]] = False
        for _ in range(2200):  # bisection to adjacent floats (lo may be 0)
            mid = 0.5 * (lo + hi)
            open_ = bracket & (mid > lo) & (mid < hi)
            if not open_.any():
                break
            up = _score(ya, va, mid, method) > 0
            lo = np.where(open_ & up, mid, lo)
            hi = np.where(open_ & ~up, mid, hi)
        tau2[rest[bracket]] = 0.5 * (lo + hi)[bracket]
    return tau2, conv


def _tau2_chunk(
    method: str,
    y: NDArray,
    yc: NDArray,
    v: NDArray,
    base: dict[str, NDArray],
    state: dict[str, NDArray],
    tol: float,
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """tau2, se, converged, iterations, fallback for one chunk (k >= 2, arrays (k, n)).

    ``state`` holds the Fisher-scoring results of the chunk's replicates (ML / REML / EB).
    """
    k, n = y.shape
    df = k - 1
    converged = np.ones(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    fallback = np.zeros(n, dtype=bool)
    q_raw, W0, trP0 = base["q_raw"], base["W0"], base["trP0"]
    if method == "DL":
        tau2 = np.maximum(0.0, (q_raw - df) / trP0)
        trPP0 = _pp_sum(base["w0"], W0, 1.0, 1.0)
        se = np.sqrt(1 / trP0**2 * (2 * df + 4 * tau2 * trP0 + 2 * tau2**2 * trPP0))
    elif method == "HS":
        tau2 = np.maximum(0.0, (q_raw - k) / W0)
        trPP0 = _pp_sum(base["w0"], W0, 1.0, 1.0)
        se = np.sqrt(1 / W0**2 * (2 * df + 4 * tau2 * trP0 + 2 * tau2**2 * trPP0))
    elif method == "SJ":
        tau0 = ((y - y.mean(axis=0)) ** 2).sum(axis=0) / (k - 1) * (k - 1) / k
        w = 1.0 / (v + tau0)
        rss, _, W = _rss(yc, w)
        tau2 = np.maximum(0.0, tau0 * rss / df)
        se = np.sqrt(
            tau0**2
            / df**2
            * (
                2 * _pp_sum(w, W, v, v)
                + 4 * tau2 * _pp_sum(w, W, 1.0, v)
                + 2 * tau2**2 * _pp_sum(w, W, 1.0, 1.0)
            )
        )
    elif method == "PM":
        tau2 = np.zeros(n)
        solve = ~(q_raw - df < 0)
        if solve.any():
            root, ok = _q_root(yc[:, solve], v[:, solve], np.full(int(solve.sum()), float(df)))
            tau2[solve] = root
            converged[solve] = ok
        W = (1.0 / (v + tau2)).sum(axis=0)
        se = np.sqrt(2 * k**2 / df / W**2)
    elif method == "HE":
        sum_v = v.sum(axis=0)
        trPV1 = sum_v * (1.0 - 1.0 / k)
        tau2 = np.maximum(0.0, _he(yc, v))
        s_vv = (v * v).sum(axis=0) * (1.0 - 2.0 / k) + sum_v**2 / k**2
        se = np.sqrt(1 / df**2 * (2 * s_vv + 4 * tau2 * trPV1 + 2 * tau2**2 * df))
    else:  # ML, REML, EB: Fisher scoring done by _iterative_tau2
        tau2 = state["tau2"].copy()
        iters, fallback = state["iterations"], state["fallback"]
        converged = state["converged"].copy()
        if method in ("ML", "REML") and converged.any():
            d = _loglik_diff(yc[:, converged], v[:, converged], tau2[converged], method)
            sub = tau2[converged]
            sub[(d > _LL0_TOL) & (sub > tol)] = 0.0
            tau2[converged] = sub
        tau2 = np.maximum(0.0, tau2)
        w = 1.0 / (v + tau2)
        if method == "ML":
            se = np.sqrt(2 / (w * w).sum(axis=0))
        elif method == "REML":
            se = np.sqrt(2 / _pp_sum(w, w.sum(axis=0), 1.0, 1.0))
        else:
            se = np.sqrt(2 * k**2 / df / w.sum(axis=0) ** 2)
    return tau2, se, converged, iters, fallback


def _qprofile_chunk(
    yc: NDArray, v: NDArray, q0: NDArray, level: float
) -> tuple[NDArray, NDArray, NDArray]:
    """Q-profile CI bounds (as :func:`hairtrial.models.tau2.tau2_ci_qprofile`) per column."""
    k, n = yc.shape
    alpha = 1 - level
    crit_u = float(dist.chi2_isf(alpha / 2, k - 1))
    crit_l = float(dist.chi2_ppf(alpha / 2, k - 1))
    lower = np.zeros(n)
    upper = np.zeros(n)
    converged = np.ones(n, dtype=bool)
    for bound, crit, rows in (
        (upper, crit_l, ~(q0 < crit_l)),
        (lower, crit_u, ~(q0 < crit_l) & ~(q0 < crit_u)),
    ):
        if rows.any():
            root, ok = _q_root(yc[:, rows], v[:, rows], np.full(int(rows.sum()), crit))
            bound[rows] = root
            converged[rows] &= ok
    return lower, upper, converged


# ---------------------------------------------------------------------------------------------
# one chunk
# ---------------------------------------------------------------------------------------------
def _fit_chunk(
    y: NDArray,
    v: NDArray,
    method: str,
    ci_method: str,
    level: float,
    tau2_ci: bool,
    weights: bool,
    state: dict[str, NDArray],
    tol: float,
) -> dict[str, NDArray]:
    """Fit one chunk; ``y``, ``v`` are (k, n) arrays. Returns the fields of BatchedResult.

    ``state``: the chunk's slice of :func:`_iterative_tau2` (ML / REML / EB), else empty.
    """
    k, n = y.shape
    nan = np.full(n, np.nan)
    is_fe = method == "FE"
    out: dict[str, NDArray] = {}
    converged = np.ones(n, dtype=bool)
    iters = np.zeros(n, dtype=np.int64)
    fallback = np.zeros(n, dtype=bool)
    tau2 = np.zeros(n)
    tau2_se = nan
    base: dict[str, NDArray] = {}
    yc = y - y.mean(axis=0)
    if k > 1:
        w0 = 1.0 / v
        q_raw, _, W0 = _rss(yc, w0)
        base = {"w0": w0, "W0": W0, "q_raw": q_raw, "trP0": W0 - (w0 * w0).sum(axis=0) / W0}
        if not is_fe:
            tau2, tau2_se, converged, iters, fallback = _tau2_chunk(
                method, y, yc, v, base, state, tol
            )

    # fixed effect
    wi = 1.0 / (v + tau2)
    W = wi.sum(axis=0)
    vb = 1.0 / W
    beta = vb * (wi * y).sum(axis=0)
    resid = y - beta
    rss = (wi * resid * resid).sum(axis=0)
    knha = ci_method in ("knha", "adhoc")
    alpha = 1 - level
    s2w = np.ones(n)
    if knha and k > 1:
        s2w = np.where(rss <= _EPS, 0.0, rss / (k - 1))
        if ci_method == "adhoc":
            s2w = np.maximum(1.0, s2w)
    vb = s2w * vb
    se = np.sqrt(vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    if knha and k == 1:
        crit = np.nan
        pval = nan
        zval = nan
    elif knha:
        crit = float(dist.t_isf(alpha / 2, k - 1))
        pval = 2 * scipy.special.stdtr(k - 1, -np.abs(zval))
    else:
        crit = float(dist.norm_isf(alpha / 2))
        pval = 2 * scipy.special.ndtr(-np.abs(zval))
    pi_half = crit * np.sqrt(vb + tau2)
    out.update(
        estimate=beta,
        se=se,
        statistic=zval,
        pvalue=pval,
        ci_lower=beta - crit * se,
        ci_upper=beta + crit * se,
        pi_lower=beta - pi_half,
        pi_upper=beta + pi_half,
        s2w=s2w,
        tau2=tau2,
        tau2_se=tau2_se,
    )

    # heterogeneity
    if k > 1:
        Q = np.maximum(0.0, base["q_raw"])
        vt = (k - 1) / base["trP0"]
        if is_fe:
            with np.errstate(divide="ignore", invalid="ignore"):
                I2 = np.where(Q > 0, np.maximum(0.0, 100 * (Q - (k - 1)) / Q), 0.0)
            H2 = Q / (k - 1)
        else:
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
        out.update(Q=Q, Q_pvalue=scipy.special.chdtrc(k - 1, Q), vt=vt, I2=I2, H2=H2)
    else:
        out.update(Q=nan, Q_pvalue=nan, vt=nan, I2=nan, H2=nan)

    lower = upper = nan
    if tau2_ci and not is_fe and k > 1:
        lower, upper, ok = _qprofile_chunk(yc, v, base["q_raw"], level)
        converged = converged & ok
    out.update(
        tau2_ci_lower=lower,
        tau2_ci_upper=upper,
        converged=converged,
        iterations=iters,
        fallback=fallback,
    )
    if weights:
        out["weights"] = (100 * wi / W).T
    return out


def _check_args(method: str, ci_method: str, level: float, chunk_size: int) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1), e.g. 0.95")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")


def _result(method: str, ci_method: str, k: int, level: float, arrays: dict) -> BatchedResult:
    n = arrays["estimate"].shape[0]
    df = float(k - 1) if ci_method in ("knha", "adhoc") and k > 1 else float("nan")
    return BatchedResult(
        method=method,
        ci_method=ci_method,
        level=level,
        k=np.full(n, k, dtype=np.int64),
        df=np.full(n, df),
        Q_df=np.full(n, k - 1, dtype=np.int64),
        **arrays,
    )


def _fit_masked(
    yi: ArrayLike, vi: ArrayLike, mask: ArrayLike, method: str, ci_method: str, **kwargs
) -> BatchedResult:
    """Unequal k: fit the replicates of each k together (used entries moved to the left)."""
    m = np.asarray(mask, dtype=bool)
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if m.ndim == 1:
        m, y, v = m[None, :], np.atleast_2d(y), np.atleast_2d(v)
    if m.shape != y.shape or m.shape != v.shape:
        raise ValueError(f"mask must have the shape of yi and vi ({m.shape} vs {y.shape})")
    y, v = _coerce(np.where(m, y, 0.0), np.where(m, v, 1.0))  # unused entries may be NaN
    counts = m.sum(axis=1)
    if np.any(counts == 0):
        rows = np.flatnonzero(counts == 0)[:10].tolist()
        raise ValueError(f"replicates without studies (mask all False): {rows}")
    n, kmax = y.shape
    out: dict[str, NDArray] = {}
    for kk in np.unique(counts):
        rows = np.flatnonzero(counts == kk)
        sel = m[rows]
        part = fit_batched(
            y[rows][sel].reshape(rows.size, kk),
            v[rows][sel].reshape(rows.size, kk),
            method=method,
            ci_method=ci_method,
            **kwargs,
        )
        for name in ("k", "df", "Q_df", *ARRAY_FIELDS):
            val = getattr(part, name)
            if name not in out:
                out[name] = np.empty(n, dtype=val.dtype)
            out[name][rows] = val
        if part.weights is not None:
            if "weights" not in out:
                out["weights"] = np.full((n, kmax), np.nan)
            block = out["weights"][rows]
            block[sel] = part.weights.ravel()
            out["weights"][rows] = block
    return BatchedResult(method=method, ci_method=ci_method, level=kwargs["level"], **out)


def fit_batched(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
    tau2_ci: bool = True,
    weights: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    tol: float = 1e-12,
    maxiter: int = 1000,
    mask: ArrayLike | None = None,
) -> BatchedResult:
    """Fit the intercept-only model of :func:`hairtrial.models.univariate.fit` to every row.

    Parameters
    ----------
    yi, vi : array_like, shape (replicates, k)
        Effect sizes and sampling variances, one data set per row, all with the same k
        unless ``mask`` is given (a 1-D array is one replicate); finite, ``vi > 0``.
    method : {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        Common-effect model or tau^2 estimator, as in ``fit``.
    ci_method : {"z", "knha", "adhoc"}
        Wald, Hartung-Knapp or ad hoc Hartung-Knapp inference, as in ``fit``.
    level : float
        Confidence level of every interval.
    tau2_ci : bool
        Compute the Q-profile CI of tau^2 (NaN otherwise; it costs two root searches).
    weights : bool
        Also return the percent weights (replicates x k).
    chunk_size : int
        Replicates fitted at once; working memory is proportional to ``chunk_size * k``.
    tol, maxiter : float, int
        Fisher-scoring stopping rule and iteration limit, as
        :func:`hairtrial.models.tau2.estimate_tau2` (whose defaults ``fit`` uses).
    mask : array_like of bool, shape (replicates, k), optional
        Unequal numbers of studies: True marks the studies of each replicate (other entries
        are ignored and may be NaN). Replicates are grouped by their k and each group is
        fitted as above (costs a copy of the inputs).

    Returns
    -------
    BatchedResult
        One entry per replicate in every array field.

    Raises
    ------
    ValueError
        Mismatched shapes, k = 0, no rows, a replicate without studies, non-finite values,
        ``vi <= 0``, unknown method or level outside (0, 1).

    See Also
    --------
    hairtrial.models.univariate.fit : the scalar model; row ``i`` of the result equals
        ``fit(yi[i], vi[i], method=method, ci_method=ci_method, level=level)`` to rounding.

    Examples
    --------
    >>> res = fit_batched([[0.1, 0.5, -0.2, 0.9]], [[0.02, 0.03, 0.05, 0.04]], method="DL")
    >>> round(float(res.estimate[0]), 6), round(float(res.tau2[0]), 6)
    (0.327269, 0.155211)
    >>> y = [[0.1, 0.5, -0.2, 0.9], [0.1, 0.5, -0.2, float("nan")]]
    >>> v = [[0.02, 0.03, 0.05, 0.04]] * 2
    >>> fit_batched(y, v, mask=[[True] * 4, [True] * 3 + [False]]).k.tolist()
    [4, 3]
    """
    _check_args(method, ci_method, level, chunk_size)
    if mask is not None:
        return _fit_masked(
            yi,
            vi,
            mask,
            method,
            ci_method,
            level=level,
            tau2_ci=tau2_ci,
            weights=weights,
            chunk_size=chunk_size,
            tol=tol,
            maxiter=maxiter,
        )
    y, v = _coerce(yi, vi)
    n, k = y.shape
    iterative: dict[str, NDArray] = {}
    if method in ("ML", "REML", "EB") and k > 1:
        iterative = _iterative_tau2(y, v, method, tol, maxiter, chunk_size)
    arrays: dict[str, NDArray] = {}
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        yT = np.ascontiguousarray(y[start:stop].T)
        vT = np.ascontiguousarray(v[start:stop].T)
        state = {name: val[start:stop] for name, val in iterative.items()}
        part = _fit_chunk(yT, vT, method, ci_method, level, tau2_ci, weights, state, tol)
        if not arrays:
            arrays = {
                name: np.empty((n, *val.shape[1:]), dtype=val.dtype) for name, val in part.items()
            }
        for name, val in part.items():
            arrays[name][start:stop] = val
    return _result(method, ci_method, k, level, arrays)
