"""Tests of hairtrial.derive.effects against metafor 3.8-1 (tests/reference/escalc_reference.csv).

The reference CSV is written by tests/reference/escalc_and_conversions.R; see
its header for where each number comes from ('origin' column).
"""

from __future__ import annotations

import numpy as np
import pytest
from escalc_ref import REFERENCE as _REF
from escalc_ref import cases
from hypothesis import assume, given
from hypothesis import strategies as st

from hairtrial.derive.effects import (
    ci_from_yi_vi,
    hedges_correction,
    hedges_g,
    mean_difference,
    paired_mean_difference,
    paired_smd,
)

RTOL = 1e-10  # agreement with metafor's escalc

_cases = cases


def _close(got: float, want: float, rtol: float = RTOL) -> None:
    # relative tolerance; an expected exact 0 (e.g. MD of equal means) must be 0
    # up to rounding of the inputs.
    assert got == pytest.approx(want, rel=rtol, abs=1e-14 * (want == 0.0))


def _two(c: dict[str, float]) -> tuple[float, ...]:
    return c["m1"], c["sd1"], c["n1"], c["m2"], c["sd2"], c["n2"]


def _pair(c: dict[str, float]) -> tuple[float, ...]:
    return c["m1"], c["sd1"], c["m2"], c["sd2"], c["n"], c["r"]


# ----------------------------------------------------------------- parity with metafor


def test_reference_has_expected_sections() -> None:
    for sec in ("MD", "SMD", "MC", "SMCRP_hand", "SMCRP_vs_SMCR", "SMCRP_yi_vs_SMD", "hedges_c"):
        assert len(_REF[sec]) >= 4, sec
    assert sum(k.startswith("normand1999_") for k in _REF["SMD"]) == 9


@pytest.mark.parametrize("c", _cases("MD"))
def test_mean_difference_matches_escalc_md(c: dict[str, float]) -> None:
    yi, vi = mean_difference(*_two(c))
    _close(yi, c["yi"])
    _close(vi, c["vi"])


@pytest.mark.parametrize("c", _cases("SMD"))
def test_hedges_g_matches_escalc_smd(c: dict[str, float]) -> None:
    yi, vi = hedges_g(*_two(c))
    _close(yi, c["yi"])
    _close(vi, c["vi"])


@pytest.mark.parametrize("section", ["MD", "SMD"])
def test_ci_matches_summary_escalc(section: str) -> None:
    fn = mean_difference if section == "MD" else hedges_g
    for c in _REF[section].values():
        yi, vi = fn(*_two(c))
        lo, hi = ci_from_yi_vi(yi, vi)
        _close(lo, c["ci_lb"])
        _close(hi, c["ci_ub"])
        lo, hi = ci_from_yi_vi(yi, vi, level=0.90)
        _close(lo, c["ci90_lb"])
        _close(hi, c["ci90_ub"])


