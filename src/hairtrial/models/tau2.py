"""Between-study variance (tau^2) estimators, as defined by metafor 3.8 ``rma.uni``.

All functions take a general fixed-effects design matrix ``X`` (k x p; ``None`` means the
intercept-only model ``X = ones((k, 1))``) so that meta-regression can reuse them.

The estimators follow metafor 3.8-1 (``metafor::rma.uni``, ``metafor:::.QE.func``,
``metafor::confint.rma.uni``) line by line, including its details:

* every estimator works on the mean-centred outcomes ``yi - mean(yi)`` (identical to using
  ``yi`` whenever ``X`` contains an intercept, which is the only case hairtrial uses; for a
  design without an intercept this reproduces metafor, not the textbook formula);
* negative estimates are truncated at 0 (``tau2.min = 0``);
* ML / REML / EB use Fisher scoring started at metafor's default ``tau2.init`` (the
  Hedges-type estimate, truncated at 0), with metafor's step-halving to keep tau^2 >= 0 and,
  for ML / REML, metafor's ``ll0check`` (if the log-likelihood at tau^2 = 0 exceeds the one
  at the solution by more than ``eps**0.25``, tau^2 is set to 0);
* PM and the Q-profile confidence interval use a bracketing root finder (Brent); unlike
  metafor, the upper end of the bracket is expanded automatically instead of being capped at
  ``tau2.max`` (hair-count mean differences have tau^2 in the hundreds).

Deliberate differences from metafor: the Fisher-scoring stopping rule is
``|change| <= tol * max(1, tau2)`` with ``tol = 1e-12`` and ``maxiter = 1000`` (metafor:
``|change| <= 1e-5``, 100 iterations; the relative form keeps the rule attainable in double
precision when tau^2 is large); non-convergence is reported through ``converged=False`` and
a note instead of an error.

References
----------
.. [1] DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Controlled Clinical
   Trials 7:177-188.
.. [2] Paule RC, Mandel J (1982). Consensus values and weighting factors. Journal of Research
   of the National Bureau of Standards 87:377-385.
.. [3] Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for
   meta-analysis. Journal of the Royal Statistical Society C 54:367-384.
.. [4] Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
   random-effects model. Journal of Educational and Behavioral Statistics 30:261-293.
.. [5] Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
   meta-analysis. Statistics in Medicine 26:37-52.
.. [6] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy  # scipy.optimize and scipy.linalg load on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist

__all__ = [
    "TAU2_METHODS",
    "Tau2CI",
    "Tau2Estimate",
    "as_design",
    "STACK_METHODS",
    "estimate_tau2",
    "estimate_tau2_stack",
    "q_statistic",
    "tau2_ci_qprofile",
    "validate_inputs",
]

#: tau^2 estimators implemented (metafor 3.8 spelling).
TAU2_METHODS: tuple[str, ...] = ("DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

_EVTOL = 1e-7  # metafor's con$evtol: smallest eigenvalue of X'X accepted
_LL0_TOL = np.finfo(float).eps ** 0.25  # metafor's default con$tol, used by ll0check
_ROOT_XTOL = 1e-14
_ROOT_MAXITER = 1000


@dataclass(frozen=True)
class Tau2Estimate:
    """Result of a tau^2 estimation.

    Attributes
    ----------
    method : str
        Estimator (metafor spelling).
    tau2 : float
        Estimate, truncated at 0.
    se : float
        Standard error as metafor's ``se.tau2``.
    converged : bool
        False when the iterative estimator (ML/REML/EB Fisher scoring, PM root) failed.
    iterations : int
        Fisher-scoring iterations (0 for non-iterative estimators).
    notes : tuple of str
        Human-readable remarks (boundary, non-convergence, ll0check).
    """

    method: str
    tau2: float
    se: float
    converged: bool = True
    iterations: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tau2CI:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007).

    Attributes
    ----------
    lower, upper : float
        Bounds (0 when the corresponding bound is truncated at the boundary).
    converged : bool
        False when a root search failed.
    notes : tuple of str
        Remarks (bounds at 0, failures).
    """

    lower: float
    upper: float
    converged: bool = True
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# input handling and linear algebra
# ---------------------------------------------------------------------------------------------
def validate_inputs(
    yi: ArrayLike, vi: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Check and convert effect sizes and sampling variances.

    Parameters
    ----------
    yi, vi : array_like
        One-dimensional, equally long, finite; ``vi`` strictly positive.

    Returns
    -------
    yi, vi : ndarray of float64

    Raises
    ------
    ValueError
        On empty, mismatched, non-finite input or ``vi <= 0``.

    Examples
    --------
    >>> validate_inputs([0.1, 0.2], [0.01, 0.02])[0]
    array([0.1, 0.2])
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or v.ndim != 1:
        raise ValueError("yi and vi must be one-dimensional")
    if y.shape != v.shape:
        raise ValueError(f"yi and vi differ in length ({y.size} vs {v.size})")
    if y.size == 0:
        raise ValueError("no studies (k = 0)")
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"yi contains non-finite values at positions {np.flatnonzero(~np.isfinite(y)).tolist()}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(
            f"vi contains non-finite values at positions {np.flatnonzero(~np.isfinite(v)).tolist()}"
        )
    if np.any(v <= 0):
        bad = np.flatnonzero(v <= 0).tolist()
        raise ValueError(f"sampling variances must be > 0; vi <= 0 at positions {bad}")
    return y, v


