"""Parity of hairtrial.diagnostics.smallstudy with metafor 3.8 regtest / ranktest / trimfill;
properties
of the methods, and the funnel plot.

Reference values: tests/reference/metafor_smallstudy.csv (inputs in
metafor_smallstudy_inputs.csv), written by tests/reference/metafor_smallstudy.R (R is not
needed to run these tests).
"""

from __future__ import annotations

import doctest
import itertools
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hairtrial.diagnostics.smallstudy as ss  # noqa: E402
import hairtrial.plots.funnel as funnel_mod  # noqa: E402
from hairtrial.diagnostics.smallstudy import (  # noqa: E402
    SMALL_STUDY_COLUMNS,
    ManyFewStudiesNote,
    ranktest,
    regtest,
    small_study_table,
    trimfill,
)
from hairtrial.models.univariate import fit  # noqa: E402
from hairtrial.plots import save_figure, use_style  # noqa: E402
from hairtrial.plots.funnel import funnel_plot  # noqa: E402

REF_DIR = Path(__file__).parent / "reference"
INPUTS = pd.read_csv(REF_DIR / "metafor_smallstudy_inputs.csv")
REF = pd.read_csv(REF_DIR / "metafor_smallstudy.csv", keep_default_na=False, dtype=str)

RTOL = 1e-6  # relative tolerance for every number
ATOL_ZERO = 1e-10  # absolute tolerance only for reference values that are ~0

_KEYS = ["dataset", "func", "model", "predictor", "method", "test", "estimator", "side_in"]
GROUPS = [
    (key, dict(zip(g["quantity"], g["value"], strict=True)))
    for key, g in REF.groupby(_KEYS, sort=False)
]


