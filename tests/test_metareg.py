"""Parity of hairtrial.models.metareg with metafor 3.8 (rma.uni with mods, predict, permutest).

Reference values: tests/reference/metafor_metareg.csv, written by
tests/reference/metafor_metareg.R from dat.bcg (R is not needed to run these tests).
"""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import hairtrial.models.metareg as metareg_mod
from hairtrial.models.metareg import (
    COEF_COLUMNS,
    design_matrix,
    metareg,
    permutest,
    predict,
    summary_frame,
)
from hairtrial.models.univariate import fit

REF_DIR = Path(__file__).parent / "reference"
INPUTS = pd.read_csv(REF_DIR / "metafor_metareg_inputs.csv")
REF = pd.read_csv(REF_DIR / "metafor_metareg.csv", na_values=["NA"])

RTOL = 1e-6  # relative tolerance for every number
ATOL_ZERO = 1e-10  # absolute tolerance for reference values that are ~0

MODS = {
    "ablat": ["ablat"],
    "ablat_year": ["ablat", "year"],
    "alloc": ["alloc"],
    "ablat_alloc": ["ablat", "alloc"],
}
# newmods used by the R script (moderator columns, without the intercept)
NEWMODS = {
    "ablat": np.array([[0, 10, 25, 33.5, 55, 70]]).T,
    "ablat_year": np.array([[13, 33, 55], [1950, 1965, 1980]]).T,
    "alloc": np.array([[0, 0], [1, 0], [0, 1]]),
    "ablat_alloc": np.array([[20, 0, 0], [40, 1, 0], [50, 0, 1]]),
}
COEF_Q = {
    "beta": "estimate",
    "se": "se",
    "zval": "statistic",
    "pval": "pvalue",
    "ci.lb": "ci_lower",
    "ci.ub": "ci_upper",
}


def _close(ours: float, ref: float) -> bool:
    if math.isnan(ref):
        return math.isnan(ours)
    if abs(ref) <= ATOL_ZERO:
        return abs(ours - ref) <= ATOL_ZERO
    return abs(ours - ref) <= RTOL * abs(ref)


def _check(pairs: list[tuple[str, float, float]]) -> None:
    bad = [
        f"{name}: ours {o!r} metafor {r!r} (rel {abs(o - r) / abs(r) if r else math.inf:.2e})"
        for name, o, r in pairs
        if not _close(float(o), float(r))
    ]
    assert not bad, "\n".join(bad)


def _ref(section: str, model: str, method: str, test: str) -> pd.DataFrame:
    sel = (
        (REF["section"] == section)
        & (REF["model"] == model)
        & (REF["method"] == method)
        & (REF["test"] == test)
    )
    out = REF[sel]
    assert len(out) > 0
    return out


def _scalar(res: metareg_mod.MetaRegResult, q: str) -> float:
    return {
        "tau2": res.tau2,
        "se.tau2": res.tau2_se,
        "tau2.ci.lb": res.tau2_ci_lower,
        "tau2.ci.ub": res.tau2_ci_upper,
        "I2": res.I2,
        "H2": res.H2,
        "R2": res.R2,
        "QE": res.QE,
        "QEp": res.QE_pvalue,
        "QM": res.QM,
        "QMdf1": res.QM_df,
        "QMdf2": res.QM_df2,
        "QMp": res.QM_pvalue,
        "k": res.k,
        "p": res.p,
    }[q]


FIT_CASES = sorted(
    REF.loc[REF["section"] == "fit", ["model", "method", "test"]]
    .drop_duplicates()
    .itertuples(index=False, name=None)
)


def test_reference_coverage() -> None:
    fits = REF[REF["section"] == "fit"]
    assert set(fits.loc[fits["model"] == "ablat", "method"]) == {
        "FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"
    }  # fmt: skip
    assert set(fits["test"]) == {"z", "knha", "adhoc"}
    assert set(fits["model"]) == set(MODS)
    assert len(FIT_CASES) == 22


