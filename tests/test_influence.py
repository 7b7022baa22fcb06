"""Parity of hairtrial.diagnostics.influence with metafor 3.8 (leave1out, influence, cumul, baujat),
invariants, and the figures of hairtrial.plots.influence.

Reference values: tests/reference/metafor_influence.csv, written by
tests/reference/metafor_influence.R (R is not needed to run these tests).
"""

from __future__ import annotations

import doctest
import functools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hairtrial.diagnostics.influence as infl_mod  # noqa: E402
import hairtrial.plots.influence as plot_mod  # noqa: E402
from hairtrial.diagnostics.influence import (  # noqa: E402
    BAUJAT_COLUMNS,
    CUMULATIVE_COLUMNS,
    LEAVE_ONE_OUT_COLUMNS,
    baujat,
    cumulative,
    influence_diagnostics,
    leave_one_out,
)
from hairtrial.models.univariate import fit, results_frame  # noqa: E402
from hairtrial.plots import save_figure  # noqa: E402

REF_DIR = Path(__file__).parent / "reference"
INPUTS = pd.read_csv(REF_DIR / "metafor_influence_inputs.csv", na_values=["NA"])
REF = pd.read_csv(REF_DIR / "metafor_influence.csv", na_values=["NA"])

RTOL = 1e-6  # relative tolerance for every number
ATOL_ZERO = 1e-10  # absolute tolerance for reference values that are ~0 (e.g. rstudent = 0)

#: metafor quantity -> our column (leave1out / cumul)
MODEL_COLS = {
    "estimate": "estimate",
    "se": "se",
    "zval": "statistic",
    "tval": "statistic",
    "pval": "pvalue",
    "ci.lb": "ci_lower",
    "ci.ub": "ci_upper",
    "Q": "Q",
    "Qp": "Q_pvalue",
    "tau2": "tau2",
    "I2": "I2",
    "H2": "H2",
}
#: metafor quantity -> our column (influence)
INFL_COLS = {
    "rstudent": "rstudent",
    "dffits": "dffits",
    "cook.d": "cook_d",
    "cov.r": "cov_r",
    "tau2.del": "tau2_del",
    "QE.del": "QE_del",
    "hat": "hat",
    "weight": "weight",
}
#: Documented differences for a fit on a single study (module docstring of
#: hairtrial.diagnostics.influence): metafor's value -> ours is NaN.
K1_METAFOR = {"Q": 0.0, "Qp": 1.0, "I2": 0.0, "H2": 1.0, "QE.del": 0.0}
K1_KNHA = {"tval", "pval", "ci.lb", "ci.ub"}  # metafor silently switches to z for k = 1


def _inputs(dataset: str) -> pd.DataFrame:
    return INPUTS[INPUTS["dataset"] == dataset].sort_values("study").reset_index(drop=True)


@functools.cache
def _ours(dataset: str, analysis: str, method: str, test: str, mods: int) -> pd.DataFrame:
    d = _inputs(dataset)
    y, v, s = d["yi"].to_numpy(), d["vi"].to_numpy(), d["slab"].tolist()
    X = np.column_stack([np.ones(len(d)), d["x1"].to_numpy()]) if mods else None
    if analysis == "leave1out":
        return leave_one_out(y, v, s, method=method, ci_method=test)
    if analysis == "cumul":
        return cumulative(y, v, s, order_by=d["order"].to_numpy(), method=method, ci_method=test)
    if analysis == "influence":
        return influence_diagnostics(y, v, s, X=X, method=method, ci_method=test)
    return baujat(y, v, s, X=X, method=method, ci_method=test)


_KEYS = ["dataset", "analysis", "method", "test", "mods"]
REF_GROUPS = {tuple(key): g for key, g in REF.groupby(_KEYS, sort=True)}
GROUPS = sorted(REF_GROUPS)


def _close(ours: float, ref: float) -> bool:
    if math.isnan(ref):
        return math.isnan(ours)
    return math.isclose(ours, ref, rel_tol=RTOL, abs_tol=ATOL_ZERO)