def _data(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = INPUTS[INPUTS["dataset"] == dataset].sort_values("study")
    return d["yi"].to_numpy(), d["vi"].to_numpy(), d["ni"].to_numpy()


def _close(ours: float, ref: str) -> bool:
    r = math.nan if ref == "NA" else float(ref)
    if math.isnan(r) or math.isnan(ours):
        return math.isnan(r) and math.isnan(ours)
    atol = ATOL_ZERO if abs(r) < ATOL_ZERO else 0.0
    return abs(ours - r) <= RTOL * abs(r) + atol


def _ours(key: tuple[str, ...]) -> dict[str, object]:
    dataset, func, model, predictor, method, test, estimator, side_in = key
    yi, vi, ni = _data(dataset)
    if func == "regtest":
        r = regtest(
            yi,
            vi,
            model=model,
            predictor=predictor,
            method=method if model == "rma" else "REML",
            ci_method=test if model == "rma" else "z",
            ni=ni,
        )
        assert r.computable
        return {
            "zval": r.statistic,
            "pval": r.pvalue,
            "ddf": r.df,
            "est": r.estimate,
            "ci.lb": r.ci_lower,
            "ci.ub": r.ci_upper,
            "b0": r.intercept,
            "b1": r.slope,
            "se0": r.intercept_se,
            "se1": r.slope_se,
            "tau2": r.tau2,
        }
    if func == "ranktest":
        rk = ranktest(yi, vi)
        return {"tau": rk.tau, "pval": rk.pvalue}
    tf = trimfill(
        yi, vi, estimator=estimator, side=None if side_in == "auto" else side_in, method=method
    )
    assert tf.computable and tf.fit is not None
    out: dict[str, object] = {
        "side": tf.side,
        "k0": tf.k0,
        "se.k0": tf.k0_se,
        "p.k0": tf.p_k0,
        "estimate": tf.estimate,
        "se": tf.se,
        "zval": tf.fit.estimate_statistic,
        "pval": tf.pvalue,
        "ci.lb": tf.ci_lower,
        "ci.ub": tf.ci_upper,
        "tau2": tf.tau2,
    }
    for j in range(tf.k0):
        out[f"fill_yi.{j + 1}"] = tf.filled_yi[j]
        out[f"fill_vi.{j + 1}"] = tf.filled_vi[j]
    return out


# --------------------------------------------------------------------------------------------
# metafor parity
# --------------------------------------------------------------------------------------------


def test_reference_covers_everything_asked_for():
    datasets = set(REF["dataset"])
    assert {"bcg_logrr", "normand1999_md", "gen_asym_k15", "hair_k3", "gen_k3"} <= datasets
    reg = REF[REF["func"] == "regtest"]
    assert set(reg["model"]) == {"rma", "lm"}
    assert set(reg["predictor"]) == {"sei", "vi", "ni", "sqrtninv"}
    tf = REF[REF["func"] == "trimfill"]
    assert set(tf["method"]) == {"FE", "REML"}
    assert set(tf["estimator"]) == {"L0", "R0"}
    assert set(tf["side_in"]) == {"auto", "left", "right"}
    # studies are actually imputed in some of the cases, on both sides
    k0 = tf[tf["quantity"] == "k0"]["value"].astype(int)
    assert (k0 > 0).sum() >= 20
    sides = tf[(tf["quantity"] == "side") & (tf["side_in"] == "auto")]["value"]
    assert set(sides) == {"left", "right"}


@pytest.mark.parametrize(
    ("key", "ref"), GROUPS, ids=["|".join(x for x in key if x) for key, _ in GROUPS]
)
def test_metafor_parity(key: tuple[str, ...], ref: dict[str, str]):
    ours = _ours(key)
    if key[1] == "trimfill":
        # exact agreement on the side and the number of imputed studies, and nothing extra
        assert ours["side"] == ref["side"]
        assert ours["k0"] == int(ref["k0"])
        assert set(ours) == set(ref)
    bad = []
    for quantity, value in ref.items():
        if quantity in ("side", "k0"):
            continue
        if not _close(float(ours[quantity]), value):  # type: ignore[arg-type]
            bad.append(f"{quantity}: ours {ours[quantity]!r}, metafor {value}")
    assert not bad, "; ".join(bad)


def test_single_study_left_after_trimming_matches_metafor_rounding():
    # gen_k3, side right: 2 of 3 studies are trimmed; the remaining study's centred effect
    # is 0 in exact arithmetic and metafor's rounding makes it positive (Sr = 6, not 5).
    yi, vi, _ = _data("gen_k3")
    tf = trimfill(yi, vi, method="FE", side="right")
    assert tf.k0 == 2
    assert tf.k0_se == pytest.approx(4 * math.sqrt(4.48) / 5, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Independent checks of the formulas
# --------------------------------------------------------------------------------------------


def test_lm_regtest_is_eggers_original_regression():
    # Egger et al. (1997): regress yi/sei on 1/sei; the intercept tests asymmetry. It is the
    # slope of the weighted regression of yi on sei (same t statistic and df).
    yi, vi, _ = _data("bcg_logrr")
    sei = np.sqrt(vi)
    X = np.column_stack([np.ones_like(sei), 1 / sei])
    z = yi / sei
    beta, rss, *_ = np.linalg.lstsq(X, z, rcond=None)
    s2 = float(rss[0]) / (len(z) - 2)
    cov = s2 * np.linalg.inv(X.T @ X)
    t_egger = beta[0] / math.sqrt(cov[0, 0])
    res = regtest(yi, vi, model="lm")
    assert res.statistic == pytest.approx(t_egger, rel=1e-10)
    assert res.slope == pytest.approx(beta[0], rel=1e-10)
    assert res.estimate == pytest.approx(beta[1], rel=1e-10)  # limit estimate = Egger slope
    assert res.df == len(yi) - 2


def test_exact_kendall_p_value_by_enumeration():
    # no ties, k = 6: the exact two-sided p-value by enumerating all 720 orderings
    yi = np.array([0.31, -0.12, 0.55, 0.08, 0.97, 0.44])
    vi = np.array([0.04, 0.01, 0.09, 0.02, 0.16, 0.06])
    res = ranktest(yi, vi)
    assert res.exact
    w = 1 / vi
    theta = np.sum(w * yi) / np.sum(w)
    ystar = (yi - theta) / np.sqrt(vi - 1 / np.sum(w))
    n = len(yi)

    def s_stat(x, y):
        return sum(
            np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n)
        )

    s_obs = s_stat(ystar, vi)
    perm_s = np.array([s_stat(ystar, vi[list(p)]) for p in itertools.permutations(range(n))])
    upper = np.mean(perm_s >= s_obs)
    lower = np.mean(perm_s <= s_obs)
    p_exact = min(1.0, 2 * min(upper, lower))
    assert res.tau == pytest.approx(s_obs / (n * (n - 1) / 2), rel=1e-12)
    assert res.pvalue == pytest.approx(p_exact, rel=1e-12)


def test_ranktest_ties_use_normal_approximation():
    yi, vi, _ = _data("ties_k10")
    res = ranktest(yi, vi)
    assert not res.exact
    assert any("ties" in n for n in res.notes)


# --------------------------------------------------------------------------------------------
# Few studies
# --------------------------------------------------------------------------------------------

HAIR_K3 = _data("hair_k3")


def test_k3_results_say_not_informative():
    yi, vi, ni = HAIR_K3
    for res in (
        regtest(yi, vi),
        regtest(yi, vi, model="lm"),
        ranktest(yi, vi),
        trimfill(yi, vi),
    ):
        assert res.computable
        assert not res.informative
        assert any("at least 10 studies" in n and "Sterne et al. 2011" in n for n in res.notes)
    tab = small_study_table(yi, vi, ni=ni)
    assert list(tab.columns) == list(SMALL_STUDY_COLUMNS)
    assert list(tab["test"]) == ["regtest_rma_sei", "regtest_lm_sei", "ranktest", "trimfill_L0"]
    assert not tab["informative"].any()
    assert tab["notes"].str.contains("Cochrane Handbook 13.3.5.4").all()
    assert tab[["statistic", "pvalue"]].iloc[:3].notna().all().all()  # numbers still given


@pytest.mark.parametrize("k", [0, 1, 2])
def test_fewer_than_three_studies_not_computable_without_error(k: int):
    yi, vi = [43.2, 69.2][:k], [143.9, 1093.9][:k]
    tab = small_study_table(yi, vi)
    assert (tab["k"] == k).all()
    assert not tab["informative"].any()
    assert tab[["statistic", "pvalue", "estimate", "ci_lower", "ci_upper"]].isna().all().all()
    assert (tab["k0"] == -1).all()
    assert tab["notes"].str.contains("not computable").all()
    assert not trimfill(yi, vi).computable
    assert not ranktest(yi, vi).computable
    assert not regtest(yi, vi, model="lm").computable


def test_k10_informative_and_note_object():
    yi, vi, _ = _data("ties_k10")
    assert regtest(yi, vi).informative
    assert small_study_table(yi, vi)["informative"].all()
    note = ManyFewStudiesNote("regtest", 9)
    assert not note.informative and note.computable and "k = 9 < 10" in str(note)
    assert ManyFewStudiesNote("trimfill", 10).text == ""


def test_constant_variances_give_notes_not_errors():
    yi, vi = [1.0, 2.0, 3.5, 4.0], [0.5] * 4
    r = regtest(yi, vi)
    assert not r.computable and math.isnan(r.statistic)
    tf = trimfill(yi, vi)
    assert not tf.computable and any("pass side" in n for n in tf.notes)
    assert trimfill(yi, vi, side="left").computable
    assert math.isnan(ranktest(yi, vi).tau)


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="ni"):
        regtest([1, 2, 3], [1, 2, 3], predictor="ni")
    with pytest.raises(ValueError, match="model"):
        regtest([1, 2, 3], [1, 2, 3], model="glm")
    with pytest.raises(ValueError, match="side"):
        trimfill([1, 2, 3], [1, 2, 3], side="up")
    with pytest.raises(ValueError, match="non-finite"):
        ranktest([1, np.nan, 3], [1, 2, 3])


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def _meta_data(draw, min_k: int = 3, max_k: int = 12):
    k = draw(st.integers(min_k, max_k))
    yi = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.01, 2.0), min_size=k, max_size=k, unique=True))
    return np.array(yi), np.array(vi)


