"""Participant-level models (hairtrial.models.ipd, hairtrial.derive.ipd): lme4 parity, invariants.

Reference values: tests/reference/lme4_ipd.csv, written with its inputs
(tests/reference/lme4_ipd_inputs.csv) by tests/reference/lme4_ipd.R (lme4 ``lmer`` REML and
``lm``; R is not needed to run these tests). Required agreement (issue 12): 1e-4 relative on
the contrasts, their SEs, the baseline slope, the variance components and logLik.
"""

from __future__ import annotations

import doctest
import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy import stats

import hairtrial.derive.ipd as dipd
import hairtrial.models.ipd as ipd

REF_DIR = Path(__file__).parent / "reference"
INPUTS = pd.read_csv(
    REF_DIR / "lme4_ipd_inputs.csv", keep_default_na=False, na_values={"value": [""]}
)
REF = pd.read_csv(REF_DIR / "lme4_ipd.csv")

RTOL = 1e-4  # issue 12: agreement with lme4 to 1e-4 relative (observed worst ~6e-7)
# (lme4 itself, minqa vs NLopt BOBYQA at rhoend / xtol 1e-12..1e-14, agrees to ~4e-7 on the
# split-scalp variance components: the REML deviance is flat at its optimum, see the R script)
CONTROL, EXPERIMENTAL = "minoxidil", "minoxidil_microneedling"
# Each example costs two model fits: few examples, and no shrinking (a failing example is
# reported as drawn, with its seed, instead of being shrunk fit by fit).
PROPS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate],
)


@functools.cache
def _fit(study: str) -> ipd.IPDFit:
    return ipd.fit_trial(INPUTS[INPUTS["study"] == study])


def _ours(fit: ipd.IPDFit, quantity: str, term: str) -> float:
    if quantity in {"estimate", "se", "ci_lower", "ci_upper", "pvalue", "statistic"}:
        return float(fit.coefficients.set_index("term").loc[term, quantity])
    if quantity == "variance":
        return fit.variance[term]
    if quantity == "logLik":
        return fit.logLik
    if quantity == "df":
        return float(fit.coefficients["df"].iloc[0])
    if quantity == "n_obs":
        return fit.n_obs
    if quantity == "n_participants":
        return fit.n_participants
    if quantity == "singular":
        return float(any(n.startswith("boundary fit") for n in fit.notes))
    raise KeyError(quantity)


PARITY_ROWS = [r for r in REF.itertuples(index=False) if r.quantity != "logLik_ml"]


@pytest.mark.parametrize(
    "row", PARITY_ROWS, ids=[f"{r.study}-{r.quantity}-{r.term}" for r in PARITY_ROWS]
)
def test_lme4_parity(row):
    fit = _fit(row.study)
    assert fit.method == row.method
    assert fit.converged
    ours = _ours(fit, row.quantity, "" if pd.isna(row.term) else row.term)
    if row.quantity == "variance" and row.value == 0:
        # lme4's singular fit puts the variance exactly at 0; statsmodels' square-root
        # parameterisation reaches 0 only in the limit: "at the boundary" is the comparison
        assert 0 <= ours <= ipd.BOUNDARY_RELATIVE * fit.variance["residual"]
    else:
        assert ours == pytest.approx(row.value, rel=RTOL, abs=0.0), (ours, row.value)


def test_lme4_parity_contrast_table():
    """summary_frame('contrasts') is the C(week)w:experimental rows, one per week, in order."""
    for study in ("ipd_par3", "ipd_par1", "ipd_split", "ipd_boundary"):
        fit = _fit(study)
        con = fit.summary_frame("contrasts")
        ref = REF[(REF["study"] == study) & REF["term"].str.endswith(":experimental", na=False)]
        est = ref[ref["quantity"] == "estimate"]
        weeks = [int(t[len("C(week)") : -len(":experimental")]) for t in est["term"]]
        assert con["week"].tolist() == sorted(weeks) == list(fit.weeks)
        want = est.set_index(pd.Index(weeks))["value"].loc[con["week"]].to_numpy()
        np.testing.assert_allclose(con["estimate"], want, rtol=RTOL)
        assert set(con["distribution"]) == {"t" if fit.method == "OLS" else "z"}
        assert (con["ci_lower"] < con["estimate"]).all() and (
            con["estimate"] < con["ci_upper"]
        ).all()


