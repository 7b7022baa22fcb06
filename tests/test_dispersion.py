"""Tests of hairtrial.derive.dispersion against tests/reference/escalc_reference.csv.

Where the reference comes from (the CSV's 'origin' column, written by
tests/reference/escalc_and_conversions.R):

* raw-data: simulated raw data summarised with base R (mean, sd, var, cor,
  t.test).  The conversion must give back the SD that was actually in the data:
  SD from a t-test CI (sd_from_ci), from a two-sample t-test's p or t
  (pooled SD), from a paired t-test's p or t (SD of differences), from two SDs
  and their correlation (SD of change), and the SD of pooled groups.
* hand: the published formula evaluated in R (Cochrane Handbook 6.5.2.2,
  6.5.2.3, Table 6.5.a; Luo et al. 2018 for the mean; Wan et al. 2014 eqs. 9
  and 16 and Shi et al. 2020 eq. 10 for the SD).  No R implementation of
  Luo/Wan/Shi was installable (estmeansd / meta are not packaged in Debian and
  metafor 3.8-1 predates conv.fivenum()), so these check the implementation
  against an independent R evaluation of the same equations.  The constants
  were checked against metafor >= 4.0 R/conv.fivenum.r (dist = "norm").
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from escalc_ref import REFERENCE as _REF
from escalc_ref import cases
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from hairtrial.data import units
from hairtrial.derive.dispersion import (
    combine_groups,
    mean_from_quantiles,
    pooled_sd_from_p,
    pooled_sd_from_t,
    sd_change_diff_from_p,
    sd_change_diff_from_t,
    sd_change_from_levels,
    sd_from_ci,
    sd_from_quantiles,
    sd_from_se,
    split_n_equally,
)

RTOL = 1e-9  # conversions

_cases = cases


def _close(got: float, want: float, rtol: float = RTOL) -> None:
    assert got == pytest.approx(want, rel=rtol, abs=0.0)


# ----------------------------------------------------------------- SE, CI


@pytest.mark.parametrize("c", _cases("sd_from_se"))
def test_sd_from_se(c) -> None:
    _close(sd_from_se(c["se"], c["n"]), c["sd"])


@pytest.mark.parametrize("c", _cases("sd_from_ci"))
def test_sd_from_ci_recovers_sd_of_raw_data(c) -> None:
    _close(sd_from_ci(c["lower"], c["upper"], c["n"], level=c["level"]), c["sd"])


@pytest.mark.parametrize("c", _cases("sd_from_ci_hand"))
def test_sd_from_ci_cochrane_formula(c) -> None:
    _close(sd_from_ci(c["lower"], c["upper"], c["n"], level=c["level"]), c["sd"])


# ----------------------------------------------------------------- t and p


@pytest.mark.parametrize("c", _cases("pooled_sd_from_p_raw"))
def test_pooled_sd_from_p_recovers_pooled_sd(c) -> None:
    _close(pooled_sd_from_p(c["mean_diff"], c["n1"], c["n2"], c["p"]), c["sd"])


@pytest.mark.parametrize("c", _cases("pooled_sd_from_t_raw"))
def test_pooled_sd_from_t_recovers_pooled_sd(c) -> None:
    _close(pooled_sd_from_t(c["mean_diff"], c["n1"], c["n2"], c["t"]), c["sd"])


@pytest.mark.parametrize("c", _cases("pooled_sd_from_p_hand"))
def test_pooled_sd_from_p_cochrane_formula(c) -> None:
    got = pooled_sd_from_p(c["mean_diff"], c["n1"], c["n2"], c["p"], two_sided=bool(c["two_sided"]))
    _close(got, c["sd"])


@pytest.mark.parametrize("c", _cases("sd_change_diff_from_p_raw"))
def test_paired_sd_from_p_and_t_recover_sd_of_differences(c) -> None:
    _close(sd_change_diff_from_p(c["mean_diff"], c["n"], c["p"]), c["sd"])
    _close(sd_change_diff_from_t(c["mean_diff"], c["n"], c["t"]), c["sd"])


@pytest.mark.parametrize("c", _cases("sd_change_from_levels_raw"))
def test_sd_change_from_levels_recovers_sd_of_change(c) -> None:
    _close(sd_change_from_levels(c["sd_baseline"], c["sd_followup"], c["r"]), c["sd"])


# ----------------------------------------------------------------- combining groups


def _groups(c: dict[str, float]) -> tuple[list[float], list[float], list[float]]:
    k = int(c["k"])
    return (
        [c[f"n_{i}"] for i in range(1, k + 1)],
        [c[f"mean_{i}"] for i in range(1, k + 1)],
        [c[f"sd_{i}"] for i in range(1, k + 1)],
    )


@pytest.mark.parametrize("section", ["combine_raw", "combine_hand"])
def test_combine_groups(section: str) -> None:
    for case, c in _REF[section].items():
        n, m, s = combine_groups(*_groups(c))
        assert n == c["n"], case
        _close(m, c["mean"])
        _close(s, c["sd"])


# ----------------------------------------------------------------- quantiles


@pytest.mark.parametrize("c", _cases("luo_mean"))
def test_luo_mean_all_scenarios(c) -> None:
    n, a, q1, m, q3, b = (c[k] for k in ("n", "minimum", "q1", "median", "q3", "maximum"))
    _close(mean_from_quantiles(n, median=m, minimum=a, maximum=b), c["S1"])
    _close(mean_from_quantiles(n, median=m, q1=q1, q3=q3), c["S2"])
    _close(mean_from_quantiles(n, median=m, q1=q1, q3=q3, minimum=a, maximum=b), c["S3"])


@pytest.mark.parametrize("c", _cases("wan_shi_sd"))
def test_wan_shi_sd_all_scenarios(c) -> None:
    n, a, q1, m, q3, b = (c[k] for k in ("n", "minimum", "q1", "median", "q3", "maximum"))
    _close(sd_from_quantiles(n, minimum=a, maximum=b), c["S1"])
    _close(sd_from_quantiles(n, q1=q1, q3=q3, median=m), c["S2"])
    _close(sd_from_quantiles(n, q1=q1, q3=q3, minimum=a, maximum=b, median=m), c["S3"])


def test_wan_constants_large_n_limits() -> None:
    """Wan et al. 2014: eta(n) -> 2*z_0.75 = 1.349 (the Cochrane 'IQR / 1.35')."""
    s = sd_from_quantiles(1e9, q1=0.0, q3=1.0)
    _close(s, 1.0 / (2 * stats.norm.ppf(0.75)), rtol=1e-8)


def test_wan_xi_close_to_exact_expected_range() -> None:
    """xi(n) approximates E[range of n std normals] (Wan 2014 Table 1: 3.078 at n=10,
    4.498 at n=50); the Blom-type formula is within 0.5% of it for n >= 10."""
    for n, table in ((10, 3.078), (20, 3.735), (50, 4.498)):
        xi = 1.0 / sd_from_quantiles(n, minimum=0.0, maximum=1.0)
        assert xi == pytest.approx(table, rel=5e-3)


# ----------------------------------------------------------------- units


@pytest.mark.parametrize("c", _cases("per_inch2"))
def test_per_inch2(c) -> None:
    _close(c["x"] * units.lookup("hairs/inch2").factor, c["per_cm2"])


def test_cm2_constant_is_exact() -> None:
    assert math.isclose(units.CM2_PER_INCH2, 2.54**2, rel_tol=1e-15)
    assert units.CM2_PER_INCH2 == 6.4516


# ----------------------------------------------------------------- properties

means = st.floats(-1e4, 1e4, allow_nan=False)
sds = st.floats(0.01, 1e3, allow_nan=False)
group_ns = st.integers(1, 500)
group = st.tuples(group_ns, means, sds)


@given(st.lists(group, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_combine_groups_is_order_invariant(groups, rnd) -> None:
    n, m, s = zip(*groups, strict=True)
    ref = combine_groups(n, m, s)
    shuffled = list(groups)
    rnd.shuffle(shuffled)
    n2, m2, s2 = zip(*shuffled, strict=True)
    got = combine_groups(n2, m2, s2)
    assert got[0] == ref[0]
    assert got[1] == pytest.approx(ref[1], rel=1e-9, abs=1e-9)
    assert got[2] == pytest.approx(ref[2], rel=1e-7, abs=1e-9)


@given(st.integers(1, 500), means, sds, st.integers(2, 6))
def test_combine_identical_groups(n, mean, sd, k) -> None:
    """Identical groups keep the mean; the SD shrinks to sd*sqrt((N-k)/(N-1)),
    because each group's SD has n-1 but the combined SD N-1 degrees of freedom
    (no between-group spread is added).  It tends to sd as n grows."""
    n_tot, m, s = combine_groups([n] * k, [mean] * k, [sd] * k)
    assert n_tot == n * k
    assert m == pytest.approx(mean, rel=1e-12, abs=1e-9)
    assert s == pytest.approx(sd * math.sqrt((n_tot - k) / (n_tot - 1)), rel=1e-12)
    assert s <= sd * (1 + 1e-12)


def test_combine_single_group_is_identity() -> None:
    assert combine_groups([12], [3.5], [1.25]) == (12.0, 3.5, 1.25)


def test_combine_groups_matches_numpy_on_raw_data() -> None:
    rng = np.random.default_rng(1)
    xs = [rng.normal(mu, sd, n) for mu, sd, n in ((5, 1, 7), (9, 3, 12), (4, 0.5, 4))]
    n, m, s = combine_groups(
        [len(x) for x in xs], [x.mean() for x in xs], [x.std(ddof=1) for x in xs]
    )
    allx = np.concatenate(xs)
    assert n == allx.size
    _close(m, allx.mean())
    _close(s, allx.std(ddof=1))


@given(means, sds, st.integers(2, 10_000), st.floats(0.5, 0.999))
def test_sd_from_ci_round_trip(mean, sd, n, level) -> None:
    half = stats.t.ppf((1 + level) / 2, n - 1) * sd / math.sqrt(n)
    assume(half > 1e-6 * max(1.0, abs(mean)))
    got = sd_from_ci(mean - half, mean + half, n, level=level)
    assert got == pytest.approx(sd, rel=1e-6)


@given(
    st.floats(0.01, 100),
    st.integers(2, 500),
    st.integers(2, 500),
    st.floats(1e-8, 0.9),
    st.floats(1e-8, 0.9),
)
def test_pooled_sd_increasing_in_p(md, n1, n2, p_a, p_b) -> None:
    assume(p_a < p_b * (1 - 1e-6))
    assert pooled_sd_from_p(md, n1, n2, p_a) < pooled_sd_from_p(md, n1, n2, p_b)
    assert sd_change_diff_from_p(md, n1, p_a) < sd_change_diff_from_p(md, n1, p_b)


def test_p_bound_is_conservative() -> None:
    """'p < 0.001' entered as 0.001: the true p is smaller, so the true SD is smaller."""
    assert pooled_sd_from_p(2.0, 30, 30, 0.001) > pooled_sd_from_p(2.0, 30, 30, 0.0002)


@given(st.floats(0.01, 100), st.integers(2, 500), st.integers(2, 500), st.floats(1e-6, 0.99))
def test_p_and_t_routes_agree(md, n1, n2, p) -> None:
    t = stats.t.isf(p / 2, n1 + n2 - 2)
    assert pooled_sd_from_p(md, n1, n2, p) == pytest.approx(
        pooled_sd_from_t(md, n1, n2, t), rel=1e-9
    )
    assert pooled_sd_from_p(-md, n1, n2, p) == pooled_sd_from_p(md, n1, n2, p)


def test_one_sided_p_equals_two_sided_at_double_p() -> None:
    _close(
        pooled_sd_from_p(1.5, 20, 24, 0.01, two_sided=False),
        pooled_sd_from_p(1.5, 20, 24, 0.02),
    )


@given(sds, sds, st.floats(-1, 1))
def test_sd_change_from_levels_bounds(s0, s1, r) -> None:
    s = sd_change_from_levels(s0, s1, r)
    assert abs(s0 - s1) * (1 - 1e-9) - 1e-9 <= s <= (s0 + s1) * (1 + 1e-9)
    assert sd_change_from_levels(s0, s1, 0.0) == pytest.approx(math.hypot(s0, s1), rel=1e-12)


@given(
    st.integers(5, 100_000),
    st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=5, unique=True),
    st.floats(0.1, 100),
    st.floats(-100, 100),
)
def test_quantile_estimators_are_location_scale_equivariant(n, vals, a, b) -> None:
    mn, q1, md, q3, mx = sorted(vals)
    assume(q3 - q1 > 1e-3 and mx - mn > 1e-3)
    kw = dict(minimum=mn, q1=q1, q3=q3, maximum=mx)
    kw_t = {k: a * v + b for k, v in kw.items()}
    for keys in (("minimum", "maximum"), ("q1", "q3"), ("minimum", "q1", "q3", "maximum")):
        sub = {k: kw[k] for k in keys}
        sub_t = {k: kw_t[k] for k in keys}
        m0 = mean_from_quantiles(n, median=md, **sub)
        m1 = mean_from_quantiles(n, median=a * md + b, **sub_t)
        assert m1 == pytest.approx(a * m0 + b, rel=1e-9, abs=1e-6)
        s0 = sd_from_quantiles(n, **sub)
        s1 = sd_from_quantiles(n, **sub_t)
        assert s1 == pytest.approx(a * s0, rel=1e-9)
        assert min(kw["minimum"], md) <= m0 <= max(kw["maximum"], md)


@given(st.integers(5, 100_000), st.floats(0.1, 10), st.floats(0.1, 10))
def test_shi_sd_lies_between_range_and_iqr_estimates(n, iqr, extra) -> None:
    q1, q3 = -iqr / 2, iqr / 2
    mn, mx = q1 - extra, q3 + extra
    s1 = sd_from_quantiles(n, minimum=mn, maximum=mx)
    s2 = sd_from_quantiles(n, q1=q1, q3=q3)
    s3 = sd_from_quantiles(n, q1=q1, q3=q3, minimum=mn, maximum=mx)
    assert min(s1, s2) * (1 - 1e-12) <= s3 <= max(s1, s2) * (1 + 1e-12)


def test_population_normal_quantiles_give_back_mean_and_sd_for_large_n() -> None:
    # For finite n, xi(n) and eta(n) are expected *sample* range / IQR, smaller
    # than the population ones; with n = 1e6 the difference is below 1e-5.
    z = stats.norm.ppf
    n = 1_000_000
    q = {"q1": 10 + 2 * z(0.25), "q3": 10 + 2 * z(0.75)}
    assert mean_from_quantiles(n, median=10.0, **q) == pytest.approx(10.0, rel=1e-12)
    assert sd_from_quantiles(n, **q) == pytest.approx(2.0, rel=1e-5)


# ----------------------------------------------------------------- errors and edge cases


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_p_outside_unit_interval_raises(p) -> None:
    with pytest.raises(ValueError, match="p must lie strictly between 0 and 1"):
        pooled_sd_from_p(1.0, 10, 10, p)
    with pytest.raises(ValueError, match="p must lie strictly between 0 and 1"):
        sd_change_diff_from_p(1.0, 10, p)


def test_zero_mean_difference_raises() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        pooled_sd_from_p(0.0, 10, 10, 0.05)
    with pytest.raises(ValueError, match="non-zero"):
        pooled_sd_from_t(0.0, 10, 10, 2.0)
    with pytest.raises(ValueError, match="non-zero"):
        sd_change_diff_from_p(0.0, 10, 0.05)


def test_quantile_input_errors() -> None:
    with pytest.raises(ValueError):
        mean_from_quantiles(20, median=5.0, q1=3.0)  # q3 missing
    with pytest.raises(ValueError):
        sd_from_quantiles(20)  # nothing given
    with pytest.raises(ValueError):
        sd_from_quantiles(20, q1=5.0, q3=3.0)  # q1 > q3
    with pytest.raises(ValueError):
        mean_from_quantiles(20, median=9.0, q1=3.0, q3=5.0)  # median > q3
    with pytest.raises(ValueError):
        sd_from_quantiles(1, minimum=0.0, maximum=1.0)  # n < 2


def test_other_input_errors() -> None:
    with pytest.raises(ValueError):
        sd_from_ci(5.0, 4.0, 10)
    with pytest.raises(ValueError):
        sd_from_ci(4.0, 5.0, 1)
    with pytest.raises(ValueError):
        sd_change_from_levels(1.0, 1.0, 1.2)
    with pytest.raises(ValueError):
        combine_groups([10, 12], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        sd_from_se(-1.0, 10)


@pytest.mark.parametrize(
    ("total", "arms", "want"), [(61, 2, 30), (60, 2, 30), (100, 3, 33), (7, 7, 1)]
)
def test_split_n_equally_floors(total, arms, want) -> None:
    got = split_n_equally(total, arms)
    assert got == want and isinstance(got, int)
    assert got * arms <= total


@pytest.mark.parametrize(("total", "arms"), [(1, 2), (10, 0), (10.5, 2)])
def test_split_n_equally_rejects(total, arms) -> None:
    with pytest.raises(ValueError):
        split_n_equally(total, arms)


def test_array_inputs_broadcast() -> None:
    got = sd_from_se(np.array([1.0, 2.0]), np.array([4, 9]))
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, [2.0, 6.0])
    assert isinstance(sd_from_se(1.0, 4), float)