@_SETTINGS
@given(_meta_data(), st.sampled_from(["FE", "REML"]), st.sampled_from(["rma", "lm"]))
@example((np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 0.5])), "FE", "lm")
def test_mirror_flips_regtest_sign(data, method, model):
    yi, vi = data
    assume(np.ptp(np.sqrt(vi)) > 1e-3)
    a = regtest(yi, vi, model=model, method=method)
    b = regtest(-yi, vi, model=model, method=method)
    if math.isnan(a.statistic):
        # undefined in both: the weighted regression of lm fits every yi exactly (yi all 0,
        # found by hypothesis), so its residual SE is 0 and t = 0/0, as in R's lm
        assert model == "lm"
        assert math.isnan(b.statistic) and math.isnan(b.pvalue) and math.isnan(a.pvalue)
    else:
        assert b.statistic == pytest.approx(-a.statistic, rel=1e-9, abs=1e-12)
        assert b.pvalue == pytest.approx(a.pvalue, rel=1e-9, abs=1e-15)
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-9, abs=1e-12)


@_SETTINGS
@given(_meta_data(), st.sampled_from(["FE", "REML"]), st.sampled_from(["L0", "R0"]))
def test_mirror_flips_trimfill_side(data, method, estimator):
    yi, vi = data
    X = np.column_stack([np.ones_like(vi), np.sqrt(vi)])
    assume(np.ptp(np.sqrt(vi)) > 1e-3)
    assume(abs(fit(yi, vi, method=method, X=X).beta[1]) > 1e-8)
    a = trimfill(yi, vi, method=method, estimator=estimator)
    b = trimfill(-yi, vi, method=method, estimator=estimator)
    assert {a.side, b.side} == {"left", "right"}
    assert a.k0 == b.k0
    np.testing.assert_allclose(b.filled_yi, -a.filled_yi, rtol=1e-12, atol=1e-12)
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-9, abs=1e-12)