def test_ml_loglik_of_ols_path():
    """The ANCOVA fit's ML log-likelihood (statsmodels OLS llf) is R's logLik(lm)."""
    d = INPUTS[INPUTS["study"] == "ipd_par1"]
    frame = dipd.changes(d).assign(
        experimental=lambda x: (x["treatment"] == EXPERIMENTAL).astype(float)
    )
    X = ipd._design(frame, [12])
    fit = ipd._fit_ols(frame["change"].to_numpy(), X, 0.95)
    ref = REF[(REF["study"] == "ipd_par1") & (REF["quantity"] == "logLik_ml")]["value"].iloc[0]
    assert fit["loglik_ml"] == pytest.approx(ref, rel=1e-10)


def test_mixed_wald_z_inference():
    """MixedLM CIs and p-values are Wald z on the lme4-conditional SEs."""
    fit = _fit("ipd_par3")
    c = fit.coefficients
    z = c["estimate"] / c["se"]
    np.testing.assert_allclose(c["pvalue"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)
    np.testing.assert_allclose(c["ci_upper"], c["estimate"] + 1.959963984540054 * c["se"])
    assert c["df"].isna().all()
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_fe)), c["se"], rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# the one-follow-up-week ANCOVA path
# ---------------------------------------------------------------------------------------------
def test_single_week_parallel_is_ancova_by_least_squares():
    fit = _fit("ipd_par1")
    assert (fit.method, fit.distribution, fit.optimizer) == ("OLS", "t", "")
    assert fit.attempts.empty
    assert any("no random participant effect is identifiable" in n for n in fit.notes)
    assert math.isnan(fit.variance["participant"])
    assert math.isnan(fit.variance["participant:side"])
    frame = dipd.changes(INPUTS[INPUTS["study"] == "ipd_par1"])
    X = np.column_stack(
        [
            np.ones(len(frame)),
            frame["baseline_c"],
            (frame["treatment"] == EXPERIMENTAL).astype(float),
        ]
    )
    beta, rss, *_ = np.linalg.lstsq(X, frame["change"].to_numpy(), rcond=None)
    c = fit.coefficients.set_index("term")
    np.testing.assert_allclose(
        c.loc[["C(week)12", "baseline", "C(week)12:experimental"], "estimate"], beta, rtol=1e-10
    )
    n, p = X.shape
    assert fit.variance["residual"] == pytest.approx(rss[0] / (n - p), rel=1e-10)
    assert set(c["df"]) == {n - p}
    tab = fit.summary_frame("fit")
    assert tab.loc[0, "method"] == "OLS" and bool(tab.loc[0, "converged"])


def test_single_week_split_scalp_drops_side_effect():
    d = INPUTS[(INPUTS["study"] == "ipd_split") & (INPUTS["week"].isin([0, 12]))]
    fit = ipd.fit_trial(d)
    assert fit.method == "REML"
    assert math.isnan(fit.variance["participant:side"])
    assert any("participant:side effect is confounded" in n for n in fit.notes)
    assert fit.summary_frame("contrasts")["week"].tolist() == [12]


# ---------------------------------------------------------------------------------------------
# boundary and non-convergence notes
# ---------------------------------------------------------------------------------------------
def _trial(
    seed: int,
    n: int = 14,
    weeks: tuple[int, ...] = (12, 24),
    split: bool = False,
    participant_sd: float = 8.0,
    side_sd: float = 5.0,
    anticorrelated: bool = False,
) -> pd.DataFrame:
    """A small synthetic participant-level trial (hairs/cm2)."""
    rng = np.random.default_rng(seed)
    rows = []
    sides = ("left", "right") if split else ("",)
    for j in range(2 * n if not split else n):
        u = participant_sd * rng.standard_normal()
        exp_side = rng.choice(sides) if split else None
        e_prev = 0.0
        for side in sides:
            v = side_sd * rng.standard_normal()
            if split:
                trt = EXPERIMENTAL if side == exp_side else CONTROL
            else:
                trt = EXPERIMENTAL if j >= n else CONTROL
            b = 150 + 30 * rng.standard_normal()
            rows.append(("t", f"p{j:03d}", side, trt, 0, "hair_density", "hairs/cm2", b))
            for k, w in enumerate(weeks):
                e = 10 * rng.standard_normal()
                if anticorrelated and k:
                    e = -e_prev + 0.5 * rng.standard_normal()
                e_prev = e
                y = b + 20 + 12 * (trt == EXPERIMENTAL) * w / 24 + u + v + e - 0.2 * (b - 150)
                rows.append(("t", f"p{j:03d}", side, trt, w, "hair_density", "hairs/cm2", y))
    return pd.DataFrame(rows, columns=dipd.IPD_COLUMNS)


