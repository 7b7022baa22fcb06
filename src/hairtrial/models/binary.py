"""Pooling 2x2 tables: Mantel-Haenszel, Peto, binomial-normal GLMM (metafor 3.8 parity).

* :func:`mantel_haenszel` reproduces ``metafor::rma.mh`` for ``measure = "RR" | "OR" | "RD"``:
  the Mantel-Haenszel estimate with the variance of Greenland & Robins (1985) for RR and RD
  and of Robins, Breslow & Greenland (1986) for OR, Wald-type CI and test, Cochran's Q
  (inverse-variance weights from ``escalc`` yi / vi, with ``add`` / ``to`` / ``drop00``),
  I2 = max(0, (Q - df) / Q) and H2 = Q / df; for OR also the Cochran-Mantel-Haenszel test and
  the Breslow-Day and Tarone tests of homogeneity.
* :func:`peto` reproduces ``metafor::rma.peto`` (Peto's one-step log odds ratio).
* :func:`glmm_um_fs` reproduces ``metafor::rma.glmm(measure = "OR", model = "UM.FS",
  method = "ML", nAGQ = 7)``, which fits with ``lme4::glmer`` the binomial-normal model with
  fixed study intercepts and a random treatment effect: for table i, arm j (j = 1
  experimental, j = 2 control) ``logit p_ij = alpha_i + beta * x_ij + theta * u_i * g_ij`` with
  x = 1 / 0, g = +1/2 / -1/2 and u_i ~ N(0, 1), so that the table's true log odds ratio is
  ``beta + theta * u_i`` and tau2 = theta^2. The marginal likelihood is approximated, as lme4
  does, by adaptive Gauss-Hermite quadrature (``nagq`` nodes per table, default 7; 1 is the
  Laplace approximation), centred at the conditional mode of u_i and scaled by the
  conditional curvature. Here the intercepts are profiled out table by table (each alpha_i
  enters only its own table's likelihood) and the profile deviance is minimised over
  (beta, theta). Standard errors are computed as lme4
  computes them by default for nAGQ > 0: the fixed-effect block of ``2 * inverse(H)``, with H
  the central-difference Hessian (step 1e-4 and formulas of lme4's ``deriv12``) of the
  deviance in (theta, beta, alpha), whose alpha_i-alpha_j entries are exactly 0.
  Heterogeneity: the Wald and likelihood-ratio tests against the saturated model (one log
  odds ratio per table) and I2 / H2 from tau2 and the 'typical' within-study variance of the
  escalc log odds ratios, as rma.glmm. :func:`glmm_prediction_interval` is the prediction
  interval of ``predict()`` for that model.
* :func:`inverse_variance` is the inverse-variance route (escalc yi / vi pooled by
  :func:`hairtrial.models.univariate.fit`).
* :func:`number_needed` (NNT / NNH from a risk difference) and :func:`absolute_effects`
  (events per 1,000 from a pooled RR / OR and a control-arm risk).

Arm 1 is the experimental arm, arm 2 the control arm (as in :mod:`hairtrial.derive.binary`).

Deliberate differences from metafor 3.8 (reported in ``notes``):

* With a single table contributing to Q (k_yi = 1) Q, its p-value, I2 and H2 are NaN (metafor:
  Q = 0, p = 1, I2 = 0, H2 = 1), as in :mod:`hairtrial.models.univariate`.
* An estimate that metafor reports as NA (MH RR / OR without events in one arm of every
  table) or where it stops with an error (Peto with one outcome never occurring) is NaN with
  a note; a variance that is 0 up to rounding (MH RR / RD) gives a NaN standard error with a
  note. Where ``rma.glmm`` stops for k = 1, the GLMM is fitted with tau2 fixed at 0 (the
  table's own maximum-likelihood log odds ratio), with a note; a diverging GLMM estimate (no
  events in one arm of every table) is flagged ``converged=False`` with a note.
* Breslow-Day expected counts use the conjugate form of metafor's quadratic root (the same
  number, without metafor's cancellation when the MH odds ratio is close to 1).
* Wald heterogeneity test of the GLMM: tables with a zero cell have an infinite
  saturated-model log odds ratio with infinite variance; their contribution is its limit, 0
  (glm stops after a finite number of iterations and reports a value close to that limit).

References
----------
.. [1] Mantel N, Haenszel W (1959). Statistical aspects of the analysis of data from
   retrospective studies of disease. Journal of the National Cancer Institute 22:719-748.
.. [2] Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse
   follow-up data. Biometrics 41:55-68.
.. [3] Robins J, Breslow N, Greenland S (1986). Estimators of the Mantel-Haenszel variance
   consistent in both sparse data and large-strata limiting models. Biometrics 42:311-323.
.. [4] Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Beta blockade during and after
   myocardial infarction: an overview of the randomized trials. Progress in Cardiovascular
   Diseases 27:335-371.
.. [5] Stijnen T, Hamza TH, Özdemir P (2010). Random effects meta-analysis of event outcome
   in the framework of the generalized linear mixed model with applications in sparse data.
   Statistics in Medicine 29:3046-3067.
.. [6] Bates D, Mächler M, Bolker B, Walker S (2015). Fitting linear mixed-effects models
   using lme4. Journal of Statistical Software 67(1):1-48.
.. [7] Altman DG (1998). Confidence intervals for the number needed to treat. BMJ
   317:1309-1312.
.. [8] Breslow NE, Day NE (1980). Statistical Methods in Cancer Research I. IARC; Tarone RE
   (1985). On heterogeneity tests based on efficient scores. Biometrika 72:91-95.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy  # scipy.optimize and scipy.linalg load on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.derive.binary import binary_effects
from hairtrial.models.univariate import MetaResult, fit

__all__ = [
    "SUMMARY_COLUMNS",
    "AbsoluteEffects",
    "BinaryPoolResult",
    "NumberNeeded",
    "absolute_effects",
    "assumed_control_risk",
    "glmm_prediction_interval",
    "glmm_um_fs",
    "inverse_variance",
    "mantel_haenszel",
    "number_needed",
    "peto",
    "pool_weights",
]

#: Columns of :meth:`BinaryPoolResult.summary_frame`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "k",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "tau2",
    "I2",
    "Q",
    "Q_pvalue",
    "ratio",
    "ratio_ci_lower",
    "ratio_ci_upper",
    "notes",
)

_NAN = float("nan")
#: lme4's step for the finite-difference Hessian (``deriv12``).
_HESS_DELTA = 1e-4
#: number of adaptive Gauss-Hermite nodes (rma.glmm default nAGQ = 7).
NAGQ = 7


@dataclass(frozen=True, eq=False)
class BinaryPoolResult:
    """A pooled estimate from 2x2 tables.

    Attributes
    ----------
    model : str
        ``"MH"``, ``"Peto"``, ``"GLMM (UM.FS)"`` or ``"IV <method>"``.
    measure : str
        ``"RR"``, ``"OR"`` or ``"RD"`` (RR and OR on the log scale).
    k : int
        Tables in the pooled estimate (metafor's ``k``).
    k_yi : int
        Tables with a finite escalc yi (used for Q and I2).
    level : float
        Confidence level.
    estimate, se, ci_lower, ci_upper, statistic, pvalue : float
        Pooled (log) effect, standard error, Wald-type CI, z and two-sided p-value.
    tau2 : float
        Between-study variance (0 for MH / Peto / common-effect models).
    Q, Q_df, Q_pvalue : float
        Heterogeneity test (MH: Cochran's Q around the MH estimate; Peto: Peto's Q; GLMM:
        Wald test against the saturated model; IV: Cochran's Q).
    I2, H2 : float
        As metafor reports them for the model.
    Q_lrt, Q_lrt_pvalue : float
        GLMM only: likelihood-ratio heterogeneity test (NaN otherwise).
    cmh, cmh_pvalue, breslow_day, breslow_day_pvalue, tarone, tarone_pvalue : float
        MH OR only: Cochran-Mantel-Haenszel test (continuity-corrected), Breslow-Day and
        Tarone homogeneity tests (NaN otherwise).
    converged : bool
        False when an iterative fit did not converge (GLMM).
    notes : tuple of str
        Boundary cases and other remarks.
    details : object
        Model-specific extras (IV: the :class:`MetaResult`; GLMM: a dict with the intercepts,
        the vcov matrix and the deviance).
    """

    model: str
    measure: str
    k: int
    k_yi: int
    level: float
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    statistic: float
    pvalue: float
    tau2: float
    Q: float
    Q_df: float
    Q_pvalue: float
    I2: float
    H2: float
    Q_lrt: float = _NAN
    Q_lrt_pvalue: float = _NAN
    cmh: float = _NAN
    cmh_pvalue: float = _NAN
    breslow_day: float = _NAN
    breslow_day_pvalue: float = _NAN
    tarone: float = _NAN
    tarone_pvalue: float = _NAN
    converged: bool = True
    notes: tuple[str, ...] = ()
    details: Any = field(default=None, repr=False)

    @property
    def is_ratio(self) -> bool:
        """True for RR and OR (estimate on the log scale)."""
        return self.measure in ("RR", "OR")

    @property
    def ratio(self) -> float:
        """exp(estimate) for RR / OR, NaN for RD."""
        return math.exp(self.estimate) if self.is_ratio else _NAN

    @property
    def ratio_ci(self) -> tuple[float, float]:
        """exp of the CI bounds for RR / OR, NaN for RD."""
        if not self.is_ratio:
            return (_NAN, _NAN)
        return (math.exp(self.ci_lower), math.exp(self.ci_upper))

    def summary_frame(self) -> pd.DataFrame:
        """One-row summary.

        Returns
        -------
        pandas.DataFrame
            Columns exactly :data:`SUMMARY_COLUMNS`; ``notes`` joined with ``"; "``.
        """
        lo, hi = self.ratio_ci
        row = {
            "k": self.k,
            "estimate": self.estimate,
            "se": self.se,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "pvalue": self.pvalue,
            "tau2": self.tau2,
            "I2": self.I2,
            "Q": self.Q,
            "Q_pvalue": self.Q_pvalue,
            "ratio": self.ratio,
            "ratio_ci_lower": lo,
            "ratio_ci_upper": hi,
            "notes": "; ".join(self.notes),
        }
        return pd.DataFrame([row], columns=list(SUMMARY_COLUMNS))


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _tables(
    ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    a, n1, c, n2 = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (ai, n1i, ci, n2i))
    if not (a.shape == n1.shape == c.shape == n2.shape) or a.ndim != 1 or a.size == 0:
        raise ValueError("ai, n1i, ci, n2i must be non-empty 1-d arrays of the same length")
    if not all(np.all(np.isfinite(x)) for x in (a, n1, c, n2)):
        raise ValueError("counts must be finite")
    if np.any(a < 0) or np.any(c < 0) or np.any(a > n1) or np.any(c > n2):
        raise ValueError("event counts must lie in [0, n]")
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        raise ValueError("group sizes must be positive")
    return a, n1 - a, c, n2 - c


def _wald(estimate: float, se: float, level: float) -> tuple[float, float, float, float]:
    """z, p, CI lower, CI upper."""
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return _NAN, _NAN, _NAN, _NAN
    crit = float(dist.norm_isf((1.0 - level) / 2.0))
    z = estimate / se
    p = float(2.0 * dist.norm_sf(abs(z)))
    return z, p, estimate - crit * se, estimate + crit * se


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def _q_stats(Q: float, df: int) -> tuple[float, float, float]:
    """p-value, I2 (percent), H2 of a Q statistic with df degrees of freedom (metafor)."""
    if not math.isfinite(Q) or df < 1:
        return _NAN, _NAN, _NAN
    p = float(dist.chi2_sf(Q, df))
    I2 = max(0.0, 100.0 * (Q - df) / Q) if Q > 0 else _NAN
    return p, I2, Q / df


def _escalc_q(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    c: NDArray[np.float64],
    d: NDArray[np.float64],
    measure: str,
    add: float,
    to: str,
    drop00: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """escalc yi / vi of the tables with both finite (as metafor drops NA yi / vi)."""
    es = binary_effects(a, a + b, c, c + d, measure=measure, add=add, to=to, drop00=drop00)
    keep = es["included"].to_numpy()
    return es["yi"].to_numpy()[keep], es["vi"].to_numpy()[keep]


# ----------------------------------------------------------------------------------------------
# Mantel-Haenszel
# ----------------------------------------------------------------------------------------------


def mantel_haenszel(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    measure: str = "OR",
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    correct: bool = True,
    level: float = 0.95,
) -> BinaryPoolResult:
    """Mantel-Haenszel pooled RR, OR or RD, as metafor 3.8 ``rma.mh``.

    Parameters
    ----------
    ai, n1i : array_like
        Events and participants in arm 1 (experimental), one entry per table.
    ci, n2i : array_like
        Events and participants in arm 2 (control).
    measure : {"OR", "RR", "RD"}
        Odds ratio and risk ratio are pooled on the log scale.
    add, to, drop00 : float, str, bool
        Zero-cell handling of the escalc yi / vi used only for Cochran's Q, I2 and H2
        (metafor's ``add[1]``, ``to[1]``, ``drop00[1]``; defaults 1/2, "only0", True). The
        MH estimate itself uses the uncorrected tables, all of them (a double-zero table adds
        nothing to the OR / RR sums but does count for RD).
    correct : bool
        Continuity correction of the Cochran-Mantel-Haenszel test (OR only).
    level : float
        Confidence level.

    Returns
    -------
    BinaryPoolResult

    Notes
    -----
    With S_i = n1i + n2i: RR = sum(ai n2i / S) / sum(ci n1i / S) with the Greenland-Robins
    variance; OR = sum(ai di / S) / sum(bi ci / S) with the Robins-Breslow-Greenland
    variance; RD = sum((ai n2i - ci n1i) / S) / sum(n1i n2i / S) with the Greenland-Robins
    (Sato) variance. Q = sum(wi (yi - estimate)^2) with wi = 1 / vi of the escalc tables.

    Examples
    --------
    >>> res = mantel_haenszel([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220],
    ...                       measure="RR")
    >>> round(res.ratio, 6)
    0.259001
    """
    if measure not in ("RR", "OR", "RD"):
        raise ValueError(f"measure must be 'RR', 'OR' or 'RD', got {measure!r}")
    _check_level(level)
    a, b, c, d = _tables(ai, n1i, ci, n2i)
    n1, n2 = a + b, c + d
    N = n1 + n2
    k = a.size
    notes: list[str] = []
    id00 = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    est = se = _NAN
    cmh = cmh_p = bd = bd_p = ta = ta_p = _NAN

    if measure == "OR":
        P = a / N + d / N
        Qv = b / N + c / N
        Rv = (a / N) * d
        Sv = (b / N) * c
        R, S = float(np.sum(Rv)), float(np.sum(Sv))
        if R == 0 or S == 0:
            notes.append(
                "MH odds ratio undefined: sum(ai di / n) or sum(bi ci / n) is 0 "
                "(no events, or no non-events, in one arm of every table)"
            )
        else:
            est = math.log(R / S)
            se = math.sqrt(
                0.5
                * (
                    float(np.sum(P * Rv)) / R**2
                    + float(np.sum(P * Sv + Qv * Rv)) / (R * S)
                    + float(np.sum(Qv * Sv)) / S**2
                )
            )
        xt, yt = a + c, b + d
        if np.sum(xt) > 0 and np.sum(yt) > 0:
            num = (abs(float(np.sum(a - (n1 / N) * xt))) - (0.5 if correct else 0.0)) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                den = float(np.sum((n1 / N) * (n2 / N) * (xt * (yt / (N - 1.0)))))
            cmh = num / den
            cmh_p = float(dist.chi2_sf(cmh, 1))
        if math.isfinite(est):
            bd, ta, bd_p, ta_p = _breslow_day_tarone(a, n1, n2, N, xt, yt, math.exp(est))
    elif measure == "RR":
        R = float(np.sum(a * (n2 / N)))
        S = float(np.sum(c * (n1 / N)))
        if np.sum(a) == 0 or np.sum(c) == 0:
            notes.append("MH risk ratio undefined: no events in one arm of every table")
        else:
            est = math.log(R / S)
            u1, u2 = float(np.sum((n1 / N) * (n2 / N) * (a + c))), float(np.sum((a / N) * c))
            var = (u1 - u2) / (R * S)
            if u1 - u2 > 1e-12 * u1:  # else 0 up to rounding
                se = math.sqrt(var)
            else:
                notes.append(
                    "MH risk ratio has zero variance (no table with both events and non-events)"
                )
    else:
        W = float(np.sum(n1 * (n2 / N)))
        est = float(np.sum(a * (n2 / N) - c * (n1 / N))) / W
        t1 = c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2.0
        t2 = a * (n2 - c) / N + c * (n1 - a) / N
        num = est * float(np.sum(t1)) + float(np.sum(t2)) / 2.0
        scale = abs(est * float(np.sum(t1))) + abs(float(np.sum(t2))) / 2.0
        positive = num > 1e-12 * scale  # else 0 up to rounding
        se = math.sqrt(num / W**2) if positive else _NAN
        if not positive:
            notes.append("MH risk difference has zero variance (all risks 0 or 1)")

    if np.any(id00) and measure != "RD":
        notes.append(
            f"{int(np.sum(id00))} double-zero table(s) contribute nothing to the MH {measure} "
            "and are excluded from Q"
        )
    elif np.any(id00) and drop00:
        notes.append(
            f"{int(np.sum(id00))} double-zero table(s) excluded from Q (kept in the MH RD)"
        )

    yi, vi = _escalc_q(a, b, c, d, measure, add, to, drop00)
    k_yi = int(yi.size)
    Q = Qp = I2 = H2 = _NAN
    if k_yi >= 2 and math.isfinite(est):
        Q = max(0.0, float(np.sum((yi - est) ** 2 / vi)))
        Qp, I2, H2 = _q_stats(Q, k_yi - 1)
    elif k_yi == 1:
        notes.append(
            f"k = 1 table with a finite {measure}: Q, I2 and H2 not defined "
            "(metafor reports Q = 0, I2 = 0, H2 = 1)"
        )
    elif k_yi == 0:
        notes.append(f"no table with a finite {measure}: Q, I2 and H2 not defined")
    if k == 1:
        notes.append("k = 1: the MH estimate is the single table's estimate")
    z, p, lo, hi = _wald(est, se, level)
    return BinaryPoolResult(
        model="MH",
        measure=measure,
        k=k,
        k_yi=k_yi,
        level=level,
        estimate=est,
        se=se,
        ci_lower=lo,
        ci_upper=hi,
        statistic=z,
        pvalue=p,
        tau2=0.0,
        Q=Q,
        Q_df=float(k_yi - 1) if k_yi >= 2 else _NAN,
        Q_pvalue=Qp,
        I2=I2,
        H2=H2,
        cmh=cmh,
        cmh_pvalue=cmh_p,
        breslow_day=bd,
        breslow_day_pvalue=bd_p,
        tarone=ta,
        tarone_pvalue=ta_p,
        notes=tuple(notes),
    )


def _breslow_day_tarone(
    a: NDArray[np.float64],
    n1: NDArray[np.float64],
    n2: NDArray[np.float64],
    N: NDArray[np.float64],
    xt: NDArray[np.float64],
    yt: NDArray[np.float64],
    psi: float,
) -> tuple[float, float, float, float]:
    """Breslow-Day and Tarone statistics and p-values around the MH odds ratio psi."""
    # expected a under psi: the root of (psi - 1) x^2 - A x + psi n1 xt = 0 in [0, n1]; metafor
    # writes it (A - B) / (2 (psi - 1)), which cancels catastrophically for psi near 1; the
    # conjugate form is the same number without the cancellation (and n1 xt / N at psi = 1)
    A = psi * (n1 + xt) + (n2 - xt)
    B = np.sqrt(np.maximum(A**2 - 4.0 * n1 * xt * psi * (psi - 1.0), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        N11 = np.where(A + B > 0, 2.0 * psi * n1 * xt / (A + B), 0.0)
    pos = (N11 > 0) & (xt > 0) & (yt > 0)
    k_pos = int(np.sum(pos))
    if k_pos == 0:
        return _NAN, _NAN, _NAN, _NAN
    N11 = N11[pos]
    N12 = n1[pos] - N11
    N21 = xt[pos] - N11
    N22 = N11 - n1[pos] - xt[pos] + N[pos]
    inv = 1.0 / (1.0 / N11 + 1.0 / N12 + 1.0 / N21 + 1.0 / N22)
    dev = a[pos] - N11
    bd = max(0.0, float(np.sum(dev**2 / inv)))
    ta = max(0.0, bd - float(np.sum(dev)) ** 2 / float(np.sum(inv)))
    if k_pos > 1:
        return bd, ta, float(dist.chi2_sf(bd, k_pos - 1)), float(dist.chi2_sf(ta, k_pos - 1))
    return bd, ta, _NAN, _NAN


# ----------------------------------------------------------------------------------------------
# Peto
# ----------------------------------------------------------------------------------------------


def peto(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    level: float = 0.95,
) -> BinaryPoolResult:
    """Peto's one-step pooled log odds ratio, as metafor 3.8 ``rma.peto``.

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and participants in arm 1 (experimental) and arm 2 (control).
    add, to, drop00 : float, str, bool
        Zero-cell handling of the escalc ``"PETO"`` values, which only decide ``k_yi`` (the
        degrees of freedom of Q + 1); the estimate and Q use the uncorrected tables.
    level : float
        Confidence level.

    Returns
    -------
    BinaryPoolResult

    Notes
    -----
    O - E = ai - (ai + ci) n1i / S and V = (ai + ci)(bi + di) n1i n2i / (S^2 (S - 1)) per
    table; estimate = sum(O - E) / sum(V), se = 1 / sqrt(sum(V)); Q = sum((O - E)^2 / V) -
    sum(O - E)^2 / sum(V) over the tables with V > 0, on k_yi - 1 df.

    Examples
    --------
    >>> res = peto([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220])
    >>> round(res.estimate, 6)
    -1.237343
    """
    _check_level(level)
    a, b, c, d = _tables(ai, n1i, ci, n2i)
    n1, n2 = a + b, c + d
    N = n1 + n2
    k = a.size
    notes: list[str] = []
    xt, yt = a + c, b + d
    E = xt * n1 / N
    with np.errstate(divide="ignore", invalid="ignore"):
        V = np.where(N > 1, xt * yt * (n1 / N) * (n2 / N) / (N - 1.0), 0.0)
    sumV = float(np.sum(V))
    yi, _ = _escalc_q(a, b, c, d, "PETO", add, to, drop00)
    k_yi = int(yi.size)
    est = se = Q = Qp = I2 = H2 = _NAN
    if sumV == 0:
        notes.append(
            "one of the two outcomes never occurs in any table: Peto's odds ratio undefined "
            "(metafor stops with an error)"
        )
    else:
        est = float(np.sum(a - E)) / sumV
        se = 1.0 / math.sqrt(sumV)
        pos = V > 0
        k_pos = int(np.sum(pos))
        Q = max(
            0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos])) - float(np.sum(a - E)) ** 2 / sumV
        )
        if k_pos > 1 and k_yi >= 2:
            Qp, I2, H2 = _q_stats(Q, k_yi - 1)
        else:
            Q = _NAN
            notes.append(
                f"k = {k_pos} informative table(s): Q, I2 and H2 not defined "
                "(metafor reports Q = 0, I2 = 0, H2 = 1)"
            )
    n00 = int(np.sum(V == 0))
    if n00:
        notes.append(f"{n00} table(s) without variance (double zero) contribute nothing")
    if k == 1:
        notes.append("k = 1: the estimate is the single table's Peto log odds ratio")
    z, p, lo, hi = _wald(est, se, level)
    return BinaryPoolResult(
        model="Peto",
        measure="OR",
        k=k,
        k_yi=k_yi,
        level=level,
        estimate=est,
        se=se,
        ci_lower=lo,
        ci_upper=hi,
        statistic=z,
        pvalue=p,
        tau2=0.0,
        Q=Q,
        Q_df=float(k_yi - 1) if math.isfinite(Q) else _NAN,
        Q_pvalue=Qp,
        I2=I2,
        H2=H2,
        notes=tuple(notes),
    )


def pool_weights(
    ai: ArrayLike, n1i: ArrayLike, ci: ArrayLike, n2i: ArrayLike, *, model: str, measure: str
) -> NDArray[np.float64]:
    """Percentage weights of the tables in a Mantel-Haenszel or Peto estimate (metafor).

    As ``weights()`` of ``rma.mh`` / ``rma.peto`` in metafor 3.8, from the uncorrected
    tables (S_i = n1i + n2i): MH OR ``bi ci / S``, MH RR ``ci n1i / S``, MH RD
    ``n1i n2i / S``; Peto ``(ai + ci)(bi + di) n1i n2i / (S^2 (S - 1))`` (the hypergeometric
    variance). A table that adds nothing to the estimate has weight 0.

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and participants in arm 1 (experimental) and arm 2 (control).
    model : {"MH", "Peto"}
        The pooling method.
    measure : {"RR", "OR", "RD"}
        Effect measure (Peto: OR).

    Returns
    -------
    ndarray
        Weights in percent (summing to 100), NaN for every table when all weights are 0.

    Examples
    --------
    >>> pool_weights([4, 6], [20, 30], [1, 3], [20, 30], model="MH", measure="RD").tolist()
    [40.0, 60.0]
    """
    a, b, c, d = _tables(ai, n1i, ci, n2i)
    n1, n2 = a + b, c + d
    N = n1 + n2
    if model == "MH":
        if measure == "OR":
            w = (b / N) * c
        elif measure == "RR":
            w = (c / N) * n1
        elif measure == "RD":
            w = (n1 / N) * n2
        else:
            raise ValueError(f"measure must be 'RR', 'OR' or 'RD', got {measure!r}")
    elif model == "Peto":
        w = (a + c) * (b + d) * (n1 / N) * (n2 / N) / (N - 1.0)
    else:
        raise ValueError(f"model must be 'MH' or 'Peto', got {model!r}")
    total = float(np.sum(w))
    if not total > 0:
        return np.full(a.size, _NAN)
    return 100.0 * w / total


# ----------------------------------------------------------------------------------------------
# inverse variance
# ----------------------------------------------------------------------------------------------


def inverse_variance(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    measure: str,
    method: str = "REML",
    ci_method: str = "z",
    add: float = 0.5,
    to: str = "only0",
    drop00: bool | None = None,
    cc: str = "constant",
    level: float = 0.95,
) -> BinaryPoolResult:
    """Inverse-variance common-effect / random-effects pooling of escalc RR / OR / RD.

    The tables are turned into yi / vi by :func:`hairtrial.derive.binary.binary_effects`
    (same ``add``, ``to``, ``drop00``, ``cc``) and pooled by
    :func:`hairtrial.models.univariate.fit`; tables with a missing yi or a zero variance are
    left out with a note.

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and participants in arm 1 (experimental) and arm 2 (control).
    measure : {"RR", "OR", "RD"}
        Effect measure.
    method, ci_method : str
        As :func:`hairtrial.models.univariate.fit`.
    add, to, drop00, cc : float, str, bool or None, str
        As :func:`hairtrial.derive.binary.binary_effects`.
    level : float
        Confidence level.

    Returns
    -------
    BinaryPoolResult
        ``details`` holds the :class:`~hairtrial.models.univariate.MetaResult`.

    Examples
    --------
    >>> res = inverse_variance([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220],
    ...                        measure="RR", method="FE")
    >>> round(res.estimate, 6)
    -1.330234
    """
    if measure not in ("RR", "OR", "RD"):
        raise ValueError(f"measure must be 'RR', 'OR' or 'RD', got {measure!r}")
    es = binary_effects(ai, n1i, ci, n2i, measure=measure, add=add, to=to, drop00=drop00, cc=cc)
    keep = es["included"].to_numpy() & (es["vi"].fillna(0).to_numpy() > 0)
    notes = list(es.attrs.get("notes", ()))
    left = int(np.sum(~keep))
    if left:
        notes.append(f"{left} table(s) without a finite {measure} and positive variance left out")
    if not np.any(keep):
        notes.append(f"no table has a finite {measure} with positive variance: nothing to pool")
        return _empty_result(f"IV {method}", measure, 0, level, notes)
    res: MetaResult = fit(
        es["yi"].to_numpy()[keep],
        es["vi"].to_numpy()[keep],
        method=method,
        ci_method=ci_method,
        level=level,
    )
    notes.extend(res.notes)
    return BinaryPoolResult(
        model=f"IV {method}",
        measure=measure,
        k=res.k,
        k_yi=res.k,
        level=level,
        estimate=res.estimate,
        se=res.estimate_se,
        ci_lower=res.estimate_ci_lower,
        ci_upper=res.estimate_ci_upper,
        statistic=res.estimate_statistic,
        pvalue=res.estimate_pvalue,
        tau2=res.tau2,
        Q=res.Q,
        Q_df=float(res.Q_df),
        Q_pvalue=res.Q_pvalue,
        I2=res.I2,
        H2=res.H2,
        converged=res.converged,
        notes=tuple(notes),
        details=res,
    )


# ----------------------------------------------------------------------------------------------
# binomial-normal GLMM (UM.FS)
# ----------------------------------------------------------------------------------------------


def _gh_rule(n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss-Hermite nodes and weights for the standard normal density (lme4 ``GHrule``)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / math.sqrt(2.0 * math.pi)


class _UMFS:
    """AGQ deviance of the UM.FS model for a set of 2x2 tables (lme4's glmer deviance)."""

    def __init__(
        self,
        a: NDArray[np.float64],
        n1: NDArray[np.float64],
        c: NDArray[np.float64],
        n2: NDArray[np.float64],
        nagq: int,
    ) -> None:
        self.y = np.stack([a, c])  # 2 x k: arm 1, arm 2
        self.n = np.stack([n1, n2])
        self.m = self.n - self.y
        self.g = np.array([[0.5], [-0.5]])
        self.x = np.array([[1.0], [0.0]])
        self.z, self.w = _gh_rule(nagq)
        # saturated part of the binomial deviance: sum y log(y/n) + m log(m/n)
        self.sat = scipy.special.xlogy(self.y, self.y / self.n) + scipy.special.xlogy(
            self.m, self.m / self.n
        )

    def _dev(self, eta: NDArray[np.float64]) -> NDArray[np.float64]:
        """Binomial deviance residuals summed over the two arms (per table)."""
        logp = -np.logaddexp(0.0, -eta)
        log1mp = -np.logaddexp(0.0, eta)
        return 2.0 * np.sum(self.sat - self.y * logp - self.m * log1mp, axis=0)

    def _mode(
        self, eta0: NDArray[np.float64], theta: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Conditional modes u and curvatures (1 + theta^2 sum w g^2) per table."""
        k = eta0.shape[1]
        u = np.zeros(k)
        tg = theta * self.g
        if theta == 0.0:
            return u, np.ones(k)
        for _ in range(100):
            eta = eta0 + tg * u
            p = scipy.special.expit(eta)
            grad = u - np.sum((self.y - self.n * p) * tg, axis=0)
            hess = 1.0 + np.sum(self.n * p * (1.0 - p) * tg**2, axis=0)
            step = grad / hess
            # g(u) is convex: a Newton step never increases it by much; halve if it does
            obj0 = self._dev(eta) + u**2
            u_new = u - step
            for _ in range(30):
                obj1 = self._dev(eta0 + tg * u_new) + u_new**2
                bad = (obj1 > obj0 + 1e-12 * (1.0 + np.abs(obj0))) & (np.abs(step) > 1e-7)
                if not np.any(bad):
                    break
                step = np.where(bad, step / 2.0, step)
                u_new = u - step
            u = u_new
            if np.max(np.abs(step)) < 1e-11 * (1.0 + np.max(np.abs(u))):
                break
        p = scipy.special.expit(eta0 + tg * u)
        curv = 1.0 + np.sum(self.n * p * (1.0 - p) * tg**2, axis=0)
        return u, curv

    def table_deviance(
        self, alpha: NDArray[np.float64], beta: float, theta: float
    ) -> NDArray[np.float64]:
        """AGQ deviance of each table (lme4: devc0 + log L_ii^2 - 2 log mult_i)."""
        eta0 = alpha[None, :] + beta * self.x
        u, curv = self._mode(eta0, theta)
        tg = theta * self.g
        g0 = self._dev(eta0 + tg * u) + u**2
        if theta == 0.0:
            return g0
        sd = 1.0 / np.sqrt(curv)
        terms = []
        for zk, wk in zip(self.z, self.w, strict=True):
            if zk == 0.0:
                terms.append(np.full_like(u, math.log(wk)))
                continue
            uk = u + zk * sd
            gk = self._dev(eta0 + tg * uk) + uk**2
            terms.append(math.log(wk) + 0.5 * zk**2 - 0.5 * (gk - g0))
        t = np.stack(terms)
        tmax = np.max(t, axis=0)
        lmult = tmax + np.log(np.sum(np.exp(t - tmax), axis=0))
        return g0 + np.log(curv) - 2.0 * lmult

    def deviance(self, par: NDArray[np.float64]) -> float:
        """Deviance at lme4's parameter vector (theta, beta, alpha_1..alpha_k)."""
        return float(np.sum(self.table_deviance(par[2:], float(par[1]), float(par[0]))))

    def profile_alpha(
        self, beta: float, theta: float, alpha0: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-table minimisation over alpha_i (Newton with central differences)."""
        alpha = alpha0.copy()
        h = 1e-3
        for _ in range(60):
            f0 = self.table_deviance(alpha, beta, theta)
            fp = self.table_deviance(alpha + h, beta, theta)
            fm = self.table_deviance(alpha - h, beta, theta)
            g = (fp - fm) / (2.0 * h)
            H = (fp - 2.0 * f0 + fm) / h**2
            step = np.where(H > 0, g / np.where(H > 0, H, 1.0), np.sign(g) * 0.5)
            step = np.clip(step, -2.0, 2.0)
            new = alpha - step
            f1 = self.table_deviance(new, beta, theta)
            for _ in range(40):
                # near the minimum, rounding noise can exceed the decrease: accept tiny steps
                bad = (f1 > f0 + 1e-13 * (1.0 + np.abs(f0))) & (np.abs(step) > 1e-7)
                if not np.any(bad):
                    break
                step = np.where(bad, step / 2.0, step)
                new = alpha - step
                f1 = self.table_deviance(new, beta, theta)
            alpha = new
            if np.max(np.abs(step)) < 1e-9:
                break
        return alpha, self.table_deviance(alpha, beta, theta)


def _hessian(
    mdl: _UMFS, par: NDArray[np.float64], delta: float = _HESS_DELTA
) -> NDArray[np.float64]:
    """Central-difference Hessian of the deviance in (theta, beta, alpha), as lme4's ``deriv12``.

    Same steps and formulas as ``deriv12`` (diagonal ``(f(+) - 2 f + f(-)) / delta^2``, cross
    terms ``(f(++) - f(+-) - f(-+) + f(--)) / (2 delta)^2``), using that alpha_i enters table
    i only: the alpha_i-alpha_j (i != j) entries are exactly 0 (deriv12 gets rounding noise
    there), and all alpha_i are perturbed at once, reading table i's deviance for alpha_i.
    """
    theta, beta, alpha = float(par[0]), float(par[1]), par[2:]
    k = alpha.size

    def dev(dt: float, db: float, da: float) -> NDArray[np.float64]:
        return mdl.table_deviance(alpha + da, beta + db, theta + dt)

    d = delta
    f0 = dev(0, 0, 0)
    H = np.zeros((k + 2, k + 2))
    # theta, beta block (full deviance)
    for j, (dt, db) in enumerate(((d, 0.0), (0.0, d))):
        H[j, j] = (np.sum(dev(dt, db, 0)) - 2 * np.sum(f0) + np.sum(dev(-dt, -db, 0))) / d**2
    H[0, 1] = H[1, 0] = (
        np.sum(dev(d, d, 0))
        - np.sum(dev(d, -d, 0))
        - np.sum(dev(-d, d, 0))
        + np.sum(dev(-d, -d, 0))
    ) / (2 * d) ** 2
    idx = np.arange(k) + 2
    H[idx, idx] = (dev(0, 0, d) - 2 * f0 + dev(0, 0, -d)) / d**2
    for j, (dt, db) in enumerate(((d, 0.0), (0.0, d))):
        # table i's deviance carries all of d2 f / (d theta|beta) d alpha_i
        cross = (dev(dt, db, d) - dev(dt, db, -d) - dev(-dt, -db, d) + dev(-dt, -db, -d)) / (
            2 * d
        ) ** 2
        H[j, idx] = H[idx, j] = cross
    return H


def glmm_um_fs(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    *,
    nagq: int = NAGQ,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    level: float = 0.95,
) -> BinaryPoolResult:
    """Binomial-normal model with fixed study intercepts (UM.FS), as ``rma.glmm``.

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and participants in arm 1 (experimental) and arm 2 (control).
    nagq : int, default 7
        Adaptive Gauss-Hermite nodes per table (metafor / lme4 ``nAGQ``).
    add, to : float, str
        Zero-cell handling of the escalc log odds ratios used only for I2 / H2.
    drop00 : bool, default True
        Leave out double-zero tables (metafor's default for ``rma.glmm``).
    level : float
        Confidence level.

    Returns
    -------
    BinaryPoolResult
        ``measure = "OR"``; ``Q`` is the Wald and ``Q_lrt`` the likelihood-ratio test of
        heterogeneity (df = k - 1); ``details`` holds the intercepts, the covariance matrix
        of (beta, alpha), the deviance and the log-likelihood-ratio statistic.

    Notes
    -----
    See the module docstring for the model and the algorithm. tau2 at 0 (the likelihood is
    largest at theta = 0) is reported as 0 with a note; so are k = 1 (tau2 fixed at 0),
    double-zero tables left out, and a non-converged fit.

    Examples
    --------
    >>> res = glmm_um_fs([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220])
    >>> round(res.estimate, 4), res.tau2
    (-1.4192, 0.0)
    """
    _check_level(level)
    if nagq < 1:
        raise ValueError("nagq must be >= 1")
    a0, b0, c0, d0 = _tables(ai, n1i, ci, n2i)
    notes: list[str] = []
    id00 = ((a0 == 0) & (c0 == 0)) | ((b0 == 0) & (d0 == 0))
    keep = ~id00 if drop00 else np.ones(a0.size, dtype=bool)
    if np.any(~keep):
        notes.append(f"{int(np.sum(~keep))} double-zero table(s) left out of the GLMM")
    a, b, c, d = a0[keep], b0[keep], c0[keep], d0[keep]
    k = int(a.size)
    if k == 0:
        notes.append("no informative table: GLMM not estimable")
        return _empty_result("GLMM (UM.FS)", "OR", 0, level, notes)
    n1, n2 = a + b, c + d
    mdl = _UMFS(a, n1, c, n2, nagq)

    # starting values: intercepts at the control-arm logits, beta at the MH log OR
    alpha = scipy.special.logit((c + 0.5) / (n2 + 1.0))
    beta0 = math.log(
        max(float(np.sum((a + 0.5) * (d + 0.5) / (n1 + n2 + 2))), 1e-300)
        / max(float(np.sum((b + 0.5) * (c + 0.5) / (n1 + n2 + 2))), 1e-300)
    )
    state = {"alpha": alpha}

    def profile(beta: float, theta: float) -> float:
        al, dev = mdl.profile_alpha(beta, abs(theta), state["alpha"])
        if np.all(np.isfinite(al)):
            state["alpha"] = al
        return float(np.sum(dev))

    # common-effect (theta = 0) fit: LRT heterogeneity statistic and the k = 1 fit
    fe = scipy.optimize.minimize_scalar(
        lambda bb: profile(bb, 0.0),
        bracket=(beta0 - 1.0, beta0 + 1.0),
        options={"xtol": 1e-12, "maxiter": 500},
    )
    beta_fe, dev_fe = float(fe.x), float(fe.fun)
    converged = True
    if k == 1:
        theta, beta = 0.0, beta_fe
        notes.append(
            "k = 1: tau2 not estimable, fixed at 0 (the table's maximum-likelihood log odds "
            "ratio; metafor stops with an error)"
        )
    else:
        # coarse search over theta at the common-effect beta, then Nelder-Mead, then Newton
        grid = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
        t0 = min(grid, key=lambda t: profile(beta_fe, t))
        best = scipy.optimize.minimize(
            lambda p: profile(float(p[0]), float(p[1])),
            x0=np.array([beta_fe, t0]),
            method="Nelder-Mead",
            options={
                "xatol": 1e-7,
                "fatol": 1e-10,
                "maxfev": 4000,
                "initial_simplex": np.array(
                    [[beta_fe, t0], [beta_fe + 0.1, t0], [beta_fe, t0 * 1.5]]
                ),
            },
        )
        converged = bool(best.success)
        beta, theta = float(best.x[0]), abs(float(best.x[1]))
        # polish with a few Newton steps on the 2-d profile (central differences)
        beta, theta = _polish(profile, beta, theta)
        dev_b = profile(beta, theta)
        if dev_fe <= dev_b + 1e-10:
            # the likelihood is largest at theta = 0 (boundary): the common-effect fit
            theta, beta = 0.0, beta_fe
        else:
            # first-order check at the optimum (lme4 checks the scaled gradient, tol 2e-3)
            h = 1e-5
            grad = [
                (profile(beta + h, theta) - profile(beta - h, theta)) / (2 * h),
                (profile(beta, theta + h) - profile(beta, theta - h)) / (2 * h),
            ]
            if max(abs(g) for g in grad) > 1e-3:
                converged = False
        if not converged:
            notes.append("GLMM optimisation did not converge")
    if not (math.isfinite(beta) and abs(beta) < 30):
        converged = False
        notes.append(
            "GLMM log odds ratio diverges (e.g. no events in one arm of every table): "
            "the estimate is not meaningful"
        )
    alpha, _ = mdl.profile_alpha(beta, theta, state["alpha"])
    par = np.concatenate([[theta, beta], alpha])
    dev = mdl.deviance(par)
    tau2 = theta**2
    if tau2 == 0.0 and k > 1:
        notes.append("tau2 estimated at 0 (boundary)")

    # standard errors: lme4's finite-difference Hessian of the deviance in (theta, beta, alpha)
    H = _hessian(mdl, par)
    vcov = _NAN * np.ones((k + 1, k + 1))
    try:
        inv = np.linalg.solve(H, np.eye(H.shape[0]))
        vh = inv[1:, 1:]
        vh = vh + vh.T  # lme4: forceSymmetric(h + t(h)) = 2 * solve(H) block
        if np.all(np.isfinite(vh)) and np.min(np.linalg.eigvalsh(vh)) > 0:
            vcov = np.asarray(vh, dtype=np.float64)
    except np.linalg.LinAlgError:
        pass
    if not np.all(np.isfinite(vcov)):
        vcov = _vcov_rx(mdl, beta, theta, alpha)
        notes.append(
            "finite-difference Hessian not positive definite: covariance from the conditional "
            "information (lme4's fallback)"
        )
    se = math.sqrt(vcov[0, 0]) if vcov[0, 0] > 0 else _NAN

    # heterogeneity: saturated model (deviance 0: one log odds ratio per table)
    lrt = max(0.0, dev_fe)
    wald = _wald_saturated(a, b, c, d)
    if k > 1:
        Qp = float(dist.chi2_sf(wald, k - 1))
        Qlp = float(dist.chi2_sf(lrt, k - 1))
        q_df = float(k - 1)
    else:
        wald = lrt = Qp = Qlp = q_df = _NAN
    if np.any((a == 0) | (b == 0) | (c == 0) | (d == 0)) and k > 1:
        notes.append(
            "tables with a zero cell have an infinite saturated log odds ratio: they add 0 "
            "to the Wald heterogeneity statistic (its limit)"
        )
    yi, vi = _escalc_q(a0, b0, c0, d0, "OR", add, to, drop00)
    I2 = H2 = _NAN
    if yi.size > 1:
        w = 1.0 / vi
        vt = (yi.size - 1) / (float(np.sum(w)) - float(np.sum(w**2)) / float(np.sum(w)))
        I2 = 100.0 * tau2 / (vt + tau2)
        H2 = tau2 / vt + 1.0
    z, p, lo, hi = _wald(beta, se, level)
    return BinaryPoolResult(
        model="GLMM (UM.FS)",
        measure="OR",
        k=k,
        k_yi=int(yi.size),
        level=level,
        estimate=beta,
        se=se,
        ci_lower=lo,
        ci_upper=hi,
        statistic=z,
        pvalue=p,
        tau2=tau2,
        Q=wald,
        Q_df=q_df,
        Q_pvalue=Qp,
        I2=I2,
        H2=H2,
        Q_lrt=lrt,
        Q_lrt_pvalue=Qlp,
        converged=converged,
        notes=tuple(notes),
        details={"alpha": alpha, "vcov": vcov, "deviance": dev, "theta": theta},
    )


def glmm_prediction_interval(res: BinaryPoolResult) -> tuple[float, float]:
    """Prediction interval of a new table's true log odds ratio, as metafor's ``predict()``.

    For ``rma.glmm``: ``estimate +- z sqrt(se^2 + tau2)`` at the result's level (Wald, as the
    model's CI; checked against metafor 3.8).

    Parameters
    ----------
    res : BinaryPoolResult
        A result of :func:`glmm_um_fs`.

    Returns
    -------
    tuple of float
        (lower, upper); NaN for k < 2 (tau2 not estimated) or without an estimate.

    Examples
    --------
    >>> res = glmm_um_fs([4, 6, 3, 10, 8], [123, 306, 231, 100, 90], [11, 29, 11, 5, 12],
    ...                  [139, 303, 220, 110, 95])
    >>> tuple(round(x, 4) for x in glmm_prediction_interval(res))
    (-2.2602, 0.8286)
    """
    if res.k < 2 or not (math.isfinite(res.estimate) and math.isfinite(res.se)):
        return _NAN, _NAN
    crit = float(dist.norm_isf((1.0 - res.level) / 2.0))
    half = crit * math.sqrt(res.se**2 + res.tau2)
    return res.estimate - half, res.estimate + half


def _polish(profile: Any, beta: float, theta: float) -> tuple[float, float]:
    """Newton steps on the (beta, theta) profile deviance, kept only if they improve it."""
    x = np.array([beta, theta])
    f = profile(*x)
    h = 1e-4
    for _ in range(5):
        if x[1] < 10 * h:
            break
        g = np.zeros(2)
        H = np.zeros((2, 2))
        for i in range(2):
            e = np.zeros(2)
            e[i] = h
            fp, fm = profile(*(x + e)), profile(*(x - e))
            g[i] = (fp - fm) / (2 * h)
            H[i, i] = (fp - 2 * f + fm) / h**2
        e1, e2 = np.array([h, 0.0]), np.array([0.0, h])
        H[0, 1] = H[1, 0] = (
            profile(*(x + e1 + e2))
            - profile(*(x + e1 - e2))
            - profile(*(x - e1 + e2))
            + profile(*(x - e1 - e2))
        ) / (4 * h**2)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        xn = x - step
        fn = profile(*xn)
        if not fn <= f:
            break
        x, f = xn, fn
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(x[0]), abs(float(x[1]))


def _vcov_rx(
    mdl: _UMFS, beta: float, theta: float, alpha: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Covariance of (beta, alpha) from the information given theta (lme4 ``unsc()``)."""
    eta0 = alpha[None, :] + beta * mdl.x
    u, curv = mdl._mode(eta0, theta)
    p = scipy.special.expit(eta0 + theta * mdl.g * u)
    w = mdl.n * p * (1.0 - p)
    k = alpha.size
    info = np.zeros((k + 1, k + 1))
    info[0, 0] = float(np.sum(w[0]))
    idx = np.arange(k) + 1
    info[0, idx] = info[idx, 0] = w[0]
    info[idx, idx] = w[0] + w[1]
    v = np.zeros((k + 1, k))
    v[0, :] = w[0] * theta / 2.0
    v[idx, np.arange(k)] = (w[0] - w[1]) * theta / 2.0
    info -= (v / curv) @ v.T
    try:
        return np.asarray(np.linalg.inv(info), dtype=np.float64)
    except np.linalg.LinAlgError:
        return _NAN * np.ones((k + 1, k + 1))


def _wald_saturated(
    a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64], d: NDArray[np.float64]
) -> float:
    """Wald test that the saturated model's table log odds ratios are equal (limit form)."""
    ok = (a > 0) & (b > 0) & (c > 0) & (d > 0)
    if np.sum(ok) < 2:
        return 0.0
    y = np.log(a[ok] * d[ok] / (b[ok] * c[ok]))
    w = 1.0 / (1.0 / a[ok] + 1.0 / b[ok] + 1.0 / c[ok] + 1.0 / d[ok])
    ybar = float(np.sum(w * y)) / float(np.sum(w))
    return float(np.sum(w * (y - ybar) ** 2))


def _empty_result(
    model: str, measure: str, k: int, level: float, notes: list[str]
) -> BinaryPoolResult:
    return BinaryPoolResult(
        model=model,
        measure=measure,
        k=k,
        k_yi=0,
        level=level,
        estimate=_NAN,
        se=_NAN,
        ci_lower=_NAN,
        ci_upper=_NAN,
        statistic=_NAN,
        pvalue=_NAN,
        tau2=_NAN,
        Q=_NAN,
        Q_df=_NAN,
        Q_pvalue=_NAN,
        I2=_NAN,
        H2=_NAN,
        converged=False,
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------------
# absolute effects
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberNeeded:
    """Number needed to treat for one additional beneficial / harmful outcome.

    Attributes
    ----------
    kind : str
        ``"NNTB"`` (benefit), ``"NNTH"`` (harm) or ``"none"`` (RD = 0).
    value : float
        1 / |RD| (inf for RD = 0).
    ci_lower, ci_upper : float
        Bounds of the CI on the NNT scale when the RD CI excludes 0 (NaN otherwise).
    text : str
        Altman's presentation, e.g. ``"NNTB 5 (3 to 12)"`` or
        ``"NNTB 10 (NNTH 50 to infinity to NNTB 4)"`` when the RD CI includes 0.
    """

    kind: str
    value: float
    ci_lower: float
    ci_upper: float
    text: str


def _nn(x: float) -> str:
    return "infinity" if not math.isfinite(x) else f"{math.ceil(x - 1e-9):d}"


def number_needed(
    rd: float,
    ci_lower: float = _NAN,
    ci_upper: float = _NAN,
    *,
    event_is_beneficial: bool,
) -> NumberNeeded:
    """NNT (NNTB / NNTH) from a risk difference (arm 1 minus arm 2) and its CI (Altman 1998).

    Parameters
    ----------
    rd : float
        Risk difference, experimental minus control (proportions, not percent).
    ci_lower, ci_upper : float, optional
        CI of the risk difference.
    event_is_beneficial : bool
        True when the event is desirable (e.g. response: RD > 0 is benefit), False for an
        adverse event (RD > 0 is harm).

    Returns
    -------
    NumberNeeded
        Numbers are rounded up to whole patients in ``text`` only.

    Examples
    --------
    >>> number_needed(0.2, 0.1, 0.3, event_is_beneficial=True).text
    'NNTB 5 (4 to 10)'
    >>> number_needed(0.05, -0.02, 0.12, event_is_beneficial=False).text
    'NNTH 20 (NNTB 50 to infinity to NNTH 9)'
    """
    if not math.isfinite(rd) or abs(rd) > 1:
        raise ValueError(f"rd must be a finite number in [-1, 1], got {rd!r}")
    sign = 1.0 if event_is_beneficial else -1.0

    def label(x: float) -> str:
        return "NNTB" if sign * x > 0 else "NNTH"

    if rd == 0:
        kind, value = "none", math.inf
        head = "NNT infinity (no difference)"
    else:
        kind, value = label(rd), 1.0 / abs(rd)
        head = f"{kind} {_nn(value)}"
    lo = hi = _NAN
    if math.isfinite(ci_lower) and math.isfinite(ci_upper):
        if ci_lower > ci_upper:
            raise ValueError("ci_lower > ci_upper")
        if ci_lower > 0 or ci_upper < 0:
            b1, b2 = sorted((1.0 / abs(ci_lower), 1.0 / abs(ci_upper)))
            lo, hi = b1, b2
            text = f"{head} ({_nn(b1)} to {_nn(b2)})"
        else:
            # the CI includes RD = 0: it spans NNTB .. infinity .. NNTH (Altman 1998)
            parts = []
            for x in (ci_lower, ci_upper):
                parts.append("infinity" if x == 0 else f"{label(x)} {_nn(1.0 / abs(x))}")
            text = f"{head} ({parts[0]} to infinity to {parts[1]})"
    else:
        text = head
    return NumberNeeded(kind=kind, value=value, ci_lower=lo, ci_upper=hi, text=text)


@dataclass(frozen=True)
class AbsoluteEffects:
    """Events per ``per`` participants implied by a pooled RR / OR at a control-arm risk.

    Attributes
    ----------
    per : int
        Denominator (default 1,000).
    control : float
        Control-arm events per ``per``.
    experimental, experimental_ci_lower, experimental_ci_upper : float
        Experimental-arm events per ``per`` (with the ratio's CI).
    difference, difference_ci_lower, difference_ci_upper : float
        Experimental minus control, per ``per``.
    notes : tuple of str
        E.g. an RR that implies a risk above 1 (capped at 1).
    """

    per: int
    control: float
    experimental: float
    experimental_ci_lower: float
    experimental_ci_upper: float
    difference: float
    difference_ci_lower: float
    difference_ci_upper: float
    notes: tuple[str, ...] = ()


def assumed_control_risk(events: ArrayLike, n: ArrayLike) -> float:
    """The control-arm risk an absolute effect is computed at: the median of the trials'
    control-arm risks.

    GRADE's summary of findings takes the median control-group risk of the studies as the
    "assumed risk" (Cochrane Handbook, chapter 14), so one trial with many participants does
    not set the baseline of all; the summary of findings and the absolute-effects table both
    use this one definition. Trials without participants in the control arm are skipped;
    none left: NaN.

    Examples
    --------
    >>> assumed_control_risk([2, 5, 0], [30, 44, 29])  # median of 0.067, 0.114, 0
    0.06666666666666667
    >>> assumed_control_risk([1, 3], [10, 10])
    0.2
    """
    e = np.asarray(events, dtype=float).ravel()
    m = np.asarray(n, dtype=float).ravel()
    ok = np.isfinite(e) & np.isfinite(m) & (m > 0)
    return float(np.median(e[ok] / m[ok])) if ok.any() else _NAN


def absolute_effects(
    ratio: float,
    control_risk: float,
    *,
    measure: str,
    ratio_ci: tuple[float, float] = (_NAN, _NAN),
    per: int = 1000,
) -> AbsoluteEffects:
    """Absolute effects (per 1,000) of a pooled risk ratio or odds ratio (GRADE / Cochrane).

    Parameters
    ----------
    ratio : float
        Pooled RR or OR on the natural scale (e.g. :attr:`BinaryPoolResult.ratio`).
    control_risk : float
        Assumed control-arm risk, in [0, 1].
    measure : {"RR", "OR"}
        RR: risk = RR * CR; OR: risk = OR * CR / (1 - CR + OR * CR).
    ratio_ci : tuple of float, optional
        CI of the ratio (natural scale).
    per : int, default 1000
        Denominator.

    Returns
    -------
    AbsoluteEffects

    Examples
    --------
    >>> ae = absolute_effects(0.5, 0.2, measure="RR", ratio_ci=(0.25, 1.0))
    >>> ae.control, ae.experimental, ae.difference, ae.difference_ci_lower
    (200.0, 100.0, -100.0, -150.0)
    >>> round(absolute_effects(2.0, 0.1, measure="OR").experimental, 3)
    181.818
    """
    if measure not in ("RR", "OR"):
        raise ValueError(f"measure must be 'RR' or 'OR', got {measure!r}")
    if not 0.0 <= control_risk <= 1.0:
        raise ValueError(f"control_risk must lie in [0, 1], got {control_risk!r}")
    notes: list[str] = []

    def risk(r: float) -> float:
        if not math.isfinite(r) or r < 0:
            return _NAN
        if measure == "RR":
            val = r * control_risk
            if val > 1.0:
                notes.append(f"RR {r:.4g} x control risk {control_risk:.4g} > 1: capped at 1")
                val = 1.0
            return val
        den = 1.0 - control_risk + r * control_risk
        return r * control_risk / den if den > 0 else _NAN

    e, lo, hi = risk(ratio), risk(ratio_ci[0]), risk(ratio_ci[1])
    cr = control_risk * per
    return AbsoluteEffects(
        per=per,
        control=cr,
        experimental=e * per,
        experimental_ci_lower=lo * per,
        experimental_ci_upper=hi * per,
        difference=e * per - cr,
        difference_ci_lower=lo * per - cr,
        difference_ci_upper=hi * per - cr,
        notes=tuple(dict.fromkeys(notes)),
    )