@_SETTINGS
@given(_meta_data(), st.sampled_from(["FE", "REML"]), st.sampled_from(["L0", "R0", "Q0"]))
def test_trimfill_k0_bounds(data, method, estimator):
    yi, vi = data
    for side in ("left", "right"):
        tf = trimfill(yi, vi, method=method, estimator=estimator, side=side)
        if not tf.computable:
            continue
        assert 0 <= tf.k0 < tf.k
        assert tf.filled_yi.size == tf.filled_vi.size == tf.filled_from.size == tf.k0
        if tf.k0:
            assert tf.fit is not None and tf.fit.k == tf.k + tf.k0
            # imputed studies are mirror images of observed ones, with their variances
            np.testing.assert_array_equal(tf.filled_vi, vi[tf.filled_from])


@_SETTINGS
@given(_meta_data(min_k=3, max_k=15), st.randoms(use_true_random=False))
def test_ranktest_invariant_to_order(data, rnd):
    yi, vi = data
    assume(np.ptp(yi) > 1e-3)  # all-equal yi: tau undefined (NaN), as in metafor
    perm = list(range(len(yi)))
    rnd.shuffle(perm)
    a, b = ranktest(yi, vi), ranktest(yi[perm], vi[perm])
    assert a.exact == b.exact
    assert b.tau == pytest.approx(a.tau, rel=1e-12, abs=1e-15)
    assert b.pvalue == pytest.approx(a.pvalue, rel=1e-9)


@st.composite
def _symmetric(draw):
    """A funnel symmetric about its centre in floating point too: centre and deviations on a
    grid of 1/64, so that centre + d and centre - d are exact. (Drawn as any floats, two
    deviations one unit in the last place apart once gave y = 3.0, 3.0 on one side and -1.0,
    -0.9999999999999998 on the other: not symmetric, and R0 rightly found one study missing.)"""
    m = draw(st.integers(2, 6))
    centre = draw(st.integers(-192, 192)) / 64
    devs = [
        d / 64 for d in draw(st.lists(st.integers(3, 256), min_size=m, max_size=m, unique=True))
    ]
    vs = draw(st.lists(st.floats(0.02, 2), min_size=m, max_size=m, unique=True))
    with_centre = draw(st.booleans())
    yi = [centre + d for d in devs] + [centre - d for d in devs]
    vi = vs + vs
    if with_centre:
        yi.append(centre)
        vi.append(draw(st.floats(0.02, 2)))
    return np.array(yi), np.array(vi)