def as_design(X: ArrayLike | None, k: int) -> NDArray[np.float64]:
    """Return the k x p design matrix (``None`` -> intercept only) after checking it.

    Parameters
    ----------
    X : array_like or None
        Design matrix (a 1-D array is taken as a single column).
    k : int
        Number of studies.

    Returns
    -------
    ndarray, shape (k, p)

    Raises
    ------
    ValueError
        Wrong shape, non-finite entries or not of full column rank (metafor's check: an
        eigenvalue of X'X <= 1e-7).

    Examples
    --------
    >>> as_design(None, 3).shape
    (3, 1)
    """
    if X is None:
        return np.ones((k, 1))
    Xa = np.asarray(X, dtype=float)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2 or Xa.shape[0] != k:
        raise ValueError(f"X must have shape (k, p) with k = {k}; got {Xa.shape}")
    if Xa.shape[1] == 0:
        raise ValueError("X has no columns")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X contains non-finite values")
    if np.any(np.linalg.eigvalsh(Xa.T @ Xa) <= _EVTOL):
        raise ValueError("design matrix X is not of full column rank")
    return Xa


def _proj(X: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    """P = W - W X (X'WX)^-1 X'W for diagonal W = diag(w)."""
    WX = X * w[:, None]
    return np.diag(w) - WX @ np.linalg.solve(X.T @ WX, WX.T)


def _centre(yi: NDArray[np.float64]) -> NDArray[np.float64]:
    return yi - yi.mean()


def q_statistic(tau2: float, yi: ArrayLike, vi: ArrayLike, X: ArrayLike | None = None) -> float:
    """Generalised Q statistic ``(y - Xb)' W (y - Xb)`` with ``W = diag(1/(vi + tau2))``.

    At ``tau2 = 0`` this is Cochran's Q (metafor's QE); as a function of tau2 it is the
    Q-profile used by the PM estimator and the Q-profile CI (metafor's ``.QE.func``).

    Parameters
    ----------
    tau2 : float
        Value of tau^2 (>= 0).
    yi, vi : array_like
        Effect sizes and sampling variances.
    X : array_like or None
        Design matrix (None: intercept only).

    Returns
    -------
    float

    References
    ----------
    DerSimonian & Laird (1986); Viechtbauer (2007). Full citations in the module docstring.

    Examples
    --------
    >>> round(q_statistic(0.0, [0.0, 2.0], [1.0, 1.0]), 12)
    2.0
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    Xa = np.ones((y.size, 1)) if X is None else np.asarray(X, dtype=float).reshape(y.size, -1)
    P = _proj(Xa, 1.0 / (v + tau2))
    return float(y @ P @ y)


# ---------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------
def _root_decreasing(
    f: Callable[[float], float], lo: float, hi0: float
) -> tuple[float, bool, str | None]:
    """Root of a decreasing f on [lo, inf) with f(lo) >= 0: expand hi until f(hi) <= 0."""
    hi = max(hi0, 1.0)
    for _ in range(200):
        if f(hi) <= 0:
            break
        hi *= 10.0
    else:  # pragma: no cover - Q(tau2) -> 0 as tau2 -> inf, so this needs absurd inputs
        return float("nan"), False, "could not bracket the root (upper bound grew beyond 1e200)"
    try:
        root, info = scipy.optimize.brentq(
            f, lo, hi, xtol=_ROOT_XTOL, maxiter=_ROOT_MAXITER, full_output=True, disp=False
        )
    except (ValueError, RuntimeError) as exc:  # pragma: no cover - defensive
        return float("nan"), False, f"root search failed: {exc}"
    if not info.converged:  # pragma: no cover - Brent converges well within 1000 steps
        return float(root), False, f"root search did not converge ({info.flag})"
    return float(root), True, None


def _loglik(
    yc: NDArray[np.float64], v: NDArray[np.float64], X: NDArray[np.float64], tau2: float, reml: bool
) -> float:
    """ML / REML log-likelihood as in metafor's ll0check (without the REMLf constant)."""
    k, p = X.shape
    w = 1.0 / (v + tau2)
    XtWX = X.T @ (X * w[:, None])
    beta = np.linalg.solve(XtWX, X.T @ (w * yc))
    rss = float(np.sum(w * (yc - X @ beta) ** 2))
    if reml:
        logdet = np.linalg.slogdet(XtWX)[1]
        return (
            -0.5 * (k - p) * math.log(2 * math.pi)
            - 0.5 * float(np.sum(np.log(v + tau2)))
            - 0.5 * logdet
            - 0.5 * rss
        )
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(v + tau2))) - 0.5 * rss