@pytest.mark.parametrize(("model", "method", "test"), FIT_CASES)
def test_fit_parity(model: str, method: str, test: str) -> None:
    res = metareg(
        INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=MODS[model], method=method,
        ci_method=test,
    )  # fmt: skip
    assert res.converged, res.notes
    pairs = []
    for q, idx, value in _ref("fit", model, method, test)[["quantity", "index", "value"]].values:
        ours = res.coefficients[COEF_Q[q]].iloc[int(idx) - 1] if q in COEF_Q else _scalar(res, q)
        pairs.append((f"{q}[{idx}]", ours, value))
    _check(pairs)
    # metafor's df column: NaN for z, k - p for knha/adhoc
    dfs = res.coefficients["df"].to_numpy()
    assert np.all(np.isnan(dfs)) if test == "z" else np.all(dfs == res.k - res.p)


def test_term_names_follow_r() -> None:
    res = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat", "alloc"])
    assert res.terms == ("intrcpt", "ablat", "allocrandom", "allocsystematic")
    assert list(res.coefficients.columns) == list(COEF_COLUMNS)
    assert res.QM_df == 3 and res.btt == (1, 2, 3)


PRED_CASES = sorted(
    REF.loc[REF["section"] == "predict", ["model", "method", "test"]]
    .drop_duplicates()
    .itertuples(index=False, name=None)
)


@pytest.mark.parametrize(("model", "method", "test"), PRED_CASES)
def test_predict_parity(model: str, method: str, test: str) -> None:
    res = metareg(
        INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=MODS[model], method=method,
        ci_method=test,
    )  # fmt: skip
    pr = predict(res, NEWMODS[model])
    names = {"pred": "pred", "se": "se", "ci.lb": "ci_lower", "ci.ub": "ci_upper"}
    names |= {"pi.lb": "pi_lower", "pi.ub": "pi_upper"}
    pairs = [
        (f"{q}[{i}]", pr[names[q]].iloc[int(i) - 1], v)
        for q, i, v in _ref("predict", model, method, test)[["quantity", "index", "value"]].values
    ]
    _check(pairs)


def test_predict_from_moderator_table_equals_array() -> None:
    res = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat", "alloc"])
    new = pd.DataFrame(
        {"ablat": [20.0, 40.0, 50.0], "alloc": ["alternate", "random", "systematic"]}
    )
    a = predict(res, new)
    b = predict(res, NEWMODS["ablat_alloc"])
    assert list(a.columns[:2]) == ["ablat", "alloc"]
    for c in ("pred", "se", "ci_lower", "ci_upper", "pi_lower", "pi_upper"):
        np.testing.assert_allclose(a[c], b[c], rtol=1e-14)
    with pytest.raises(ValueError, match="'alloc' has unknown level"):
        predict(res, pd.DataFrame({"ablat": [1.0], "alloc": ["cluster"]}))


def test_predict_fe_pi_equals_ci_and_level() -> None:
    res = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat"], method="FE")
    pr = predict(res, [10.0, 50.0])
    np.testing.assert_array_equal(pr["pi_lower"], pr["ci_lower"])
    pr90 = predict(res, [10.0, 50.0], level=0.90)
    assert np.all(pr90["ci_upper"] - pr90["ci_lower"] < pr["ci_upper"] - pr["ci_lower"])


# ---------------------------------------------------------------------------------------------
# permutation tests
# ---------------------------------------------------------------------------------------------
D7 = INPUTS.iloc[:7]


@pytest.mark.parametrize("test", ["z", "knha"])
def test_permutest_exact_parity(test: str) -> None:
    ref = _ref("permutest", "ablat_first7", "REML", test)
    X = design_matrix(D7, ["ablat"])
    pt = permutest(D7["yi"], D7["vi"], X, "REML", test, iterations=5000)
    assert pt.exact and pt.exact_iterations == 2520 and pt.iterations == 2520
    assert pt.terms == ("intrcpt", "ablat")
    got = {"pval.1": pt.pvalue[0], "pval.2": pt.pvalue[1], "QMp.0": pt.QM_pvalue, "QM.0": pt.QM}
    got |= {"exact.iter.0": pt.exact_iterations, "exact.0": 1.0}
    _check(
        [(f"{q}.{i}", got[f"{q}.{i}"], v) for q, i, v in ref[["quantity", "index", "value"]].values]
    )
    # exact p-values are multiples of 1 / 2520, identical to metafor's
    assert pt.QM_pvalue * 2520 == pytest.approx(round(pt.QM_pvalue * 2520), abs=1e-9)


