"""The next trial: how likely a new two-arm trial of n per arm settles the question.

Sutton et al. (2007) [1]_ size a new trial by what it does to the updated meta-analysis, not by
its power alone; Roloff et al. (2013) [2]_ give the conditional power of the updated
random-effects meta-analysis. Both are computed here by simulation from the current evidence:

1. draw the new trial's true effect from the Bayesian predictive distribution of
   :mod:`hairtrial.models.bayes` (a node tau_j of the posterior quadrature with its posterior
   mass, mu given tau_j from its conditional normal posterior, theta = mu + tau_j z);
2. draw its estimate ``y ~ N(theta, v)``, with ``v = s^2 / (2 n)`` the sampling variance of a
   trial with n per arm, ``s`` the unit-information SD of the existing trials (bayesmeta's
   ``uisd``: the SD of one observation implied by their standard errors, so that a trial of N
   participants has variance ``s^2 / N``);
3. judge (a) the trial by itself: its two-sided ``1 - level`` test in the direction of benefit
   (``direction * y / sqrt(v) > z``); (b) the updated meta-analysis, refitted with the new
   trial by the batched engine (:func:`hairtrial.models.batched.fit_batched`, the primary
   model): conclusive when its CI excludes 0, showing benefit when it excludes 0 on the side
   of benefit; (c) the updated Bayesian meta-analysis: ``P(direction * mu > MID)`` above
   ``threshold``. The updated posterior is exact on the current posterior's quadrature
   nodes: the new trial multiplies the mass of node tau_j by its marginal density
   ``N(y; m_j, s_j^2 + tau_j^2 + v)`` and updates mu given tau_j as one more normal
   observation; the nodes (placed for the current posterior) are accurate for the updated one
   as long as one trial does not move the posterior of tau far from where it is now.

Everything is vectorised over the replicates; the random numbers come from one
``numpy.random.default_rng(seed)`` stream drawn in a fixed order, so the result depends only on
the inputs and the seed.

References
----------
.. [1] Sutton AJ, Cooper NJ, Jones DR, Lambert PC, Thompson JR, Abrams KR (2007).
   Evidence-based sample size calculations based upon updated meta-analysis. Statistics in
   Medicine 26:2479-2500.
.. [2] Roloff V, Higgins JPT, Sutton AJ (2013). Planning future studies based on the
   conditional power of a meta-analysis. Statistics in Medicine 32:11-24.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy  # scipy.special loads on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.models.batched import fit_batched
from hairtrial.models.bayes import BayesResult

__all__ = [
    "POWER_COLUMNS",
    "draw_new_trials",
    "next_trial_power",
    "sample_size_needed",
    "updated_posterior_prob",
]

Array = NDArray[np.float64]

POWER_COLUMNS = [
    "n_per_arm",
    "replicates",
    "se_new",
    "p_trial_benefit",
    "p_meta_conclusive",
    "p_meta_benefit",
    "p_posterior_mid",
]
"""Columns of :func:`next_trial_power` (one row per n)."""


def draw_new_trials(
    posterior: BayesResult, v_new: ArrayLike, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Draw new trials' true effects and estimates from the predictive distribution.

    Parameters
    ----------
    posterior : BayesResult
        The current evidence (:func:`hairtrial.models.bayes.fit`).
    v_new : array_like, shape (r,)
        Sampling variance of each new trial.
    rng : numpy.random.Generator
        Source of the random numbers (drawn in the order: node, mu, theta, estimate).

    Returns
    -------
    (theta, y) : tuple of ndarray, shape (r,)
        True effects and estimates.
    """
    v = np.asarray(v_new, dtype=float).ravel()
    r = v.size
    w = posterior.weights / posterior.weights.sum()
    j = rng.choice(w.size, size=r, p=w)
    mu = posterior.mu_cond_mean[j] + posterior.mu_cond_sd[j] * rng.standard_normal(r)
    theta = mu + posterior.tau_nodes[j] * rng.standard_normal(r)
    y = theta + np.sqrt(v) * rng.standard_normal(r)
    return theta, y