@pytest.mark.parametrize(("dataset", "analysis", "method", "test", "mods"), GROUPS)
def test_parity_with_metafor(dataset, analysis, method, test, mods):
    """Every number metafor reports, at rtol 1e-6, except the documented k = 1 / k = p cells."""
    out = _ours(dataset, analysis, method, test, int(mods))
    ref = REF_GROUPS[(dataset, analysis, method, test, mods)]
    assert len(ref) > 0
    d = _inputs(dataset)
    k = len(d)
    failures = []
    documented = 0
    for r in ref.to_dict("records"):
        q, i = r["quantity"], int(r["row"]) - 1
        if analysis == "influence" and q == "inf":
            continue  # exact flags: test_influence_flags_exact
        if analysis == "cumul" and q == "study":
            # the study added at each step: the same (stable) ordering as R's order()
            assert out["study"].iloc[i] == d["slab"].iloc[int(r["value"]) - 1]
            continue
        if analysis == "influence":
            if q.startswith("dfbs."):
                col = [c for c in out.columns if c.startswith("dfbetas_")][int(q[5:]) - 1]
            else:
                col = INFL_COLS[q]
        elif analysis == "baujat":
            col = q
        else:
            col = MODEL_COLS[q]
        ours = float(out[col].iloc[i])
        ref_v = float(r["value"])
        # documented boundary differences (hairtrial.diagnostics.influence module docstring)
        refit_k = k - 1 if analysis in ("leave1out", "influence") else i + 1
        refit_k1 = analysis != "baujat" and refit_k == 1
        fe_k_eq_p = analysis == "influence" and method == "FE" and mods and refit_k == 2
        if (refit_k1 and q in K1_METAFOR) or (fe_k_eq_p and q == "QE.del"):
            assert math.isnan(ours), (q, i, ours)
            assert math.isclose(ref_v, K1_METAFOR[q], abs_tol=1e-8), (q, i, ref_v)
            documented += 1
            continue
        if refit_k1 and test == "knha" and q in K1_KNHA:
            assert math.isnan(ours), (q, i, ours)
            documented += 1
            continue
        if not _close(ours, ref_v):
            failures.append((q, i + 1, ref_v, ours))
    assert not failures, failures
    assert documented < len(ref)


def test_documented_k1_difference_is_wald_ci_in_metafor():
    """metafor's knha CI for a single-study refit is the Wald CI (its silent switch to z)."""
    ref = REF[
        (REF["dataset"] == "gen_k2")
        & (REF["analysis"] == "leave1out")
        & (REF["method"] == "REML")
        & (REF["test"] == "knha")
    ].set_index(["row", "quantity"])["value"]
    d = _inputs("gen_k2")
    for row, omitted in ((1, 0), (2, 1)):
        kept = 1 - omitted
        y, se = d["yi"].iloc[kept], math.sqrt(d["vi"].iloc[kept])
        assert math.isclose(ref[(row, "ci.lb")], y - 1.959963984540054 * se, rel_tol=1e-9)
    out = _ours("gen_k2", "leave1out", "REML", "knha", 0)
    assert out["ci_lower"].isna().all() and out["estimate"].notna().all()
    assert out["notes"].str.contains("k = 1").all()


@pytest.mark.parametrize(
    ("dataset", "method", "test", "mods"),
    sorted(
        {
            tuple(g)
            for g in REF.loc[REF["analysis"] == "influence", ["dataset", "method", "test", "mods"]]
            .drop_duplicates()
            .to_numpy()
        }
    ),
)
def test_influence_flags_exact(dataset, method, test, mods):
    """metafor's '*' influential flags, exactly."""
    ref = REF_GROUPS[(dataset, "influence", method, test, mods)]
    ref = ref[ref["quantity"] == "inf"].sort_values("row")
    out = _ours(dataset, "influence", method, test, int(mods))
    assert out["inf"].tolist() == (ref["value"] == 1).tolist()


def test_reference_has_influential_and_non_influential_studies():
    flags = REF.loc[REF["quantity"] == "inf", "value"]
    assert (flags == 1).sum() >= 10 and (flags == 0).sum() >= 50


# --------------------------------------------------------------------------
# Columns, boundary cases, argument checks
# --------------------------------------------------------------------------

Y10 = np.array([18.4, 12.1, 25.3, 9.8, 14.6, 31.9, 7.2, 16.0, 11.3, 58.5])
V10 = np.array([21.0, 14.5, 30.2, 18.9, 9.7, 44.0, 25.1, 16.3, 12.8, 60.0])
S10 = [f"Trial {c}" for c in "ABCDEFGHIJ"]
YEARS10 = [2013, 2018, 2020, 2021, 2022, 2020, 2019, 2021, 2020, 2018]


