"""Effect sizes and sampling variances from arm-level summaries.

Pure functions, numbers in, numbers out (scalars give floats, arrays give
ndarrays).  Group / side 1 is the experimental one, group / side 2 the
control, so a positive effect favours the experimental treatment when higher
values are better (e.g. hair counts).

The parallel-group measures reproduce ``metafor::escalc()`` (metafor 3.8-1,
the version the reference tests were generated with) with its default
``vtype="LS"``:

* :func:`mean_difference`: ``"MD"``, vi = sd1^2/n1 + sd2^2/n2;
* :func:`hedges_g`: ``"SMD"``, exact correction as ``metafor:::.cmicalc``;
* :func:`paired_mean_difference`: ``"MC"`` (split-scalp / within-person);
* :func:`paired_smd`: ``"SMCRP"``, which exists only in metafor >= 4.6-0.
"""

from __future__ import annotations

import numpy as np
import scipy  # scipy.special loads on first use (see hairtrial.models)
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.core.arrays import FloatOrArray
from hairtrial.core.arrays import as_float as _f
from hairtrial.core.arrays import output as _out

__all__ = [
    "ci_from_yi_vi",
    "hedges_correction",
    "hedges_g",
    "mean_difference",
    "paired_mean_difference",
    "paired_smd",
]


def _check_sd(*sds: NDArray[np.float64]) -> None:
    for s in sds:
        if np.any(~np.isfinite(s)) or np.any(s < 0):
            raise ValueError("standard deviations must be finite and >= 0")


def _check_n(n: NDArray[np.float64], name: str = "n") -> None:
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise ValueError(f"{name} must be finite and > 0")


def _check_r(r: NDArray[np.float64]) -> None:
    if np.any(~np.isfinite(r)) or np.any(np.abs(r) > 1):
        raise ValueError("correlation r must lie in [-1, 1]")


def hedges_correction(m: ArrayLike) -> FloatOrArray:
    """Exact small-sample bias correction factor of Hedges (1981).

    .. math::

        c(m) = \\frac{\\Gamma(m/2)}{\\sqrt{m/2}\\,\\Gamma((m-1)/2)}
             = \\frac{(\\tfrac{m-1}{2})_{1/2}}{\\sqrt{m/2}}

    with the gamma ratio computed as a Pochhammer symbol
    (``scipy.special.poch``), which neither overflows nor loses digits for
    large m. metafor's ``.cmicalc()`` uses the difference of log-gammas,
    which agrees to ~1e-16 for small m but loses about log10(m) digits
    (relative error ~5e-11 at m = 5e4); the two agree to 1e-10 for every m
    below 3.5e4.  ``m`` is the degrees of freedom of
    the standardiser (n1 + n2 - 2 for a two-group SMD); it need not be an
    integer.  c(m) is approximately 1 - 3 / (4m - 1).

    Parameters
    ----------
    m : float or array_like
        Degrees of freedom, > 1.

    Returns
    -------
    float or ndarray
        Correction factor in (0, 1).

    Raises
    ------
    ValueError
        If any m <= 1 (metafor returns NA there).

    References
    ----------
    Hedges LV (1981). Distribution theory for Glass's estimator of effect size
    and related estimators. J Educ Stat 6(2):107-128, eq. 6e.
    metafor 3.8-1, ``metafor:::.cmicalc``.

    Examples
    --------
    >>> round(hedges_correction(10), 12)
    0.922745608053
    """
    m_a = _f(m)
    if np.any(~(m_a > 1)):
        got = ", ".join(f"{x:g}" for x in np.atleast_1d(m_a))
        raise ValueError(
            f"Hedges' correction needs more than 1 degree of freedom (m = n1 + n2 - 2); "
            f"got m = {got}"
        )
    return _out(scipy.special.poch((m_a - 1) / 2, 0.5) / np.sqrt(m_a / 2))