def test_boundary_fit_is_noted():
    fit = ipd.fit_trial(_trial(3, participant_sd=0.0, anticorrelated=True))
    assert fit.converged
    assert fit.variance["participant"] <= ipd.BOUNDARY_RELATIVE * fit.variance["residual"]
    assert any(n.startswith("boundary fit: participant variance") for n in fit.notes)


def test_non_convergence_is_reported():
    fit = ipd.fit_trial(_trial(4), optimizers=("lbfgs",), gradient_tol=1e-300)
    assert not fit.converged
    assert fit.optimizer == "lbfgs"
    assert any(n.startswith("non-convergence") for n in fit.notes)
    assert fit.attempts["optimizer"].tolist() == ["lbfgs"]
    assert not fit.summary_frame("fit").loc[0, "converged"]


def test_next_optimizer_after_rejection():
    """A fit whose gradient check fails is retried with the next optimizer (and noted)."""
    fit = ipd.fit_trial(_trial(5), optimizers=("lbfgs", "bfgs"), gradient_tol=1e-7)
    tried = fit.attempts["optimizer"].tolist()
    assert tried[-1] == fit.optimizer
    if tried == ["lbfgs", "bfgs"]:
        assert any("used after lbfgs did not converge" in n for n in fit.notes)
    assert fit.converged


def test_unknown_optimizer_rejected():
    with pytest.raises(ValueError, match="unknown optimizer"):
        ipd.fit_trial(_trial(1), optimizers=("newton",))


def test_summary_frames_and_tables():
    fits = [_fit("ipd_par1"), _fit("ipd_split")]
    tabs = ipd.summary_tables(fits)
    assert list(tabs["contrasts"].columns) == ipd.CONTRAST_COLUMNS
    assert list(tabs["coefficients"].columns) == ipd.COEFFICIENT_COLUMNS
    assert list(tabs["variance"].columns) == ipd.VARIANCE_COLUMNS
    assert list(tabs["fit"].columns) == ipd.FIT_COLUMNS
    assert len(tabs["variance"]) == 2 * len(ipd.VARIANCE_COMPONENTS)
    assert tabs["fit"]["study"].tolist() == ["ipd_par1", "ipd_split"]
    assert "baseline" in set(tabs["coefficients"]["term"])
    with pytest.raises(ValueError, match="unknown table"):
        fits[0].summary_frame("blups")


def test_other_treatments_left_out_with_note():
    d = _trial(6)
    extra = d[d["treatment"] == CONTROL].assign(
        treatment="other", participant=lambda x: "o" + x["participant"]
    )
    fit = ipd.fit_trial(pd.concat([d, extra]))
    assert any("treatment(s) other not modelled" in n for n in fit.notes)
    ref = ipd.fit_trial(d)
    assert fit.n_obs == ref.n_obs


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def test_input_errors():
    d = _trial(1)
    with pytest.raises(ValueError, match="repeated"):
        dipd.check_ipd(pd.concat([d, d.iloc[:1]]))
    with pytest.raises(ValueError, match="lacks column"):
        dipd.check_ipd(d.drop(columns="side"))
    bad = d.copy()
    bad.loc[0, "side"] = "left"
    with pytest.raises(ValueError, match="all have a side"):
        dipd.check_ipd(bad)
    bad = d.copy()
    bad.loc[bad.index[-1], "treatment"] = CONTROL if bad.iloc[-1]["treatment"] != CONTROL else "x"
    with pytest.raises(ValueError, match="participant in two treatments"):
        dipd.check_ipd(bad)
    bad = d.astype({"week": float})
    bad.loc[0, "week"] = 1.5
    with pytest.raises(ValueError, match="whole numbers"):
        dipd.check_ipd(bad)
    s = _trial(2, split=True)
    same = s.assign(treatment=CONTROL)
    same.loc[same["participant"] == "p000", "treatment"] = CONTROL
    with pytest.raises(ValueError, match="no change from baseline"):
        ipd.fit_trial(same)
    s2 = s.copy()
    s2.loc[s2["participant"] == "p000", "treatment"] = CONTROL
    with pytest.raises(ValueError, match="both sides on one treatment"):
        ipd.fit_trial(s2)
    with pytest.raises(ValueError, match="one study and outcome"):
        ipd.fit_trial(INPUTS)


