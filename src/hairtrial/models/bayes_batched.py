"""The Bayesian model of :mod:`hairtrial.models.bayes` for many data sets on a shared grid.

:func:`fit_bayes_batched` fits the normal-normal hierarchical model (flat prior on mu,
half-normal or half-Cauchy prior on tau with a per-replicate scale) to every row of
replicates x k arrays and returns the posterior summaries of mu that a simulation study needs
(mean, median, central interval, ``P(mu > 0)``), the central posterior predictive interval of a
new trial's effect and the posterior median of tau.

Method. As in :func:`hairtrial.models.bayes.fit`, tau is integrated out over the mapped
variable ``u = tau / (c + tau)`` in [0, 1), ``c`` the maximiser of the posterior density of
log(tau) on the same log-spaced scan (per replicate), and the posterior of mu is the mixture of
the conditional normals at the quadrature nodes. Instead of adapting the panels to each data
set, every replicate uses the same ``panels`` equal panels in u with 15-point Kronrod nodes, so
each step is one array operation over replicates x nodes. The embedded 7-point Gauss rule
gives, per replicate, the error estimate the scalar code bisects on (for the density, the first
two moments of mu and the density-weighted moments of tau) and, in addition, that of every
reported probability (``P(mu <= q)`` at each reported quantile of mu, ``P(mu > 0)`` and
``P(theta_new <= q)`` at both ends of the predictive interval, to ``rtol / 10``); a replicate
whose estimate exceeds its tolerance (a sharp posterior, a heavy tail, round-off) is refitted
by the scalar ``bayes.fit`` and flagged in ``fallback``. Hence every replicate meets the scalar
code's own tolerance, and the summaries agree with ``bayes.fit`` to about ``rtol`` of the
posterior's scale (``tests/test_bayes_batched.py`` checks 1e-8 of half the central 68% interval
of mu, of the predictive distribution or of tau, on random data sets). The posterior predictive
distribution of a new trial's effect is the mixture over the same nodes of the normals with
mean ``E[mu|tau,y]`` and variance ``Var[mu|tau,y] + tau^2``
(``bayes.BayesResult.predictive_interval``). The posterior median of tau is found as the scalar
``tau_quantile`` finds it: safeguarded Newton steps on the CDF in u, the CDF inside the panel
by a 15-point Kronrod rule on the partial panel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy  # scipy.special loads on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.models import bayes

__all__ = ["PRIORS", "BayesBatchedResult", "fit_bayes_batched"]

Array = NDArray[np.float64]

#: Prior families of tau: name -> constructor of the scalar prior (for the fallback).
PRIORS: dict[str, Callable[[float], bayes.TauPrior]] = {
    "half_normal": bayes.HalfNormal,
    "half_cauchy": bayes.HalfCauchy,
}
_TAIL = {"half_normal": math.inf, "half_cauchy": 2.0}
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class BayesBatchedResult:
    """Posterior summaries per replicate (arrays of length replicates).

    Attributes
    ----------
    prior : str
        Prior family of tau.
    level : float
        Probability of the central intervals.
    scale : ndarray
        Prior scale of each replicate.
    mu_mean, mu_median, mu_lower, mu_upper, p_positive : ndarray
        Posterior mean (NaN where it does not exist), median, central interval and
        ``P(mu > 0 | y)`` of the pooled effect.
    pred_lower, pred_upper : ndarray
        Central posterior predictive interval of a new trial's effect ``theta_new``.
    tau_median : ndarray
        Posterior median of tau (its square is the posterior median of tau^2).
    fallback : ndarray of bool
        The shared grid did not meet ``rtol``; the replicate was fitted by ``bayes.fit``.
    """

    prior: str
    level: float
    scale: Array
    mu_mean: Array
    mu_median: Array
    mu_lower: Array
    mu_upper: Array
    p_positive: Array
    pred_lower: Array
    pred_upper: Array
    tau_median: Array
    fallback: NDArray[np.bool_]


def _logprior(prior: str, tau: Array, s: Array) -> Array:
    z = tau / s
    if prior == "half_normal":
        return 0.5 * math.log(2.0 / math.pi) - np.log(s) - 0.5 * z * z
    return math.log(2.0 / math.pi) - np.log(s) - np.log1p(z * z)


def _moments(tau: Array, y: Array, v: Array, m: Array) -> tuple[Array, Array, Array]:
    """Masked log marginal likelihood (flat mu prior), conditional mean and variance of mu.

    tau (R, N); y, v, m (R, k) with m the mask. Returns arrays (R, N).
    """
    vt = v[:, None, :] + tau[:, :, None] ** 2
    w = np.where(m[:, None, :], 1.0 / vt, 0.0)
    W = w.sum(-1)
    mean = np.sum(w * y[:, None, :], -1) / W
    quad = np.sum(w * (y[:, None, :] - mean[..., None]) ** 2, -1)
    logdet = np.sum(np.where(m[:, None, :], np.log(vt), 0.0), -1)
    kk = m.sum(-1)[:, None]
    lml = -0.5 * ((kk - 1) * _LOG_2PI + logdet + quad + np.log(W))
    return lml, mean, 1.0 / W


def _scale_scan(prior: str, y: Array, v: Array, m: Array, s: Array) -> tuple[Array, Array]:
    """Per replicate, c and the reference log level, as ``bayes._scan_scale``."""
    med = np.sqrt(np.nanmedian(np.where(m, v, np.nan), axis=1))
    grid = np.concatenate(
        [
            med[:, None] * 10.0 ** np.linspace(-6, 6, 121)[None, :],
            s[:, None] * 10.0 ** np.linspace(-3, 3, 61)[None, :],
        ],
        axis=1,
    )
    grid.sort(axis=1)
    lml, _, _ = _moments(grid, y, v, m)
    lg = _logprior(prior, grid, s[:, None]) + lml
    lg = np.where(np.isfinite(lg), lg, -np.inf)
    c = np.take_along_axis(grid, np.argmax(lg + np.log(grid), axis=1)[:, None], 1)[:, 0]
    return c, lg.max(axis=1)


def _chunk(prior, y, v, m, s, level, panels, rtol) -> dict[str, Array]:
    r, k = y.shape
    c, g_ref = _scale_scan(prior, y, v, m, s)
    edges = np.linspace(0.0, 1.0, panels + 1)
    nodes, wk, wg = bayes.gauss_kronrod_panels(edges[:-1], edges[1:])  # (P, 15)
    u = nodes.ravel()
    tau = c[:, None] * (u / (1.0 - u))[None, :]  # (R, N)
    lml, mc, vc = _moments(tau, y, v, m)
    with np.errstate(over="ignore", under="ignore"):
        dens = np.exp(_logprior(prior, tau, s[:, None]) + lml - g_ref[:, None])
    dens = dens * (c[:, None] / (1.0 - u)[None, :] ** 2)
    dens = np.where(np.isfinite(dens), dens, 0.0)

    # error estimate per replicate: rows as in bayes.fit (density, moments of mu and tau)
    m_c, v_c = mc[:, 0], vc[:, 0]  # any reference point will do: standardise by the node
    kk = m.sum(1)
    a = (kk - 1) + _TAIL[prior]
    idx = np.argmax(dens, axis=1)
    m0 = np.take_along_axis(mc, idx[:, None], 1)
    d0 = np.sqrt(np.take_along_axis(vc + tau**2, idx[:, None], 1))
    zm = (mc - m0) / d0
    rows = [dens, dens * zm, dens * (zm * zm + vc / d0**2), dens * tau / c[:, None]]
    noise = 50.0 * np.finfo(float).eps * (1.0 + np.abs(g_ref))
    z_tot = np.einsum("rpn,pn->r", dens.reshape(r, panels, 15), wk)

    def within(row: Array, scale: float = 1.0) -> NDArray[np.bool_]:
        """Kronrod - Gauss difference of the row's integral within the tolerance."""
        rp = row.reshape(r, panels, 15)
        K = np.einsum("rpn,pn->r", rp, wk)
        G = np.einsum("rpn,pn->r", rp, wg)
        floor = noise * np.einsum("rpn,pn->r", np.abs(rp), wk)
        tol = np.maximum(scale * rtol * np.maximum(np.abs(K), z_tot), 10 * floor)
        return np.abs(K - G) <= tol

    err_ok = np.ones(r, dtype=bool)
    for j, row in enumerate(rows):
        if j == 3:
            row = np.where((a > 2)[:, None], row, 0.0)
        if j == 2:
            row = np.where((a > 3)[:, None], row, 0.0)
        err_ok &= within(row)
    del m_c, v_c

    weights = dens * wk.ravel()[None, :]
    z = weights.sum(1)
    weights = weights / z[:, None]
    sd = np.sqrt(vc)
    alpha = (1.0 - level) / 2.0
    out = {
        "mu_mean": np.where(a > 2, np.sum(weights * mc, 1), np.nan),
        "mu_median": bayes.mixture_quantile(np.full(r, 0.5), weights, mc, sd),
        "mu_lower": bayes.mixture_quantile(np.full(r, alpha), weights, mc, sd),
        "mu_upper": bayes.mixture_quantile(np.full(r, 1.0 - alpha), weights, mc, sd),
        "p_positive": np.clip(
            np.sum(weights * scipy.special.ndtr(mc / sd), axis=1), 0.0, 1.0
        ),  # P(mu > 0) = sum w Phi(m / sd)
    }
    # the posterior predictive distribution of a new trial's effect: N(mc, vc + tau^2) mixed
    sd_pred = np.sqrt(vc + tau * tau)
    out["pred_lower"] = bayes.mixture_quantile(np.full(r, alpha), weights, mc, sd_pred)
    out["pred_upper"] = bayes.mixture_quantile(np.full(r, 1.0 - alpha), weights, mc, sd_pred)
    # the reported probabilities themselves: P(mu <= q) at each quantile, P(mu > 0) and
    # P(theta_new <= q) at the predictive bounds, to a tenth of rtol (a quantile's error is the
    # probability's divided by the density there)
    for q in (out["mu_lower"], out["mu_median"], out["mu_upper"], np.zeros(r)):
        err_ok &= within(dens * scipy.special.ndtr((q[:, None] - mc) / sd), 0.1)
    for q in (out["pred_lower"], out["pred_upper"]):
        err_ok &= within(dens * scipy.special.ndtr((q[:, None] - mc) / sd_pred), 0.1)

    def kernel(uu: Array) -> Array:
        """Unnormalised posterior density in u (Jacobian included), rows of uu per replicate."""
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            tt = c[:, None] * uu / (1.0 - uu)
            lml_u, _, _ = _moments(tt, y, v, m)
            val = np.exp(_logprior(prior, tt, s[:, None]) + lml_u - g_ref[:, None])
            val = val * c[:, None] / (1.0 - uu) ** 2
        return np.where(np.isfinite(val), val, 0.0)

    mass = np.einsum("rpn,pn->rp", dens.reshape(r, panels, 15), wk)  # per panel
    out["tau_median"] = c * _median_u(kernel, mass, edges)
    out["fallback"] = ~(err_ok & (z > 0) & np.isfinite(z))
    return out


