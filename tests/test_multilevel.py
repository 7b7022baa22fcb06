"""Tests of hairtrial.models.multilevel against metafor 3.8 rma.mv (tests/reference/*.csv).

Reference values come from tests/reference/metafor_multilevel.R (metafor fits refined with a
bobyqa restart, see the script header). Comparisons are at rtol 1e-5 throughout. Two
quantities are compared on a transformed scale, for a reason that is not tolerance:
* p-values are compared as log(p): a p-value of 1e-30 changes by z * dz relative for a change
  dz in the statistic, so tiny p-values amplify the 1e-7-level differences of the statistic.
* a variance component metafor estimates as ~1e-8 on the boundary is compared with
  hairtrial's exact 0 by absolute difference relative to the other component.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hairtrial.models import univariate
from hairtrial.models.multilevel import (
    RandomTerm,
    block_covariance,
    blups,
    contrast,
    design_matrix,
    fit_mv,
    lrt,
    parse_random,
    profile_ci,
)

REF = Path(__file__).resolve().parent / "reference"
RTOL = 1e-5


def _load(ds: str) -> tuple[pd.DataFrame, sp.csr_matrix | str]:
    d = pd.read_csv(REF / f"metafor_multilevel_inputs_{ds}.csv")
    vpath = REF / f"metafor_multilevel_V_{ds}.csv"
    if not vpath.exists():
        return d, "vi"
    v = pd.read_csv(vpath)
    V = sp.coo_matrix((v["value"], (v["row"] - 1, v["col"] - 1)), shape=(len(d), len(d)))
    return d, V.tocsr()


def _r(s: str, **kw) -> RandomTerm:
    return parse_random(s, **kw)


KONST = [_r("~ 1 | district/school")]
CASES: dict[str, tuple[str, dict]] = {}
for _m in ("REML", "ML"):
    CASES[f"konst_{_m}_z"] = ("konstantopoulos", dict(random=KONST, method=_m))
    for _dfs in ("residual", "contain"):
        CASES[f"konst_{_m}_t_{_dfs}"] = (
            "konstantopoulos",
            dict(random=KONST, method=_m, test="t", dfs=_dfs),
        )
    CASES[f"berkey_UN_{_m}"] = (
        "berkey",
        dict(random=[_r("~ outcome | trial", struct="UN")], mods="~ outcome - 1", method=_m),
    )
CASES["konst_REML_year_t_contain"] = (
    "konstantopoulos",
    dict(random=KONST, mods="~ year_c", test="t", dfs="contain"),
)
CASES["konst_REML_fixed"] = (
    "konstantopoulos",
    dict(random=[_r("~ 1 | district/school", sigma2=[None, 0.02])]),
)
CASES["konst_REML_district_only"] = ("konstantopoulos", dict(random=[_r("~ 1 | district")]))
CASES["ishak_AR"] = (
    "ishak",
    dict(random=[_r("~ time | study", struct="AR")], mods="~ C(time) - 1"),
)
CASES["ishak_HAR"] = (
    "ishak",
    dict(random=[_r("~ time | study", struct="HAR")], mods="~ C(time) - 1"),
)
CASES["ishak_AR_ML"] = (
    "ishak",
    dict(random=[_r("~ time | study", struct="AR")], mods="~ C(time) - 1", method="ML"),
)
CASES["arms_CAR"] = (
    "arms",
    dict(
        random=[_r("~ 1 | study"), _r("~ week | arm", struct="CAR")],
        mods="~ treatment * C(week)",
    ),
)
CASES["arms_UN"] = (
    "arms",
    dict(random=[_r("~ treatment | study", struct="UN")], mods="~ treatment * C(week)"),
)
CASES["arms_nested"] = ("arms", dict(random=[_r("~ 1 | study/arm")], mods="~ treatment * week"))
CASES["boundary_nested"] = (
    "boundary",
    dict(random=[_r("~ 1 | study/arm")], mods="~ treatment + week"),
)

_FITS: dict[str, object] = {}


def fit_case(name: str):
    if name not in _FITS:
        ds, kw = CASES[name]
        d, V = _load(ds)
        if ds == "konstantopoulos":
            d["year_c"] = d["year"] - 1990
        _FITS[name] = fit_mv(d, yi="yi", V=V, **kw)
    return _FITS[name]


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return pd.read_csv(REF / "metafor_multilevel.csv")


def _q(ref: pd.DataFrame, case: str, quantity: str) -> np.ndarray:
    r = ref[(ref["case"] == case) & (ref["quantity"] == quantity)]
    return r["value"].to_numpy(dtype=float)


def _rname(name: str) -> str:
    """metafor coefficient name -> hairtrial name."""
    return name.replace("factor(", "C(").replace("I(year - 1990)", "year_c")


@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_metafor(case: str, ref: pd.DataFrame) -> None:
    res = fit_case(case)
    assert res.converged
    rr = ref[(ref["case"] == case) & (ref["quantity"] == "beta")]
    assert res.terms == [_rname(n) for n in rr["name"]]
    co = res.coefficients
    np.testing.assert_allclose(co["estimate"], _q(ref, case, "beta"), rtol=RTOL)
    np.testing.assert_allclose(co["se"], _q(ref, case, "se"), rtol=RTOL)
    np.testing.assert_allclose(co["statistic"], _q(ref, case, "stat"), rtol=RTOL)
    np.testing.assert_allclose(np.log(co["pvalue"]), np.log(_q(ref, case, "pval")), rtol=RTOL)
    np.testing.assert_allclose(co["ci_lower"], _q(ref, case, "ci.lb"), rtol=RTOL)
    np.testing.assert_allclose(co["ci_upper"], _q(ref, case, "ci.ub"), rtol=RTOL)
    if res.test == "t":
        np.testing.assert_array_equal(co["df"], _q(ref, case, "ddf"))
    vb = _q(ref, case, "vb").reshape(res.p, res.p, order="F")
    np.testing.assert_allclose(res.vcov, vb, rtol=RTOL, atol=RTOL * np.abs(vb).max())
    mine = res.variance_components["estimate"].to_numpy()
    theirs = np.concatenate([_q(ref, case, q) for q in ("sigma2", "tau2", "rho", "gamma2", "phi")])
    if case == "boundary_nested":
        # metafor: sigma2.2 = 1.1e-8 on the boundary; hairtrial: exactly 0
        assert mine[1] == 0.0 and theirs[1] < 1e-6 * theirs[0]
        np.testing.assert_allclose(mine[0], theirs[0], rtol=RTOL)
        assert any("boundary" in n for n in res.notes)
    else:
        np.testing.assert_allclose(mine, theirs, rtol=RTOL)
    for q, attr in (
        ("ll", "logLik"),
        ("dev", "deviance"),
        ("AIC", "AIC"),
        ("BIC", "BIC"),
        ("AICc", "AICc"),
    ):
        np.testing.assert_allclose(getattr(res, attr), _q(ref, case, q)[0], rtol=RTOL)
    # hairtrial's optimum is at least as good as metafor's
    ll_ref = _q(ref, case, "ll")[0]
    assert res.logLik >= ll_ref - 1e-9 * (1 + abs(ll_ref))
    assert res.parms == _q(ref, case, "parms")[0]
    assert res.k == _q(ref, case, "k")[0] and res.p == _q(ref, case, "p")[0]


def test_fixed_component_reported(ref: pd.DataFrame) -> None:
    vc = fit_case("konst_REML_fixed").variance_components
    assert vc["fixed"].tolist() == [False, True]
    assert vc["estimate"].iloc[1] == 0.02
    assert vc["component"].tolist() == ["sigma2.1 (district)", "sigma2.2 (district/school)"]


def test_profile_ci(ref: pd.DataFrame) -> None:
    prof = pd.read_csv(REF / "metafor_multilevel_profile.csv")
    for case in prof["case"].unique():
        res = fit_case(case)
        pc = profile_ci(res)
        rp = prof[prof["case"] == case]
        assert len(pc) == len(rp)
        np.testing.assert_allclose(pc["estimate"], rp["estimate"], rtol=RTOL)
        np.testing.assert_allclose(pc["ci_lower"], rp["ci.lb"], rtol=RTOL)
        np.testing.assert_allclose(pc["ci_upper"], rp["ci.ub"], rtol=RTOL)


def test_blups(ref: pd.DataFrame) -> None:
    rb = pd.read_csv(REF / "metafor_multilevel_blups.csv")
    for case in rb["case"].unique():
        b = blups(fit_case(case))
        r = rb[rb["case"] == case]
        assert len(b) == len(r)
        np.testing.assert_array_equal(b["level"].to_numpy(), r["level"].astype(str).to_numpy())
        scale = np.abs(r["pred"]).max()
        np.testing.assert_allclose(b["estimate"], r["pred"], rtol=RTOL, atol=RTOL * scale)
        np.testing.assert_allclose(b["se"], r["se"], rtol=RTOL)
        np.testing.assert_allclose(b["pi_lower"], r["pi.lb"], rtol=RTOL, atol=RTOL * scale)
        np.testing.assert_allclose(b["pi_upper"], r["pi.ub"], rtol=RTOL, atol=RTOL * scale)


def test_lrt(ref: pd.DataFrame) -> None:
    r = pd.read_csv(REF / "metafor_multilevel_lrt.csv").set_index("quantity")["value"]
    out = lrt(fit_case("konst_REML_z"), fit_case("konst_REML_district_only"))
    np.testing.assert_allclose(out.loc["reduced", "LRT"], r["LRT"], rtol=RTOL)
    np.testing.assert_allclose(out.loc["reduced", "pvalue"], r["pval"], rtol=RTOL)
    assert out.loc["full", "parms"] == r["parms.f"] and out.loc["reduced", "parms"] == r["parms.r"]
    # argument order does not matter; REML with different X is refused
    out2 = lrt(fit_case("konst_REML_district_only"), fit_case("konst_REML_z"))
    assert out2.loc["reduced", "LRT"] == out.loc["reduced", "LRT"]
    with pytest.raises(ValueError, match="identical fixed effects"):
        lrt(fit_case("konst_REML_year_t_contain"), fit_case("konst_REML_district_only"))
    with pytest.raises(ValueError, match="same method"):
        lrt(fit_case("konst_ML_z"), fit_case("konst_REML_district_only"))


def test_contrast_matches_coefficients_and_sums() -> None:
    res = fit_case("arms_CAR")
    names = res.terms
    # a single coefficient reproduces the coefficient table row
    c = contrast(res, {"high": {"treatmenthigh": 1.0}})
    row = res.coefficients.set_index("term").loc["treatmenthigh"]
    np.testing.assert_allclose(c["estimate"].iloc[0], row["estimate"], rtol=1e-12)
    np.testing.assert_allclose(c["se"].iloc[0], row["se"], rtol=1e-12)
    # high - control at week 8, and change of that difference from week 4 to week 8
    L = pd.DataFrame(
        {"treatmenthigh": [1.0, 0.0], "treatmenthigh:C(week)8": [1.0, 1.0]},
        index=["wk8", "wk8-wk4"],
    )
    c = contrast(res, L)
    i1, i2 = names.index("treatmenthigh"), names.index("treatmenthigh:C(week)8")
    b, V = res.beta, res.vcov
    np.testing.assert_allclose(c["estimate"].iloc[0], b[i1] + b[i2], rtol=1e-12)
    se = math.sqrt(V[i1, i1] + V[i2, i2] + 2 * V[i1, i2])
    np.testing.assert_allclose(c["se"].iloc[0], se, rtol=1e-12)
    assert list(c["contrast"]) == ["wk8", "wk8-wk4"]
    with pytest.raises(KeyError):
        contrast(res, {"x": {"nope": 1.0}})


def test_cr2_inputs_exposed() -> None:
    res = fit_case("arms_nested")
    assert len(res.blocks_M) == len(res.cluster_levels) == len(res.cluster_rows)
    assert res.cluster_name == "study"
    # GLS from the blocks reproduces beta and vcov
    XtWX = sum(
        res.X[r].T @ W @ res.X[r] for r, W in zip(res.cluster_rows, res.weights, strict=True)
    )
    XtWy = sum(
        res.X[r].T @ W @ res.y[r] for r, W in zip(res.cluster_rows, res.weights, strict=True)
    )
    np.testing.assert_allclose(np.linalg.solve(XtWX, XtWy), res.beta, rtol=1e-10)
    np.testing.assert_allclose(np.linalg.inv(XtWX), res.vcov, rtol=1e-9)
    M0 = res.blocks_M[0]
    np.testing.assert_allclose(M0 @ res.weights[0], np.eye(M0.shape[0]), atol=1e-10)
    assert set(res.cluster[res.cluster_rows[0]]) == {res.cluster_levels[0]}


# ---------------------------------------------------------------------------------------------
# formula parser
# ---------------------------------------------------------------------------------------------
def test_design_matrix_basic() -> None:
    d = pd.DataFrame(
        {
            "trt": ["c", "e", "c", "e", "h", "h"],
            "week": [4, 4, 8, 8, 4, 8],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    X, names = design_matrix("~ trt * C(week)", d)
    assert names == ["intrcpt", "trte", "trth", "C(week)8", "trte:C(week)8", "trth:C(week)8"]
    np.testing.assert_array_equal(X[:, 4], [0, 0, 0, 1, 0, 0])
    X, names = design_matrix("~ trt - 1", d)
    assert names == ["trtc", "trte", "trth"]
    np.testing.assert_array_equal(X.sum(axis=1), 1)
    X, names = design_matrix("~ x + trt:x", d)
    assert names == ["intrcpt", "x", "x:trte", "x:trth"] or names == [
        "intrcpt",
        "x",
        "trte:x",
        "trth:x",
    ]
    X, names = design_matrix("~ x:trt", d)  # no main effect of trt -> full dummies
    assert len(names) == 4
    X, names = design_matrix("~ 0 + x", d)
    assert names == ["x"]
    X, names = design_matrix("~ 1", d)
    assert names == ["intrcpt"]
    with pytest.raises(KeyError):
        design_matrix("~ nope", d)
    with pytest.raises(ValueError):
        design_matrix("~ x - trt", d)


def test_design_matrix_numeric_interaction_and_order() -> None:
    d = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 0.5, 1.0], "g": [True, False, True]})
    X, names = design_matrix("~ a*b + g", d)
    assert names == ["intrcpt", "a", "b", "gTRUE", "a:b"]
    np.testing.assert_array_equal(X[:, 4], d["a"] * d["b"])


def test_parse_random() -> None:
    t = parse_random("~ 1 | study/arm")
    assert t.inner is None and t.outer == "study/arm"
    t = parse_random("week | arm", struct="CAR", rho=0.5)
    assert (t.inner, t.outer, t.struct, t.rho) == ("week", "arm", "CAR", 0.5)
    with pytest.raises(ValueError):
        parse_random("~ week")
    with pytest.raises(ValueError):
        RandomTerm("week", "arm", struct="XYZ")


# ---------------------------------------------------------------------------------------------
# block covariance
# ---------------------------------------------------------------------------------------------
def test_block_covariance_reproduces_reference_V() -> None:
    d, V = _load("arms")
    mine = block_covariance(d, vi="vi", arm="arm", time="week", rho=0.6)
    np.testing.assert_allclose(mine.toarray(), V.toarray(), rtol=1e-12, atol=0)
    # sd / n form with equal n is the same matrix
    mine2 = block_covariance(d, sd="sd", n="n", arm="arm", time="week", rho=0.6)
    np.testing.assert_allclose(mine2.toarray(), V.toarray(), rtol=1e-12)


def test_block_covariance_shared_control() -> None:
    # two contrasts against the same control arm at the same week share var(control)
    d = pd.DataFrame(
        {
            "exp": ["A", "B", "A"],
            "ctl": ["C", "C", "C"],
            "week": [4, 4, 8],
            "ve": [1.0, 2.0, 1.5],
            "vc": [0.5, 0.5, 0.8],
        }
    )
    V = block_covariance(
        d, contrast=("exp", "ctl"), var=("ve", "vc"), time="week", rho=0.5
    ).toarray()
    assert V[0, 1] == pytest.approx(0.5)  # var(control mean at week 4)
    assert V[0, 0] == pytest.approx(1.5)
    # A@4 vs A@8: rho sqrt(1 * 1.5) from A plus rho sqrt(0.5 * 0.8) from the control
    assert V[0, 2] == pytest.approx(0.5 * math.sqrt(1.5) + 0.5 * math.sqrt(0.4))
    assert V[1, 2] == pytest.approx(0.5 * math.sqrt(0.4))
    np.testing.assert_allclose(V, V.T)


# ---------------------------------------------------------------------------------------------
# invariants and reporting
# ---------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_row_order_invariance(seed: int) -> None:
    d, V = _load("ishak")
    Vd = V.toarray()
    perm = np.random.default_rng(seed).permutation(len(d))
    kw = dict(random=[_r("~ time | study", struct="AR")], mods="~ C(time) - 1")
    a = fit_mv(d, yi="yi", V=Vd, **kw)
    b = fit_mv(d.iloc[perm], yi="yi", V=Vd[np.ix_(perm, perm)], **kw)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-7)
    np.testing.assert_allclose(
        b.variance_components["estimate"], a.variance_components["estimate"], rtol=1e-6
    )
    np.testing.assert_allclose(b.logLik, a.logLik, rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(4, 25),
    seed=st.integers(0, 2**31 - 1),
    tau=st.floats(0.0, 2.0),
    method=st.sampled_from(["REML", "ML"]),
)
def test_single_random_term_equals_rma_uni(k: int, seed: int, tau: float, method: str) -> None:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.05, 1.0, k)
    x = rng.normal(size=k)
    yi = 0.3 + 0.5 * x + rng.normal(0, tau, k) + rng.normal(0, np.sqrt(vi))
    d = pd.DataFrame({"id": np.arange(k), "yi": yi, "vi": vi, "x": x})
    res = fit_mv(d, yi="yi", V="vi", mods="~ x", random=[_r("~ 1 | id")], method=method)
    uni = univariate.fit(yi, vi, method=method, ci_method="z", X=np.column_stack([np.ones(k), x]))
    tau2 = res.variance_components["estimate"].iloc[0]
    if uni.tau2 > 1e-6:
        np.testing.assert_allclose(tau2, uni.tau2, rtol=1e-5)
    else:
        assert tau2 < 1e-5
    np.testing.assert_allclose(res.beta, uni.beta, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(res.se, uni.se, rtol=1e-5)


def test_notes_boundary_and_identifiability() -> None:
    # every study has a single arm: study and study/arm groupings are identical
    d = pd.DataFrame({"study": np.repeat(np.arange(12), 2), "arm": 1, "week": np.tile([4, 8], 12)})
    rng = np.random.default_rng(3)
    d["vi"] = 0.5
    d["yi"] = rng.normal(size=len(d)) + np.repeat(rng.normal(size=12), 2)
    res = fit_mv(d, yi="yi", V="vi", random=[_r("~ 1 | study/arm")])
    assert any("identical groupings" in n for n in res.notes)
    # single-level factor: its component is fixed at 0 and reported
    d["one"] = "x"
    res = fit_mv(d, yi="yi", V="vi", random=[_r("~ 1 | one"), _r("~ 1 | study")])
    assert any("single-level" in n for n in res.notes)
    assert res.variance_components["fixed"].tolist() == [True, False]
    # boundary note
    res = fit_case("boundary_nested")
    assert "sigma2.2 (study/arm) estimated at the boundary (0)" in res.notes


def test_input_validation() -> None:
    d, _ = _load("konstantopoulos")
    with pytest.raises(ValueError):
        fit_mv(d, yi="yi", V="vi", random=KONST, method="EB")
    with pytest.raises(ValueError):
        fit_mv(d, yi="yi", V="vi", random=KONST, cluster="school")  # schools cross districts
    with pytest.raises(ValueError):
        fit_mv(d, yi="yi", V=np.ones((len(d), len(d))), random=KONST)  # V across clusters
    res = fit_mv(
        d,
        yi="yi",
        V=list(d["vi"].to_numpy()[:, None, None]),
        random=[_r("~ 1 | study")],
        cluster="study",
    )
    ref = fit_mv(d, yi="yi", V="vi", random=[_r("~ 1 | study")])
    np.testing.assert_allclose(res.beta, ref.beta, rtol=1e-12)