def _fallback(
    method: str,
    yc: NDArray[np.float64],
    v: NDArray[np.float64],
    X: NDArray[np.float64],
    change: float,
    maxiter: int,
) -> tuple[float, bool, str]:
    """Solve ML/REML/EB directly when Fisher scoring oscillates.

    ML / REML: the (restricted) log-likelihood is maximised over tau2 >= 0 by a
    log-spaced grid (to find the global maximum) refined with a bounded Brent
    search. EB: its estimating equation is y'P(tau2)y = k - p, the Paule-Mandel
    equation, solved by a bracketing root finder. metafor stops with an error
    in these cases.
    """
    head = (
        f"{method} Fisher scoring did not converge in {maxiter} iterations "
        f"(last change {change:.3g})"
    )
    k, p = X.shape
    if method == "EB":
        if q_statistic(0.0, yc, v, X) <= k - p:
            return 0.0, True, f"{head}; EB equation solved directly: tau2 = 0"
        t, ok, msg = _root_decreasing(lambda t: q_statistic(t, yc, v, X) - (k - p), 0.0, 1.0)
        return (
            t,
            ok,
            f"{head}; tau2 from solving the EB (= PM) equation directly"
            + ("" if ok else f" ({msg})"),
        )
    reml = method == "REML"

    def score(t: float) -> float:  # d logLik / d tau2 (x 2), as in the Fisher-scoring numerator
        w = 1.0 / (v + t)
        P = _proj(X, w)
        Py = P @ yc
        return float(Py @ Py) - (float(np.trace(P)) if reml else float(np.sum(w)))

    scale = max(float(np.var(yc)), float(np.max(v)), 1e-12)
    grid = np.concatenate([[0.0], scale * np.logspace(-8, 4, 241)])
    ll = np.array([_loglik(yc, v, X, float(t), reml) for t in grid])
    i = int(np.argmax(ll))
    if i == 0 and score(0.0) <= 0:
        return 0.0, True, f"{head}; the {method} likelihood is maximal at tau2 = 0"
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    if not (score(lo) > 0 > score(hi)):
        return float(grid[i]), False, f"{head}; direct maximisation could not bracket the maximum"
    t = scipy.optimize.brentq(score, lo, hi, xtol=_ROOT_XTOL, maxiter=_ROOT_MAXITER)
    return float(t), True, f"{head}; tau2 from solving the {method} score equation directly"