# ---------------------------------------------------------------------------------------------
# invariants (hypothesis)
# ---------------------------------------------------------------------------------------------
def _contrasts(fit: ipd.IPDFit) -> pd.DataFrame:
    return fit.summary_frame("contrasts").set_index("week")


designs = st.sampled_from([(False, (12, 24)), (True, (12, 24)), (False, (12,))])


@PROPS
@given(seed=st.integers(0, 10_000), design=designs, shift=st.floats(-100, 500))
def test_shift_every_value_leaves_contrasts_unchanged(seed, design, shift):
    split, weeks = design
    d = _trial(seed, split=split, weeks=weeks)
    a = ipd.fit_trial(d)
    b = ipd.fit_trial(d.assign(value=d["value"] + shift))
    ca, cb = _contrasts(a), _contrasts(b)
    np.testing.assert_allclose(
        cb["estimate"], ca["estimate"], rtol=1e-6, atol=1e-6 * float(ca["se"].min())
    )
    np.testing.assert_allclose(cb["se"], ca["se"], rtol=1e-6)
    assert b.logLik == pytest.approx(a.logLik, rel=1e-9)


@PROPS
@given(seed=st.integers(0, 10_000), design=designs)
def test_swapping_treatment_labels_negates_contrasts(seed, design):
    split, weeks = design
    d = _trial(seed, split=split, weeks=weeks)
    swap = {CONTROL: EXPERIMENTAL, EXPERIMENTAL: CONTROL}
    a = ipd.fit_trial(d)
    b = ipd.fit_trial(d.assign(treatment=d["treatment"].map(swap)))
    ca, cb = _contrasts(a), _contrasts(b)
    np.testing.assert_allclose(
        cb["estimate"], -ca["estimate"], rtol=1e-6, atol=1e-6 * float(ca["se"].min())
    )
    np.testing.assert_allclose(cb["se"], ca["se"], rtol=1e-6)
    np.testing.assert_allclose(cb["pvalue"], ca["pvalue"], rtol=1e-5)
    for comp in ("participant", "participant:side", "residual"):
        va, vb = a.variance[comp], b.variance[comp]
        if _at_boundary(a, comp) or _at_boundary(b, comp):
            # "estimated at 0": where the optimizer stops below the boundary threshold says
            # nothing; both fits must say the boundary
            assert _at_boundary(a, comp) and _at_boundary(b, comp), (va, vb)
            continue
        assert (math.isnan(va) and math.isnan(vb)) or vb == pytest.approx(va, rel=1e-6, abs=1e-9)


def _at_boundary(fit: ipd.IPDFit, comp: str) -> bool:
    return any(n.startswith(f"boundary fit: {comp} ") for n in fit.notes)


@PROPS
@given(seed=st.integers(0, 10_000), design=designs, delta=st.floats(-50, 50))
def test_shifting_experimental_follow_up_shifts_contrasts(seed, design, delta):
    """Adding delta to every follow-up value of the experimental arm adds delta to each contrast."""
    split, weeks = design
    d = _trial(seed, split=split, weeks=weeks)
    a = ipd.fit_trial(d)
    bump = (d["treatment"] == EXPERIMENTAL) & (d["week"] > 0)
    b = ipd.fit_trial(d.assign(value=d["value"] + delta * bump))
    ca, cb = _contrasts(a), _contrasts(b)
    np.testing.assert_allclose(
        cb["estimate"], ca["estimate"] + delta, rtol=1e-6, atol=1e-6 * float(ca["se"].min())
    )
    np.testing.assert_allclose(cb["se"], ca["se"], rtol=1e-6)


@PROPS
@given(seed=st.integers(0, 10_000), design=designs, scale=st.floats(0.1, 20))
def test_rescaling_scales_contrasts_and_variances(seed, design, scale):
    split, weeks = design
    d = _trial(seed, split=split, weeks=weeks)
    a = ipd.fit_trial(d)
    b = ipd.fit_trial(d.assign(value=d["value"] * scale))
    ca, cb = _contrasts(a), _contrasts(b)
    np.testing.assert_allclose(
        cb["estimate"], scale * ca["estimate"], rtol=1e-6, atol=1e-6 * scale * float(ca["se"].min())
    )
    np.testing.assert_allclose(cb["se"], scale * ca["se"], rtol=1e-6)
    for comp in ("participant", "participant:side", "residual"):
        va, vb = a.variance[comp], b.variance[comp]
        if not math.isnan(va):
            assert vb == pytest.approx(
                scale**2 * va, rel=1e-5, abs=1e-9 * scale**2 * a.variance["residual"]
            )


