"""Arm-level derivations and study comparisons, on small hand-made inputs.

Expected values are worked by hand from the textbook formulas (numbers in
comments), not by calling the code under test.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hairtrial.derive import arm_level, comparisons

ARM_DEFAULTS = {
    "n": np.nan,
    "mean": np.nan,
    "sd": np.nan,
    "se": np.nan,
    "ci_lower": np.nan,
    "ci_upper": np.nan,
    "median": np.nan,
    "q1": np.nan,
    "q3": np.nan,
    "min": np.nan,
    "max": np.nan,
    "p_value": np.nan,
    "p_relation": None,
    "flags": "",
    "unit": "hairs/cm2",
    "outcome": "hair_density",
    "stat": "change",
    "week": 12,
}


def arms_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{**ARM_DEFAULTS, **r} for r in rows])
    df["line"] = np.arange(len(df)) + 2
    return df


def studies_frame(**designs) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": list(designs),
            "design": [d[0] for d in designs.values()],
            "n_randomised": [d[1] for d in designs.values()],
            "n_arms": [d[2] for d in designs.values()],
            "first_author": ["Doe J"] * len(designs),
            "year": [2020] * len(designs),
        }
    )


def one_arm(**kw) -> pd.Series:
    arms = arms_frame([{"study": "s", "arm": "A", "treatment": "minoxidil", **kw}])
    out, quality, notes = arm_level.derive_arm_changes(
        arms, studies_frame(s=("parallel", 60, 2)), change_sd_correlation=0.5
    )
    assert len(out) == 1, notes
    return out.iloc[0]


def test_level_to_change_uses_r():
    arms = arms_frame(
        [
            {"study": "s", "arm": "A", "treatment": "t", "week": 0, "stat": "value", "n": 10}
            | {"mean": 50.0, "sd": 3.0},
            {"study": "s", "arm": "A", "treatment": "t", "week": 12, "stat": "value", "n": 10}
            | {"mean": 58.0, "sd": 4.0},
        ]
    )
    out, quality, _ = arm_level.derive_arm_changes(
        arms, studies_frame(s=("parallel", 20, 2)), change_sd_correlation=0.5
    )
    row = out.iloc[0]
    assert row["mean"] == 8.0
    # sqrt(9 + 16 - 2 * 0.5 * 3 * 4) = sqrt(13)
    assert row["sd"] == pytest.approx(math.sqrt(13), rel=1e-14)
    assert row["sd_provenance"] == "change_from_levels_r"
    assert "r = 0.5" in quality.loc[quality.quantity == "sd", "assumption"].iloc[0]


def test_sd_preference_order_and_codes():
    # SD wins over SE
    assert one_arm(n=25, mean=1.0, sd=2.0, se=9.0)["sd_provenance"] == "reported"
    # SE: 0.4 * sqrt(25) = 2
    r = one_arm(n=25, mean=1.0, se=0.4)
    assert (r["sd"], r["sd_provenance"]) == (pytest.approx(2.0), "from_se")
    # CI: sqrt(25) * 2 / (2 * t(0.975, 24)); t = 2.0638985616280205
    r = one_arm(n=25, mean=1.0, ci_lower=0.0, ci_upper=2.0)
    assert r["sd"] == pytest.approx(5 / 2.0638985616280205, rel=1e-12)
    assert r["sd_provenance"] == "from_ci"
    # IQR (Wan 2014): (q3 - q1) / (2 * qnorm((0.75 n - 0.125) / (n + 0.25)))
    r = one_arm(n=25, median=1.0, q1=0.0, q3=2.0)
    eta = 2 * stats.norm.ppf((0.75 * 25 - 0.125) / 25.25)
    assert r["sd"] == pytest.approx(2 / eta, rel=1e-12)
    assert r["sd_provenance"] == r["mean_provenance"] == "from_median_iqr"


def test_inch_to_cm_conversion_flags_mean_and_sd():
    r = one_arm(n=10, mean=64.516, sd=6.4516, unit="hairs/inch2")
    assert r["mean"] == pytest.approx(10.0) and r["sd"] == pytest.approx(1.0)
    assert r["mean_provenance"] == r["sd_provenance"] == "unit_converted"
    assert r["unit"] == "hairs/cm2"


def test_n_split_from_total_counts_unlisted_arms():
    r = one_arm(mean=1.0, sd=1.0)  # 60 randomised, 2 arms
    assert (r["n"], r["n_provenance"]) == (30.0, "n_split_equally")
    arms = arms_frame([{"study": "s", "arm": "A", "treatment": "t", "mean": 1.0, "sd": 1.0}])
    out, _, _ = arm_level.derive_arm_changes(
        arms, studies_frame(s=("parallel", 61, 3)), change_sd_correlation=0.5
    )
    assert out["n"].iloc[0] == 20.0  # floor(61 / 3)


def test_level_without_baseline_is_reported_not_used():
    arms = arms_frame([{"study": "s", "arm": "A", "treatment": "t", "stat": "value"} | {"n": 5}])
    arms.loc[0, ["mean", "sd"]] = [1.0, 1.0]
    out, _, notes = arm_level.derive_arm_changes(
        arms, studies_frame(s=("parallel", 10, 2)), change_sd_correlation=0.5
    )
    assert out.empty
    assert any("without a baseline" in n for n in notes)


def _compare(rows, design="parallel", **kw):
    arms = arms_frame(rows)
    st_ = studies_frame(s=(design, np.nan, 3))
    changes, _, _ = arm_level.derive_arm_changes(arms, st_, change_sd_correlation=0.5)
    return comparisons.build_comparisons(
        changes,
        st_,
        control="minoxidil",
        experimental="minoxidil_microneedling",
        split_scalp_correlation=kw.get("rho", 0.5),
        measures=kw.get("measures", ("MD",)),
    )


def test_multi_arm_combines_experimental_arms_and_counts_control_once():
    rows = [
        {"study": "s", "arm": "MN 1.2", "treatment": "minoxidil_microneedling"}
        | {"n": 10, "mean": 5.0, "sd": 2.0},
        {"study": "s", "arm": "MN 0.6", "treatment": "minoxidil_microneedling"}
        | {"n": 20, "mean": 8.0, "sd": 3.0},
        {"study": "s", "arm": "Minoxidil", "treatment": "minoxidil"}
        | {"n": 15, "mean": 1.0, "sd": 2.5},
        {"study": "s", "arm": "Spironolactone", "treatment": "other"}
        | {"n": 15, "mean": 9.0, "sd": 2.5},
    ]
    eff, quality, _ = _compare(rows)
    assert len(eff) == 1
    row = eff.iloc[0]
    # Cochrane 6.5.2.10: N = 30, M = (50 + 160) / 30 = 7,
    # SD = sqrt((9*4 + 19*9 + 10*20/30 * (5 - 8)^2) / 29) = sqrt(267 / 29)
    assert row["n_experimental"] == 30 and row["n_control"] == 15
    assert row["mean_experimental"] == pytest.approx(7.0)
    assert row["sd_experimental"] == pytest.approx(math.sqrt(267 / 29), rel=1e-13)
    assert row["yi"] == pytest.approx(6.0)
    assert row["vi"] == pytest.approx(267 / 29 / 30 + 2.5**2 / 15, rel=1e-13)
    assert "combined_arms" in row["provenance"]
    assert set(quality["provenance"]) == {"combined_arms"}


def test_split_scalp_uses_within_patient_correlation():
    rows = [
        {"study": "s", "arm": "MN side", "treatment": "minoxidil_microneedling"}
        | {"n": 19, "mean": 29.0, "sd": 20.0},
        {"study": "s", "arm": "Control side", "treatment": "minoxidil"}
        | {"n": 19, "mean": 17.0, "sd": 15.0},
    ]
    eff, _, _ = _compare(rows, design="split_scalp", rho=0.3)
    row = eff.iloc[0]
    # (400 + 225 - 2 * 0.3 * 20 * 15) / 19 = 445 / 19
    assert row["vi"] == pytest.approx(445 / 19, rel=1e-13)
    assert row["provenance"] == "split_scalp_r"


def test_missing_sd_and_no_p_value_gives_no_comparison():
    rows = [
        {"study": "s", "arm": "MN", "treatment": "minoxidil_microneedling", "n": 10, "mean": 2.0},
        {"study": "s", "arm": "C", "treatment": "minoxidil", "n": 10, "mean": 1.0},
    ]
    eff, _, notes = _compare(rows)
    assert eff.empty and any("no t or p-value" in n for n in notes)


def test_t_statistic_is_preferred_to_p_value():
    rows = [
        {"study": "s", "arm": "MN", "treatment": "minoxidil_microneedling", "n": 20}
        | {"mean": 6.0, "t_value": -2.5, "p_value": 0.5},
        {"study": "s", "arm": "C", "treatment": "minoxidil", "n": 25, "mean": 1.0},
    ]
    eff, quality, _ = _compare(rows)
    row = eff.iloc[0]
    # SD = |MD| / |t| / sqrt(1/n1 + 1/n2) = 5 / 2.5 / sqrt(0.05 + 0.04)
    assert row["sd_control"] == pytest.approx(2 / math.sqrt(0.09), rel=1e-14)
    assert row["provenance"] == "from_t"
    assert set(quality["provenance"]) == {"from_t"}


@settings(max_examples=60, deadline=None)
@given(
    p=st.floats(1e-8, 0.9),
    md=st.floats(0.1, 100.0),
    n1=st.integers(3, 200),
    n2=st.integers(3, 200),
    bound=st.booleans(),
)
def test_sd_from_p_reproduces_the_p_value(p, md, n1, n2, bound):
    rows = [
        {"study": "s", "arm": "MN", "treatment": "minoxidil_microneedling"}
        | {"n": n1, "mean": md, "p_value": p, "p_relation": "<" if bound else "="},
        {"study": "s", "arm": "C", "treatment": "minoxidil", "n": n2, "mean": 0.0},
    ]
    eff, quality, _ = _compare(rows)
    row = eff.iloc[0]
    # a two-sample t-test with the derived pooled SD gives back p
    t = row["yi"] / math.sqrt(row["sd_control"] ** 2 * (1 / n1 + 1 / n2))
    assert 2 * stats.t.sf(t, n1 + n2 - 2) == pytest.approx(p, rel=1e-8)
    assert row["sd_control"] == row["sd_experimental"]
    assert ("from_p_bound" in row["provenance"]) == bound
    assert len(quality) == 2


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(6)))
def test_comparisons_do_not_depend_on_row_order(order):
    rows = [
        {"study": "a", "arm": "MN", "treatment": "minoxidil_microneedling", "n": 10}
        | {"mean": 5.0, "sd": 2.0},
        {"study": "a", "arm": "C", "treatment": "minoxidil", "n": 12, "mean": 1.0, "sd": 2.0},
        {"study": "b", "arm": "MN", "treatment": "minoxidil_microneedling", "n": 20}
        | {"mean": 3.0, "sd": 1.0},
        {"study": "b", "arm": "C", "treatment": "minoxidil", "n": 21, "mean": 2.0, "sd": 1.5},
        {"study": "b", "arm": "MN2", "treatment": "minoxidil_microneedling", "n": 20}
        | {"mean": 4.0, "sd": 1.0},
        {"study": "b", "arm": "X", "treatment": "other", "n": 20, "mean": 4.0, "sd": 1.0},
    ]

    def run(rs):
        arms = arms_frame(rs)
        st_ = studies_frame(a=("parallel", np.nan, 2), b=("parallel", np.nan, 4))
        ch, _, _ = arm_level.derive_arm_changes(arms, st_, change_sd_correlation=0.5)
        eff, _, _ = comparisons.build_comparisons(
            ch,
            st_,
            control="minoxidil",
            experimental="minoxidil_microneedling",
            split_scalp_correlation=0.5,
        )
        return eff

    base = run(rows)
    shuffled = run([rows[i] for i in order])
    pd.testing.assert_frame_equal(base, shuffled, check_exact=False, rtol=1e-13)