def _median_u(
    kernel: Callable[[Array], Array], mass: Array, edges: Array, max_iter: int = 100
) -> Array:
    """u / (1 - u) at the posterior median of u, per replicate (as ``BayesResult.tau_quantile``).

    ``mass``: the Kronrod mass of each panel (replicates x panels), ``edges`` the panels' ends.
    The CDF at u is the mass of the panels before u's plus a 15-point Kronrod rule on the partial
    panel; safeguarded Newton steps, bisection when a step leaves the bracket.
    """
    r = mass.shape[0]
    total = mass.sum(1)
    cum = np.cumsum(mass, 1)
    target = 0.5 * total
    idx = np.minimum(np.argmax(cum >= target[:, None], axis=1), mass.shape[1] - 1)
    rows = np.arange(r)
    before = cum[rows, idx] - mass[rows, idx]
    lo, hi = edges[idx].copy(), edges[idx + 1].copy()
    left = lo.copy()

    def cdf(uu: Array) -> Array:
        nodes, wk, _ = bayes.gauss_kronrod_panels(left, uu)
        return before + np.sum(kernel(nodes) * wk, axis=1)

    u = bayes.bracketed_newton(
        cdf, lambda uu: kernel(uu[:, None])[:, 0], target, lo, hi, ~(total > 0), max_iter
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, u / (1.0 - u), np.nan)