@_SETTINGS
@given(_symmetric(), st.sampled_from(["FE", "REML"]), st.sampled_from(["left", "right", None]))
def test_trimfill_on_symmetric_funnel(data, method, side):
    yi, vi = data
    assume(side is not None or np.ptp(vi) > 1e-3)
    r0 = trimfill(yi, vi, method=method, estimator="R0", side=side)
    assert r0.k0 == 0
    assert r0.estimate == pytest.approx(fit(yi, vi, method=method).estimate, rel=1e-9)
    # L0 has no such guarantee: with tied |centred effects| its first step gives
    # round(2m / (4m - 1)) = 1 and the iterations can then run away (see below).


def test_symmetric_example_as_metafor():
    # Rscript: trimfill(rma(c(3,4,5,6,7), c(.5,.25,.125,.25,.5), method="FE")) -> k0 = 0;
    # and for c(3,4,6,7), c(.5,.25,.25,.5): k0 = 1 (L0), 0 (R0). R0 is 0 for any symmetric
    # funnel; L0 is not.
    yi, vi = np.array([3, 4, 5, 6, 7.0]), np.array([0.5, 0.25, 0.125, 0.25, 0.5])
    assert trimfill(yi, vi, method="FE").k0 == 0
    assert trimfill(yi, vi, method="FE", estimator="R0").k0 == 0
    yi, vi = np.array([3, 4, 6, 7.0]), np.array([0.5, 0.25, 0.25, 0.5])
    assert trimfill(yi, vi, method="FE").k0 == 1
    assert trimfill(yi, vi, method="FE", estimator="R0").k0 == 0
    # perfectly symmetric, yet L0 imputes 2 (metafor 3.8: k0 = 2, se.k0 = 1.4663071042818256,
    # estimate = -1.8): trimming the largest effect moves beta left, which adds positive ranks
    tf = trimfill([2, 1, -2, -1], [0.5, 2, 0.5, 2], method="FE", side="left")
    assert tf.k0 == 2
    assert tf.k0_se == pytest.approx(1.4663071042818256, rel=1e-12)
    assert tf.estimate == pytest.approx(-1.7999999999999989, rel=1e-12)
    assert trimfill([2, 1, -2, -1], [0.5, 2, 0.5, 2], method="FE", estimator="R0").k0 == 0


# --------------------------------------------------------------------------------------------
# Funnel plot
# --------------------------------------------------------------------------------------------


def _k3_frame() -> pd.DataFrame:
    yi, vi, _ = HAIR_K3
    return pd.DataFrame(
        {
            "study": ["adistri2024", "dhurat2013", "kumar2018"],
            "label": ["Adistri 2024", "Dhurat 2013", "Kumar 2018"],
            "yi": yi,
            "vi": vi,
            "provenance": ["n_split_equally;from_p_bound", "from_p_value", "reported"],
        }
    )


def _k15_frame() -> pd.DataFrame:
    yi, vi, _ = _data("gen_asym_k15")
    return pd.DataFrame(
        {
            "label": [f"Trial {i}" for i in range(1, 16)],
            "yi": yi,
            "vi": vi,
            "provenance": ["reported"] * 12 + ["from_se"] * 3,
        }
    )


def _build(df: pd.DataFrame, **kw) -> Figure:
    yi, vi = df["yi"].to_numpy(), df["vi"].to_numpy()
    pooled = fit(yi, vi, method="REML")
    return funnel_plot(
        df,
        estimate={"estimate": pooled.estimate, "method": "REML"},
        trimfill=vars(trimfill(yi, vi, method="REML")),
        egger=vars(regtest(yi, vi, model="lm")),
        xlabel="Mean difference, hairs/cm²",
        **kw,
    )


def _legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def _assert_inside_and_apart(fig: Figure) -> None:
    with use_style():  # text is measured as save_figure renders it (house style, no hinting)
        _check_inside_and_apart(fig)


def _check_inside_and_apart(fig: Figure) -> None:
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    ax_box = fig.axes[0].get_tightbbox(renderer)
    leg_box = fig.legends[0].get_window_extent(renderer)
    for box in (ax_box, leg_box, *[t.get_window_extent(renderer) for t in fig.texts]):
        assert box.x0 >= fig_box.x0 - 0.5 and box.x1 <= fig_box.x1 + 0.5
        assert box.y0 >= fig_box.y0 - 0.5 and box.y1 <= fig_box.y1 + 0.5
    assert leg_box.y1 < ax_box.y0  # legend below the axes and their labels
    for t in fig.texts:
        assert t.get_window_extent(renderer).y1 < leg_box.y0  # note below the legend