def test_permutest_exact_intercept_only_parity() -> None:
    ref = _ref("permutest", "intercept_first7", "REML", "z")
    pt = permutest(D7["yi"], D7["vi"], None, "REML", "z")
    assert pt.exact and pt.exact_iterations == 128
    got = {"pval.1": pt.pvalue[0], "QMp.0": pt.QM_pvalue, "QM.0": pt.QM}
    got |= {"exact.iter.0": 128, "exact.0": 1.0}
    _check(
        [(f"{q}.{i}", got[f"{q}.{i}"], v) for q, i, v in ref[["quantity", "index", "value"]].values]
    )


def test_permutest_random_within_monte_carlo_error() -> None:
    """numpy's RNG differs from R's: compare with metafor's p-values within 4 MC SEs."""
    ref = _ref("permutest", "ablat", "REML", "z").set_index(["quantity", "index"])["value"]
    n = int(ref[("iter", 0)])
    X = design_matrix(INPUTS, ["ablat"])
    pt = permutest(INPUTS["yi"], INPUTS["vi"], X, "REML", "z", iterations=n, seed=20240611)
    assert (
        not pt.exact and pt.iterations == n and pt.exact_iterations == int(ref[("exact.iter", 0)])
    )
    assert pytest.approx(ref[("QM", 0)], rel=RTOL) == pt.QM
    for ours, theirs in [
        (pt.pvalue[0], ref[("pval", 1)]),
        (pt.pvalue[1], ref[("pval", 2)]),
        (pt.QM_pvalue, ref[("QMp", 0)]),
    ]:
        p = max(theirs, 1 / n)
        se_diff = math.sqrt(2 * p * (1 - p) / n)  # two independent Monte Carlo estimates
        assert abs(ours - theirs) <= 4 * se_diff, (ours, theirs)
    # first permutation is the observed data (as metafor)
    assert pt.QM_perm[0] == pytest.approx(pt.QM, rel=1e-12)
    # reproducible with the seed
    again = permutest(INPUTS["yi"], INPUTS["vi"], X, "REML", "z", iterations=50, seed=5)
    again2 = permutest(INPUTS["yi"], INPUTS["vi"], X, "REML", "z", iterations=50, seed=5)
    np.testing.assert_array_equal(again.QM_perm, again2.QM_perm)
    assert any("default_rng" in n for n in again.notes)


def test_permutest_auto_rule_and_options() -> None:
    X = design_matrix(D7.iloc[:5], ["ablat"])  # 5! = 120 unique permutations
    y, v = D7["yi"].iloc[:5], D7["vi"].iloc[:5]
    assert permutest(y, v, X, "DL", iterations=120).exact  # 120 <= 120: exact
    assert not permutest(y, v, X, "DL", iterations=119, seed=1).exact
    assert permutest(y, v, X, "DL", exact=True, iterations=10).iterations == 120
    assert not permutest(y, v, X, "DL", exact=False, iterations=200, seed=1).exact
    with pytest.raises(ValueError, match="iterations"):
        permutest(y, v, X, iterations=1)
    with pytest.raises(ValueError, match="exact test needs"):
        permutest(INPUTS["yi"], INPUTS["vi"], design_matrix(INPUTS, ["ablat"]), exact=True)


