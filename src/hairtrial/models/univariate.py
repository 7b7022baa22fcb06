"""Univariate common-effect / random-effects meta-analysis (metafor 3.8 ``rma.uni`` parity).

:func:`fit` reproduces ``metafor::rma.uni`` (with ``confint`` for the Q-profile CI of tau^2,
``predict`` for the prediction interval and ``weights``) for the common-effect model
(``method="FE"``) and eight tau^2 estimators, with Wald-type (``"z"``), Hartung-Knapp
(``"knha"``) and ad hoc Hartung-Knapp (``"adhoc"``) inference. Agreement with metafor 3.8-1 is
checked to 1e-6 relative in ``tests/test_meta.py`` against ``tests/reference``.

Deliberate differences from metafor 3.8 (all reported in ``MetaResult.notes``):

* k = 1: metafor silently sets QE = 0, QEp = 1, I2 = 0, H2 = 1 and switches ``test`` to
  ``"z"``. Here Q, its p-value, I2, H2, tau2_se and the tau2 CI are NaN (not defined with a
  single study), tau2 is fixed at 0, and for ``ci_method="knha"/"adhoc"`` the CI, p-value,
  statistic and PI are NaN (no residual degrees of freedom) instead of silently becoming
  Wald-type. With ``ci_method="z"`` the estimate, se, CI and p-value equal metafor's
  (yi, sqrt(vi), Wald CI).
* Fisher scoring (ML/REML/EB) and root finding (PM, Q-profile) are run to much tighter
  tolerances than metafor's defaults, the Q-profile / PM search interval is not capped at
  ``tau2.max``, and non-convergence gives ``converged=False`` plus a note instead of an error.
* ``method="FE"`` with ``ci_method="knha"/"adhoc"`` is computed as metafor does (which only
  warns); a note says the adjustment is not meant for common-effect models.
* The prediction interval is only computed for intercept-only models (NaN otherwise).

References
----------
.. [1] DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Controlled Clinical
   Trials 7:177-188.
.. [2] Hartung J, Knapp G (2001). A refined method for the meta-analysis of controlled
   clinical trials with binary outcome. Statistics in Medicine 20:3875-3889.
.. [3] Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a
   single covariate. Statistics in Medicine 22:2693-2710.
.. [4] Röver C, Knapp G, Friede T (2015). Hartung-Knapp-Sidik-Jonkman approach and its
   modification for random-effects meta-analysis with few studies. BMC Medical Research
   Methodology 15:99.
.. [5] Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis.
   Statistics in Medicine 21:1539-1558.
.. [6] Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
   random-effects model. Journal of Educational and Behavioral Statistics 30:261-293.
.. [7] Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
   meta-analysis. Statistics in Medicine 26:37-52.
.. [8] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
.. [9] Paule RC, Mandel J (1982). Consensus values and weighting factors. Journal of Research
   of the National Bureau of Standards 87:377-385.
.. [10] Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for
   meta-analysis. Journal of the Royal Statistical Society C 54:367-384.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.heterogeneity import (
    HETEROGENEITY_COLUMNS,
    Heterogeneity,
    HeterogeneityFields,
)
from hairtrial.models.tau2 import (
    TAU2_METHODS,
    Tau2CI,
    as_design,
    estimate_tau2,
    tau2_ci_qprofile,
    validate_inputs,
)

__all__ = [
    "CI_METHODS",
    "FRAME_COLUMNS",
    "METHODS",
    "MetaResult",
    "fit",
    "results_frame",
    "tau2_ci_qprofile",
]

#: Model / tau^2 estimators accepted by :func:`fit` (metafor 3.8 spelling).
METHODS: tuple[str, ...] = ("FE", *TAU2_METHODS)
#: Inference for the fixed effects.
CI_METHODS: tuple[str, ...] = ("z", "knha", "adhoc")
#: Columns of :meth:`MetaResult.summary_frame` and :func:`results_frame`.
FRAME_COLUMNS: tuple[str, ...] = (
    "method",
    "ci_method",
    "k",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "pi_lower",
    "pi_upper",
    *HETEROGENEITY_COLUMNS,
    "converged",
    "notes",
)

_NAN = float("nan")
_EPS = float(np.finfo(float).eps)
NOTE_TAU2_ZERO = "tau2 estimated at 0 (boundary)"


@dataclass(frozen=True, eq=False)
class MetaResult(HeterogeneityFields):
    """Result of :func:`fit` (one model, one inference method).

    Coefficient-level quantities are arrays of length p (``beta``, ``se``, ``ci_lower``,
    ``ci_upper``, ``pvalue``, ``statistic``); for intercept-only models the scalar properties
    :attr:`estimate`, :attr:`estimate_se`, :attr:`estimate_ci_lower`,
    :attr:`estimate_ci_upper`, :attr:`estimate_pvalue` and :attr:`estimate_statistic` give
    the first (only) coefficient.

    Attributes
    ----------
    method, ci_method : str
        As passed to :func:`fit`.
    k, p : int
        Number of studies and of fixed-effect coefficients.
    level : float
        Confidence level.
    beta, se, ci_lower, ci_upper, pvalue, statistic : ndarray
        Estimates, standard errors, CI bounds, two-sided p-values and z / t statistics.
    vcov : ndarray
        p x p covariance matrix of ``beta`` (including the Knapp-Hartung factor).
    df : float or None
        t degrees of freedom (k - p) for knha / adhoc, None for z.
    s2w : float
        Knapp-Hartung scaling factor applied to the covariance matrix (1 for z).
    pi_lower, pi_upper : float
        Prediction interval (as metafor ``predict``; equals the CI for FE).
    heterogeneity : Heterogeneity
        tau^2 with its Q-profile CI (NaN for FE and k = 1), I^2 (percent) and H^2 (NaN when
        k = p), Cochran's Q (QE) test for residual heterogeneity; its fields are also
        attributes of the result (``tau2``, ``tau2_ci_lower``, ``tau2_ci_upper``, ``I2``,
        ``H2``, ``Q``, ``Q_df``, ``Q_pvalue``).
    tau2_se : float
        metafor's ``se.tau2``.
    vt : float
        'Typical' within-study variance (k - p) / tr(P).
    weights : ndarray
        Percent weights (metafor ``weights()``).
    converged : bool
        False when an iterative step did not converge (see ``notes``).
    iterations : int
        Fisher-scoring iterations (ML/REML/EB).
    notes : tuple of str
        Boundary cases and other remarks.
    """

    method: str
    ci_method: str
    k: int
    p: int
    level: float
    beta: NDArray[np.float64]
    se: NDArray[np.float64]
    ci_lower: NDArray[np.float64]
    ci_upper: NDArray[np.float64]
    pvalue: NDArray[np.float64]
    statistic: NDArray[np.float64]
    vcov: NDArray[np.float64]
    df: float | None
    s2w: float
    pi_lower: float
    pi_upper: float
    heterogeneity: Heterogeneity
    tau2_se: float
    vt: float
    weights: NDArray[np.float64]
    converged: bool
    iterations: int
    notes: tuple[str, ...]

    def _scalar(self, arr: NDArray[np.float64]) -> float:
        if self.p != 1:
            raise ValueError(f"model has p = {self.p} coefficients; use the array attributes")
        return float(arr[0])

    @property
    def estimate(self) -> float:
        """Pooled estimate (intercept-only models)."""
        return self._scalar(self.beta)

    @property
    def estimate_se(self) -> float:
        """Standard error of the pooled estimate (intercept-only models)."""
        return self._scalar(self.se)

    @property
    def estimate_ci_lower(self) -> float:
        """Lower CI bound of the pooled estimate (intercept-only models)."""
        return self._scalar(self.ci_lower)

    @property
    def estimate_ci_upper(self) -> float:
        """Upper CI bound of the pooled estimate (intercept-only models)."""
        return self._scalar(self.ci_upper)

    @property
    def estimate_pvalue(self) -> float:
        """Two-sided p-value of the pooled estimate (intercept-only models)."""
        return self._scalar(self.pvalue)

    @property
    def estimate_statistic(self) -> float:
        """z or t statistic of the pooled estimate (intercept-only models)."""
        return self._scalar(self.statistic)

    def summary_frame(self) -> pd.DataFrame:
        """The tidy one-row table of an intercept-only fit.

        Returns
        -------
        pandas.DataFrame
            One row, columns exactly :data:`FRAME_COLUMNS` (the heterogeneity block in the
            order of :data:`hairtrial.models.heterogeneity.HETEROGENEITY_COLUMNS`); ``notes``
            joined with ``"; "``.

        Raises
        ------
        ValueError
            If the model has more than one coefficient.

        Examples
        --------
        >>> fit([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04]).summary_frame()["k"].tolist()
        [4]
        """
        row = {
            "method": self.method,
            "ci_method": self.ci_method,
            "k": self.k,
            "estimate": self.estimate,
            "se": self.estimate_se,
            "ci_lower": self.estimate_ci_lower,
            "ci_upper": self.estimate_ci_upper,
            "pvalue": self.estimate_pvalue,
            "pi_lower": self.pi_lower,
            "pi_upper": self.pi_upper,
            **self.heterogeneity.as_dict(),
            "converged": self.converged,
            "notes": "; ".join(self.notes),
        }
        return pd.DataFrame([row], columns=list(FRAME_COLUMNS))


def _is_intercept_only(X: NDArray[np.float64]) -> bool:
    return X.shape[1] == 1 and bool(np.all(X[:, 0] == 1.0))


#: Q-profile intervals already computed in this process, by their exact inputs (bytes).
_QPROFILE_CACHE: OrderedDict[tuple[object, ...], Tau2CI] = OrderedDict()
_QPROFILE_CACHE_SIZE = 4096


def _qprofile(
    y: NDArray[np.float64], v: NDArray[np.float64], X: NDArray[np.float64], level: float
) -> Tau2CI:
    """:func:`tau2_ci_qprofile`, computed once a process for the same data, design and level.

    The interval depends on the data alone, not on the tau^2 estimator or the CI method of
    the fit, and the workflow fits the same data with several of each (the methods of the
    meta-analysis table, the estimator and CI scenarios of the robustness table); the root
    searches took ~8% of the analysis job. The key is the exact bytes of the inputs, so a
    hit returns what the computation would (the result is immutable; the design's memory
    order is part of the key, as it may change the last bits of a product).
    """
    key = (y.tobytes(), v.tobytes(), X.tobytes(), X.shape, X.flags.f_contiguous, float(level))
    ci = _QPROFILE_CACHE.get(key)
    if ci is None:
        ci = tau2_ci_qprofile(y, v, X, level)
        _QPROFILE_CACHE[key] = ci
        if len(_QPROFILE_CACHE) > _QPROFILE_CACHE_SIZE:
            _QPROFILE_CACHE.popitem(last=False)
    return ci


def fit(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    method: str = "REML",
    ci_method: str = "z",
    X: ArrayLike | None = None,
    level: float = 0.95,
) -> MetaResult:
    """Fit a common-effect or random-effects (meta-regression) model, as metafor ``rma.uni``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (1-D, finite, ``vi > 0``).
    method : {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        ``"FE"``: common-effect model (metafor 3.8 spelling); otherwise the tau^2 estimator
        of the random-effects model (see :func:`hairtrial.models.tau2.estimate_tau2`).
    ci_method : {"z", "knha", "adhoc"}
        ``"z"``: Wald-type normal inference. ``"knha"``: Hartung-Knapp(-Sidik-Jonkman):
        covariance scaled by ``s2 = RSS / (k - p)`` (weighted residual sum of squares with
        weights ``1/(vi + tau2)``) and t quantiles with ``k - p`` df. ``"adhoc"``: as
        ``"knha"`` with ``s2 = max(1, s2)`` (Röver, Knapp & Friede 2015), so the CI is never
        narrower than the Wald-type CI with the same critical value; metafor 3.8 implements it
        as ``test="adhoc"``.
    X : array_like or None
        k x p design matrix (None: intercept only, ``ones((k, 1))``).
    level : float
        Confidence level for all intervals, in (0, 1).

    Returns
    -------
    MetaResult

    Raises
    ------
    ValueError
        Non-finite ``yi``/``vi``, ``vi <= 0``, unknown method, rank-deficient ``X``, or too
        few studies (FE: k >= p; random effects: k >= p + 1, except k = 1 intercept-only).

    Notes
    -----
    * Weights ``wi = 1/(vi + tau2)``; ``beta = (X'WX)^-1 X'Wy``; ``vcov = s2w (X'WX)^-1``.
    * The prediction interval is ``beta -/+ crit sqrt(se^2 + tau2)`` with the CI's critical
      value (t with k - p df for knha/adhoc, normal otherwise); for FE it equals the CI.
    * I2 = 100 tau2 / (vt + tau2) and H2 = tau2 / vt + 1 with vt = (k - p) / tr(P) for
      random-effects models; for FE I2 = max(0, (Q - (k - p)) / Q) * 100, H2 = Q / (k - p)
      (Higgins & Thompson 2002).
    * Boundary cases give notes: k = 1 (tau2 fixed at 0; Q, I2, H2, tau2 CI and knha/adhoc
      not defined -> NaN; metafor instead reports QE = 0, I2 = 0, H2 = 1 and forces z),
      k = 2 (tau2 very imprecise), tau2 estimated at 0, Q-profile CI bounds at 0,
      non-convergence, Knapp-Hartung with FE, s2 = 0 under knha (identical fitted residuals).

    References
    ----------
    DerSimonian & Laird (1986); Paule & Mandel (1982); Hartung & Knapp (2001); Knapp &
    Hartung (2003); Sidik & Jonkman (2005); Viechtbauer (2005, 2007, 2010); Higgins &
    Thompson (2002); Röver, Knapp & Friede (2015). Full citations in the module docstring.

    Examples
    --------
    >>> res = fit([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04], method="DL")
    >>> round(res.estimate, 6), round(res.tau2, 6)
    (0.327269, 0.155211)
    >>> res_hk = fit([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04], ci_method="knha")
    >>> res_hk.df
    3
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1), e.g. 0.95")
    Xa = as_design(X, k)
    p = Xa.shape[1]
    int_only = _is_intercept_only(Xa)
    is_fe = method == "FE"
    notes: list[str] = []
    converged = True
    iterations = 0

    if k == 1 and not int_only:
        raise ValueError("k = 1: only the intercept-only model can be fitted")
    if is_fe and p > k:
        raise ValueError(f"more coefficients (p = {p}) than studies (k = {k})")
    if not is_fe and k > 1 and p + 1 > k:
        raise ValueError(f"random-effects model needs k >= p + 1 studies (k = {k}, p = {p})")

    # --- tau^2 -----------------------------------------------------------------------------
    tau2 = 0.0
    tau2_se = _NAN
    if k == 1:
        notes.append("k = 1: estimate = yi, se = sqrt(vi); tau2 fixed at 0 (not estimable)")
        notes.append("k = 1: Q, I2, H2 and the tau2 CI are not defined (NaN)")
    elif not is_fe:
        est = estimate_tau2(y, v, Xa, method)
        tau2, tau2_se = est.tau2, est.se
        converged = converged and est.converged
        iterations = est.iterations
        notes.extend(est.notes)
        if tau2 == 0.0:
            notes.append(NOTE_TAU2_ZERO)
    if k == 2 and not is_fe:
        notes.append("k = 2: tau2 is very imprecise (1 df for heterogeneity)")

    # --- fixed effects -----------------------------------------------------------------------
    wi = 1.0 / (v + tau2)
    WX = Xa * wi[:, None]
    XtWX = Xa.T @ WX
    vb = np.linalg.inv(XtWX)
    vb = (vb + vb.T) / 2
    beta = vb @ (WX.T @ y)
    resid = y - Xa @ beta
    rss = float(np.sum(wi * resid**2))

    knha = ci_method in ("knha", "adhoc")
    df: float | None = None
    s2w = 1.0
    defined = True
    if knha and is_fe:
        notes.append("Knapp-Hartung adjustment is not meant for common-effect (FE) models")
    if knha and k - p < 1:
        defined = False
        notes.append(
            f"{ci_method}: no residual degrees of freedom (k - p = {k - p}); "
            "CI, p-value and PI are NaN"
        )
    elif knha:
        df = k - p
        s2w = 0.0 if rss <= _EPS else rss / (k - p)
        if ci_method == "knha" and s2w == 0.0:
            notes.append("knha: weighted residual sum of squares is 0, so the scaled se is 0")
        if ci_method == "adhoc":
            s2w = max(1.0, s2w)
    vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    alpha = 1 - level
    if not defined:
        crit = _NAN
        pval = np.full(p, _NAN)
        zval = np.full(p, _NAN)
    elif knha:
        crit = float(dist.t_isf(alpha / 2, df))
        pval = 2 * dist.t_sf(np.abs(zval), df)
    else:
        crit = float(dist.norm_isf(alpha / 2))
        pval = 2 * dist.norm_sf(np.abs(zval))
    ci_lb = beta - crit * se
    ci_ub = beta + crit * se

    # --- prediction interval ---------------------------------------------------------------
    if int_only:
        pi_half = crit * math.sqrt(float(vb[0, 0]) + tau2)
        pi_lb, pi_ub = float(beta[0] - pi_half), float(beta[0] + pi_half)
    else:
        pi_lb = pi_ub = _NAN

    # --- heterogeneity -------------------------------------------------------------------------
    Q = Q_p = I2 = H2 = vt = _NAN
    Q_df = k - p
    if k > p:
        w_fe = 1.0 / v
        WXf = Xa * w_fe[:, None]
        P = np.diag(w_fe) - WXf @ np.linalg.solve(Xa.T @ WXf, WXf.T)
        yc = y - y.mean()
        Q = max(0.0, float(yc @ P @ yc))
        Q_p = float(dist.chi2_sf(Q, k - p))
        vt = (k - p) / float(np.trace(P))
        if is_fe:
            I2 = max(0.0, 100 * (Q - (k - p)) / Q) if Q > 0 else 0.0
            H2 = Q / (k - p)
        else:
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
    elif k > 1:
        notes.append(f"k = p = {k}: Q, I2 and H2 are not defined (NaN)")

    # --- Q-profile CI for tau^2 ------------------------------------------------------------------
    tau2_lb = tau2_ub = _NAN
    if not is_fe and k > p and k > 1:
        ci = _qprofile(y, v, Xa, level)
        tau2_lb, tau2_ub = ci.lower, ci.upper
        converged = converged and ci.converged
        notes.extend(ci.notes)

    weights = 100 * wi / wi.sum()

    return MetaResult(
        method=method,
        ci_method=ci_method,
        k=k,
        p=p,
        level=level,
        beta=beta,
        se=se,
        ci_lower=ci_lb,
        ci_upper=ci_ub,
        pvalue=np.asarray(pval, dtype=float),
        statistic=np.asarray(zval, dtype=float),
        vcov=vb,
        df=df,
        s2w=float(s2w),
        pi_lower=pi_lb,
        pi_upper=pi_ub,
        heterogeneity=Heterogeneity(
            tau2=float(tau2),
            tau2_ci_lower=float(tau2_lb),
            tau2_ci_upper=float(tau2_ub),
            I2=float(I2),
            H2=float(H2),
            Q=float(Q),
            Q_df=int(Q_df),
            Q_pvalue=float(Q_p),
        ),
        tau2_se=float(tau2_se),
        vt=float(vt),
        weights=weights,
        converged=bool(converged),
        iterations=int(iterations),
        notes=tuple(notes),
    )


def results_frame(results: Iterable[MetaResult]) -> pd.DataFrame:
    """Tidy one-row-per-fit table of intercept-only results (:meth:`MetaResult.summary_frame`).

    Parameters
    ----------
    results : iterable of MetaResult
        Intercept-only fits (p = 1).

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`FRAME_COLUMNS`; ``notes`` joined with ``"; "``.

    Raises
    ------
    ValueError
        If a result has more than one coefficient.

    Examples
    --------
    >>> y, v = [0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04]
    >>> df = results_frame([fit(y, v, method=m) for m in ("FE", "REML")])
    >>> list(df["method"])
    ['FE', 'REML']
    """
    frames = [r.summary_frame() for r in results]
    if not frames:
        return pd.DataFrame([], columns=list(FRAME_COLUMNS))
    return pd.concat(frames, ignore_index=True)