# ---------------------------------------------------------------------------------------------
# derivation
# ---------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    split=st.booleans(),
    drop=st.floats(0.0, 0.4),
)
def test_arm_rows_mean_change_is_raw_mean(seed, split, drop):
    d = _trial(seed, n=6, split=split)
    rng = np.random.default_rng(seed + 1)
    keep = (d["week"] == 0) | (rng.random(len(d)) >= drop)
    d = d[keep]
    rows = dipd.arm_rows(d)
    assert set(rows["provenance"]) == {dipd.PROVENANCE_CODE}
    for r in rows.itertuples():
        arm = d[d["treatment"] == r.treatment]
        if r.week == 0:
            x = arm.loc[arm["week"] == 0, "value"].to_numpy()
            assert r.stat == "value"
        else:
            base = arm[arm["week"] == 0].set_index(["participant", "side"])["value"]
            fu = arm[arm["week"] == r.week].set_index(["participant", "side"])["value"]
            x = (fu - base.reindex(fu.index)).dropna().to_numpy()
            assert r.stat == "change"
        assert r.n == x.size
        assert r.mean == pytest.approx(float(np.mean(x)), rel=1e-12, abs=1e-12)
        if x.size > 1:
            assert r.sd == pytest.approx(float(np.std(x, ddof=1)), rel=1e-12)


def test_changes_centre_at_the_trial_mean_baseline():
    ch = dipd.changes(INPUTS)
    for study, g in INPUTS.groupby("study"):
        base = g.loc[g["week"] == 0, "value"]
        c = ch[ch["study"] == study]
        np.testing.assert_allclose(c["baseline"] - c["baseline_c"], base.mean(), rtol=1e-12)
        np.testing.assert_allclose(c["change"], c["value"] - c["baseline"], rtol=0, atol=1e-12)


def test_describe_and_correlations_match_numpy():
    desc = dipd.describe(INPUTS)
    assert list(desc.columns) == dipd.DESCRIBE_COLUMNS
    g = INPUTS[(INPUTS["study"] == "ipd_par3") & (INPUTS["week"] == 4)]
    x = g.loc[g["treatment"] == CONTROL, "value"].to_numpy()
    row = desc[
        (desc["study"] == "ipd_par3")
        & (desc["week"] == 4)
        & (desc["treatment"] == CONTROL)
        & (desc["variable"] == "level")
    ].iloc[0]
    assert row["n"] == x.size
    assert row["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert row["q1"] == pytest.approx(np.quantile(x, 0.25), rel=1e-12)
    assert row["se"] == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=1e-12)

    cor = dipd.correlations(INPUTS)
    assert list(cor.columns) == dipd.CORRELATION_COLUMNS
    ch = dipd.changes(INPUTS)
    c = ch[(ch["study"] == "ipd_par3") & (ch["week"] == 12) & (ch["treatment"] == EXPERIMENTAL)]
    row = cor[
        (cor["study"] == "ipd_par3")
        & (cor["week"] == 12)
        & (cor["treatment"] == EXPERIMENTAL)
        & (cor["quantity"] == "baseline_followup")
    ].iloc[0]
    r = np.corrcoef(c["baseline"], c["value"])[0, 1]
    assert row["r"] == pytest.approx(r, rel=1e-12)
    assert row["n"] == len(c)
    z = math.atanh(r)
    assert row["ci_lower"] == pytest.approx(
        math.tanh(z - 1.959963984540054 / math.sqrt(len(c) - 3))
    )
    side = cor[(cor["study"] == "ipd_split") & (cor["quantity"] == "side_to_side_change")]
    assert side["week"].tolist() == [12, 24]
    s = ch[(ch["study"] == "ipd_split") & (ch["week"] == 24)]
    wide = s.pivot(index="participant", columns="side", values="change").dropna()
    assert side.iloc[1]["r"] == pytest.approx(np.corrcoef(wide["left"], wide["right"])[0, 1])
    assert set(cor.loc[cor["study"] != "ipd_split", "quantity"]) == {"baseline_followup"}