@st.composite
def _meta_regression_data(draw):
    """k studies, an intercept and one or two moderators (continuous or binary, full rank)."""
    k = draw(st.integers(4, 9))
    p = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cols = [np.ones(k)]
    for _ in range(p):
        cols.append(rng.normal(0, 1, k) if rng.random() < 0.7 else rng.integers(0, 2, k) * 1.0)
    X = np.column_stack(cols)
    assume(np.linalg.matrix_rank(X) == X.shape[1] and k >= X.shape[1] + 2)
    yi = rng.normal(0, draw(st.sampled_from([0.1, 1.0, 5.0])), k)
    vi = rng.uniform(0.005, draw(st.sampled_from([0.05, 0.5, 5.0])), k)
    return yi, vi, X, rng


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_meta_regression_data(), st.sampled_from(["ML", "REML"]))
@example(  # Fisher scoring oscillates for most permutations (estimate_tau2 falls back)
    (
        np.array([-1.26542147, -0.62327446, 0.04132598, -2.32503077,
                  -0.21879166, -1.24591095, -0.73226735, -0.54425898]),
        np.array([2.7095988, 1.50206089, 2.11632267, 0.14645676,
                  0.62579497, 3.35476895, 3.23771161, 3.07884863]),
        np.column_stack([np.ones(8), [-0.13210486, 0.64042265, 0.10490012, -0.53566937,
                                      0.36159505, 1.30400005, 0.94708096, -0.70373524]]),
        np.random.default_rng(1),
    ),
    "REML",
)  # fmt: skip
def test_stacked_tau2_is_the_one_by_one_tau2(data, method) -> None:
    """estimate_tau2_stack decides every permuted design whose Fisher scoring converges one
    by one, agreeing with estimate_tau2, and leaves to it the others (scoring that does not
    converge in maxiter iterations, for which estimate_tau2 has its fallback; here also a
    scoring cut at one iteration)."""
    from hairtrial.models.tau2 import estimate_tau2, estimate_tau2_stack

    yi, vi, X, rng = data
    designs = np.array([X] + [X[rng.permutation(len(yi))] for _ in range(30)])
    tau2, ok = estimate_tau2_stack(yi, vi, designs, method)
    for t, good, XX in zip(tau2, ok, designs, strict=True):
        one = estimate_tau2(yi, vi, XX, method)
        scored = one.converged and one.iterations <= 1000  # no fallback needed
        assert good == scored, one.notes
        if good:
            assert t == pytest.approx(one.tau2, rel=1e-8, abs=1e-10)
        else:
            assert math.isnan(t)
    cut, cut_ok = estimate_tau2_stack(yi, vi, designs, method, maxiter=0)
    assert not cut_ok.any() and np.isnan(cut).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    _meta_regression_data(),
    st.sampled_from(["REML", "ML", "FE", "DL"]),
    st.sampled_from(["z", "knha", "adhoc"]),
    st.sampled_from([40, 150]),
)
def test_stacked_permutation_test_is_the_one_by_one_test(data, method, ci, iterations) -> None:
    """The permuted designs refitted many at once give the p-values, permutations, failures
    and notes of the one-by-one refits, and statistics equal to rounding (exact tests when
    k!/ties <= iterations, random ones with a seed otherwise)."""
    yi, vi, X, _ = data
    a = permutest(yi, vi, X, method, ci, iterations=iterations, seed=11, stacked=False)
    b = permutest(yi, vi, X, method, ci, iterations=iterations, seed=11)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)
    assert (a.QM_pvalue, a.iterations, a.exact, a.failed, a.notes) == (
        b.QM_pvalue, b.iterations, b.exact, b.failed, b.notes,
    )  # fmt: skip
    np.testing.assert_allclose(b.statistic_perm, a.statistic_perm, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b.QM_perm, a.QM_perm, rtol=1e-8, atol=1e-10)