def fit_bayes_batched(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    prior: str = "half_normal",
    scale: ArrayLike,
    level: float = 0.95,
    mask: ArrayLike | None = None,
    panels: int = 20,
    rtol: float = 1e-9,
    chunk_size: int = 256,
) -> BayesBatchedResult:
    """Fit the Bayesian random-effects model to every row (flat prior on mu).

    Parameters
    ----------
    yi, vi : array_like, shape (replicates, k)
        Estimates and sampling variances (``vi > 0``); entries outside ``mask`` are ignored.
    prior : {"half_normal", "half_cauchy"}
        Prior family of tau.
    scale : float or array_like, shape (replicates,)
        Prior scale, per replicate if an array.
    level : float
        Probability of the central posterior intervals.
    mask : array_like of bool, shape (replicates, k), optional
        True marks the studies of each replicate (unequal k).
    panels : int
        Equal panels in u of the shared grid (15 nodes each).
    rtol : float
        Tolerance of the quadrature error estimate; replicates above it are refitted by the
        scalar ``bayes.fit`` with its default tolerance.
    chunk_size : int
        Replicates integrated at once (memory ~ chunk_size x 15 panels x k doubles).

    Returns
    -------
    BayesBatchedResult

    Examples
    --------
    >>> res = fit_bayes_batched([[0.2, 0.5, 0.1]], [[0.01, 0.04, 0.0225]], scale=0.5)
    >>> round(float(res.mu_median[0]), 4)
    0.234
    """
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {sorted(PRIORS)}, got {prior!r}")
    y = np.atleast_2d(np.asarray(yi, dtype=float))
    v = np.atleast_2d(np.asarray(vi, dtype=float))
    m = np.ones(y.shape, bool) if mask is None else np.atleast_2d(np.asarray(mask, bool))
    if y.shape != v.shape or y.shape != m.shape:
        raise ValueError("yi, vi and mask must have the same shape")
    if not np.all(m.sum(1) >= 1):
        raise ValueError("every replicate needs at least one study")
    y = np.where(m, y, 0.0)
    v = np.where(m, v, 1.0)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("yi and vi must be finite with vi > 0")
    r = y.shape[0]
    s = np.broadcast_to(np.asarray(scale, dtype=float), (r,)).copy()
    if not np.all(s > 0):
        raise ValueError("prior scales must be positive")
    parts = [
        _chunk(
            prior,
            y[i : i + chunk_size],
            v[i : i + chunk_size],
            m[i : i + chunk_size],
            s[i : i + chunk_size],
            level,
            panels,
            rtol,
        )
        for i in range(0, r, chunk_size)
    ]
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    for i in np.flatnonzero(out["fallback"]):
        res = bayes.fit(y[i, m[i]], np.sqrt(v[i, m[i]]), PRIORS[prior](float(s[i])))
        lo, hi = res.mu_interval(level)
        out["mu_mean"][i] = res.mu_mean
        out["mu_median"][i] = res.mu_median
        out["mu_lower"][i], out["mu_upper"][i] = lo, hi
        out["p_positive"][i] = res.p_positive
        out["pred_lower"][i], out["pred_upper"][i] = res.predictive_interval(level)
        out["tau_median"][i] = res.tau_median
    return BayesBatchedResult(prior=prior, level=level, scale=s, **out)
