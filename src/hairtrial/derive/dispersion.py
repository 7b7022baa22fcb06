"""Standard deviations (and means) from what a trial report gives instead.

Every function here is pure: numbers (scalars or numpy arrays that broadcast)
in, numbers out.  A scalar input gives a Python ``float`` back, an array input
an ``ndarray``.  No pandas, no I/O.

Sources
-------
* Cochrane Handbook for Systematic Reviews of Interventions, version 6.x,
  chapter 6.5.2 (Higgins, Li & Deeks): SE, CI, t and p-value conversions,
  change-from-baseline SDs and combining groups.
* Luo D, Wan X, Liu J, Tong T (2018). Optimally estimating the sample mean from
  the sample size, median, mid-range, and/or mid-quartile range. Stat Methods
  Med Res 27(6):1785-1805.
* Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard
  deviation from the sample size, median, range and/or interquartile range.
  BMC Med Res Methodol 14:135.
* Shi J, Luo D, Weng H, Zeng X-T, Lin L, Chu H, Tong T (2020). Optimally
  estimating the sample standard deviation from the five-number summary.
  Res Synth Methods 11(5):641-654.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.core.arrays import FloatOrArray
from hairtrial.core.arrays import as_float as _f
from hairtrial.core.arrays import output as _out

__all__ = [
    "combine_groups",
    "mean_from_quantiles",
    "pooled_sd_from_p",
    "pooled_sd_from_t",
    "sd_change_diff_from_p",
    "sd_change_diff_from_t",
    "sd_change_from_levels",
    "sd_from_ci",
    "sd_from_quantiles",
    "sd_from_se",
    "split_n_equally",
]


def _check_n(n: NDArray[np.float64], minimum: float, name: str = "n") -> None:
    if np.any(~np.isfinite(n)) or np.any(n < minimum):
        raise ValueError(f"{name} must be finite and >= {minimum:g}; got {n!r}")


def _check_p(p: NDArray[np.float64]) -> None:
    if np.any(~np.isfinite(p)) or np.any(p <= 0.0) or np.any(p >= 1.0):
        raise ValueError(
            f"p must lie strictly between 0 and 1; got {p!r}. A p reported as "
            "'p < 0.001' should be passed as 0.001 (conservative: gives a larger SD)."
        )


def _check_md(mean_diff: NDArray[np.float64]) -> None:
    if np.any(~np.isfinite(mean_diff)) or np.any(mean_diff == 0.0):
        raise ValueError(
            "mean_diff must be finite and non-zero: with MD = 0 the test statistic is 0 "
            f"and carries no information about the SD; got {mean_diff!r}"
        )


# --------------------------------------------------------------------------- SE / CI


def sd_from_se(se: ArrayLike, n: ArrayLike) -> FloatOrArray:
    """SD of one arm from the standard error of its mean.

    .. math:: SD = SE \\sqrt{n}

    Parameters
    ----------
    se : float or array_like
        Standard error of the arm's mean (>= 0).
    n : float or array_like
        Number of participants in the arm (>= 1).

    Returns
    -------
    float or ndarray
        Standard deviation.

    References
    ----------
    Cochrane Handbook, section 6.5.2.2.

    Examples
    --------
    >>> sd_from_se(2.0, 25)
    10.0
    """
    se_a, n_a = _f(se), _f(n)
    _check_n(n_a, 1.0)
    if np.any(se_a < 0):
        raise ValueError(f"se must be >= 0; got {se!r}")
    return _out(se_a * np.sqrt(n_a))


def sd_from_ci(
    lower: ArrayLike, upper: ArrayLike, n: ArrayLike, level: float = 0.95
) -> FloatOrArray:
    """SD of one arm from a confidence interval for its mean (t-based).

    .. math::

        SD = \\sqrt{n}\\,\\frac{upper - lower}{2\\, t_{(1+level)/2,\\; n-1}}

    The t quantile with n - 1 degrees of freedom is what the trial would have
    used for a CI of a single mean; for large n it is close to the normal
    quantile (3.92 = 2 x 1.96 for a 95% CI).

    Parameters
    ----------
    lower, upper : float or array_like
        CI bounds of the arm's mean (upper > lower).
    n : float or array_like
        Number of participants in the arm (>= 2).
    level : float, optional
        Confidence level of the interval, default 0.95.

    Returns
    -------
    float or ndarray
        Standard deviation.

    References
    ----------
    Cochrane Handbook, section 6.5.2.2 (obtaining SDs from CIs of group means).

    Examples
    --------
    >>> round(sd_from_ci(44.0, 56.0, 25), 6)
    14.535598
    """
    lo, hi, n_a = _f(lower), _f(upper), _f(n)
    _check_n(n_a, 2.0)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1; got {level!r}")
    if np.any(hi <= lo):
        raise ValueError("upper must be greater than lower")
    t = dist.t_ppf((1.0 + level) / 2.0, n_a - 1.0)
    return _out(np.sqrt(n_a) * (hi - lo) / (2.0 * t))


# --------------------------------------------------------------------------- t / p


def pooled_sd_from_t(
    mean_diff: ArrayLike, n1: ArrayLike, n2: ArrayLike, t: ArrayLike
) -> FloatOrArray:
    """Pooled within-arm SD from a two-sample t statistic.

    .. math::

        SE_{MD} = |MD| / |t|, \\qquad SD = SE_{MD} / \\sqrt{1/n_1 + 1/n_2}

    The result is the pooled SD assumed by the equal-variance two-sample t-test;
    use it as the SD of both arms.

    Parameters
    ----------
    mean_diff : float or array_like
        Difference between the arm means (non-zero).
    n1, n2 : float or array_like
        Arm sizes (>= 1 each, n1 + n2 >= 3).
    t : float or array_like
        t statistic of the comparison (non-zero; its sign is ignored).

    Returns
    -------
    float or ndarray
        Pooled standard deviation.

    References
    ----------
    Cochrane Handbook, section 6.5.2.3.

    Examples
    --------
    >>> round(pooled_sd_from_t(4.0, 20, 20, 2.0), 10)
    6.3245553203
    """
    md, a, b, t_a = _f(mean_diff), _f(n1), _f(n2), _f(t)
    _check_md(md)
    _check_n(a, 1.0, "n1")
    _check_n(b, 1.0, "n2")
    if np.any(~np.isfinite(t_a)) or np.any(t_a == 0.0):
        raise ValueError(f"t must be finite and non-zero; got {t!r}")
    se = np.abs(md) / np.abs(t_a)
    return _out(se / np.sqrt(1.0 / a + 1.0 / b))


def pooled_sd_from_p(
    mean_diff: ArrayLike,
    n1: ArrayLike,
    n2: ArrayLike,
    p: ArrayLike,
    *,
    two_sided: bool = True,
) -> FloatOrArray:
    """Pooled within-arm SD from the p-value of a two-sample t-test.

    .. math::

        t = t^{-1}_{1 - p/2,\\; n_1 + n_2 - 2}\\ (\\text{two-sided}), \\quad
        SE_{MD} = |MD| / t, \\quad SD = SE_{MD} / \\sqrt{1/n_1 + 1/n_2}

    For a one-sided p (``two_sided=False``) the quantile is
    :math:`t^{-1}_{1-p,\\, n_1+n_2-2}`.

    A p-value reported only as a bound ("p < 0.001") and entered as
    p = 0.001 gives a t that is too small, hence an SE and SD that are too
    large: the imputed SD is conservative (wider CI, less weight).  The SD is
    strictly increasing in p.

    Parameters
    ----------
    mean_diff : float or array_like
        Difference between the arm means (non-zero).
    n1, n2 : float or array_like
        Arm sizes (n1 + n2 >= 3).
    p : float or array_like
        p-value of the equal-variance t-test, strictly in (0, 1).
    two_sided : bool, optional
        Whether ``p`` is two-sided (default) or one-sided.

    Returns
    -------
    float or ndarray
        Pooled standard deviation.

    Raises
    ------
    ValueError
        If p is outside (0, 1) or mean_diff is 0.

    References
    ----------
    Cochrane Handbook, section 6.5.2.3.

    Examples
    --------
    >>> round(pooled_sd_from_p(3.0, 25, 22, 0.008), 10)
    3.6974757958
    """
    md, a, b, p_a = _f(mean_diff), _f(n1), _f(n2), _f(p)
    _check_p(p_a)
    _check_md(md)
    _check_n(a, 1.0, "n1")
    _check_n(b, 1.0, "n2")
    df = a + b - 2.0
    _check_n(df, 1.0, "n1 + n2 - 2")
    # upper-tail quantile via isf: t.ppf(1 - p/2) would lose the relative
    # precision of very small p in the rounding of 1 - p/2
    t = dist.t_isf(p_a / 2.0 if two_sided else p_a, df)
    return _out((np.abs(md) / t) / np.sqrt(1.0 / a + 1.0 / b))


def sd_change_diff_from_t(mean_diff: ArrayLike, n: ArrayLike, t: ArrayLike) -> FloatOrArray:
    """SD of within-person differences from a paired t statistic.

    For a split-scalp (or pre-post) comparison analysed with a paired t-test:

    .. math:: SE = |MD| / |t|, \\qquad SD_{diff} = SE \\sqrt{n}

    Parameters
    ----------
    mean_diff : float or array_like
        Mean of the within-person differences (non-zero).
    n : float or array_like
        Number of persons (pairs), >= 2.
    t : float or array_like
        Paired t statistic (non-zero; sign ignored).

    Returns
    -------
    float or ndarray
        SD of the within-person differences.

    References
    ----------
    Cochrane Handbook, sections 6.5.2.3 and 23.2.7 (paired analyses).

    Examples
    --------
    >>> sd_change_diff_from_t(2.0, 16, 4.0)
    2.0
    """
    md, n_a, t_a = _f(mean_diff), _f(n), _f(t)
    _check_md(md)
    _check_n(n_a, 2.0)
    if np.any(~np.isfinite(t_a)) or np.any(t_a == 0.0):
        raise ValueError(f"t must be finite and non-zero; got {t!r}")
    return _out(np.abs(md) / np.abs(t_a) * np.sqrt(n_a))


def sd_change_diff_from_p(
    mean_diff: ArrayLike, n: ArrayLike, p: ArrayLike, *, two_sided: bool = True
) -> FloatOrArray:
    """SD of within-person differences from the p-value of a paired t-test.

    .. math::

        t = t^{-1}_{1 - p/2,\\; n-1}, \\quad SE = |MD| / t, \\quad
        SD_{diff} = SE\\sqrt{n}

    (one-sided p: :math:`t^{-1}_{1-p,\\, n-1}`).  Use this for split-scalp trials
    (both treatments in the same n patients).  As for
    :func:`pooled_sd_from_p`, a bound such as "p < 0.001" entered as 0.001
    gives a larger SD, i.e. a conservative result.

    Parameters
    ----------
    mean_diff : float or array_like
        Mean within-person difference (non-zero).
    n : float or array_like
        Number of persons (pairs), >= 2.
    p : float or array_like
        p-value of the paired t-test, strictly in (0, 1).
    two_sided : bool, optional
        Whether ``p`` is two-sided (default).

    Returns
    -------
    float or ndarray
        SD of the within-person differences.

    Raises
    ------
    ValueError
        If p is outside (0, 1) or mean_diff is 0.

    References
    ----------
    Cochrane Handbook, sections 6.5.2.3 and 23.2.7.

    Examples
    --------
    >>> round(sd_change_diff_from_p(2.0, 16, 0.01), 10)
    2.7148895452
    """
    md, n_a, p_a = _f(mean_diff), _f(n), _f(p)
    _check_p(p_a)
    _check_md(md)
    _check_n(n_a, 2.0)
    t = dist.t_isf(p_a / 2.0 if two_sided else p_a, n_a - 1.0)
    return _out(np.abs(md) / t * np.sqrt(n_a))


# --------------------------------------------------------------------------- change scores


def sd_change_from_levels(
    sd_baseline: ArrayLike, sd_followup: ArrayLike, r: ArrayLike
) -> FloatOrArray:
    """SD of change from baseline from the baseline and follow-up SDs.

    .. math:: SD_{change} = \\sqrt{SD_0^2 + SD_1^2 - 2 r\\, SD_0 SD_1}

    ``r`` is the baseline/follow-up correlation (usually imputed; state it).

    Parameters
    ----------
    sd_baseline, sd_followup : float or array_like
        SDs at baseline and at follow-up (>= 0).
    r : float or array_like
        Correlation, in [-1, 1].

    Returns
    -------
    float or ndarray
        SD of the change scores.

    References
    ----------
    Cochrane Handbook, section 6.5.2.8 (imputing a change-from-baseline SD
    using a correlation coefficient).

    Examples
    --------
    >>> round(sd_change_from_levels(10.0, 12.0, 0.5), 10)
    11.1355287257
    """
    s0, s1, r_a = _f(sd_baseline), _f(sd_followup), _f(r)
    if np.any(s0 < 0) or np.any(s1 < 0):
        raise ValueError("SDs must be >= 0")
    if np.any(np.abs(r_a) > 1):
        raise ValueError(f"r must lie in [-1, 1]; got {r!r}")
    v = s0**2 + s1**2 - 2.0 * r_a * s0 * s1
    return _out(np.sqrt(np.maximum(v, 0.0)))


# --------------------------------------------------------------------------- combining groups


def combine_groups(n: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> tuple[float, float, float]:
    """Combine several groups (e.g. two doses) into one arm.

    For two groups (Cochrane Handbook Table 6.5.a):

    .. math::

        N = N_1 + N_2, \\qquad M = \\frac{N_1 M_1 + N_2 M_2}{N_1 + N_2}

        SD = \\sqrt{\\frac{(N_1-1)SD_1^2 + (N_2-1)SD_2^2
              + \\frac{N_1 N_2}{N_1+N_2}(M_1^2 + M_2^2 - 2 M_1 M_2)}{N_1 + N_2 - 1}}

    More than two groups are combined by applying the formula iteratively
    (first with second, the result with the third, ...).  The formula is the
    exact sample SD (n - 1 denominator) of the pooled raw data, so the result
    does not depend on the order of the groups.

    Parameters
    ----------
    n, mean, sd : array_like
        One entry per group (1-D, same length >= 1).

    Returns
    -------
    n : float
        Total size (a float; integral when the inputs are).
    mean : float
        Combined mean.
    sd : float
        Combined SD.

    References
    ----------
    Cochrane Handbook, section 6.5.2.10 and Table 6.5.a.

    Examples
    --------
    >>> n, m, s = combine_groups([10, 15], [5.0, 7.0], [2.0, 3.0])
    >>> n, round(m, 10), round(s, 10)
    (25.0, 6.2, 2.7838821814)
    """
    n_a, m_a, s_a = (np.atleast_1d(_f(x)) for x in (n, mean, sd))
    if not (n_a.ndim == m_a.ndim == s_a.ndim == 1) or not (n_a.size == m_a.size == s_a.size >= 1):
        raise ValueError("n, mean and sd must be 1-D sequences of the same length >= 1")
    _check_n(n_a, 1.0)
    if np.any(s_a < 0) or np.any(~np.isfinite(s_a)) or np.any(~np.isfinite(m_a)):
        raise ValueError("means must be finite and SDs finite and >= 0")
    n_c, m_c, s_c = float(n_a[0]), float(m_a[0]), float(s_a[0])
    for n2, m2, s2 in zip(n_a[1:], m_a[1:], s_a[1:], strict=True):
        n2, m2, s2 = float(n2), float(m2), float(s2)
        tot = n_c + n2
        # (M1 - M2)^2 written as a square: same algebra as M1^2 + M2^2 - 2 M1 M2,
        # without the cancellation error for large, nearly equal means.
        ss = (n_c - 1.0) * s_c**2 + (n2 - 1.0) * s2**2 + n_c * n2 / tot * (m_c - m2) ** 2
        m_c = (n_c * m_c + n2 * m2) / tot
        s_c = float(np.sqrt(ss / (tot - 1.0)))
        n_c = tot
    return n_c, m_c, s_c


def split_n_equally(n_total: int, n_arms: int) -> int:
    """Per-arm size when a trial reports only its total size.

    .. math:: n_{arm} = \\lfloor n_{total} / n_{arms} \\rfloor

    Floor division is deliberate: rounding down never credits an arm with a
    participant it may not have had, so variances computed from it are not
    understated (conservative).  The remainder is dropped.

    Parameters
    ----------
    n_total : int
        Total number randomised or analysed (>= n_arms).
    n_arms : int
        Number of arms (>= 1).

    Returns
    -------
    int
        Size assumed for each arm.

    References
    ----------
    Cochrane Handbook, section 6.5.2 (general advice to make conservative
    assumptions when imputing missing summary data).

    Examples
    --------
    >>> split_n_equally(61, 2)
    30
    """
    if int(n_total) != n_total or int(n_arms) != n_arms:
        raise ValueError("n_total and n_arms must be integers")
    n_total, n_arms = int(n_total), int(n_arms)
    if n_arms < 1 or n_total < n_arms:
        raise ValueError(f"need n_arms >= 1 and n_total >= n_arms; got {n_total}, {n_arms}")
    return n_total // n_arms


# --------------------------------------------------------------------------- quantiles


def _scenario(
    q1: ArrayLike | None,
    q3: ArrayLike | None,
    minimum: ArrayLike | None,
    maximum: ArrayLike | None,
) -> str:
    has_iqr = q1 is not None and q3 is not None
    has_range = minimum is not None and maximum is not None
    if (q1 is None) != (q3 is None):
        raise ValueError("give both q1 and q3, or neither")
    if (minimum is None) != (maximum is None):
        raise ValueError("give both minimum and maximum, or neither")
    if has_iqr and has_range:
        return "S3"
    if has_range:
        return "S1"
    if has_iqr:
        return "S2"
    raise ValueError("need {minimum, maximum} (S1), {q1, q3} (S2), or all four (S3)")


def _check_order(*vals: ArrayLike | None) -> None:
    arrs = [_f(v) for v in vals if v is not None]
    for lo, hi in zip(arrs[:-1], arrs[1:], strict=True):
        if np.any(lo > hi):
            raise ValueError("quantiles must satisfy minimum <= q1 <= median <= q3 <= maximum")


def _xi(n: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wan et al. (2014) eq. 9: 2 * Phi^-1((n - 0.375) / (n + 0.25))."""
    return 2.0 * dist.norm_ppf((n - 0.375) / (n + 0.25))