def test_stacked_tau2_applies_the_ll0check() -> None:
    """A design whose ML scoring stops where the log-likelihood at tau2 = 0 is larger:
    set to 0 (metafor's ll0check), stacked as one by one (2 of the 24 orderings here)."""
    import itertools

    from hairtrial.models.tau2 import estimate_tau2, estimate_tau2_stack

    y, v = [1.5718, -4.2677, 6.1128, -6.7979], [0.0308, 0.7789, 6.7892, 2.1809]
    X = np.column_stack([np.ones(4), [-0.4554, 0.7057, 0.5154, 0.6798]])
    designs = np.array([X[list(p)] for p in itertools.permutations(range(4))])
    one = [estimate_tau2(y, v, XX, "ML") for XX in designs]
    hit = [any("local maximum" in n for n in e.notes) for e in one]
    assert sum(hit) == 2
    tau2, ok = estimate_tau2_stack(y, v, designs, "ML")
    assert ok.all()
    np.testing.assert_allclose(tau2, [e.tau2 for e in one], rtol=1e-8, atol=1e-12)
    assert all(t == 0.0 for t, h in zip(tau2, hit, strict=True) if h)


def test_stacked_permutations_of_many_trials_come_in_bounded_chunks() -> None:
    """With many trials the permuted designs are fitted in chunks whose k x k working arrays
    stay within 64 MB; the p-values are those of the one-by-one refits."""
    assert metareg_mod._stack_size(5) == 2048
    assert metareg_mod._stack_size(300) * 300 * 300 * 8 <= 64 * 2**20
    assert metareg_mod._stack_size(5000) == 1
    rng = np.random.default_rng(4)
    k = 120
    X = np.column_stack([np.ones(k), rng.normal(0, 1, k)])
    yi, vi = rng.normal(0, 1, k) + 0.3 * X[:, 1], rng.uniform(0.01, 0.2, k)
    a = permutest(yi, vi, X, "REML", "z", iterations=40, seed=2, stacked=False)
    b = permutest(yi, vi, X, "REML", "z", iterations=40, seed=2)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)
    assert a.QM_pvalue == b.QM_pvalue and a.iterations == b.iterations == 40
    np.testing.assert_allclose(b.QM_perm, a.QM_perm, rtol=1e-8)


def test_stacked_tau2_rejects_what_it_cannot_fit() -> None:
    from hairtrial.models.tau2 import estimate_tau2_stack

    X = np.column_stack([np.ones(4), [1.0, 2.0, 3.0, 5.0]])
    y, v = [0.1, 0.3, 0.2, 0.5], [0.1, 0.1, 0.2, 0.1]
    with pytest.raises(ValueError, match="only"):
        estimate_tau2_stack(y, v, X[None], "DL")
    with pytest.raises(ValueError, match="shape"):
        estimate_tau2_stack(y, v, X, "REML")
    with pytest.raises(ValueError, match="need k >= p"):
        estimate_tau2_stack(y[:2], v[:2], X[None, :2], "REML")
    tau2, ok = estimate_tau2_stack(y, v, np.zeros((0, 4, 2)), "REML")
    assert tau2.shape == ok.shape == (0,)


# ---------------------------------------------------------------------------------------------
# design matrix
# ---------------------------------------------------------------------------------------------
def test_design_matrix_treatment_coding() -> None:
    df = pd.DataFrame({"w": [12, 24, 36, 24], "dev": ["roller", "pen", "stamp", "pen"]})
    X = design_matrix(df, ["dev", "w"])
    assert list(X.columns) == ["intrcpt", "devroller", "devstamp", "w"]
    np.testing.assert_array_equal(X["devroller"], [1, 0, 0, 0])
    np.testing.assert_array_equal(X["devstamp"], [0, 0, 1, 0])
    # pandas Categorical: category order (R factor levels), unused categories dropped
    df["dev"] = pd.Categorical(df["dev"], categories=["stamp", "unused", "roller", "pen"])
    assert list(design_matrix(df, ["dev"]).columns) == ["intrcpt", "devroller", "devpen"]


def test_design_matrix_errors_name_the_moderator() -> None:
    df = pd.DataFrame({"w": [12.0, np.nan, 36.0], "c": [1.0, 1.0, 1.0], "g": ["a", "a", "a"]})
    with pytest.raises(ValueError, match="'w' has missing values"):
        design_matrix(df, ["w"])
    with pytest.raises(ValueError, match="'c' is constant"):
        design_matrix(df, ["c"])
    with pytest.raises(ValueError, match="'g' is constant"):
        design_matrix(df, ["g"])
    with pytest.raises(ValueError, match="'zz' is not a column"):
        design_matrix(df, ["zz"])
    df2 = pd.DataFrame({"g": ["a", None, "b"]})
    with pytest.raises(ValueError, match="'g' has missing values"):
        design_matrix(df2, ["g"])


