"""Small-study effects: funnel-asymmetry tests and trim-and-fill (metafor 3.8 parity).

* :func:`regtest` -- regression test for funnel plot asymmetry, as ``metafor::regtest``:
  the mixed-effects meta-regression version (``model="rma"``, metafor's default) and the
  classical weighted regression test of Egger et al. (1997) (``model="lm"``).
* :func:`ranktest` -- rank correlation test of Begg & Mazumdar (1994), as
  ``metafor::ranktest`` (Kendall's tau with the exact p-value of ``cor.test`` when there are
  no ties).
* :func:`trimfill` -- trim-and-fill of Duval & Tweedie (2000a, b), as
  ``metafor::trimfill.rma.uni`` (estimators L0, R0 and Q0, side chosen as metafor does).
* :func:`small_study_table` -- one tidy row per test, for ``small_study.csv``.

Every result says when k is too small for the method to be informative
(:class:`ManyFewStudiesNote`): tests for funnel plot asymmetry should be used only when
there are at least 10 studies (Sterne et al. 2011; Cochrane Handbook 13.3.5.4), because
with fewer studies their power is too low to tell chance from real asymmetry. With k < 3
nothing is computed (all numbers NaN, ``computable=False``) and the note says so; no
exception is raised for a small k.

Agreement with metafor 3.8-1 is checked to 1e-6 relative in ``tests/test_smallstudy.py``
against ``tests/reference/metafor_smallstudy*.csv``.

Deliberate differences from metafor 3.8 (all reported in the ``notes``):

* k < 3: not computed here (metafor computes some of these with k = 2, e.g. the FE
  regression test with as many coefficients as studies, or Kendall's tau = +-1 with p = 1;
  none of them carries information).
* Where metafor stops with an error (a predictor that is constant, so the model matrix is
  not of full rank; trim-and-fill not converging within ``maxiter``; the R0 estimator with
  no negative centred rank) the result has NaN numbers and a note instead.
* :func:`trimfill` uses ``ci_method`` and ``level`` for the refitted model whether or not
  studies are imputed (metafor: ``trimfill(x, test=..., level=...)`` with ``x`` fitted with
  the same ``test`` and ``level``; without them metafor returns the input fit when k0 = 0
  but refits with ``test="z"`` and 95% when k0 > 0).

References
----------
.. [1] Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected
   by a simple, graphical test. BMJ 315:629-634.
.. [2] Sterne JAC, Egger M (2005). Regression methods to detect publication and other bias
   in meta-analysis. In: Rothstein HR, Sutton AJ, Borenstein M (eds), Publication Bias in
   Meta-Analysis: Prevention, Assessment and Adjustments. Wiley, 99-110.
.. [3] Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for
   publication bias. Biometrics 50:1088-1101.
.. [4] Duval S, Tweedie R (2000a). Trim and fill: a simple funnel-plot-based method of
   testing and adjusting for publication bias in meta-analysis. Biometrics 56:455-463.
.. [5] Duval S, Tweedie R (2000b). A nonparametric "trim and fill" method of accounting for
   publication bias in meta-analysis. Journal of the American Statistical Association
   95:89-98.
.. [6] Sterne JAC, Sutton AJ, Ioannidis JPA, et al. (2011). Recommendations for examining
   and interpreting funnel plot asymmetry in meta-analyses of randomised controlled trials.
   BMJ 343:d4002.
.. [7] Page MJ, Higgins JPT, Sterne JAC (2022). Chapter 13: Assessing risk of bias due to
   missing results in a synthesis. In: Cochrane Handbook for Systematic Reviews of
   Interventions, version 6.3, section 13.3.5.4.
.. [8] Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced
   meta-analysis funnel plots help distinguish publication bias from other causes of
   asymmetry. Journal of Clinical Epidemiology 61:991-996.
.. [9] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.heterogeneity import Heterogeneity
from hairtrial.models.tau2 import validate_inputs
from hairtrial.models.univariate import CI_METHODS, METHODS, MetaResult, fit

__all__ = [
    "ESTIMATORS",
    "MIN_K_COMPUTABLE",
    "MIN_K_INFORMATIVE",
    "MODELS",
    "PREDICTORS",
    "SMALL_STUDY_COLUMNS",
    "ManyFewStudiesNote",
    "RankTestResult",
    "RegTestResult",
    "TrimFillResult",
    "ranktest",
    "regtest",
    "small_study_table",
    "trimfill",
]

#: ``model`` values of :func:`regtest`.
MODELS: tuple[str, ...] = ("rma", "lm")
#: ``predictor`` values of :func:`regtest` (metafor spelling).
PREDICTORS: tuple[str, ...] = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
#: Predictors for which the intercept is the 'limit estimate' (effect as precision -> inf).
LIMIT_PREDICTORS: tuple[str, ...] = ("sei", "vi", "ninv", "sqrtninv")
#: ``estimator`` values of :func:`trimfill`.
ESTIMATORS: tuple[str, ...] = ("L0", "R0", "Q0")
#: Fewer studies than this: asymmetry methods are not informative (Sterne et al. 2011).
MIN_K_INFORMATIVE = 10
#: Fewer studies than this: nothing is computed.
MIN_K_COMPUTABLE = 3
#: Columns of :func:`small_study_table`.
SMALL_STUDY_COLUMNS: tuple[str, ...] = (
    "test",
    "k",
    "statistic",
    "df",
    "pvalue",
    "estimate",
    "ci_lower",
    "ci_upper",
    "k0",
    "k0_se",
    "side",
    "informative",
    "notes",
)

_NAN = float("nan")

_METHOD_NAMES: dict[str, str] = {
    "regtest": "the regression test for funnel plot asymmetry (Egger's test)",
    "ranktest": "the rank correlation test for funnel plot asymmetry (Begg's test)",
    "trimfill": "trim-and-fill",
}


# --------------------------------------------------------------------------------------------
# The 'too few studies' statement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManyFewStudiesNote:
    """Whether k is large enough for a small-study method, with the statement to report.

    Tests for funnel plot asymmetry (and trim-and-fill, which rests on the same funnel
    asymmetry) should be used only when there are at least 10 studies: with fewer, the
    tests have too little power to distinguish chance from real asymmetry (Sterne et al.
    2011; Cochrane Handbook 13.3.5.4). Below 3 studies nothing is computed.

    Attributes
    ----------
    method : {"regtest", "ranktest", "trimfill"}
        The method the statement is about.
    k : int
        Number of studies.
    min_k : int
        Smallest informative k (10).

    Examples
    --------
    >>> note = ManyFewStudiesNote("regtest", 3)
    >>> note.informative, note.computable
    (False, True)
    >>> note.text.startswith("k = 3 < 10")
    True
    >>> ManyFewStudiesNote("ranktest", 12).text
    ''
    """

    method: str
    k: int
    min_k: int = MIN_K_INFORMATIVE

    @property
    def informative(self) -> bool:
        """True when k >= ``min_k``."""
        return self.k >= self.min_k

    @property
    def computable(self) -> bool:
        """True when k >= 3."""
        return self.k >= MIN_K_COMPUTABLE

    @property
    def text(self) -> str:
        """The statement for a report ('' when k is large enough)."""
        name = _METHOD_NAMES.get(self.method, self.method)
        if not self.computable:
            return (
                f"k = {self.k}: {name} is not computable (it needs at least "
                f"{MIN_K_COMPUTABLE} studies); no numbers are reported"
            )
        if self.informative:
            return ""
        return (
            f"k = {self.k} < {self.min_k}: too few studies for {name} to be informative; "
            f"tests for funnel plot asymmetry should be used only when there are at least "
            f"{self.min_k} studies, as with fewer the power is too low to distinguish chance "
            "from real asymmetry (Sterne et al. 2011; Cochrane Handbook 13.3.5.4); the "
            "numbers are reported for completeness only"
        )

    def __str__(self) -> str:
        return self.text


def _base_notes(method: str, k: int) -> tuple[ManyFewStudiesNote, list[str]]:
    note = ManyFewStudiesNote(method, k)
    return note, ([note.text] if note.text else [])


# --------------------------------------------------------------------------------------------
# Regression test
# --------------------------------------------------------------------------------------------


def _row_frame(row: dict[str, object]) -> pd.DataFrame:
    """One row of :func:`small_study_table` (columns :data:`SMALL_STUDY_COLUMNS`)."""
    out = pd.DataFrame([row], columns=list(SMALL_STUDY_COLUMNS))
    return out.astype({"k": int, "k0": int, "informative": bool})


@dataclass(frozen=True, eq=False)
class RegTestResult:
    """Result of :func:`regtest`.

    Attributes
    ----------
    model, predictor : str
        As passed.
    method : str
        tau^2 estimator of the meta-regression (``model="rma"``) or ``"lm"``.
    ci_method : str
        ``"z"``/``"knha"``/``"adhoc"`` for ``model="rma"``; ``"t"`` for ``model="lm"``.
    k : int
        Number of studies.
    level : float
        Confidence level of the limit estimate's CI.
    statistic : float
        Test statistic of the predictor's coefficient (metafor ``zval``): z for
        ``model="rma"`` with ``ci_method="z"``, t otherwise.
    df : float
        Degrees of freedom of the t statistic (k - 2); NaN for z (metafor ``ddf``).
    pvalue : float
        Two-sided p-value of the asymmetry test (metafor ``pval``).
    intercept, intercept_se, slope, slope_se : float
        Coefficients of the regression ``yi = intercept + slope * predictor`` and their SEs.
    tau2 : float
        Residual tau^2 of the meta-regression (0 for FE, NaN for ``model="lm"``).
    sigma2 : float
        Multiplicative dispersion of the weighted regression (``model="lm"``; NaN for rma).
    estimate, ci_lower, ci_upper : float
        metafor's 'limit estimate' (the intercept: the effect as the SE or 1/n goes to 0)
        with its CI, for predictors ``sei``, ``vi``, ``ninv``, ``sqrtninv``; NaN for ``ni``
        and ``sqrtni``.
    computable : bool
        False for k < 3 or a rank-deficient model matrix (numbers NaN).
    informative : bool
        False for k < 10 (Sterne et al. 2011).
    notes : tuple of str
        The few-studies statement and any other remark.
    """

    model: str
    predictor: str
    method: str
    ci_method: str
    k: int
    level: float
    statistic: float
    df: float
    pvalue: float
    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    tau2: float
    sigma2: float
    estimate: float
    ci_lower: float
    ci_upper: float
    computable: bool
    informative: bool
    notes: tuple[str, ...]

    def summary_frame(self) -> pd.DataFrame:
        """The test's row of :func:`small_study_table` (``test`` = ``regtest_<model>_<predictor>``).

        Returns
        -------
        pandas.DataFrame
            One row, columns :data:`SMALL_STUDY_COLUMNS`.
        """
        return _row_frame(
            {
                "test": f"regtest_{self.model}_{self.predictor}",
                "k": self.k,
                "statistic": self.statistic,
                "df": self.df,
                "pvalue": self.pvalue,
                "estimate": self.estimate,
                "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper,
                "k0": -1,
                "k0_se": _NAN,
                "side": "",
                "informative": self.informative,
                "notes": "; ".join(self.notes),
            }
        )


def _validate(yi: ArrayLike, vi: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`hairtrial.models.tau2.validate_inputs`, but k = 0 is allowed (not computable)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim == 1 and v.ndim == 1 and y.size == 0 and v.size == 0:
        return y, v
    return validate_inputs(y, v)


def _predictor_column(
    predictor: str, vi: NDArray[np.float64], ni: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    if predictor == "sei":
        return np.sqrt(vi)
    if predictor == "vi":
        return vi.copy()
    if ni is None:
        raise ValueError(f"predictor {predictor!r} needs the sample sizes ni")
    return {
        "ni": lambda n: n,
        "ninv": lambda n: 1.0 / n,
        "sqrtni": np.sqrt,
        "sqrtninv": lambda n: 1.0 / np.sqrt(n),
    }[predictor](ni)


def _check_ni(ni: ArrayLike | None, k: int) -> NDArray[np.float64] | None:
    if ni is None:
        return None
    n = np.asarray(ni, dtype=float)
    if n.ndim != 1 or n.size != k:
        raise ValueError(f"ni must be one-dimensional of length k = {k}")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError("ni must be finite and > 0")
    return n


def _full_rank(X: NDArray[np.float64]) -> bool:
    # metafor's check in rma.uni: no eigenvalue of X'X at or below 1e-7
    return bool(np.all(np.linalg.eigvalsh(X.T @ X) > 1e-7))


def regtest(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    model: str = "rma",
    predictor: str = "sei",
    method: str = "REML",
    ci_method: str = "z",
    ni: ArrayLike | None = None,
    level: float = 0.95,
) -> RegTestResult:
    """Regression test for funnel plot asymmetry, as ``metafor::regtest``.

    The effect sizes are regressed on a measure of precision (``predictor``); a slope
    different from 0 indicates funnel plot asymmetry (small-study effects).

    * ``model="rma"`` (metafor's default): the meta-regression
      ``yi = b0 + b1 * x_i + u_i + e_i`` fitted with :func:`hairtrial.models.univariate.fit`
      (``method``, ``ci_method``, ``level``); the test is the z (or Knapp-Hartung t) test of
      ``b1``.
    * ``model="lm"``: the classical Egger test (Egger et al. 1997; Sterne & Egger 2005):
      weighted least squares with weights ``1/vi`` and a multiplicative dispersion
      parameter (``lm(yi ~ x, weights = 1/vi)``), t-test of ``b1`` with k - 2 df. With
      ``predictor="sei"`` this equals Egger's regression of ``yi/sei`` on ``1/sei``, whose
      intercept is the slope here.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (finite, ``vi > 0``).
    model : {"rma", "lm"}
        Mixed-effects (or FE, with ``method="FE"``) meta-regression or weighted regression.
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
        ``sqrt(vi)``, ``vi``, ``ni``, ``1/ni``, ``sqrt(ni)`` or ``1/sqrt(ni)``.
    method : str
        tau^2 estimator for ``model="rma"`` (any of :data:`hairtrial.models.univariate.METHODS`).
    ci_method : {"z", "knha", "adhoc"}
        Inference for ``model="rma"`` (ignored for ``"lm"``, which uses t with k - 2 df).
    ni : array_like, optional
        Total sample sizes; needed for the ``n`` predictors.
    level : float
        Confidence level of the limit estimate's CI.

    Returns
    -------
    RegTestResult
        NaN numbers and ``computable=False`` for k < 3 or a constant predictor (metafor
        stops with an error there); ``informative=False`` and a note for k < 10.

    Raises
    ------
    ValueError
        Invalid inputs (non-finite or non-positive ``vi``, unknown option, ``ni`` missing
        for an ``n`` predictor).

    Notes
    -----
    metafor 3.8 ``regtest`` on a vector (or a model without moderators): ``X = [1, x]``;
    ``zval``/``pval`` of the second coefficient; ``est``/``ci.lb``/``ci.ub`` are the
    intercept and its CI for ``sei``, ``vi``, ``ninv``, ``sqrtninv`` (model ``rma``: the
    meta-regression's CI; model ``lm``: ``b0 -/+ qt(1 - alpha/2, k - 2) se(b0)``).

    References
    ----------
    Egger et al. (1997); Sterne & Egger (2005); Sterne et al. (2011); Viechtbauer (2010).
    Full citations in the module docstring.

    Examples
    --------
    >>> yi = [0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.70, 0.90, 0.40, 0.80]
    >>> vi = [0.01, 0.03, 0.02, 0.09, 0.05, 0.01, 0.10, 0.16, 0.04, 0.12]
    >>> res = regtest(yi, vi, model="lm")
    >>> res.df, round(res.statistic, 4), res.informative
    (8.0, 12.066, True)
    >>> regtest(yi[:3], vi[:3]).informative
    False
    """
    y, v = _validate(yi, vi)
    k = y.size
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    if predictor not in PREDICTORS:
        raise ValueError(f"unknown predictor {predictor!r}; choose one of {PREDICTORS}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1), e.g. 0.95")
    n = _check_ni(ni, k)
    x = _predictor_column(predictor, v, n)
    note, notes = _base_notes("regtest", k)
    out_method = method if model == "rma" else "lm"
    out_ci = ci_method if model == "rma" else "t"

    def empty(extra: str | None) -> RegTestResult:
        return RegTestResult(
            model=model,
            predictor=predictor,
            method=out_method,
            ci_method=out_ci,
            k=k,
            level=level,
            statistic=_NAN,
            df=_NAN,
            pvalue=_NAN,
            intercept=_NAN,
            intercept_se=_NAN,
            slope=_NAN,
            slope_se=_NAN,
            tau2=_NAN,
            sigma2=_NAN,
            estimate=_NAN,
            ci_lower=_NAN,
            ci_upper=_NAN,
            computable=False,
            informative=False,
            notes=tuple(notes + ([extra] if extra else [])),
        )

    if not note.computable:
        return empty(None)
    X = np.column_stack([np.ones(k), x])
    if not _full_rank(X):
        return empty(
            f"regtest: the predictor {predictor!r} is (nearly) constant across studies, so "
            "the model matrix is not of full rank; not computable"
        )

    alpha = 1 - level
    if model == "rma":
        res = fit(y, v, method=method, ci_method=ci_method, X=X, level=level)
        notes.extend(res.notes)
        b0, b1 = float(res.beta[0]), float(res.beta[1])
        se0, se1 = float(res.se[0]), float(res.se[1])
        stat = float(res.statistic[1])
        pval = float(res.pvalue[1])
        df = float(res.df) if res.df is not None else _NAN
        lo, hi = float(res.ci_lower[0]), float(res.ci_upper[0])
        tau2, sigma2 = res.tau2, _NAN
        if not res.converged:
            notes.append("regtest: the meta-regression did not converge")
    else:
        w = 1.0 / v
        sw = np.sqrt(w)
        q, r = np.linalg.qr(X * sw[:, None])
        beta = np.linalg.solve(r, q.T @ (y * sw))
        resid = y - X @ beta
        df = float(k - 2)
        sigma2 = float(np.sum(w * resid**2)) / df
        rinv = np.linalg.inv(r)
        vb = sigma2 * (rinv @ rinv.T)
        b0, b1 = float(beta[0]), float(beta[1])
        se0, se1 = math.sqrt(vb[0, 0]), math.sqrt(vb[1, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = float(np.float64(b1) / np.float64(se1))
        pval = float(2 * dist.t_sf(abs(stat), df))
        crit = float(dist.t_isf(alpha / 2, df))
        lo, hi = b0 - crit * se0, b0 + crit * se0
        tau2 = _NAN
        if sigma2 == 0:
            notes.append("regtest: essentially perfect fit (residual dispersion 0)")
    if predictor in LIMIT_PREDICTORS:
        est = b0
    else:
        est = lo = hi = _NAN
    return RegTestResult(
        model=model,
        predictor=predictor,
        method=out_method,
        ci_method=out_ci,
        k=k,
        level=level,
        statistic=stat,
        df=df,
        pvalue=pval,
        intercept=b0,
        intercept_se=se0,
        slope=b1,
        slope_se=se1,
        tau2=float(tau2),
        sigma2=float(sigma2),
        estimate=float(est),
        ci_lower=float(lo),
        ci_upper=float(hi),
        computable=True,
        informative=note.informative,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Rank correlation test
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RankTestResult:
    """Result of :func:`ranktest`.

    Attributes
    ----------
    k : int
        Number of studies.
    tau : float
        Kendall's tau (tau-b) between the standardized effects and the variances.
    pvalue : float
        Two-sided p-value: exact (``cor.test``'s ``pkendall``) when there are no ties, else
        the normal approximation with the tie-corrected variance of ``cor.test``.
    exact : bool
        True when the p-value is exact.
    statistic : float
        ``cor.test``'s statistic: T (number of concordant pairs) when exact, z otherwise.
    computable, informative : bool
        As in :class:`RegTestResult`.
    notes : tuple of str
        The few-studies statement and any other remark.
    """

    k: int
    tau: float
    pvalue: float
    exact: bool
    statistic: float
    computable: bool
    informative: bool
    notes: tuple[str, ...]

    def summary_frame(self) -> pd.DataFrame:
        """The test's row of :func:`small_study_table` (``statistic`` = Kendall's tau).

        Returns
        -------
        pandas.DataFrame
            One row, columns :data:`SMALL_STUDY_COLUMNS`.
        """
        return _row_frame(
            {
                "test": "ranktest",
                "k": self.k,
                "statistic": self.tau,
                "df": _NAN,
                "pvalue": self.pvalue,
                "estimate": _NAN,
                "ci_lower": _NAN,
                "ci_upper": _NAN,
                "k0": -1,
                "k0_se": _NAN,
                "side": "",
                "informative": self.informative,
                "notes": "; ".join(self.notes),
            }
        )


def _kendall_tau_b(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(x.size, 1)
    s = float(np.sum(sx[iu] * sy[iu]))
    nx = float(np.sum(sx[iu] ** 2))
    ny = float(np.sum(sy[iu] ** 2))
    if nx == 0 or ny == 0:
        return _NAN
    return s / math.sqrt(nx * ny)


def _mahonian_cdf(q: int, n: int) -> float:
    """P(T <= q) for the number of concordant pairs T of n untied pairs (R ``pkendall``)."""
    u = n * (n - 1) // 2
    if q < 0:
        return 0.0
    if q > u:
        return 1.0
    counts = [1]  # permutations of 1 element by number of inversions
    for m in range(2, n + 1):
        new = [0] * (len(counts) + m - 1)
        for j, c in enumerate(counts):
            for i in range(m):
                new[j + i] += c
        counts = new
    return sum(counts[: q + 1]) / math.factorial(n)


def _tie_counts(a: NDArray[np.float64]) -> NDArray[np.float64]:
    _, c = np.unique(a, return_counts=True)
    return c[c > 1].astype(float)


def ranktest(yi: ArrayLike, vi: ArrayLike) -> RankTestResult:
    """Rank correlation test for funnel plot asymmetry (Begg & Mazumdar 1994).

    As ``metafor::ranktest`` (3.8): with the common-effect estimate
    ``theta = sum(yi/vi) / sum(1/vi)`` and its variance ``vb = 1/sum(1/vi)``, the
    standardized effects ``(yi - theta) / sqrt(vi - vb)`` are correlated with ``vi`` by
    Kendall's tau (``cor.test(..., method="kendall", exact=TRUE)``): the p-value is exact
    (distribution of the number of concordant pairs) when neither variable has ties, and
    the normal approximation with the tie-corrected variance of S otherwise.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (finite, ``vi > 0``).

    Returns
    -------
    RankTestResult
        NaN numbers and ``computable=False`` for k < 3; ``informative=False`` and a note for
        k < 10.

    References
    ----------
    Begg & Mazumdar (1994); Sterne et al. (2011). Full citations in the module docstring.

    Examples
    --------
    >>> yi = [0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.70, 0.90, 0.40, 0.80]
    >>> vi = [0.01, 0.03, 0.02, 0.09, 0.05, 0.01, 0.10, 0.16, 0.04, 0.12]
    >>> res = ranktest(yi, vi)
    >>> round(res.tau, 4), res.exact
    (0.9439, False)
    """
    y, v = _validate(yi, vi)
    k = y.size
    note, notes = _base_notes("ranktest", k)
    if not note.computable:
        return RankTestResult(k, _NAN, _NAN, False, _NAN, False, False, tuple(notes))
    w = 1.0 / v
    # exactly rounded sums: the standardized effects (and so their ties) do not depend on
    # the order of the studies
    theta = math.fsum(w * y) / math.fsum(w)
    vb = 1.0 / math.fsum(w)
    ystar = (y - theta) / np.sqrt(v - vb)
    tau = _kendall_tau_b(ystar, v)
    ties = min(np.unique(ystar).size, np.unique(v).size) < k
    if not math.isfinite(tau):
        notes.append("ranktest: Kendall's tau is not defined (a variable is constant)")
        return RankTestResult(k, _NAN, _NAN, False, _NAN, False, note.informative, tuple(notes))
    if not ties:
        q = int(np.round((tau + 1) * k * (k - 1) / 4))
        p = 1.0 - _mahonian_cdf(q - 1, k) if q > k * (k - 1) / 4 else _mahonian_cdf(q, k)
        pval = min(2.0 * p, 1.0)
        return RankTestResult(k, tau, pval, True, float(q), True, note.informative, tuple(notes))
    xt, yt = _tie_counts(ystar), _tie_counts(v)
    t0 = k * (k - 1) / 2
    t1 = float(np.sum(xt * (xt - 1))) / 2
    t2 = float(np.sum(yt * (yt - 1))) / 2
    s = tau * math.sqrt((t0 - t1) * (t0 - t2))
    v0 = k * (k - 1) * (2 * k + 5)
    vt = float(np.sum(xt * (xt - 1) * (2 * xt + 5)))
    vu = float(np.sum(yt * (yt - 1) * (2 * yt + 5)))
    v1 = float(np.sum(xt * (xt - 1))) * float(np.sum(yt * (yt - 1)))
    v2 = float(np.sum(xt * (xt - 1) * (xt - 2))) * float(np.sum(yt * (yt - 1) * (yt - 2)))
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * k * (k - 1)) + v2 / (9 * k * (k - 1) * (k - 2))
    z = s / math.sqrt(var_s)
    pval = float(2 * min(dist.norm_cdf(z), dist.norm_sf(z)))
    notes.append("ranktest: ties present, so the p-value is from the normal approximation")
    return RankTestResult(k, tau, pval, False, float(z), True, note.informative, tuple(notes))


# --------------------------------------------------------------------------------------------
# Trim and fill
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrimFillResult:
    """Result of :func:`trimfill`.

    Attributes
    ----------
    estimator : {"L0", "R0", "Q0"}
        Estimator of the number of missing studies.
    side : str
        ``"left"`` or ``"right"``: the side of the funnel on which studies are imputed
        (``""`` when not computable).
    side_auto : bool
        True when the side was chosen from the data (metafor's rule, see :func:`trimfill`).
    method, ci_method : str
        Model used for the iterations and the refit.
    k : int
        Number of observed studies.
    k0 : int
        Estimated number of missing studies (-1 when not computable).
    k0_se : float
        metafor's ``se.k0`` (from the last iteration's unrounded k0).
    p_k0 : float
        For R0: metafor's ``p.k0`` (``0.5^(k0 + 1)``), the probability of k0 or more
        missing studies under symmetry; NaN for L0 and Q0.
    iterations : int
        Trim-and-fill iterations.
    filled_yi, filled_vi : ndarray
        Imputed effects (``2 * beta - yi`` of the mirrored studies) and their variances, in
        metafor's order.
    filled_from : ndarray of int
        Index (0-based, into the input) of the observed study each imputed one mirrors.
    fit : MetaResult or None
        The model refitted on observed + imputed studies (the model on the observed
        studies when k0 = 0); None when not computable.
    estimate, se, ci_lower, ci_upper, pvalue, tau2 : float
        Adjusted pooled estimate and its inference (from ``fit``).
    converged : bool
        False when the iterations did not settle within ``maxiter``.
    computable, informative : bool
        As in :class:`RegTestResult`.
    notes : tuple of str
        The few-studies statement and any other remark.
    """

    estimator: str
    side: str
    side_auto: bool
    method: str
    ci_method: str
    k: int
    k0: int
    k0_se: float
    p_k0: float
    iterations: int
    filled_yi: NDArray[np.float64]
    filled_vi: NDArray[np.float64]
    filled_from: NDArray[np.int64]
    fit: MetaResult | None
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    pvalue: float
    tau2: float
    converged: bool
    computable: bool
    informative: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def heterogeneity(self) -> Heterogeneity | None:
        """Heterogeneity of the refitted model (:attr:`fit`); None when not computable."""
        return self.fit.heterogeneity if self.fit is not None else None

    def summary_frame(self) -> pd.DataFrame:
        """The trim-and-fill row of :func:`small_study_table` (``test`` = ``trimfill_<estimator>``).

        Returns
        -------
        pandas.DataFrame
            One row, columns :data:`SMALL_STUDY_COLUMNS` (``pvalue`` = :attr:`p_k0`).
        """
        return _row_frame(
            {
                "test": f"trimfill_{self.estimator}",
                "k": self.k,
                "statistic": _NAN,
                "df": _NAN,
                "pvalue": self.p_k0,
                "estimate": self.estimate,
                "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper,
                "k0": self.k0,
                "k0_se": self.k0_se,
                "side": self.side,
                "informative": self.informative,
                "notes": "; ".join(self.notes),
            }
        )


def _rank_first(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """R ``rank(a, ties.method = "first")``."""
    order = np.argsort(a, kind="stable")
    r = np.empty(a.size)
    r[order] = np.arange(1, a.size + 1)
    return r


def _trimmed_estimate(y: NDArray[np.float64], v: NDArray[np.float64], method: str) -> float:
    """Pooled estimate of the trimmed studies, as metafor's iteration computes it.

    With a single study left the estimate is that study's effect, so its centred effect is
    0 in exact arithmetic; metafor computes it as ``((1/sqrt(w))^2 w) y`` (``.invcalc``:
    QR of ``sqrt(w)``, then ``tcrossprod``), which can differ from ``y`` by one ulp, and
    the sign of that rounding enters the signed ranks (and so k0 and its SE). The same
    operations are used here so that k0 and ``se.k0`` agree with metafor exactly.
    """
    if y.size == 1:
        w = 1.0 / float(v[0])
        a = (1.0 / math.sqrt(w)) ** 2
        return (a * w) * float(y[0])
    return float(fit(y, v, method=method).beta[0])


def trimfill(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    estimator: str = "L0",
    side: str | None = None,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
    maxiter: int = 100,
) -> TrimFillResult:
    """Trim-and-fill (Duval & Tweedie 2000a, b), as ``metafor::trimfill.rma.uni``.

    Algorithm (metafor 3.8, reproduced step by step):

    1. Side: if ``side`` is None, fit the meta-regression ``yi ~ sqrt(vi)`` with
       ``method``; a negative slope means small studies have small effects, so studies are
       missing on the ``"right"``; otherwise (slope >= 0) on the ``"left"``.
    2. For ``"right"`` the effects are negated; they are sorted increasingly (stable).
    3. Iterate: fit the intercept-only model (``method``) to the ``k - k0`` smallest
       effects; centre all k effects on its estimate ``beta``; signed ranks of the absolute
       centred effects (ties: first come first ranked); then

       * L0: ``k0 = (4 Sr - k (k + 1)) / (2k - 1)`` with Sr the sum of positive ranks,
         ``se = 4 sqrt(var(Sr)) / (2k - 1)``;
       * R0: ``k0 = k - r - 1`` with r the largest rank of a negative centred effect,
         ``se = sqrt(2 max(0, k0) + 2)``;
       * Q0: ``k0 = k - 1/2 - sqrt(2k^2 - 4 Sr + 1/4)``;

       ``k0 = max(0, round(k0))`` (round half to even), until k0 no longer changes.
    4. The k0 most extreme studies are mirrored about the last ``beta``
       (``2 beta - yi``, same ``vi``) and the model (``method``, ``ci_method``, ``level``) is
       refitted on observed + imputed studies.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (finite, ``vi > 0``).
    estimator : {"L0", "R0", "Q0"}
        Estimator of the number of missing studies.
    side : {"left", "right"} or None
        Side on which studies are imputed; None: chosen as metafor does (step 1).
    method : str
        Model of the input fit: ``"FE"`` or a tau^2 estimator; used in every step.
    ci_method : {"z", "knha", "adhoc"}
        Inference of the refitted model.
    level : float
        Confidence level of the refitted model.
    maxiter : int
        Maximum number of iterations (metafor's default 100).

    Returns
    -------
    TrimFillResult
        NaN numbers and ``computable=False`` for k < 3, for a side that cannot be chosen
        (all vi equal: constant predictor) and when the iterations fail (notes say why);
        ``informative=False`` and a note for k < 10.

    References
    ----------
    Duval & Tweedie (2000a, b); Sterne et al. (2011); Viechtbauer (2010). Full citations in
    the module docstring.

    Examples
    --------
    >>> yi = [0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.70, 0.90, 0.40, 0.80]
    >>> vi = [0.01, 0.03, 0.02, 0.09, 0.05, 0.01, 0.10, 0.16, 0.04, 0.12]
    >>> tf = trimfill(yi, vi, method="FE")
    >>> tf.side, tf.k0, tf.filled_yi.size
    ('left', 5, 5)
    """
    y0, v0 = _validate(yi, vi)
    k = y0.size
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be None, 'left' or 'right', not {side!r}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1), e.g. 0.95")
    if int(maxiter) < 1:
        raise ValueError("maxiter must be >= 1")
    note, notes = _base_notes("trimfill", k)
    side_auto = side is None
    empty_f = np.empty(0)
    empty_i = np.empty(0, dtype=np.int64)

    def failed(extra: str | None, side_: str = "", iters: int = 0) -> TrimFillResult:
        return TrimFillResult(
            estimator=estimator,
            side=side_,
            side_auto=side_auto,
            method=method,
            ci_method=ci_method,
            k=k,
            k0=-1,
            k0_se=_NAN,
            p_k0=_NAN,
            iterations=iters,
            filled_yi=empty_f,
            filled_vi=empty_f,
            filled_from=empty_i,
            fit=None,
            estimate=_NAN,
            se=_NAN,
            ci_lower=_NAN,
            ci_upper=_NAN,
            pvalue=_NAN,
            tau2=_NAN,
            converged=False,
            computable=False,
            informative=False,
            notes=tuple(notes + ([extra] if extra else [])),
        )

    if not note.computable:
        return failed(None)

    # 1. side
    if side is None:
        X = np.column_stack([np.ones(k), np.sqrt(v0)])
        if not _full_rank(X):
            return failed(
                "trimfill: all vi are equal, so the side cannot be chosen from the slope on "
                "sqrt(vi) (metafor stops here); pass side='left' or 'right'"
            )
        slope = float(fit(y0, v0, method=method, X=X).beta[1])
        side = "right" if slope < 0 else "left"

    # 2. flip and sort
    y = -y0 if side == "right" else y0.copy()
    ix = np.argsort(y, kind="stable")
    y, v = y[ix], v0[ix]

    # 3. iterate
    k0_sav, k0, it = -1, 0, 0
    beta = _NAN
    yc = y
    se_k0 = _NAN
    while k0 != k0_sav:
        k0_sav = k0
        it += 1
        if it > maxiter:
            return failed(
                f"trimfill: the iterations did not converge within maxiter = {maxiter}",
                side,
                it - 1,
            )
        beta = _trimmed_estimate(y[: k - k0], v[: k - k0], method)
        yc = y - beta
        rs = np.sign(yc) * _rank_first(np.abs(yc))
        if estimator == "R0":
            neg = rs[rs < 0]
            if neg.size == 0:
                return failed(
                    "trimfill: R0 is not defined (no centred effect is negative)", side, it
                )
            k0_raw = float((k - np.max(-neg)) - 1)
            se_k0 = math.sqrt(2 * max(0.0, k0_raw) + 2)
        else:
            sr = float(np.sum(rs[rs > 0]))
            if estimator == "L0":
                k0_raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
            else:
                disc = 2 * k**2 - 4 * sr + 0.25
                if disc < 0:
                    return failed("trimfill: Q0 is not defined (negative root)", side, it)
                k0_raw = k - 0.5 - math.sqrt(disc)
            var_sr = (
                k * (k + 1) * (2 * k + 1)
                + 10 * k0_raw**3
                + 27 * k0_raw**2
                + 17 * k0_raw
                - 18 * k * k0_raw**2
                - 18 * k * k0_raw
                + 6 * k**2 * k0_raw
            ) / 24
            if estimator == "L0":
                se_k0 = 4 * math.sqrt(var_sr) / (2 * k - 1) if var_sr >= 0 else _NAN
            else:
                den = (k - 0.5) ** 2 - k0_raw * (2 * k - k0_raw - 1)
                se_k0 = 2 * math.sqrt(var_sr) / math.sqrt(den) if var_sr >= 0 < den else _NAN
            if math.isfinite(se_k0):
                se_k0 = max(0.0, se_k0)
        k0 = max(0, int(np.round(k0_raw)))
        if k0 >= k:
            return failed(f"trimfill: k0 = {k0} >= k = {k}; not computable", side, it)

    # 4. fill and refit
    if k0 > 0:
        yc_f = -1 * (yc - beta) if side == "right" else yc - beta
        filled_yi = -1 * yc_f[k - k0 :]
        filled_vi = v[k - k0 :].copy()
        filled_from = ix[k - k0 :].astype(np.int64)
        res = fit(
            np.concatenate([y0, filled_yi]),
            np.concatenate([v0, filled_vi]),
            method=method,
            ci_method=ci_method,
            level=level,
        )
    else:
        filled_yi, filled_vi, filled_from = empty_f, empty_f, empty_i
        res = fit(y0, v0, method=method, ci_method=ci_method, level=level)
    notes.extend(res.notes)
    p_k0 = 0.5 ** (k0 + 1) if estimator == "R0" else _NAN
    return TrimFillResult(
        estimator=estimator,
        side=side,
        side_auto=side_auto,
        method=method,
        ci_method=ci_method,
        k=k,
        k0=k0,
        k0_se=float(se_k0),
        p_k0=float(p_k0),
        iterations=it,
        filled_yi=filled_yi,
        filled_vi=filled_vi,
        filled_from=filled_from,
        fit=res,
        estimate=res.estimate,
        se=res.estimate_se,
        ci_lower=res.estimate_ci_lower,
        ci_upper=res.estimate_ci_upper,
        pvalue=res.estimate_pvalue,
        tau2=res.tau2,
        converged=res.converged,
        computable=True,
        informative=note.informative,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# One table
# --------------------------------------------------------------------------------------------


def small_study_table(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    ni: ArrayLike | None = None,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
    predictor: str = "sei",
    estimator: str = "L0",
) -> pd.DataFrame:
    """All small-study methods on one data set, one tidy row per test.

    Rows (column ``test``), in this order:

    * ``regtest_rma_<predictor>``: :func:`regtest` with ``model="rma"`` (metafor's
      default regression test; ``method``, ``ci_method``);
    * ``regtest_lm_<predictor>``: :func:`regtest` with ``model="lm"`` (classical Egger);
    * ``ranktest``: :func:`ranktest` (``statistic`` = Kendall's tau);
    * ``trimfill_<estimator>``: :func:`trimfill` with the side chosen from the data
      (``estimate``/``ci_*`` = adjusted pooled estimate; ``pvalue`` = R0's ``p.k0``, NaN
      for L0/Q0; ``statistic``/``df`` NaN).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    ni : array_like, optional
        Total sample sizes (only for the ``n`` predictors).
    method, ci_method, level : str, str, float
        Model of the meta-analysis (regtest ``rma`` and trim-and-fill).
    predictor : str
        Predictor of the regression tests (default ``"sei"``: Egger's test).
    estimator : {"L0", "R0", "Q0"}
        Trim-and-fill estimator.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`SMALL_STUDY_COLUMNS`; ``informative`` is False and ``notes``
        carries the statement of :class:`ManyFewStudiesNote` for k < 10; numbers are NaN
        (``k0`` = -1, ``side`` = '') where not computable or not applicable (``k0``,
        ``k0_se`` and ``side`` belong to the trim-and-fill row only). ``notes`` joined with
        ``"; "``.

    Examples
    --------
    >>> tab = small_study_table([43.2, 69.2, 1.65], [143.9, 1093.9, 0.158])
    >>> list(tab["test"])
    ['regtest_rma_sei', 'regtest_lm_sei', 'ranktest', 'trimfill_L0']
    >>> bool(tab["informative"].any())
    False
    """
    frames = [
        regtest(
            yi,
            vi,
            model=model,
            predictor=predictor,
            method=method,
            ci_method=ci_method,
            ni=ni,
            level=level,
        ).summary_frame()
        for model in MODELS
    ]
    frames.append(ranktest(yi, vi).summary_frame())
    tf = trimfill(yi, vi, estimator=estimator, method=method, ci_method=ci_method, level=level)
    frames.append(tf.summary_frame())
    return pd.concat(frames, ignore_index=True)
