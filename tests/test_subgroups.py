"""Parity of hairtrial.models.subgroups with metafor 3.8, plus invariants.

Reference values: the ``subgroup`` / ``subgroup_test`` sections of
tests/reference/metafor_metareg.csv (dat.bcg, moderator alloc), written by
tests/reference/metafor_metareg.R.
"""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hairtrial.models.subgroups as subgroups_mod
from hairtrial.models.metareg import metareg
from hairtrial.models.subgroups import SUBGROUP_COLUMNS, TEST_COLUMNS, subgroup_analysis
from hairtrial.models.tau2 import q_statistic
from hairtrial.models.univariate import fit

REF_DIR = Path(__file__).parent / "reference"
INPUTS = pd.read_csv(REF_DIR / "metafor_metareg_inputs.csv")
REF = pd.read_csv(REF_DIR / "metafor_metareg.csv", na_values=["NA"])
RTOL = 1e-6

SUB = REF[REF["section"].isin(["subgroup", "subgroup_test"])]
CASES = sorted(SUB[["method", "test"]].drop_duplicates().itertuples(index=False, name=None))
ROW_Q = {"ci.lb": "ci_lower", "ci.ub": "ci_upper", "pval": "pvalue", "pi.lb": "pi_lower"}
ROW_Q |= {"pi.ub": "pi_upper", "QE": "Q", "QEp": "Q_pvalue"}


def _close(ours: float, ref: float) -> bool:
    if math.isnan(ref):
        return math.isnan(ours)
    return abs(ours - ref) <= RTOL * abs(ref)


@pytest.mark.parametrize(("method", "test"), CASES)
def test_parity_with_metafor(method: str, test: str) -> None:
    res = subgroup_analysis(
        INPUTS["yi"], INPUTS["vi"], INPUTS["alloc"], moderator="alloc", method=method,
        ci_method=test,
    )  # fmt: skip
    assert res.levels == ("alternate", "random", "systematic")
    ref = SUB[(SUB["method"] == method) & (SUB["test"] == test)]
    bad = []
    for section, model, idx, q, value in ref[
        ["section", "model", "index", "quantity", "value"]
    ].values:
        option = model.split("_")[1]
        if section == "subgroup":
            row = res.table[res.table["tau2_option"] == option].iloc[int(idx) - 1]
            ours = row[ROW_Q.get(q, q)]
        elif q == "QE":
            ours = res.common_fit.QE
        else:
            row = res.test[res.test["tau2_option"] == option].iloc[0]
            ours = row[{"anova_QM": "Q_between", "anova_QMp": "pvalue"}.get(q, q)]
        if not _close(float(ours), float(value)):
            bad.append(f"{section} {model} {q}[{idx}]: ours {ours!r} metafor {value!r}")
    assert not bad, "\n".join(bad)
    dist = res.test.set_index("tau2_option")["distribution"]
    assert dist["separate"] == "chi2" and dist["common"] == ("chi2" if test == "z" else "F")


def test_output_columns_are_stable() -> None:
    res = subgroup_analysis(INPUTS["yi"], INPUTS["vi"], INPUTS["alloc"], moderator="alloc")
    assert list(res.table.columns) == list(SUBGROUP_COLUMNS)
    assert list(res.test.columns) == list(TEST_COLUMNS)
    assert res.table["tau2_option"].tolist() == ["separate"] * 3 + ["common"] * 3
    assert res.table["k"].tolist() == [2, 7, 4] * 2
    assert set(res.table["moderator"]) == {"alloc"}
    only = subgroup_analysis(INPUTS["yi"], INPUTS["vi"], INPUTS["alloc"], tau2_options=["common"])
    assert only.table["tau2_option"].unique().tolist() == ["common"] and not only.separate_fits
    # overall model for the forest plot
    assert res.overall.estimate == fit(INPUTS["yi"], INPUTS["vi"]).estimate


def test_errors() -> None:
    y, v = INPUTS["yi"], INPUTS["vi"]
    with pytest.raises(ValueError, match="'alloc' has missing values"):
        subgroup_analysis(y, v, [None, *INPUTS["alloc"].iloc[1:]], moderator="alloc")
    with pytest.raises(ValueError, match="single level"):
        subgroup_analysis(y, v, ["a"] * len(y))
    with pytest.raises(ValueError, match="tau2_options"):
        subgroup_analysis(y, v, INPUTS["alloc"], tau2_options=["pooled"])


def test_single_study_subgroup_and_too_few_for_common() -> None:
    y, v = INPUTS["yi"].iloc[:4], INPUTS["vi"].iloc[:4]
    res = subgroup_analysis(y, v, ["a", "a", "b", "c"])  # k = 4 = L + 1
    sep = res.table[res.table["tau2_option"] == "separate"]
    assert sep["k"].tolist() == [2, 1, 1]
    assert sep["se"].iloc[1] == pytest.approx(math.sqrt(v.iloc[2]))
    assert math.isnan(sep["Q"].iloc[1])
    assert "single study" in res.test["notes"].iloc[0]
    res3 = subgroup_analysis(y.iloc[:3], v.iloc[:3], ["a", "b", "c"])  # k = L: no common model
    common = res3.test[res3.test["tau2_option"] == "common"].iloc[0]
    assert math.isnan(common["Q_between"]) and "not estimable" in common["notes"]
    assert res3.common_fit is None