def test_metareg_x_forms_agree() -> None:
    X = design_matrix(INPUTS, ["ablat"])
    a = metareg(INPUTS["yi"], INPUTS["vi"], X)
    b = metareg(INPUTS["yi"], INPUTS["vi"], X.to_numpy())
    c = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat"])
    assert a.terms == c.terms and b.terms == ("intrcpt", "x1")
    np.testing.assert_array_equal(a.beta, c.beta)
    with pytest.raises(ValueError, match="either X or"):
        metareg(INPUTS["yi"], INPUTS["vi"], X, data=INPUTS, moderators=["ablat"])


# ---------------------------------------------------------------------------------------------
# R2, notes and boundary cases
# ---------------------------------------------------------------------------------------------
def test_r2_rules() -> None:
    # intercept-only: not defined
    r = metareg(INPUTS["yi"], INPUTS["vi"], np.ones((13, 1)))
    assert math.isnan(r.R2) and any("R2 not defined" in n for n in r.notes)
    assert pytest.approx(fit(INPUTS["yi"], INPUTS["vi"]).statistic[0] ** 2) == r.QM
    # tau2_RE == 0 -> R2 = 0 (metafor: identical(tau2.RE, 0))
    y = np.array([0.10, 0.12, 0.11, 0.09, 0.10, 0.13])
    v = np.full(6, 0.05)
    r0 = metareg(y, v, data=pd.DataFrame({"x": [1, 2, 3, 4, 5, 6]}), moderators=["x"])
    assert r0.tau2_RE == 0.0 and r0.R2 == 0.0
    # no intercept: R2 NaN, QM tests all coefficients
    X = design_matrix(INPUTS, ["alloc"]).to_numpy()
    X = np.column_stack([1 - X[:, 1] - X[:, 2], X[:, 1], X[:, 2]])
    rn = metareg(INPUTS["yi"], INPUTS["vi"], X)
    assert math.isnan(rn.R2) and rn.btt == (0, 1, 2) and not rn.intercept


def test_too_few_studies() -> None:
    y, v = INPUTS["yi"].iloc[:3], INPUTS["vi"].iloc[:3]
    r = metareg(y, v, data=INPUTS.iloc[:3], moderators=["ablat"])  # k = p + 1
    assert any("too few studies" in n for n in r.notes)
    with pytest.raises(ValueError, match="too few studies"):
        metareg(y.iloc[:2], v.iloc[:2], data=INPUTS.iloc[:2], moderators=["ablat"])
    r = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat"])
    assert not any("Higgins & Thompson" in n for n in r.notes)  # 13 studies, 1 coefficient
    r = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat", "year", "alloc"])
    assert any("Higgins & Thompson" in n for n in r.notes)  # 13 studies, 4 coefficients


def test_summary_frame() -> None:
    r = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat"])
    s = summary_frame([r, r])
    assert len(s) == 2 and s["R2"].iloc[0] == r.R2 and s["QM_pvalue"].iloc[0] == r.QM_pvalue


def test_docstring_examples() -> None:
    assert doctest.testmod(metareg_mod).failed == 0


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def reg_data(draw: st.DrawFn, min_k: int = 4, max_k: int = 9):
    k = draw(st.integers(min_k, max_k))
    yi = draw(st.lists(st.floats(-3, 3), min_size=k, max_size=k))
    vi = draw(st.lists(st.floats(0.01, 2), min_size=k, max_size=k))
    x = draw(st.lists(st.integers(0, 60), min_size=k, max_size=k, unique=True))
    return np.array(yi), np.array(vi), np.array(x, dtype=float)