def test_columns_are_stable():
    assert list(leave_one_out(Y10, V10, S10).columns) == list(LEAVE_ONE_OUT_COLUMNS)
    assert list(cumulative(Y10, V10, S10).columns) == list(CUMULATIVE_COLUMNS)
    assert list(baujat(Y10, V10, S10).columns) == list(BAUJAT_COLUMNS)
    d = influence_diagnostics(Y10, V10, S10, X=np.column_stack([np.ones(10), YEARS10]))
    assert list(d.columns) == [
        *infl_mod.INFLUENCE_COLUMNS,
        "dfbetas_intrcpt",
        "dfbetas_x1",
        *infl_mod.INFLUENCE_FLAG_COLUMNS,
    ]
    assert d.attrs["p"] == 2 and d.attrs["k"] == 10


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("ci_method", ["z", "knha", "adhoc"])
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_small_k_never_raises(k, ci_method, method):
    y, v, s = Y10[:k], V10[:k], S10[:k]
    loo = leave_one_out(y, v, s, method=method, ci_method=ci_method)
    cum = cumulative(y, v, s, order_by=YEARS10[:k], method=method, ci_method=ci_method)
    d = influence_diagnostics(y, v, s, method=method, ci_method=ci_method)
    b = baujat(y, v, s, method=method, ci_method=ci_method)
    assert len(loo) == len(cum) == len(d) == len(b) == k
    if k == 1:
        assert loo["estimate"].isna().all() and (loo["notes"] != "").all()
        assert d["rstudent"].isna().all() and b["y"].isna().all()
    if k == 2:
        assert loo["estimate"].notna().all() and loo["Q"].isna().all()
        assert loo["notes"].str.contains("k = 1").all()
        assert d["QE_del"].isna().all() and d["notes"].str.contains("QE_del").all()
        assert d["rstudent"].notna().all()
    first = int(np.argsort(YEARS10[:k], kind="stable")[0])
    assert math.isnan(cum["Q"].iloc[0])
    assert cum["estimate"].iloc[0] == pytest.approx(y[first], rel=1e-12)


def test_k3_with_moderator_refits_fail_as_in_metafor():
    X = np.column_stack([np.ones(3), [12.0, 16.0, 24.0]])
    d = influence_diagnostics(Y10[:3], V10[:3], X=X, method="REML")
    assert d["rstudent"].isna().all() and d["hat"].notna().all()
    assert d["notes"].str.contains("refit not possible").all()
    assert not d["inf"].any()
    b = baujat(Y10[:3], V10[:3], X=X)
    assert b["y"].isna().all() and b["x"].notna().all()


def test_cumulative_order_is_stable_and_decreasing():
    cum = cumulative(Y10, V10, S10, order_by=YEARS10)
    # ties keep input order (R's order()): 2018 -> B then J; 2020 -> C, F, I
    assert cum["study"].tolist()[:3] == ["Trial A", "Trial B", "Trial J"]
    assert cum["study"].tolist()[4:7] == ["Trial C", "Trial F", "Trial I"]
    dec = cumulative(Y10, V10, S10, order_by=YEARS10, decreasing=True)
    assert dec["study"].iloc[0] == "Trial E" and dec["study"].iloc[-1] == "Trial A"
    assert cumulative(Y10, V10, S10)["study"].tolist() == S10
    with pytest.raises(ValueError, match="order_by"):
        cumulative(Y10, V10, order_by=YEARS10[:3])


def test_argument_checks():
    with pytest.raises(ValueError, match="method"):
        leave_one_out(Y10, V10, method="XX")
    with pytest.raises(ValueError, match="ci_method"):
        influence_diagnostics(Y10, V10, ci_method="t")
    with pytest.raises(ValueError, match="labels"):
        baujat(Y10, V10, S10[:3])


def test_influence_cutoffs_match_metafor_rules():
    c = infl_mod.influence_cutoffs(13, 2)
    assert c["dffits"] == pytest.approx(3 * math.sqrt(2 / 11))
    assert c["cook_d"] == pytest.approx(1.3862943611198906)  # qchisq(0.5, 2)
    assert c["hat"] == pytest.approx(6 / 13)
    assert math.isinf(infl_mod.influence_cutoffs(2, 2)["dffits"])


def test_doctests():
    for mod in (infl_mod, plot_mod):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0


# --------------------------------------------------------------------------
# Property tests (invariants)
# --------------------------------------------------------------------------