def _eta(n: NDArray[np.float64]) -> NDArray[np.float64]:
    """Wan et al. (2014) eq. 16: 2 * Phi^-1((0.75 n - 0.125) / (n + 0.25))."""
    return 2.0 * dist.norm_ppf((0.75 * n - 0.125) / (n + 0.25))


def mean_from_quantiles(
    n: ArrayLike,
    *,
    median: ArrayLike,
    q1: ArrayLike | None = None,
    q3: ArrayLike | None = None,
    minimum: ArrayLike | None = None,
    maximum: ArrayLike | None = None,
) -> FloatOrArray:
    """Sample mean from the median and range and/or IQR (Luo et al. 2018).

    With :math:`a` = minimum, :math:`b` = maximum, :math:`m` = median:

    S1 {a, m, b}:

    .. math:: \\bar x = w \\frac{a+b}{2} + (1-w) m, \\quad w = \\frac{4}{4 + n^{0.75}}

    S2 {q1, m, q3}:

    .. math:: \\bar x = w \\frac{q_1+q_3}{2} + (1-w) m, \\quad w = 0.7 + \\frac{0.39}{n}

    S3 {a, q1, m, q3, b}:

    .. math::

        \\bar x = w_1 \\frac{a+b}{2} + w_2 \\frac{q_1+q_3}{2} + (1 - w_1 - w_2) m,
        \\quad w_1 = \\frac{2.2}{2.2 + n^{0.75}}, \\quad w_2 = 0.7 - \\frac{0.72}{n^{0.55}}

    These assume roughly normal data; for clearly skewed data consider
    reporting the study as it is rather than converting.

    Parameters
    ----------
    n : float or array_like
        Sample size (>= 2).
    median : float or array_like
        Sample median.
    q1, q3 : float or array_like, optional
        First and third quartiles.
    minimum, maximum : float or array_like, optional
        Smallest and largest observation.

    Returns
    -------
    float or ndarray
        Estimated mean.

    References
    ----------
    Luo D, Wan X, Liu J, Tong T (2018). Stat Methods Med Res 27(6):1785-1805,
    eqs. for scenarios S1, S2 and S3 (the same weights are used by metafor's
    ``conv.fivenum()``, metafor >= 4.0).

    Examples
    --------
    >>> round(mean_from_quantiles(100, median=15.0, q1=10.0, q3=22.0), 10)
    15.7039
    """
    sc = _scenario(q1, q3, minimum, maximum)
    n_a, m = _f(n), _f(median)
    _check_n(n_a, 2.0)
    _check_order(minimum, q1, median, q3, maximum)
    if sc == "S1":
        w = 4.0 / (4.0 + n_a**0.75)
        return _out(w * (_f(minimum) + _f(maximum)) / 2.0 + (1.0 - w) * m)
    if sc == "S2":
        w = 0.7 + 0.39 / n_a
        return _out(w * (_f(q1) + _f(q3)) / 2.0 + (1.0 - w) * m)
    w1 = 2.2 / (2.2 + n_a**0.75)
    w2 = 0.7 - 0.72 / n_a**0.55
    return _out(
        w1 * (_f(minimum) + _f(maximum)) / 2.0 + w2 * (_f(q1) + _f(q3)) / 2.0 + (1.0 - w1 - w2) * m
    )