def test_docstring_examples() -> None:
    assert doctest.testmod(subgroups_mod).failed == 0


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grouped(draw: st.DrawFn):
    sizes = draw(st.lists(st.integers(2, 5), min_size=2, max_size=3))
    k = sum(sizes)
    yi = np.array(draw(st.lists(st.floats(-3, 3), min_size=k, max_size=k)))
    vi = np.array(draw(st.lists(st.floats(0.01, 2), min_size=k, max_size=k)))
    g = np.repeat([f"g{j}" for j in range(len(sizes))], sizes)
    order = np.array(draw(st.permutations(range(k))))
    return yi[order], vi[order], g[order]


@PROPS
@given(data=grouped(), method=st.sampled_from(["DL", "REML", "PM", "FE"]))
def test_separate_rows_equal_separate_fits(data, method) -> None:
    yi, vi, g = data
    res = subgroup_analysis(yi, vi, g, method=method, tau2_options=["separate"])
    for _, row in res.table.iterrows():
        m = g == row["level"]
        r = fit(yi[m], vi[m], method=method)
        assert row["estimate"] == r.estimate and row["se"] == r.estimate_se
        assert row["tau2"] == r.tau2 and row["k"] == m.sum()


@PROPS
@given(data=grouped(), method=st.sampled_from(["DL", "REML"]))
def test_common_rows_equal_cell_means_model(data, method) -> None:
    yi, vi, g = data
    res = subgroup_analysis(yi, vi, g, method=method, tau2_options=["common"])
    levels = sorted(set(g))
    X = np.column_stack([(g == lev).astype(float) for lev in levels])
    mr = metareg(yi, vi, X, method=method)
    # same model; only the memory layout of X differs (last-bit BLAS differences)
    np.testing.assert_allclose(res.table["estimate"], mr.beta, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.table["tau2"], mr.tau2, rtol=1e-12, atol=1e-14)
    # the test equals QM of the treatment-coded model: invariant to the reference level
    Xr = np.column_stack([np.ones(len(yi)), X[:, :-1]])  # last level as reference
    qm = metareg(yi, vi, Xr, method=method).QM
    assert res.test["Q_between"].iloc[0] == pytest.approx(qm, rel=1e-6, abs=1e-9)


@PROPS
@given(data=grouped())
def test_fe_partition_of_q(data) -> None:
    """Common-effect: Q_total = Q_between + sum(Q_within), and both options coincide."""
    yi, vi, g = data
    res = subgroup_analysis(yi, vi, g, method="FE")
    t = res.test.set_index("tau2_option")
    q_within = res.table.loc[res.table["tau2_option"] == "separate", "Q"].sum()
    q_total = q_statistic(0.0, yi, vi)
    assert t.loc["separate", "Q_between"] + q_within == pytest.approx(q_total, rel=1e-8, abs=1e-8)
    assert t.loc["separate", "Q_between"] == pytest.approx(
        t.loc["common", "Q_between"], rel=1e-8, abs=1e-8
    )
    sep = res.table[res.table["tau2_option"] == "separate"]
    com = res.table[res.table["tau2_option"] == "common"]
    np.testing.assert_allclose(sep["estimate"], com["estimate"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sep["se"], com["se"], rtol=1e-10)


def test_subgroup_forest_plot_smoke() -> None:
    from hairtrial.models.univariate import results_frame
    from hairtrial.plots.subgroup_forest import subgroup_forest_plot

    res = subgroup_analysis(INPUTS["yi"], INPUTS["vi"], INPUTS["alloc"], moderator="alloc")
    se = np.sqrt(INPUTS["vi"])
    studies = pd.DataFrame(
        {
            "study": [f"S{i}" for i in range(13)],
            "yi": INPUTS["yi"],
            "ci_lower": INPUTS["yi"] - 1.96 * se,
            "ci_upper": INPUTS["yi"] + 1.96 * se,
            "weight_pct": res.overall.weights,
            "alloc": INPUTS["alloc"],
            "provenance": ["from_se"] + ["reported"] * 12,
        }
    )
    for option in ("separate", "common"):
        fig = subgroup_forest_plot(
            studies,
            res.table[res.table["tau2_option"] == option],
            res.test[res.test["tau2_option"] == option],
            results_frame([res.overall]).iloc[0],
            xlabel="log RR",
            group_column="alloc",
        )
        fig.canvas.draw()
        texts = [t.get_text() for t in fig.texts]
        assert any(t.startswith("Test for subgroup differences") for t in texts)
        assert sum(t.startswith("Subtotal") for t in texts) == 3
        assert [m for m, _ in fig.hairtrial_footnotes] == ["a"]
    with pytest.raises(ValueError, match="several tau2_option"):
        subgroup_forest_plot(
            studies, res.table, res.test.iloc[:1], xlabel="x", group_column="alloc"
        )