_settings = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def _data(draw, k_min=3, k_max=8):
    k = draw(st.integers(k_min, k_max))
    y = draw(st.lists(st.floats(-60, 60, allow_nan=False), min_size=k, max_size=k))
    v = draw(st.lists(st.floats(2.0, 80.0, allow_nan=False), min_size=k, max_size=k))
    method = draw(st.sampled_from(["FE", "DL", "REML", "PM"]))
    ci = draw(st.sampled_from(["z", "knha"]))
    return np.array(y), np.array(v), method, ci


@_settings
@given(_data(), st.data())
def test_leave_one_out_equals_fit_without_study(data, pick):
    y, v, method, ci = data
    i = pick.draw(st.integers(0, len(y) - 1))
    loo = leave_one_out(y, v, method=method, ci_method=ci)
    res = fit(np.delete(y, i), np.delete(v, i), method=method, ci_method=ci)
    row = loo.iloc[i]
    for col, val in (
        ("estimate", res.estimate),
        ("se", res.estimate_se),
        ("ci_lower", res.estimate_ci_lower),
        ("ci_upper", res.estimate_ci_upper),
        ("tau2", res.tau2),
        ("Q", res.Q),
    ):
        assert row[col] == val or (math.isnan(row[col]) and math.isnan(val))
    d = influence_diagnostics(y, v, method=method, ci_method=ci)
    assert d["tau2_del"].iloc[i] == res.tau2
    assert d["QE_del"].iloc[i] == res.Q or math.isnan(res.Q)


@_settings
@given(_data(k_min=2))
# equal effects under Knapp-Hartung: se 0, so z = 0/0 and the p-value is NaN in both fits
# (found with 500 examples; the comparison below once took NaN for a difference)
@example((np.zeros(3), np.full(3, 2.0), "FE", "knha"))
def test_cumulative_last_step_is_full_fit(data):
    y, v, method, ci = data
    cum = cumulative(y, v, method=method, ci_method=ci)
    full = results_frame([fit(y, v, method=method, ci_method=ci)]).iloc[0]
    last = cum.iloc[-1]
    for col in ("estimate", "se", "ci_lower", "ci_upper", "pvalue", "tau2", "Q", "I2", "H2"):
        assert last[col] == full[col] or (math.isnan(last[col]) and math.isnan(full[col])), col
    assert last["k"] == len(y)
    first = cum.iloc[0]
    assert first["estimate"] == pytest.approx(y[0], rel=1e-12, abs=1e-12)
    assert first["se"] == pytest.approx(math.sqrt(v[0]), rel=1e-12)


@_settings
@given(_data())
def test_baujat_x_sums_to_q_or_weighted_rss(data):
    y, v, method, ci = data
    b = baujat(y, v, method=method, ci_method=ci)
    res = fit(y, v, method=method, ci_method=ci)
    if method == "FE":  # contributions to Cochran's Q
        assert b["x"].sum() == pytest.approx(res.Q, rel=1e-9, abs=1e-9)
    else:  # sum of squared Pearson residuals = weighted RSS = (k - p) s2 (Knapp-Hartung)
        w = 1 / (v + res.tau2)
        rss = float(np.sum(w * (y - res.estimate) ** 2))
        assert b["x"].sum() == pytest.approx(rss, rel=1e-9, abs=1e-9)
        if ci == "knha" and res.s2w > 0:
            assert b["x"].sum() == pytest.approx((len(y) - 1) * res.s2w, rel=1e-9)
    assert (b["x"] >= 0).all() and (b["y"].dropna() >= 0).all()


@_settings
@given(_data())
def test_influence_invariants(data):
    y, v, method, ci = data
    d = influence_diagnostics(y, v, method=method, ci_method=ci)
    k = len(y)
    assert d["hat"].sum() == pytest.approx(1.0)  # trace of the hat matrix = p
    assert d["weight"].sum() == pytest.approx(100.0)
    # cov_r = 0 when a Knapp-Hartung refit has s2 = 0 (identical fitted residuals)
    assert (d["cov_r"].dropna() >= 0).all() and (d["cook_d"].dropna() >= 0).all()
    cut = infl_mod.influence_cutoffs(k, 1)
    expected = (
        (d["dffits"].abs() > cut["dffits"])
        | (d["cook_d"] > cut["cook_d"])
        | (d["hat"] > cut["hat"])
        | (d["dfbetas_intrcpt"].abs() > 1)
    )
    assert d["inf"].tolist() == expected.tolist()


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------