@PROPS
@given(
    data=reg_data(),
    c=st.sampled_from([-50.0, 3.5, 1000.0]),
    method=st.sampled_from(["FE", "DL", "REML", "PM"]),
    ci=st.sampled_from(["z", "knha", "adhoc"]),
)
def test_shifting_a_moderator_changes_only_the_intercept(data, c, method, ci) -> None:
    yi, vi, x = data
    a = metareg(yi, vi, np.column_stack([np.ones_like(x), x]), method=method, ci_method=ci)
    b = metareg(yi, vi, np.column_stack([np.ones_like(x), x + c]), method=method, ci_method=ci)
    # Fisher scoring can oscillate without converging (metafor then stops with an error)
    assume(a.converged and b.converged)
    tol = {"rtol": 1e-6, "atol": 1e-9}
    np.testing.assert_allclose(b.beta[1], a.beta[1], **tol)
    np.testing.assert_allclose(b.coefficients["se"].iloc[1], a.coefficients["se"].iloc[1], **tol)
    np.testing.assert_allclose(b.beta[0], a.beta[0] - c * a.beta[1], rtol=1e-6, atol=1e-6)
    for attr in ("tau2", "QE", "QM", "QM_pvalue", "I2"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-6, atol=1e-9)
    # R2 = (tau2_RE - tau2) / tau2_RE is a ratio of round-off when Fisher scoring stops a
    # hair above 0 (~1e-14, as in metafor, which has the same instability)
    if a.tau2_RE > 1e-8:
        np.testing.assert_allclose(b.R2, a.R2, rtol=1e-6, atol=1e-6)


@PROPS
@given(data=reg_data(max_k=8), seed=st.integers(0, 2**32 - 1))
def test_permutation_pvalues_in_unit_interval(data, seed) -> None:
    yi, vi, x = data
    X = np.column_stack([np.ones_like(x), x])
    pt = permutest(yi, vi, X, "DL", exact=False, iterations=40, seed=seed)
    assert np.all((pt.pvalue > 0) & (pt.pvalue <= 1))
    assert 0 < pt.QM_pvalue <= 1
    # the observed statistic is in the distribution, so p >= 1 / iterations
    assert pt.QM_pvalue >= 1 / 40 - 1e-15


@PROPS
@given(data=reg_data(max_k=5), perm_seed=st.integers(0, 2**32 - 1))
def test_exact_permutest_invariant_to_study_order(data, perm_seed) -> None:
    yi, vi, x = data
    X = np.column_stack([np.ones_like(x), x])
    a = permutest(yi, vi, X, "DL", exact=True)
    order = np.random.default_rng(perm_seed).permutation(yi.size)
    b = permutest(yi[order], vi[order], X[order], "DL", exact=True)
    assert a.exact_iterations == b.exact_iterations == math.factorial(yi.size)
    np.testing.assert_allclose(b.pvalue, a.pvalue, rtol=0, atol=1e-12)
    assert b.QM_pvalue == pytest.approx(a.QM_pvalue, abs=1e-12)


def test_bubble_plot_smoke() -> None:
    from hairtrial.plots.bubble import bubble_plot

    res = metareg(INPUTS["yi"], INPUTS["vi"], data=INPUTS, moderators=["ablat"])
    grid = predict(res, pd.DataFrame({"ablat": np.linspace(10, 58, 25)}))
    studies = pd.DataFrame(
        {
            "label": [f"Study {i}" for i in range(13)],
            "yi": INPUTS["yi"],
            "weight_pct": res.weights,
            "provenance": ["reported"] * 12 + ["from_se"],
        }
    )
    fig = bubble_plot(studies, INPUTS["ablat"], grid, xlabel="Latitude", ylabel="log RR")
    fig.canvas.draw()
    assert fig.get_figwidth() == 7.0
    assert 0 < len(fig.hairtrial_labelled) <= 13
    assert any("derived" in t.get_text() for t in fig.texts)
    with pytest.raises(ValueError, match="moderator_values"):
        bubble_plot(studies, [1.0, 2.0], grid, xlabel="x", ylabel="y")