def sd_from_quantiles(
    n: ArrayLike,
    *,
    q1: ArrayLike | None = None,
    q3: ArrayLike | None = None,
    minimum: ArrayLike | None = None,
    maximum: ArrayLike | None = None,
    median: ArrayLike | None = None,
) -> FloatOrArray:
    """Sample SD from the range and/or IQR (Wan et al. 2014; Shi et al. 2020).

    With :math:`\\xi(n) = 2\\Phi^{-1}\\left(\\frac{n - 0.375}{n + 0.25}\\right)`
    and :math:`\\eta(n) = 2\\Phi^{-1}\\left(\\frac{0.75n - 0.125}{n + 0.25}\\right)`:

    S1 (range; Wan et al. 2014 eq. 9):

    .. math:: SD = \\frac{b - a}{\\xi(n)}

    S2 (IQR; Wan et al. 2014 eq. 16):

    .. math:: SD = \\frac{q_3 - q_1}{\\eta(n)}

    S3 (five-number summary; Shi et al. 2020 eq. 10):

    .. math::

        SD = w \\frac{b - a}{\\xi(n)} + (1 - w) \\frac{q_3 - q_1}{\\eta(n)},
        \\quad w = \\frac{1}{1 + 0.07 n^{0.6}}

    The median does not enter the SD; it is accepted only so that the ordering
    ``minimum <= q1 <= median <= q3 <= maximum`` can be checked.

    Parameters
    ----------
    n : float or array_like
        Sample size (>= 2).
    q1, q3 : float or array_like, optional
        First and third quartiles.
    minimum, maximum : float or array_like, optional
        Smallest and largest observation.
    median : float or array_like, optional
        Sample median (only checked for ordering).

    Returns
    -------
    float or ndarray
        Estimated standard deviation.

    References
    ----------
    Wan X, Wang W, Liu J, Tong T (2014). BMC Med Res Methodol 14:135, eqs. 9
    and 16.  Shi J, Luo D, Weng H, et al. (2020). Res Synth Methods
    11(5):641-654, eq. 10 (also the default of metafor's ``conv.fivenum()``,
    metafor >= 4.0, for normal data).

    Examples
    --------
    >>> round(sd_from_quantiles(100, q1=10.0, q3=22.0), 10)
    9.0264591631
    """
    sc = _scenario(q1, q3, minimum, maximum)
    n_a = _f(n)
    _check_n(n_a, 2.0)
    _check_order(minimum, q1, median, q3, maximum)
    if sc == "S1":
        return _out((_f(maximum) - _f(minimum)) / _xi(n_a))
    if sc == "S2":
        return _out((_f(q3) - _f(q1)) / _eta(n_a))
    w = 1.0 / (1.0 + 0.07 * n_a**0.6)
    return _out(
        w * (_f(maximum) - _f(minimum)) / _xi(n_a) + (1.0 - w) * (_f(q3) - _f(q1)) / _eta(n_a)
    )