def test_hedges_g_matches_formula():
    g = dipd.hedges_g(INPUTS, CONTROL, EXPERIMENTAL)
    assert list(g.columns) == dipd.EFFECT_COLUMNS
    ch = dipd.changes(INPUTS)
    c = ch[(ch["study"] == "ipd_par1")]
    x = c.loc[c["treatment"] == EXPERIMENTAL, "change"].to_numpy()
    y = c.loc[c["treatment"] == CONTROL, "change"].to_numpy()
    nx, ny = x.size, y.size
    df = nx + ny - 2
    sp = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / df)
    want = (x.mean() - y.mean()) / sp * (1 - 3 / (4 * df - 1))
    row = g[g["study"] == "ipd_par1"].iloc[0]
    assert row["g"] == pytest.approx(want, rel=1e-12)
    se = math.sqrt((nx + ny) / (nx * ny) + want**2 / (2 * (nx + ny)))
    assert row["ci_upper"] == pytest.approx(want + stats.t.ppf(0.975, df) * se, rel=1e-12)
    split = g[g["study"] == "ipd_split"]
    assert split["paired"].all() and split["week"].tolist() == [12, 24]
    assert (split["g"] > 0).all()


# ---------------------------------------------------------------------------------------------
# pingouin model fits
# ---------------------------------------------------------------------------------------------
def test_rm_correlation():
    rc = ipd.rm_correlation(INPUTS).set_index("study")
    assert list(rc.reset_index().columns) == dipd.CORRELATION_COLUMNS
    assert math.isnan(rc.loc["ipd_par1", "r"])
    assert "needs at least 3" in rc.loc["ipd_par1", "notes"]
    # rm_corr = partial correlation of baseline and follow-up given the arm x week cell
    ch = dipd.changes(INPUTS)
    c = ch[ch["study"] == "ipd_par3"]
    cell = c["treatment"] + c["week"].astype(str)
    rx = c["baseline"] - c.groupby(cell)["baseline"].transform("mean")
    ry = c["value"] - c.groupby(cell)["value"].transform("mean")
    r = float(np.sum(rx * ry) / math.sqrt(np.sum(rx**2) * np.sum(ry**2)))
    assert rc.loc["ipd_par3", "r"] == pytest.approx(r, rel=1e-10)
    assert rc.loc["ipd_par3", "ci_lower"] < r < rc.loc["ipd_par3", "ci_upper"]


def test_correlation_table_stacks_every_correlation():
    tab = ipd.correlation_table(INPUTS)
    assert list(tab.columns) == dipd.CORRELATION_COLUMNS
    assert set(tab["method"]) == {"pearson", "rm_corr", "ICC(C,1)"}
    assert len(tab) == len(dipd.correlations(INPUTS)) + len(ipd.rm_correlation(INPUTS)) + len(
        ipd.side_icc(INPUTS)
    )
    ok = tab["r"].dropna()
    assert ((ok >= -1) & (ok <= 1)).all()