def _require_studies(k: int, p: int) -> None:
    if p + 1 > k:
        raise ValueError(
            f"tau2 cannot be estimated: k = {k} studies for p = {p} coefficients (need k >= p + 1)"
        )


#: Methods :func:`estimate_tau2_stack` fits for a stack of designs (the iterative ones whose
#: refits dominate a permutation test); the others go one by one through estimate_tau2.
STACK_METHODS: tuple[str, ...] = ("ML", "REML")


def _t(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Transpose each matrix of a stack."""
    return np.swapaxes(a, -1, -2)


def _proj_stack(Xs: NDArray[np.float64], w: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`_proj` of each design of a stack (n, k, p) with its weights (n, k)."""
    WX = Xs * w[:, :, None]
    P = -(WX @ np.linalg.solve(_t(Xs) @ WX, _t(WX)))
    i = np.arange(w.shape[1])
    P[:, i, i] += w
    return P


def _loglik_stack(
    yc: NDArray[np.float64],
    v: NDArray[np.float64],
    Xs: NDArray[np.float64],
    tau2: NDArray[np.float64],
    reml: bool,
) -> NDArray[np.float64]:
    """:func:`_loglik` of each design of a stack at its tau^2."""
    n, k, p = Xs.shape
    w = 1.0 / (v[None, :] + tau2[:, None])
    XtWX = _t(Xs) @ (Xs * w[:, :, None])
    beta = np.linalg.solve(XtWX, (_t(Xs) @ (w * yc[None, :])[:, :, None]))[:, :, 0]
    rss = np.sum(w * (yc[None, :] - (Xs @ beta[:, :, None])[:, :, 0]) ** 2, axis=1)
    logv = np.sum(np.log(v[None, :] + tau2[:, None]), axis=1)
    if reml:
        logdet = np.linalg.slogdet(XtWX)[1]
        return -0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * logv - 0.5 * logdet - 0.5 * rss
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * logv - 0.5 * rss


def estimate_tau2_stack(
    yi: ArrayLike,
    vi: ArrayLike,
    Xs: ArrayLike,
    method: str = "REML",
    *,
    tol: float = 1e-12,
    maxiter: int = 1000,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The tau^2 of :func:`estimate_tau2` for many designs of the same studies at once.

    For permutation tests, which refit one model with the rows of its design permuted over
    the studies hundreds of times: one call instead of a Python loop. The definitions are
    estimate_tau2's, written over a stack of designs: the start (the HE estimate truncated
    at 0), Fisher scoring with step halving at 0, a non-finite step taken as 0, the stopping
    rule ``|change| <= tol * max(1, tau2)``, metafor's ll0check. The numbers agree with
    estimate_tau2 to rounding (the sums run in another order); a design whose scoring
    reaches ``maxiter`` or meets a singular or non-finite step is left to estimate_tau2
    (``ok`` False), which decides it as it always does.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances of the k studies (as for estimate_tau2).
    Xs : array_like
        ``(n, k, p)`` designs, each of full column rank (as :func:`as_design` checks one;
        permuting its rows keeps the rank); k >= p + 1.
    method : {"ML", "REML"}
        :data:`STACK_METHODS`.
    tol, maxiter : float, int
        As for estimate_tau2.

    Returns
    -------
    tau2 : ndarray, shape (n,)
        The estimates (>= 0; NaN where ``ok`` is False).
    ok : ndarray of bool, shape (n,)
        False for the designs to fit with estimate_tau2 instead.
    """
    y, v = validate_inputs(yi, vi)
    X = np.asarray(Xs, dtype=float)
    k = y.size
    if X.ndim != 3 or X.shape[1] != k or X.shape[2] == 0:
        raise ValueError(f"Xs must have shape (n, k, p) with k = {k}; got {X.shape}")
    n, _, p = X.shape
    method = method.upper()
    if method not in STACK_METHODS:
        raise ValueError(f"stacked tau2 for {STACK_METHODS} only, not {method!r}")
    _require_studies(k, p)
    yc = _centre(y)
    tau2 = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return tau2, ok
    try:
        H = X @ np.linalg.solve(_t(X) @ X, _t(X))  # start: HE
        P1 = -H
        i = np.arange(k)
        P1[:, i, i] += 1.0
        he = (np.einsum("i,nij,j->n", yc, P1, yc) - P1[:, i, i] @ v) / (k - p)
    except np.linalg.LinAlgError:
        return tau2, ok
    t = np.maximum(0.0, he)
    active = np.isfinite(t)
    ok[:] = active
    iterations = 0
    while active.any():
        iterations += 1
        idx = np.flatnonzero(active)
        old = t[idx]
        w = 1.0 / (v[None, :] + old[:, None])
        try:
            P = _proj_stack(X[idx], w)
        except np.linalg.LinAlgError:
            ok[idx] = active[idx] = False
            break
        Py = P @ yc
        if method == "ML":
            adj = (np.sum(Py * Py, axis=1) - np.sum(w, axis=1)) / np.sum(w**2, axis=1)
        else:  # REML
            adj = (np.sum(Py * Py, axis=1) - np.trace(P, axis1=1, axis2=2)) / np.trace(
                P @ P, axis1=1, axis2=2
            )
        adj = np.where(np.isfinite(adj), adj, 0.0)
        below = old + adj < 0
        while below.any():  # metafor's step halving (tau2.min = 0)
            adj = np.where(below, adj / 2, adj)
            below = old + adj < 0
        new = old + adj
        t[idx] = new
        if iterations > maxiter:  # estimate_tau2's fallback decides these
            ok[idx] = active[idx] = False
            break
        active[idx] = np.abs(old - new) > tol * np.maximum(1.0, new)
        lost = idx[~np.isfinite(new)]  # estimate_tau2 decides these too
        ok[lost] = active[lost] = False
    conv = np.flatnonzero(ok)
    if conv.size:
        reml = method == "REML"
        try:
            ll0 = _loglik_stack(yc, v, X[conv], np.zeros(conv.size), reml)
            ll = _loglik_stack(yc, v, X[conv], t[conv], reml)
        except np.linalg.LinAlgError:
            ok[conv] = False
            return np.where(ok, np.maximum(0.0, t), np.nan), ok
        t[conv] = np.where((ll0 - ll > _LL0_TOL) & (t[conv] > tol), 0.0, t[conv])
        ok[conv] &= np.isfinite(ll0) & np.isfinite(ll)
    return np.where(ok, np.maximum(0.0, t), np.nan), ok


def estimate_tau2(
    yi: ArrayLike,
    vi: ArrayLike,
    X: ArrayLike | None = None,
    method: str = "REML",
    *,
    tol: float = 1e-12,
    maxiter: int = 1000,
) -> Tau2Estimate:
    """Estimate the between-study variance tau^2 as metafor 3.8 ``rma.uni`` does.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and (strictly positive) sampling variances, length k.
    X : array_like or None
        k x p design matrix; None for the intercept-only model.
    method : {"DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        DerSimonian-Laird, Hedges (unweighted method of moments), Hunter-Schmidt,
        Sidik-Jonkman, maximum likelihood, restricted ML, empirical Bayes, Paule-Mandel.
        (EB and PM solve the same estimating equation; metafor computes EB by Fisher scoring
        and PM by root finding.)
    tol : float
        Fisher-scoring stopping rule ``|change| <= tol * max(1, tau2)`` (ML, REML, EB).
    maxiter : int
        Maximum number of Fisher-scoring iterations.

    Returns
    -------
    Tau2Estimate
        ``tau2`` (>= 0), ``se`` (metafor's ``se.tau2``), ``converged``, ``iterations`` and
        ``notes``.

    Raises
    ------
    ValueError
        Invalid input, unknown method, or fewer than p + 1 studies.

    Notes
    -----
    With ``P(w) = W - W X (X'WX)^-1 X'W``, ``yc`` the centred outcomes and ``RSS = yc' P yc``:
    DL ``(RSS(1/vi) - (k-p)) / tr P(1/vi)``; HE ``(yc' P(1) yc - tr(P(1) V)) / (k-p)``; HS
    ``(RSS(1/vi) - k) / sum(1/vi)``; SJ ``tau0 RSS(1/(vi+tau0)) / (k-p)`` with
    ``tau0 = var(yi) (k-1)/k``; PM solves ``RSS(1/(vi+tau2)) = k - p``; ML/REML/EB are
    Fisher-scoring iterations on their score equations.

    References
    ----------
    DerSimonian & Laird (1986); Paule & Mandel (1982); Sidik & Jonkman (2005);
    Viechtbauer (2005, 2010). Full citations in the module docstring.

    Examples
    --------
    >>> est = estimate_tau2([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04], method="DL")
    >>> round(est.tau2, 6)
    0.155211
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    Xa = as_design(X, k)
    p = Xa.shape[1]
    method = method.upper()
    if method not in TAU2_METHODS:
        raise ValueError(f"unknown tau2 method {method!r}; choose one of {TAU2_METHODS}")
    _require_studies(k, p)

    yc = _centre(y)
    notes: list[str] = []
    converged = True
    iterations = 0
    se = float("nan")

    if method == "DL":
        w = 1.0 / v
        P = _proj(Xa, w)
        trP = float(np.trace(P))
        tau2 = max(0.0, (float(yc @ P @ yc) - (k - p)) / trP)
        se = math.sqrt(
            1 / trP**2 * (2 * (k - p) + 4 * tau2 * trP + 2 * tau2**2 * float(np.sum(P * P)))
        )
    elif method == "HS":
        w = 1.0 / v
        P = _proj(Xa, w)
        tau2 = max(0.0, (float(yc @ P @ yc) - k) / float(np.sum(w)))
        se = math.sqrt(
            1
            / float(np.sum(w)) ** 2
            * (2 * (k - p) + 4 * tau2 * float(np.trace(P)) + 2 * tau2**2 * float(np.sum(P * P)))
        )
    elif method == "SJ":
        tau0 = float(np.var(y, ddof=1)) * (k - 1) / k
        w = 1.0 / (v + tau0)
        P = _proj(Xa, w)
        PV = P * v[None, :]
        tau2 = max(0.0, tau0 * float(yc @ P @ yc) / (k - p))
        se = math.sqrt(
            tau0**2
            / (k - p) ** 2
            * (
                2 * float(np.sum(PV * PV.T))
                + 4 * tau2 * float(np.sum(PV * P))
                + 2 * tau2**2 * float(np.sum(P * P))
            )
        )
    elif method == "PM":
        target = float(k - p)

        def f(t: float) -> float:
            return float(yc @ _proj(Xa, 1.0 / (v + t)) @ yc) - target

        if f(0.0) < 0:
            tau2 = 0.0
        else:
            hi0 = max(100.0, 10.0 * float(np.var(y)))
            tau2, ok, msg = _root_decreasing(f, 0.0, hi0)
            if not ok:
                converged = False
                notes.append(f"PM estimator: {msg}")
        w = 1.0 / (v + tau2)
        se = math.sqrt(2 * k**2 / (k - p) / float(np.sum(w)) ** 2)
    else:  # HE, ML, REML, EB
        P1 = np.eye(k) - Xa @ np.linalg.solve(Xa.T @ Xa, Xa.T)
        PV1 = P1 * v[None, :]
        trPV1 = float(np.trace(PV1))
        tau2_he = (float(yc @ P1 @ yc) - trPV1) / (k - p)
        if method == "HE":
            tau2 = max(0.0, tau2_he)
            se = math.sqrt(
                1
                / (k - p) ** 2
                * (2 * float(np.sum(PV1 * PV1.T)) + 4 * tau2 * trPV1 + 2 * tau2**2 * (k - p))
            )
        else:
            tau2 = max(0.0, tau2_he)  # metafor's default tau2.init
            change = math.inf
            while change > tol * max(1.0, tau2):
                iterations += 1
                old = tau2
                w = 1.0 / (v + tau2)
                P = _proj(Xa, w)
                Py = P @ yc
                if method == "ML":
                    adj = (float(Py @ Py) - float(np.sum(w))) / float(np.sum(w**2))
                elif method == "REML":
                    PP = P @ P
                    adj = (float(Py @ Py) - float(np.trace(P))) / float(np.trace(PP))
                else:  # EB
                    adj = (float(yc @ Py) * k / (k - p) - k) / float(np.sum(w))
                if not math.isfinite(adj):
                    adj = 0.0
                while tau2 + adj < 0:  # metafor's step halving (tau2.min = 0)
                    adj /= 2
                tau2 = tau2 + adj
                change = abs(old - tau2)
                if iterations > maxiter:
                    tau2, converged, note = _fallback(method, yc, v, Xa, change, maxiter)
                    notes.append(note)
                    break
            if converged and method in ("ML", "REML"):
                reml = method == "REML"
                ll0 = _loglik(yc, v, Xa, 0.0, reml)
                ll = _loglik(yc, v, Xa, tau2, reml)
                if ll0 - ll > _LL0_TOL and tau2 > tol:
                    notes.append(
                        f"{method} Fisher scoring may have stopped at a local maximum "
                        f"(logLik at tau2 = 0 is larger); tau2 set to 0 as metafor does"
                    )
                    tau2 = 0.0
            tau2 = max(0.0, tau2)
            w = 1.0 / (v + tau2)
            if method == "ML":
                se = math.sqrt(2 / float(np.sum(w**2)))
            elif method == "REML":
                P = _proj(Xa, w)
                se = math.sqrt(2 / float(np.sum(P * P)))
            else:
                se = math.sqrt(2 * k**2 / (k - p) / float(np.sum(w)) ** 2)

    return Tau2Estimate(
        method=method,
        tau2=float(tau2),
        se=float(se),
        converged=converged,
        iterations=iterations,
        notes=tuple(notes),
    )


def tau2_ci_qprofile(
    yi: ArrayLike, vi: ArrayLike, X: ArrayLike | None = None, level: float = 0.95
) -> Tau2CI:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007; metafor ``confint``).

    The bounds solve ``Q(tau2) = chi2_{k-p, 1-alpha/2}`` (lower) and
    ``Q(tau2) = chi2_{k-p, alpha/2}`` (upper), where ``Q(tau2)`` is the generalised Q
    statistic (decreasing in tau2). A bound is set to 0 when ``Q(0)`` is already below its
    critical value (for the upper bound: the interval is {0}), exactly as metafor does.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (k >= p + 1).
    X : array_like or None
        Design matrix (None: intercept only).
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    Tau2CI

    References
    ----------
    Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
    meta-analysis. Statistics in Medicine 26:37-52.

    Examples
    --------
    >>> ci = tau2_ci_qprofile([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04])
    >>> (round(ci.lower, 5), round(ci.upper, 5))
    (0.03255, 3.14382)
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    Xa = as_design(X, k)
    p = Xa.shape[1]
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    if k - p < 1:
        raise ValueError(f"Q-profile CI needs k > p (k = {k}, p = {p})")
    alpha = 1 - level
    crit_u = float(dist.chi2_isf(alpha / 2, k - p))
    crit_l = float(dist.chi2_ppf(alpha / 2, k - p))

    def q(t: float) -> float:
        return float(y @ _proj(Xa, 1.0 / (v + t)) @ y)

    q0 = q(0.0)
    notes: list[str] = []
    converged = True
    hi0 = max(100.0, 10.0 * float(np.var(y)))
    if q0 < crit_l:
        lower = upper = 0.0
        notes.append("tau2 Q-profile CI is {0}: Q < lower critical value (both bounds at 0)")
    else:
        upper, ok, msg = _root_decreasing(lambda t: q(t) - crit_l, 0.0, hi0)
        if not ok:
            converged = False
            notes.append(f"tau2 Q-profile upper bound: {msg}")
        if q0 < crit_u:
            lower = 0.0
            notes.append("tau2 Q-profile CI lower bound at 0")
        else:
            lower, ok, msg = _root_decreasing(lambda t: q(t) - crit_u, 0.0, hi0)
            if not ok:
                converged = False
                notes.append(f"tau2 Q-profile lower bound: {msg}")
    return Tau2CI(lower=float(lower), upper=float(upper), converged=converged, notes=tuple(notes))
