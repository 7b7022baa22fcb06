"""Tests for hairtrial.models.cr2: parity with clubSandwich 0.5.8 and invariance properties.

Reference values: tests/reference/clubsandwich_cr2.R -> tests/reference/clubsandwich_cr2_*.csv
(metafor 3.8-1 rma.mv / rma.uni fits; M and W blocks exported as clubSandwich sees them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from hairtrial.models.cr2 import RobustResult, cr2, matrix_power, split_blocks

REF = Path(__file__).resolve().parent / "reference"
RTOL = 1e-6
COLS = ["estimate", "se", "statistic", "df", "pvalue", "ci_lower", "ci_upper"]


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(
        REF / f"clubsandwich_cr2_{name}.csv", keep_default_na=False, na_values=["NA"]
    )


@pytest.fixture(scope="module")
def ref() -> dict[str, pd.DataFrame]:
    return {k: _read(k) for k in ["cases", "data", "blocks", "coef", "vcov", "tests"]}


CASES = list(pd.read_csv(REF / "clubsandwich_cr2_cases.csv")["case"])


def _case_inputs(ref: dict[str, pd.DataFrame], case: str):
    d = ref["data"][ref["data"]["case"] == case]
    terms = list(dict.fromkeys(d["term"]))
    X = d.pivot(index="row", columns="term", values="x")[terms].sort_index().to_numpy(float)
    first = d[d["term"] == terms[0]].sort_values("row")
    y = first["y"].to_numpy(float)
    cl = first["cluster"].astype(str).to_numpy()
    b = ref["blocks"][ref["blocks"]["case"] == case]
    n = len(y)
    M = np.zeros((n, n))
    W = np.zeros((n, n))
    M[b["i"] - 1, b["j"] - 1] = b["M"]
    W[b["i"] - 1, b["j"] - 1] = b["W"]
    info = ref["cases"].set_index("case").loc[case]
    return X, y, cl, split_blocks(M, cl), split_blocks(W, cl), terms, bool(info["inverse_var"])


def _fit_case(ref, case, explicit_w: bool = False) -> RobustResult:
    X, y, cl, Mb, Wb, terms, inverse_var = _case_inputs(ref, case)
    if inverse_var and not explicit_w:
        # clubSandwich default for rma.mv without W / weighted rma.uni: W = M^-1
        return cr2(X, y, Mb, cl, terms=terms)
    if inverse_var:
        # the weights exactly as clubSandwich uses them (rma.uni: rescaled by their mean)
        return cr2(X, y, Mb, cl, W_blocks=Wb, target="inverse_var", terms=terms)
    return cr2(X, y, Mb, cl, W_blocks=Wb, terms=terms)


# ------------------------------------------------------------------------------------------
# parity with clubSandwich
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("explicit_w", [False, True])
def test_coef_table_and_vcov_match_clubsandwich(ref, case, explicit_w):
    res = _fit_case(ref, case, explicit_w)
    exp = ref["coef"][ref["coef"]["case"] == case].reset_index(drop=True)
    assert list(res.table["term"]) == list(exp["term"])
    for col in COLS:
        np.testing.assert_allclose(res.table[col], exp[col], rtol=RTOL, atol=0, err_msg=col)
    v = ref["vcov"][ref["vcov"]["case"] == case]
    V = v.pivot(index="row", columns="col", values="value").loc[res.terms, list(res.terms)]
    np.testing.assert_allclose(res.vcov, V.to_numpy(float), rtol=RTOL, atol=0)


@pytest.mark.parametrize("case", CASES)
def test_contrasts_and_htz_wald_match_clubsandwich(ref, case):
    res = _fit_case(ref, case)
    t = ref["tests"][ref["tests"]["case"] == case]
    assert set(t["kind"]) == {"contrast", "wald"}
    for (kind, _name), g in t.groupby(["kind", "name"], sort=False):
        L = g.pivot(index="row", columns="term", values="L")[list(res.terms)].to_numpy(float)
        exp = g.drop_duplicates("row").sort_values("row").reset_index(drop=True)
        if kind == "contrast":
            got = res.contrast(L)
            for col in COLS:
                np.testing.assert_allclose(got[col], exp[col], rtol=RTOL, atol=0, err_msg=col)
        else:
            w = res.wald(L)
            r = exp.iloc[0]
            assert w.df_num == int(r["df_num"]) == L.shape[0]
            np.testing.assert_allclose(
                [w.statistic, w.delta, w.df_denom, w.pvalue],
                [r["Fstat"], r["delta"], r["df_denom"], r["pvalue"]],
                rtol=RTOL,
                atol=0,
            )


def test_reference_covers_both_adjustment_forms(ref):
    assert set(ref["cases"]["inverse_var"]) == {True, False}
    assert {"rma.mv", "rma.uni"} <= set(ref["cases"]["model"])


# ------------------------------------------------------------------------------------------
# property tests
# ------------------------------------------------------------------------------------------
def _random_problem(seed: int, n_clusters: int, max_size: int, p: int):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, size=n_clusters)
    n = int(sizes.sum())
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    cl = np.repeat(np.arange(n_clusters), sizes)
    blocks = []
    for m in sizes:
        a = rng.normal(size=(m, m)) * 0.5
        blocks.append(a @ a.T + np.diag(rng.uniform(0.5, 2.0, size=m)))
    y = X @ rng.normal(size=p) + rng.normal(size=n) * 2
    return X, y, cl, blocks, sizes


problems = st.builds(
    _random_problem,
    seed=st.integers(0, 2**32 - 1),
    n_clusters=st.integers(5, 12),
    max_size=st.integers(1, 4),
    p=st.integers(1, 3),
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(prob=problems, perm_seed=st.integers(0, 2**32 - 1), user_w=st.booleans())
def test_invariant_to_cluster_order(prob, perm_seed, user_w):
    X, y, cl, blocks, sizes = prob
    J = len(blocks)
    W = [np.diag(1.0 / np.diag(b)) for b in blocks] if user_w else None
    res = cr2(X, y, blocks, cl, W_blocks=W)
    perm = np.random.default_rng(perm_seed).permutation(J)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = np.concatenate([np.arange(starts[j], starts[j] + sizes[j]) for j in perm])
    res2 = cr2(
        X[rows],
        y[rows],
        [blocks[j] for j in perm],
        cl[rows],
        W_blocks=None if W is None else [W[j] for j in perm],
    )
    np.testing.assert_allclose(res2.vcov, res.vcov, rtol=1e-8, atol=1e-14)
    for col in COLS:
        np.testing.assert_allclose(res2.table[col], res.table[col], rtol=1e-7, atol=1e-12)
    L = np.eye(X.shape[1])
    w1, w2 = res.wald(L), res2.wald(L)
    np.testing.assert_allclose([w2.statistic, w2.df_denom], [w1.statistic, w1.df_denom], rtol=1e-7)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(6, 25),
    p=st.integers(1, 3),
    weighted=st.booleans(),
)
def test_one_obs_per_cluster_is_hc2_with_bell_mccaffrey_df(seed, n, p, weighted):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.normal(size=n) * 3 + 1
    v = rng.uniform(0.2, 3.0, size=n) if weighted else np.full(n, 1.7)
    res = cr2(X, y, [np.array([[vi]]) for vi in v], np.arange(n))

    # independent HC2 sandwich of WLS (OLS when the weights are equal)
    w = 1.0 / v
    XtWX_inv = np.linalg.inv(X.T @ (w[:, None] * X))
    b = XtWX_inv @ X.T @ (w * y)
    e = y - X @ b
    h = w * np.einsum("ij,jk,ik->i", X, XtWX_inv, X)
    meat = (X * (w**2 * e**2 / (1 - h))[:, None]).T @ X
    hc2 = XtWX_inv @ meat @ XtWX_inv
    np.testing.assert_allclose(res.beta, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.vcov, hc2, rtol=1e-9, atol=1e-14)

    # Bell & McCaffrey (2002) df: c'Vc = u' K u with u ~ N(0, I) (standardised residual scale)
    S = np.diag(np.sqrt(v))
    Hs = np.diag(np.sqrt(w)) @ X @ XtWX_inv @ X.T @ np.diag(np.sqrt(w))  # hat matrix, whitened
    for k in range(p):
        a = (XtWX_inv[k] @ X.T) * w / np.sqrt(1 - h) @ S  # weight on whitened residuals
        K = (np.eye(n) - Hs) @ np.diag(a**2) @ (np.eye(n) - Hs)
        df_bm = np.trace(K) ** 2 / np.trace(K @ K)
        np.testing.assert_allclose(res.table["df"][k], df_bm, rtol=1e-8)


@SETTINGS
@given(
    prob=problems,
    scale=st.floats(-50, 50).filter(lambda s: abs(s) > 1e-2),
    mscale=st.floats(0.05, 20),
)
def test_scale_equivariance(prob, scale, mscale):
    X, y, cl, blocks, _ = prob
    res = cr2(X, y, blocks, cl)
    ys = cr2(X, y * scale, blocks, cl)
    np.testing.assert_allclose(ys.table["se"], abs(scale) * res.table["se"], rtol=1e-9)
    np.testing.assert_allclose(
        ys.table["estimate"], scale * res.table["estimate"], rtol=1e-9, atol=1e-12 * abs(scale)
    )
    np.testing.assert_allclose(ys.table["df"], res.table["df"], rtol=1e-9)
    # CR2 does not depend on the overall scale of the working covariance
    ms = cr2(X, y, [mscale * b for b in blocks], cl)
    np.testing.assert_allclose(ms.vcov, res.vcov, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(ms.table["df"], res.table["df"], rtol=1e-8)


@SETTINGS
@given(prob=problems, user_w=st.booleans())
def test_cr2_adjustment_is_unbiased_under_target(prob, user_w):
    """A_j B_j A_j' = Theta_j with B_j = [(I - H) Theta (I - H)']_jj (Bell & McCaffrey)."""
    X, y, cl, blocks, sizes = prob
    n = len(y)
    W = (
        [np.diag(1.0 / np.diag(b)) for b in blocks]
        if user_w
        else [np.linalg.inv(b) for b in blocks]
    )
    res = cr2(X, y, blocks, cl, W_blocks=W if user_w else None)
    Wf = np.zeros((n, n))
    Th = np.zeros((n, n))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for s, m, w, b in zip(starts, sizes, W, blocks, strict=True):
        Wf[s : s + m, s : s + m] = w
        Th[s : s + m, s : s + m] = b
    H = X @ np.linalg.solve(X.T @ Wf @ X, X.T @ Wf)
    B = (np.eye(n) - H) @ Th @ (np.eye(n) - H).T
    for s, m, A, b in zip(starts, sizes, res.adjustments, blocks, strict=True):
        Bj = B[s : s + m, s : s + m]
        if np.linalg.matrix_rank(Bj, tol=1e-9) < m:
            continue  # singular block: generalised inverse, identity does not hold
        np.testing.assert_allclose(A @ Bj @ A.T, b, rtol=1e-7, atol=1e-9)


@SETTINGS
@given(prob=problems, seed=st.integers(0, 2**32 - 1))
def test_single_constraint_htz_equals_satterthwaite_t(prob, seed):
    X, y, cl, blocks, _ = prob
    res = cr2(X, y, blocks, cl)
    c = np.random.default_rng(seed).normal(size=X.shape[1])
    ct = res.contrast(c)
    w = res.wald(c)
    np.testing.assert_allclose(w.statistic, ct["statistic"][0] ** 2, rtol=1e-8)
    np.testing.assert_allclose(w.df_denom, ct["df"][0], rtol=1e-8)
    np.testing.assert_allclose(w.pvalue, ct["pvalue"][0], rtol=1e-6, atol=1e-300)
    assert w.delta == pytest.approx(1.0)


def test_table_is_consistent_with_vcov_and_t_distribution():
    X, y, cl, blocks, _ = _random_problem(7, 8, 3, 3)
    res = cr2(X, y, blocks, cl, terms=["a", "b", "c"], level=0.9)
    t = res.table
    assert list(t["term"]) == ["a", "b", "c"]
    np.testing.assert_allclose(t["se"], np.sqrt(np.diag(res.vcov)))
    crit = stats.t.ppf(0.95, t["df"])
    np.testing.assert_allclose(t["ci_upper"] - t["estimate"], crit * t["se"])
    np.testing.assert_allclose(t["pvalue"], 2 * stats.t.sf(abs(t["statistic"]), t["df"]))
    # a contrast that picks a coefficient reproduces its row
    row = res.contrast([0, 1, 0], names=["b"], level=0.9)
    pd.testing.assert_frame_equal(row, t.iloc[[1]].reset_index(drop=True))


def test_input_validation():
    X, y, cl, blocks, _ = _random_problem(3, 5, 2, 2)
    with pytest.raises(ValueError, match="contiguous"):
        cr2(X[::-1], y[::-1], blocks, cl[[*range(1, len(cl)), 0]])
    with pytest.raises(ValueError, match="two clusters"):
        cr2(X, y, [np.eye(len(y))], np.zeros(len(y)))
    with pytest.raises(ValueError, match="full column rank"):
        cr2(np.column_stack([X, X[:, 1]]), y, blocks, cl)
    with pytest.raises(ValueError, match="blocks"):
        cr2(X, y, blocks[:-1], cl)


def test_matrix_power_drops_tiny_eigenvalues():
    a = np.diag([4.0, 1e-13])
    np.testing.assert_allclose(matrix_power(a, -0.5), np.diag([0.5, 0.0]))