def mean_difference(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Raw mean difference of two independent arms and its variance.

    .. math:: y = m_1 - m_2, \\qquad v = \\frac{sd_1^2}{n_1} + \\frac{sd_2^2}{n_2}

    (no equal-variance assumption).

    Parameters
    ----------
    m1, sd1, n1 : float or array_like
        Mean, SD and size of the experimental arm.
    m2, sd2, n2 : float or array_like
        Mean, SD and size of the control arm.

    Returns
    -------
    yi, vi : float or ndarray
        Effect and sampling variance.

    References
    ----------
    metafor 3.8-1 ``escalc(measure="MD")`` with the default ``vtype="LS"``;
    Cochrane Handbook section 6.5.1.1.

    Examples
    --------
    >>> yi, vi = mean_difference(55.0, 47.0, 155, 75.0, 64.0, 156)
    >>> round(yi, 10), round(vi, 10)
    (-20.0, 40.5080231596)
    """
    m1a, s1, a, m2a, s2, b = map(_f, (m1, sd1, n1, m2, sd2, n2))
    _check_sd(s1, s2)
    _check_n(a, "n1")
    _check_n(b, "n2")
    return _out(m1a - m2a), _out(s1**2 / a + s2**2 / b)


def hedges_g(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Bias-corrected standardised mean difference (Hedges' g) and its variance.

    .. math::

        s_p = \\sqrt{\\frac{(n_1-1)sd_1^2 + (n_2-1)sd_2^2}{n_1+n_2-2}}, \\quad
        g = c(n_1+n_2-2)\\,\\frac{m_1 - m_2}{s_p}

        v = \\frac{1}{n_1} + \\frac{1}{n_2} + \\frac{g^2}{2(n_1+n_2)}

    with c the exact correction :func:`hedges_correction`.  Note that the
    variance uses the corrected g (metafor's large-sample ``vtype="LS"``).

    Parameters
    ----------
    m1, sd1, n1 : float or array_like
        Mean, SD and size of the experimental arm.
    m2, sd2, n2 : float or array_like
        Mean, SD and size of the control arm (n1 + n2 >= 4).

    Returns
    -------
    yi, vi : float or ndarray
        Hedges' g and its sampling variance.

    References
    ----------
    metafor 3.8-1 ``escalc(measure="SMD")`` (default ``vtype="LS"``);
    Hedges LV (1981), J Educ Stat 6:107-128; Borenstein M et al. (2009),
    Introduction to Meta-Analysis, ch. 4.

    Examples
    --------
    >>> yi, vi = hedges_g(55.0, 47.0, 155, 75.0, 64.0, 156)
    >>> round(yi, 10), round(vi, 10)
    (-0.3551696409, 0.0130646755)
    """
    m1a, s1, a, m2a, s2, b = map(_f, (m1, sd1, n1, m2, sd2, n2))
    _check_sd(s1, s2)
    _check_n(a, "n1")
    _check_n(b, "n2")
    m = a + b - 2.0
    sdp = np.sqrt(((a - 1.0) * s1**2 + (b - 1.0) * s2**2) / m)
    yi = hedges_correction(m) * (m1a - m2a) / sdp
    vi = 1.0 / a + 1.0 / b + yi**2 / (2.0 * (a + b))
    return _out(yi), _out(vi)


def paired_mean_difference(
    m1: ArrayLike,
    sd1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Within-person mean difference (split-scalp design) and its variance.

    Both sides are measured in the same n patients; r is the correlation
    between the two sides (usually imputed).

    .. math:: y = m_1 - m_2, \\qquad
              v = \\frac{sd_1^2 + sd_2^2 - 2 r\\, sd_1 sd_2}{n}

    Parameters
    ----------
    m1, sd1 : float or array_like
        Mean and SD on the experimental side.
    m2, sd2 : float or array_like
        Mean and SD on the control side.
    n : float or array_like
        Number of patients.
    r : float or array_like
        Between-side correlation, in [-1, 1].

    Returns
    -------
    yi, vi : float or ndarray
        Effect and sampling variance.

    References
    ----------
    metafor 3.8-1 ``escalc(measure="MC")`` with the two sides as the two
    'time points' (m1i = experimental side, m2i = control side);
    Cochrane Handbook section 23.2.7 (split-body trials).

    Examples
    --------
    >>> yi, vi = paired_mean_difference(38.5, 11.6, 30.6, 15.0, 20, 0.47)
    >>> round(yi, 10), round(vi, 10)
    (7.9, 9.8)
    """
    m1a, s1, m2a, s2, n_a, r_a = map(_f, (m1, sd1, m2, sd2, n, r))
    _check_sd(s1, s2)
    _check_n(n_a)
    _check_r(r_a)
    return _out(m1a - m2a), _out((s1**2 + s2**2 - 2.0 * r_a * s1 * s2) / n_a)


def paired_smd(
    m1: ArrayLike,
    sd1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
) -> tuple[FloatOrArray, FloatOrArray]:
    """Split-scalp SMD standardised by the pooled SD of the two sides.

    Standardising by the SD of the raw scores (not of the within-person
    differences) puts the effect on the same scale as a parallel-group
    Hedges' g, so both designs can be pooled together (Cochrane Handbook
    23.2.7.2; Morris & DeShon 2002, 'raw-score metric', d_av; Becker 1988).

    This reproduces ``escalc(measure="SMCRP", vtype="LS")`` of metafor
    >= 4.6-0 (the measure does not exist in metafor 3.8-1), as defined in
    metafor's ``R/escalc.r``:

    .. math::

        s_p = \\sqrt{(sd_1^2 + sd_2^2)/2}, \\quad
        m = \\frac{2(n-1)}{1 + r^2}, \\quad
        y = c(m)\\,\\frac{m_1 - m_2}{s_p}

        v = \\frac{2(1-r)}{n} + \\frac{y^2 (1 + r^2)}{4n}

    with c the exact correction :func:`hedges_correction` evaluated at the
    (non-integer) degrees of freedom m of the pooled variance of two correlated
    samples (the variance term follows Cousineau 2020, eq. 2).  For r = 1 and
    sd1 = sd2 this coincides with metafor's ``"SMCR"`` (m = n - 1,
    v = 2(1-r)/n + y^2/(2n)); for r < 1 it does not.

    Parameters
    ----------
    m1, sd1 : float or array_like
        Mean and SD on the experimental side.
    m2, sd2 : float or array_like
        Mean and SD on the control side.
    n : float or array_like
        Number of patients (>= 2).
    r : float or array_like
        Between-side correlation, in [-1, 1].

    Returns
    -------
    yi, vi : float or ndarray
        Standardised mean difference and its sampling variance.

    References
    ----------
    Viechtbauer W. metafor, ``escalc()`` measure "SMCRP" (added in 4.6-0,
    2024); Cousineau D (2020), Approximating the distribution of Cohen's d_p in
    within-subject designs, The Quantitative Methods for Psychology
    16(4):418-421; Morris SB, DeShon RP (2002), Psychol Methods 7(1):105-125;
    Becker BJ (1988), Br J Math Stat Psychol 41:257-278; Cochrane Handbook
    section 23.2.7.2.

    Examples
    --------
    >>> yi, vi = paired_smd(38.5, 11.6, 30.6, 15.0, 20, 0.47)
    >>> round(yi, 10), round(vi, 10)
    (0.5748594314, 0.058043284)
    """
    m1a, s1, m2a, s2, n_a, r_a = map(_f, (m1, sd1, m2, sd2, n, r))
    _check_sd(s1, s2)
    _check_n(n_a)
    _check_r(r_a)
    if np.any(n_a < 2):
        raise ValueError("n must be >= 2")
    sdp = np.sqrt((s1**2 + s2**2) / 2.0)
    mi = 2.0 * (n_a - 1.0) / (1.0 + r_a**2)
    yi = hedges_correction(mi) * (m1a - m2a) / sdp
    vi = 2.0 * (1.0 - r_a) / n_a + yi**2 * (1.0 + r_a**2) / (4.0 * n_a)
    return _out(yi), _out(vi)


def ci_from_yi_vi(
    yi: ArrayLike, vi: ArrayLike, level: float = 0.95
) -> tuple[FloatOrArray, FloatOrArray]:
    """Normal-based (Wald) confidence interval of one study's effect.

    .. math:: y \\pm z_{(1+level)/2} \\sqrt{v}

    This is the per-study interval drawn by metafor's ``forest()`` and
    ``summary.escalc()``.

    Parameters
    ----------
    yi, vi : float or array_like
        Effect and sampling variance (vi >= 0).
    level : float, optional
        Confidence level, default 0.95.

    Returns
    -------
    lower, upper : float or ndarray
        CI bounds.

    References
    ----------
    metafor ``summary.escalc()`` (ci.lb, ci.ub with the normal quantile).

    Examples
    --------
    >>> lo, hi = ci_from_yi_vi(0.5, 0.04)
    >>> round(lo, 6), round(hi, 6)
    (0.108007, 0.891993)
    """
    y, v = _f(yi), _f(vi)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1; got {level!r}")
    if np.any(v < 0):
        raise ValueError("vi must be >= 0")
    z = dist.norm_ppf((1.0 + level) / 2.0)
    half = z * np.sqrt(v)
    return _out(y - half), _out(y + half)