PROV10 = ["reported", "from_se", "reported", "from_p_value", "reported"] * 2


@functools.cache
def _figures(k: int, method: str = "REML", ci: str = "knha") -> dict[str, Figure]:
    y, v, s, yr = Y10[:k], V10[:k], S10[:k], YEARS10[:k]
    full = results_frame([fit(y, v, method=method, ci_method=ci)]).iloc[0]
    xl = "Mean difference, hairs/cm\u00b2"
    return {
        "loo": plot_mod.leave_one_out_plot(
            leave_one_out(y, v, s, method=method, ci_method=ci), full, xlabel=xl, title="LOO"
        ),
        "cum": plot_mod.cumulative_plot(
            cumulative(y, v, s, order_by=yr, method=method, ci_method=ci), xlabel=xl
        ),
        "baujat": plot_mod.baujat_plot(
            baujat(y, v, s, method=method, ci_method=ci), provenance=PROV10[:k], title="B"
        ),
        "infl": plot_mod.influence_plot(
            influence_diagnostics(y, v, s, method=method, ci_method=ci), title="I"
        ),
    }


@pytest.mark.parametrize("k", [2, 3, 10])
def test_figures_build(k):
    figs = _figures(k)
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        assert 6.9 <= fig.get_figwidth() <= 7.5, name
    assert len(figs["infl"].axes) == 8
    texts = [t.get_text() for t in figs["loo"].texts]
    assert f"All studies (k = {k})" in texts
    if k == 2:  # single-study refits: footnote
        assert any("k = 1" in t for t in texts)


def test_figures_fe_and_moderator_free_of_tau2_column():
    figs = _figures(3, method="FE", ci="z")
    texts = [t.get_text() for t in figs["loo"].texts]
    assert "\u03c4\u00b2" not in texts


def test_influence_plot_highlights_influential():
    d = influence_diagnostics(Y10, V10, S10, method="REML")
    assert d["inf"].sum() >= 1
    fig = plot_mod.influence_plot(d)
    gids = [ln.get_gid() for ax in fig.axes for ln in ax.lines]
    assert gids.count("influential") == 8


def test_influence_plot_all_nan_panels():
    X = np.column_stack([np.ones(3), [12.0, 16.0, 24.0]])
    fig = plot_mod.influence_plot(influence_diagnostics(Y10[:3], V10[:3], X=X))
    assert any(t.get_text() == "not estimable" for ax in fig.axes for t in ax.texts)
    with pytest.raises(ValueError, match="lacks"):
        plot_mod.influence_plot(pd.DataFrame({"study": ["a"]}))


def test_baujat_labels_do_not_overlap():
    fig = _figures(10)["baujat"]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 10
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (i, j)
        assert ax.get_window_extent(renderer).contains(boxes[i].x0, boxes[i].y0)


@pytest.mark.parametrize("kind", ["loo", "cum", "baujat", "infl"])
def test_save_figure_is_byte_identical(tmp_path, kind):
    y, v, s = Y10[:3], V10[:3], S10[:3]
    build = {
        "loo": lambda: plot_mod.leave_one_out_plot(
            leave_one_out(y, v, s), results_frame([fit(y, v)]).iloc[0], xlabel="MD"
        ),
        "cum": lambda: plot_mod.cumulative_plot(cumulative(y, v, s), xlabel="MD"),
        "baujat": lambda: plot_mod.baujat_plot(baujat(y, v, s), provenance=PROV10[:3]),
        "infl": lambda: plot_mod.influence_plot(influence_diagnostics(y, v, s)),
    }
    fig = build[kind]()
    # SVG (glyphs as paths) is the slowest format: checked for one figure only
    formats = ("png", "svg", "pdf") if kind == "loo" else ("png", "pdf")
    a = save_figure(fig, tmp_path / "a" / kind, formats=formats, dpi=72)
    b = save_figure(fig, tmp_path / "b" / kind, formats=formats, dpi=72)
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_degenerate_knha_zero_rss_no_traceback():
    d = influence_diagnostics([0.0, 0.0, 0.0], [2.0, 2.0, 2.0], method="FE", ci_method="knha")
    assert d["cook_d"].isna().all() and "singular" in d.attrs["notes"]
    plot_mod.influence_plot(d)