def updated_posterior_prob(
    posterior: BayesResult, y: Array, v: Array, threshold: float, direction: int
) -> Array:
    """``P(direction * mu > threshold | current data, new trial)`` for each new trial.

    Exact on the quadrature nodes of ``posterior`` (see the module's notes): the new trial
    ``(y, v)`` reweights each node by its marginal density given tau and updates mu given tau
    as one more normal observation.

    Parameters
    ----------
    posterior : BayesResult
        The current posterior.
    y, v : ndarray, shape (r,)
        New trials' estimates and sampling variances.
    threshold : float
        The threshold (in the direction of benefit).
    direction : {1, -1}
        1: ``P(mu > threshold)``; -1: ``P(mu < -threshold)``.
    """
    # nodes carrying all but 1e-12 of the posterior mass (the rest cannot move a probability)
    order = np.argsort(posterior.weights)
    keep = np.sort(order[np.cumsum(posterior.weights[order]) > 1e-12 * posterior.weights.sum()])
    tau2 = posterior.tau_nodes[keep] ** 2
    m, s2 = posterior.mu_cond_mean[keep], posterior.mu_cond_sd[keep] ** 2
    logw = np.log(posterior.weights[keep])
    out = np.empty(y.size)
    step = max(1, 2_000_000 // max(1, tau2.size))  # bound the (replicates x nodes) work arrays
    for a in range(0, y.size, step):
        yy, vv = y[a : a + step, None], v[a : a + step, None]
        pv = s2 + tau2 + vv  # predictive variance of y given tau_j
        lw = logw - 0.5 * (np.log(pv) + (yy - m) ** 2 / pv)
        lw -= lw.max(axis=1, keepdims=True)
        wn = np.exp(lw)
        wn /= wn.sum(axis=1, keepdims=True)
        prec = 1.0 / s2 + 1.0 / (tau2 + vv)
        mean = (m / s2 + yy / (tau2 + vv)) / prec
        sd = np.sqrt(1.0 / prec)
        z = direction * (mean - direction * threshold) / sd
        out[a : a + step] = np.sum(wn * scipy.special.ndtr(z), axis=1)
    return out


def next_trial_power(
    posterior: BayesResult,
    n_per_arm: Sequence[int],
    unit_sd: float,
    *,
    replicates: int = 4000,
    seed: int = 0,
    method: str = "REML",
    ci_method: str = "adhoc",
    level: float = 0.95,
    direction: int = 1,
    mid: float | None = None,
    threshold: float = 0.9,
) -> pd.DataFrame:
    """Probability that a new trial of n per arm shows benefit / settles the meta-analysis.

    Parameters
    ----------
    posterior : BayesResult
        Bayesian fit to the current trials (its data are the current trials).
    n_per_arm : sequence of int
        Participants per arm of the new trial.
    unit_sd : float
        Unit-information SD: a new trial of N participants has variance ``unit_sd^2 / N``.
    replicates : int
        Simulated trials per n.
    seed : int
        Seed of ``numpy.random.default_rng``.
    method, ci_method, level
        The frequentist model of the updated meta-analysis (as
        :func:`hairtrial.models.univariate.fit`); ``level`` is also the trial's test level.
    direction : {1, -1}
        1: larger effects are benefit; -1: smaller effects are benefit.
    mid : float, optional
        Minimal important difference (> 0, on the analysis scale, in the direction of
        benefit); without it ``p_posterior_mid`` is NaN.
    threshold : float
        Posterior probability above which the updated Bayesian analysis is conclusive.

    Returns
    -------
    pandas.DataFrame
        :data:`POWER_COLUMNS`, one row per n: the probability that the trial by itself shows
        benefit (``p_trial_benefit``), that the updated meta-analysis's CI excludes 0
        (``p_meta_conclusive``) on the side of benefit (``p_meta_benefit``), and that the
        updated posterior ``P(mu beyond MID) > threshold`` (``p_posterior_mid``). The Monte Carlo
        SE of each is at most ``0.5 / sqrt(replicates)``.
    """
    if direction not in (1, -1):
        raise ValueError("direction must be 1 or -1")
    if not (math.isfinite(unit_sd) and unit_sd > 0):
        raise ValueError("unit_sd must be positive and finite")
    ns = np.asarray(list(n_per_arm), dtype=int)
    if ns.size == 0 or np.any(ns < 1):
        raise ValueError("n_per_arm must be non-empty positive integers")
    if replicates < 1:
        raise ValueError("replicates must be positive")
    rng = np.random.default_rng(seed)
    v = np.repeat(unit_sd**2 / (2.0 * ns), replicates)
    _, y = draw_new_trials(posterior, v, rng)
    k = posterior.k
    yy = np.empty((y.size, k + 1))
    vv = np.empty((y.size, k + 1))
    yy[:, :k], vv[:, :k] = posterior.yi, posterior.vi
    yy[:, k], vv[:, k] = y, v
    fit = fit_batched(yy, vv, method=method, ci_method=ci_method, level=level, tau2_ci=False)
    crit = float(scipy.special.ndtri(0.5 + level / 2.0))
    trial = direction * y / np.sqrt(v) > crit
    lo, hi = fit.ci_lower, fit.ci_upper
    conclusive = (lo > 0) | (hi < 0)
    benefit = lo > 0 if direction == 1 else hi < 0
    if mid is None or not math.isfinite(mid):
        post = np.full(y.size, np.nan)
    else:
        post = (updated_posterior_prob(posterior, y, v, float(mid), direction) > threshold).astype(
            float
        )
    rows = []
    for i, n in enumerate(ns):
        sl = slice(i * replicates, (i + 1) * replicates)
        rows.append(
            {
                "n_per_arm": int(n),
                "replicates": int(replicates),
                "se_new": math.sqrt(unit_sd**2 / (2.0 * n)),
                "p_trial_benefit": float(trial[sl].mean()),
                "p_meta_conclusive": float(conclusive[sl].mean()),
                "p_meta_benefit": float(benefit[sl].mean()),
                "p_posterior_mid": float(np.mean(post[sl])),
            }
        )
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def sample_size_needed(n: ArrayLike, power: ArrayLike, target: float) -> float:
    """Smallest n per arm at which the power curve reaches ``target``.

    Linear interpolation in log n between the first grid point at or above the target and the
    one before it; NaN when the curve stays below the target on the grid (the evidence may
    never be settled by one trial of these sizes: the predictive distribution is wide), n[0]
    when the first grid point already reaches it.

    Examples
    --------
    >>> sample_size_needed([10, 100], [0.5, 0.9], 0.8)
    56.23413251903491
    >>> import math; math.isnan(sample_size_needed([10, 100], [0.5, 0.6], 0.8))
    True
    """
    n = np.asarray(n, dtype=float)
    p = np.asarray(power, dtype=float)
    hit = np.flatnonzero(p >= target)
    if hit.size == 0:
        return math.nan
    i = int(hit[0])
    if i == 0:
        return float(n[0])
    f = (target - p[i - 1]) / (p[i] - p[i - 1])
    return float(math.exp(math.log(n[i - 1]) + f * (math.log(n[i]) - math.log(n[i - 1]))))