@pytest.mark.parametrize("width", [3.5, 7.0])
def test_funnel_k3(width: float):
    fig = _build(_k3_frame(), width=width, title="Hair density, week 12")
    assert fig.get_figwidth() == pytest.approx(width)
    labels = _legend_labels(fig)
    assert "Study with derived numbers" in labels and "Study" in labels
    assert any(lab.startswith("Imputed (trim-and-fill L0, k0 = 2)") for lab in labels)
    assert "Egger regression line" in labels
    assert {"p > 0.10", "0.05 < p \u2264 0.10", "0.01 < p \u2264 0.05", "p \u2264 0.01"} <= set(
        labels
    )
    assert any("k = 3: too few studies" in t.get_text() for t in fig.texts)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] > ax.get_ylim()[1] == 0  # SE axis inverted, 0 at the top
    assert {t.get_text() for t in ax.texts} == {"Adistri 2024", "Dhurat 2013", "Kumar 2018"}
    _assert_inside_and_apart(fig)


def test_funnel_k15():
    fig = _build(_k15_frame())
    labels = _legend_labels(fig)
    assert any(lab.startswith("Imputed (trim-and-fill L0, k0 = 3)") for lab in labels)
    assert not fig.texts  # k >= 10: no few-studies note
    assert not fig.axes[0].texts  # no point labels for many studies
    _assert_inside_and_apart(fig)


def test_funnel_minimal_inputs():
    fig = funnel_plot(pd.DataFrame({"yi": [0.2, 0.5, -0.1], "vi": [0.01, 0.04, 0.09]}))
    labels = _legend_labels(fig)
    assert "Study" in labels and not any("Pooled" in lab for lab in labels)
    with pytest.raises(ValueError, match="yi"):
        funnel_plot(pd.DataFrame({"vi": [1.0]}))


def test_funnel_save_is_byte_identical(tmp_path: Path):
    for df in (_k3_frame(), _k15_frame()):
        a = save_figure(_build(df), tmp_path / "a", formats=("png", "svg"), dpi=150)
        b = save_figure(_build(df), tmp_path / "b", formats=("png", "svg"), dpi=150)
        for fa, fb in zip(a, b, strict=True):
            assert fa.read_bytes() == fb.read_bytes()


def test_doctests():
    for mod in (ss, funnel_mod):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0


def test_funnel_takes_plain_numbers():
    """Trim-and-fill and Egger as plain mappings (e.g. a table row), not result objects."""
    df = _k3_frame()
    tf = {"estimate": 20.0, "k0": 2.0, "estimator": "L0", "filled_yi": [1.0, 2.0],
          "filled_vi": [100.0, 400.0]}  # fmt: skip
    eg = pd.Series({"intercept": 10.0, "slope": 1.5, "predictor": "sei", "computable": True})
    fig = funnel_plot(df, estimate=30.0, trimfill=tf, egger=eg)
    labels = _legend_labels(fig)
    assert "Imputed (trim-and-fill L0, k0 = 2)" in labels
    assert "Egger regression line" in labels
    # not computable: nothing of it drawn
    fig = funnel_plot(df, trimfill={**tf, "computable": False}, egger={**eg, "computable": False})
    labels = _legend_labels(fig)
    assert not any(lab.startswith("Imputed") or lab.startswith("Egger") for lab in labels)


def test_funnel_draws_into_given_axes():
    from matplotlib.figure import Figure as _Figure

    host = _Figure(figsize=(8.0, 3.0))
    left, right = host.subplots(1, 2)
    fig = _build(_k3_frame(), ax=right, title="Right panel")
    assert fig is host
    assert fig.get_size_inches().tolist() == [8.0, 3.0]  # the caller's layout is kept
    assert not left.collections and right.collections
    assert right.get_legend() is not None and not fig.legends
    assert right.get_title(loc="left") == "Right panel"