def test_side_icc():
    icc = ipd.side_icc(INPUTS)
    assert set(icc["study"]) == {"ipd_split"}
    assert icc["week"].tolist() == [0, 12, 24]
    assert icc["quantity"].tolist() == [
        "side_to_side_baseline",
        "side_to_side_change",
        "side_to_side_change",
    ]
    # ICC(C,1) from the two-way ANOVA mean squares (Shrout & Fleiss ICC3)
    ch = dipd.changes(INPUTS)
    s = ch[(ch["study"] == "ipd_split") & (ch["week"] == 12)]
    wide = s.pivot(index="participant", columns="treatment", values="change").dropna()
    y = wide.to_numpy()
    n, k = y.shape
    grand = y.mean()
    msr = k * np.sum((y.mean(axis=1) - grand) ** 2) / (n - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    mse = np.sum(resid**2) / ((n - 1) * (k - 1))
    want = (msr - mse) / (msr + (k - 1) * mse)
    assert icc.iloc[1]["r"] == pytest.approx(want, rel=1e-10)
    assert icc.iloc[1]["n"] == n


def test_anova_table():
    tab = ipd.anova_table(INPUTS)
    assert list(tab.columns) == ipd.ANOVA_COLUMNS
    tests = tab.groupby("study")["test"].first().to_dict()
    assert tests == {
        "ipd_boundary": "mixed_anova",
        "ipd_par1": "anova",
        "ipd_par3": "mixed_anova",
        "ipd_split": "rm_anova",
    }
    # one week, two arms: F = t^2 of the pooled two-sample t-test of change
    ch = dipd.changes(INPUTS)
    c = ch[ch["study"] == "ipd_par1"]
    t = stats.ttest_ind(
        c.loc[c["treatment"] == EXPERIMENTAL, "change"], c.loc[c["treatment"] == CONTROL, "change"]
    )
    row = tab[tab["study"] == "ipd_par1"].iloc[0]
    assert row["F"] == pytest.approx(t.statistic**2, rel=1e-10)
    assert row["pvalue"] == pytest.approx(t.pvalue, rel=1e-8)
    assert (row["df1"], row["df2"]) == (1, len(c) - 2)
    par3 = tab[tab["study"] == "ipd_par3"]
    assert par3["source"].tolist() == ["treatment", "week", "Interaction"]
    assert "left out" in par3["notes"].iloc[0]  # dropouts are not complete cases


def test_doctests():
    for module in (dipd, ipd):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


def test_units_without_baseline_are_left_out_with_note():
    d = _trial(7)
    no_base = (d["participant"] == "p000") & (d["week"] == 0)
    fit = ipd.fit_trial(d[~no_base])
    assert any(n.startswith("1 unit(s) with follow-up values but no baseline") for n in fit.notes)
    assert fit.n_participants == ipd.fit_trial(d).n_participants - 1


def test_arm_missing_at_a_week_is_not_estimable():
    d = _trial(8)
    gone = (d["treatment"] == EXPERIMENTAL) & (d["week"] == 24)
    with pytest.raises(ValueError, match="not estimable"):
        ipd.fit_trial(d[~gone])


# ---------------------------------------------------------------------------------------------
# one-stage model across trials vs lme4 (tests/reference/lme4_ipd_one_stage.csv)
# ---------------------------------------------------------------------------------------------
ONE_STAGE_REF = pd.read_csv(REF_DIR / "lme4_ipd_one_stage.csv")


def _one_stage_frame(week: int) -> pd.DataFrame:
    ch = dipd.changes(INPUTS, treatments=[CONTROL, EXPERIMENTAL])
    g = ch[ch["week"] == week].copy()
    g["baseline_c"] = g["baseline"] - g.groupby("study")["baseline"].transform("mean")
    g["experimental"] = (g["treatment"] == EXPERIMENTAL).astype(float)
    return g


@pytest.mark.parametrize("week", [12, 24])
def test_one_stage_lme4_parity(week):
    ref = ONE_STAGE_REF[ONE_STAGE_REF["week"] == week]
    want = {
        (q, "" if pd.isna(t) else t): v for q, t, v in ref[["quantity", "term", "value"]].values
    }
    fit = ipd.fit_one_stage(_one_stage_frame(week))
    assert fit.converged
    assert (fit.k, fit.n_obs) == (want[("k", "")], want[("n_obs", "")])
    assert fit.estimate == pytest.approx(want[("estimate", "experimental")], rel=RTOL)
    assert fit.se == pytest.approx(want[("se", "experimental")], rel=RTOL)
    assert fit.logLik == pytest.approx(want[("logLik", "")], rel=RTOL)
    for comp in ("participant", "residual"):
        assert fit.variance[comp] == pytest.approx(want[("variance", comp)], rel=RTOL)
    # lme4: singular fit, tau2 exactly 0; statsmodels reaches 0 only in the limit
    assert want[("variance", "tau2")] == 0 and want[("singular", "")] == 1
    assert 0 <= fit.variance["tau2"] <= ipd.BOUNDARY_RELATIVE * fit.variance["residual"]
    assert any(n.startswith("boundary fit: tau2") for n in fit.notes)


@settings(max_examples=25, deadline=None)
@given(units=st.lists(st.sampled_from(["hairs/cm2", "hairs/inch2", "um", "percent"]),
                      min_size=3, max_size=3))  # fmt: skip
def test_describe_names_each_study_s_unit(units):
    studies = sorted(INPUTS["study"].unique())[:3]
    want = dict(zip(studies, units, strict=True))
    d = INPUTS[INPUTS["study"].isin(studies)]
    desc = dipd.describe(d.assign(unit=d["study"].map(want)))
    assert set(desc["study"]) == set(studies)
    assert desc["unit"].tolist() == desc["study"].map(want).tolist()