def test_vectorised_inputs_match_scalar_calls() -> None:
    cases = list(_REF["SMD"].values())
    cols = [np.array([c[k] for c in cases]) for k in ("m1", "sd1", "n1", "m2", "sd2", "n2")]
    yi, vi = hedges_g(*cols)
    assert isinstance(yi, np.ndarray) and yi.shape == (len(cases),)
    np.testing.assert_allclose(yi, [c["yi"] for c in cases], rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(vi, [c["vi"] for c in cases], rtol=RTOL)


@pytest.mark.parametrize("c", _cases("hedges_c"))
def test_hedges_correction_matches_cmicalc(c: dict[str, float]) -> None:
    _close(hedges_correction(c["m"]), c["c"])


@pytest.mark.parametrize("c", _cases("MC"))
def test_paired_mean_difference_matches_escalc_mc(c: dict[str, float]) -> None:
    yi, vi = paired_mean_difference(*_pair(c))
    _close(yi, c["yi"])
    _close(vi, c["vi"])


@pytest.mark.parametrize("c", _cases("SMCRP_hand"))
def test_paired_smd_matches_smcrp_formula(c: dict[str, float]) -> None:
    """metafor >= 4.6-0 "SMCRP" evaluated by hand in R (metafor 3.8-1 lacks it)."""
    yi, vi = paired_smd(*_pair(c))
    _close(yi, c["yi"])
    _close(vi, c["vi"])


@pytest.mark.parametrize("c", _cases("SMCRP_yi_vs_SMD"))
def test_paired_smd_yi_matches_metafor_smd_with_equivalent_df(c: dict[str, float]) -> None:
    """escalc("SMD") with n1 = n2 = mi/2 + 1 computes SMCRP's yi in metafor 3.8-1 itself."""
    yi, _ = paired_smd(*_pair(c))
    _close(yi, c["yi"])


@pytest.mark.parametrize("c", _cases("SMCRP_vs_SMCR"))
def test_paired_smd_equals_escalc_smcr_when_sd_equal_and_r_one(c: dict[str, float]) -> None:
    assert c["sd1"] == c["sd2"] and c["r"] == 1.0
    yi, vi = paired_smd(*_pair(c))
    _close(yi, c["yi"])
    _close(vi, c["vi"])


def test_paired_smd_is_not_smcr_for_r_below_one() -> None:
    """The df of the pooled SD depend on r: a formula with mi = n - 1 would fail here."""
    c = _REF["SMCRP_hand"]["split_scalp_n3_r0"]
    yi, vi = paired_smd(*_pair(c))
    d = (c["m1"] - c["m2"]) / np.sqrt((c["sd1"] ** 2 + c["sd2"] ** 2) / 2)
    naive = hedges_correction(c["n"] - 1) * d
    assert abs(yi - naive) > 1e-3 * abs(naive)
    _close(yi, c["yi"])
    _close(vi, c["vi"])


# ----------------------------------------------------------------- properties

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
sds = st.floats(0.01, 1e3, allow_nan=False, allow_infinity=False)
ns = st.integers(2, 5000)
rs = st.floats(-1.0, 1.0, allow_nan=False)


@given(finite, sds, ns, finite, sds, ns)
def test_hedges_g_antisymmetric_under_swapping_arms(m1, s1, n1, m2, s2, n2) -> None:
    y12, v12 = hedges_g(m1, s1, n1, m2, s2, n2)
    y21, v21 = hedges_g(m2, s2, n2, m1, s1, n1)
    assert y12 == pytest.approx(-y21, rel=1e-12, abs=1e-300)
    assert v12 == pytest.approx(v21, rel=1e-12)


@given(finite, sds, ns, finite, sds, ns)
def test_mean_difference_variance_positive_and_antisymmetric(m1, s1, n1, m2, s2, n2) -> None:
    y, v = mean_difference(m1, s1, n1, m2, s2, n2)
    assert v > 0
    y2, v2 = mean_difference(m2, s2, n2, m1, s1, n1)
    assert y == -y2 and v == pytest.approx(v2, rel=1e-14)


@given(finite, sds, ns, finite, sds, ns, st.floats(0.01, 100), st.floats(-100, 100))
def test_hedges_g_invariant_to_linear_rescaling(m1, s1, n1, m2, s2, n2, a, b) -> None:
    """Changing units (e.g. per inch^2 -> per cm^2) must not change g."""
    y, v = hedges_g(m1, s1, n1, m2, s2, n2)
    ys, vs = hedges_g(a * m1 + b, a * s1, n1, a * m2 + b, a * s2, n2)
    assert ys == pytest.approx(y, rel=1e-9, abs=1e-9)
    assert vs == pytest.approx(v, rel=1e-9)


@given(st.floats(1.0001, 1e7))
def test_hedges_correction_bounds_and_approximation(m) -> None:
    c = hedges_correction(m)
    assert 0 < c < 1
    assert hedges_correction(m * 2) > c
    if m >= 10:
        # Hedges (1981) approximation; its relative error is O(m^-2) (3.6e-4 at m = 10)
        assert c == pytest.approx(1 - 3 / (4 * m - 1), rel=0.1 / m**2)


def test_hedges_correction_large_m_close_to_one() -> None:
    for m in (1e6, 1e8):
        assert hedges_correction(m) == pytest.approx(1 - 3 / (4 * m - 1), abs=1e-6)


@given(finite, sds, finite, sds, st.integers(2, 5000), rs, rs)
def test_paired_variance_decreases_in_r(m1, s1, m2, s2, n, r_a, r_b) -> None:
    assume(r_a < r_b)
    _, v_lo_r = paired_mean_difference(m1, s1, m2, s2, n, r_a)
    _, v_hi_r = paired_mean_difference(m1, s1, m2, s2, n, r_b)
    assert v_hi_r <= v_lo_r
    assert v_hi_r >= 0


@given(finite, sds, finite, sds, st.integers(3, 5000), rs)
def test_paired_smd_antisymmetric_and_variance_positive(m1, s1, m2, s2, n, r) -> None:
    y, v = paired_smd(m1, s1, m2, s2, n, r)
    y2, v2 = paired_smd(m2, s2, m1, s1, n, r)
    assert y == pytest.approx(-y2, rel=1e-12, abs=1e-300)
    assert v == pytest.approx(v2, rel=1e-12)
    assert v >= 0


@given(finite, st.floats(0, 1e4), st.floats(0.5, 0.999))
def test_ci_symmetric_and_contains_estimate(y, v, level) -> None:
    lo, hi = ci_from_yi_vi(y, v, level)
    assert lo <= y <= hi
    assert (hi - y) == pytest.approx(y - lo, rel=1e-9, abs=1e-9)
    lo2, hi2 = ci_from_yi_vi(y, v, min(level + 0.0005, 0.9995))
    assert hi2 - lo2 >= hi - lo


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("m", [1.0, 0.5, -3.0, float("nan")])
def test_hedges_correction_rejects_m_at_most_one(m) -> None:
    with pytest.raises(ValueError):
        hedges_correction(m)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        mean_difference(1, -1, 10, 0, 1, 10)
    with pytest.raises(ValueError):
        hedges_g(1, 1, 0, 0, 1, 10)
    with pytest.raises(ValueError):
        paired_mean_difference(1, 1, 0, 1, 10, 1.5)
    with pytest.raises(ValueError):
        paired_smd(1, 1, 0, 1, 1, 0.5)
    with pytest.raises(ValueError):
        ci_from_yi_vi(0.0, -1.0)
