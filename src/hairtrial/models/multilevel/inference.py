"""Results of the multilevel model and inference on them.

:func:`fit_mv` (metafor ``rma.mv``) returns an :class:`MVResult` (coefficients with Wald z or t
tests, variance components, fit statistics); :func:`contrast` (linear combinations, metafor
``anova(L = )`` / ``predict``), :func:`lrt` (likelihood-ratio test of nested models) and
:func:`blups` (metafor ``ranef``) work on it.

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.multilevel.likelihood import (
    DEFAULT_CONTROL,
    Model,
    component_values,
    fit_model,
    prepare,
)
from hairtrial.models.multilevel.structures import EPS, LOG2PI, FArr, RandomTerm
from hairtrial.models.multilevel.threads import single_threaded

__all__ = ["MVResult", "blups", "contrast", "fit_mv", "lrt"]


@dataclass(frozen=True, eq=False)
class MVResult:
    """Result of :func:`fit_mv` (tidy; stable names).

    Attributes
    ----------
    coefficients : DataFrame
        ``term, estimate, se, statistic, df, pvalue, ci_lower, ci_upper`` (``df`` NaN for z).
    vcov : ndarray
        p x p covariance of the fixed effects, ``(X' M^-1 X)^-1``.
    variance_components : DataFrame
        ``component, estimate, fixed, type, index, term``: one row per component in metafor's
        order (sigma2.1, sigma2.2, ..., tau2, rho, gamma2, phi). ``component`` names are
        ``sigma2.j (factor)`` (nested factors as ``g1/g2``), ``tau2 (inner | outer)`` or
        ``tau2.a (inner | outer: level)`` for structures with one variance per level,
        ``rho (inner | outer)`` or, for UN, ``rho.i.j (inner | outer: level_i, level_j)``
        (pairs in metafor's order (2,1), (3,1), ..., (3,2), ...); the second ``inner | outer``
        term uses ``gamma2`` / ``phi``. ``fixed`` is True for user-fixed components and for
        components metafor would fix (e.g. ``rho`` of ID/DIAG); ``type`` is sigma2 / tau2 /
        rho / gamma2 / phi and ``index`` metafor's 1-based index within that type.
    logLik, deviance, AIC, BIC, AICc : float
        Fit statistics of the fitted criterion (metafor ``fitstats``, see module notes).
    fit_stats : DataFrame
        Rows ``ll, dev, AIC, BIC, AICc``, columns ``ML`` and ``REML`` (metafor's ``fit.stats``).
    k, p, parms : int
        Rows, fixed-effect coefficients, and p + number of estimated components.
    method, test, dfs : str
    level : float
    converged : bool
    iterations : int
        L-BFGS-B iterations plus Newton polishing steps.
    notes : tuple of str
        Boundary estimates, components fixed because they are not estimable, possibly
        non-identifiable components, dropped predictors, non-convergence.
    X, y : ndarray
        Design matrix and outcomes, rows in data order.
    cluster : ndarray
        Cluster label of every row (data order); ``cluster_levels`` in cluster order.
    cluster_rows : list of ndarray
        Row indices (data order) of each cluster, in cluster order.
    cluster_name : str
        The column used as cluster (``"<components>"`` if it had to be inferred from the
        connected components of the random terms).
    ddf : ndarray
        Degrees of freedom per coefficient (t tests), NaN for z.

    ``blocks_M`` and ``weights`` (properties) give the per-cluster marginal covariance blocks
    ``M_j = V_j + Z_j G Z_j'`` at the estimates and their inverses, in cluster order, rows in
    the order of ``cluster_rows`` (for cluster-robust inference, e.g. CR2).
    """

    coefficients: pd.DataFrame
    vcov: FArr
    variance_components: pd.DataFrame
    logLik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    fit_stats: pd.DataFrame
    k: int
    p: int
    parms: int
    method: str
    test: str
    dfs: str
    level: float
    converged: bool
    iterations: int
    notes: tuple[str, ...]
    X: FArr
    y: FArr
    cluster: NDArray[Any]
    cluster_levels: list[str]
    cluster_rows: list[NDArray[np.int64]]
    cluster_name: str
    ddf: FArr
    _model: Model = field(repr=False)
    _theta: FArr = field(repr=False)
    _state: dict[str, Any] = field(repr=False)

    @property
    def beta(self) -> FArr:
        """Fixed-effect estimates (array)."""
        return self.coefficients["estimate"].to_numpy()

    @property
    def se(self) -> FArr:
        """Standard errors of the fixed effects (array)."""
        return self.coefficients["se"].to_numpy()

    @property
    def terms(self) -> list[str]:
        """Coefficient names."""
        return list(self.coefficients["term"])

    def component(self, name: str) -> float:
        """Estimate of one variance component, by full name or by its short name (``sigma2.1``)."""
        vc = self.variance_components
        hit = vc[(vc["component"] == name) | (vc["component"].str.split(" ").str[0] == name)]
        if len(hit) != 1:
            raise KeyError(f"no (unique) component {name!r}")
        return float(hit["estimate"].iloc[0])

    def _blocks(self, which: str) -> list[FArr]:
        key = f"_blocks_{which}"
        if key not in self._state:
            out: list[FArr] = [np.zeros((0, 0))] * len(self.cluster_levels)
            for grp, (M, W, _) in zip(self._model.groups, self._state["cache"], strict=True):
                arr = M if which == "M" else W
                for ci, cc in enumerate(grp.clusters):
                    out[cc] = arr[ci]
            self._state[key] = out
        return self._state[key]

    @cached_property
    def blocks_M(self) -> list[FArr]:
        """Marginal covariance blocks ``V_j + Z_j G Z_j'`` per cluster (cluster order)."""
        return self._blocks("M")

    @cached_property
    def weights(self) -> list[FArr]:
        """Fixed-effect weight blocks ``M_j^-1`` per cluster (cluster order)."""
        return self._blocks("W")


def _ddf(model: Model, dfs: str) -> FArr:
    k, p = model.k, model.p
    if dfs == "residual":
        ddf = np.full(p, float(k - p))
    elif dfs == "contain":
        factors: list[NDArray[np.int64]] = [s.codes for s in model.sterms]
        for g in model.gterms:
            comb = g.inner_codes * (len(g.outer_levels) + 1) + g.outer_codes
            factors += [pd.factorize(comb)[0], g.outer_codes]
        ddf = np.full(p, float(k))
        for j in range(p):
            x = model.X[:, j]
            cands = []
            for f in factors:
                s = pd.Series(x).groupby(f)
                if bool((s.nunique() == 1).all()):
                    cands.append(len(np.unique(f)))
            if cands:
                ddf[j] = min(cands)
        ddf = ddf - p
    else:
        raise ValueError(f"dfs must be 'residual' or 'contain', got {dfs!r}")
    return np.maximum(ddf, 1.0)


def _assemble(
    model: Model,
    theta: FArr,
    info: dict[str, Any],
    *,
    method: str,
    test: str,
    dfs: str,
    level: float,
) -> MVResult:
    reml = method == "REML"
    ev = model.evaluate(theta, reml, grad=False, full=True)
    if not np.isfinite(ev["ll"]):
        raise RuntimeError("final marginal covariance matrix is not positive definite")
    beta, vb = ev["beta"], 0.5 * (ev["vb"] + ev["vb"].T)
    se = np.sqrt(np.diag(vb))
    stat = beta / se
    k, p = model.k, model.p
    alpha = 1.0 - level
    if test == "t":
        ddf = _ddf(model, dfs)
        pval = 2 * dist.t_sf(np.abs(stat), ddf)
        crit = dist.t_isf(alpha / 2, ddf)
    else:
        ddf = np.full(p, np.nan)
        pval = 2 * dist.norm_sf(np.abs(stat))
        crit = np.full(p, dist.norm_isf(alpha / 2))
    coefs = pd.DataFrame(
        {
            "term": model.xnames,
            "estimate": beta,
            "se": se,
            "statistic": stat,
            "df": ddf,
            "pvalue": pval,
            "ci_lower": beta - crit * se,
            "ci_upper": beta + crit * se,
        }
    )
    comps = model.components()
    vals = component_values(model, ev)
    vc = pd.DataFrame(
        {
            "component": [c["name"] for c in comps],
            "estimate": vals,
            "fixed": [
                bool(not np.isnan(c["fixed"])) and i not in info.get("boundary", [])
                for i, c in enumerate(comps)
            ],
            "type": [c["kind"] for c in comps],
            "index": [c["index"] for c in comps],
            "term": [_comp_term(model, c) for c in comps],
        }
    )
    n_est = int((~vc["fixed"]).sum())
    parms = p + n_est
    ll_ml, ll_reml = ev["ll_ml"], ev["ll_reml"]
    dev_ml = (
        -2 * (ll_ml - (-0.5 * k * LOG2PI - 0.5 * model.logdetV)) if model.allvipos else (-2 * ll_ml)
    )
    kk = max(k, parms + 2)
    kr = max(k - p, parms + 2)
    fs = pd.DataFrame(
        {
            "ML": [
                ll_ml,
                dev_ml,
                -2 * ll_ml + 2 * parms,
                -2 * ll_ml + parms * math.log(k),
                -2 * ll_ml + 2 * parms * kk / (kk - parms - 1),
            ],
            "REML": [
                ll_reml,
                -2 * ll_reml,
                -2 * ll_reml + 2 * parms,
                -2 * ll_reml + parms * math.log(k - p),
                -2 * ll_reml + 2 * parms * kr / (kr - parms - 1),
            ],
        },
        index=["ll", "dev", "AIC", "BIC", "AICc"],
    )
    col = "REML" if reml else "ML"
    notes = list(model.notes) + list(info.get("notes", []))
    for i in info.get("boundary", []):
        notes.append(f"{comps[i]['name']} estimated at the boundary (0)")
    for i, c in enumerate(comps):
        if c["kind"] in ("rho", "phi") and np.isnan(c["fixed"]) and abs(vals[i]) > 1 - 1e-6:
            notes.append(f"{c['name']} estimated at the boundary ({vals[i]:+.6f})")
        if (
            c["kind"] in ("tau2", "gamma2")
            and np.isnan(c["fixed"])
            and vals[i] < 1e-8 * max(model.total0, 1e-300)
        ):
            notes.append(f"{c['name']} estimated at (or very near) the boundary 0")
    H = info.get("hessian")
    if H is not None and H.size and np.all(np.isfinite(H)) and not info.get("boundary"):
        ev_h = np.linalg.eigvalsh(-H)
        if ev_h.min() <= 1e-8 * max(ev_h.max(), 1e-300):
            notes.append(
                "the (RE)ML criterion is (nearly) flat in some direction of the variance "
                "parameters: some components may not be identifiable"
            )
    cl_labels = np.asarray(model.cluster_levels, dtype=object)[model.cluster_codes]
    order = np.argsort(model.cluster_codes, kind="stable")
    counts = np.bincount(model.cluster_codes, minlength=len(model.cluster_levels))
    cluster_rows = np.split(order, np.cumsum(counts)[:-1])
    # per-cluster blocks are stored per group with rows in data order within the cluster
    return MVResult(
        coefficients=coefs,
        vcov=vb,
        variance_components=vc,
        logLik=float(fs.loc["ll", col]),
        deviance=float(fs.loc["dev", col]),
        AIC=float(fs.loc["AIC", col]),
        BIC=float(fs.loc["BIC", col]),
        AICc=float(fs.loc["AICc", col]),
        fit_stats=fs,
        k=k,
        p=p,
        parms=parms,
        method=method,
        test=test,
        dfs=dfs,
        level=level,
        converged=bool(info.get("converged", True)),
        iterations=int(info.get("iterations", 0)),
        notes=tuple(dict.fromkeys(notes)),
        X=model.X,
        y=model.y,
        cluster=cl_labels,
        cluster_levels=model.cluster_levels,
        cluster_rows=cluster_rows,
        cluster_name=model.cluster_name,
        ddf=ddf,
        _model=model,
        _theta=theta,
        _state={
            "cache": ev["cache"],
            "us": ev["us"],
            "beta": beta,
            "vb": vb,
            "values": vals,
            "info": info,
        },
    )


def _comp_term(model: Model, c: dict[str, Any]) -> str:
    kind, t = c["term"]
    if kind == "S":
        return f"~ 1 | {model.sterms[t].label}"
    return model.gterms[t].term.formula


@single_threaded
def fit_mv(
    data: pd.DataFrame,
    *,
    yi: str,
    V: ArrayLike | sp.spmatrix | Sequence[ArrayLike] | str,
    mods: str | ArrayLike | None = None,
    random: Sequence[RandomTerm] = (),
    method: str = "REML",
    test: str = "z",
    dfs: str = "residual",
    level: float = 0.95,
    cluster: str | None = None,
    control: dict[str, Any] | None = None,
) -> MVResult:
    """Fit a multilevel / multivariate meta-analytic model (metafor ``rma.mv``).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per estimate (e.g. one arm at one week).
    yi : str
        Column of the estimates.
    V : ndarray, scipy.sparse matrix, list of arrays, or str
        Known sampling covariance: a k x k matrix (dense or sparse; must be block-diagonal by
        cluster), a list of per-cluster blocks (clusters in order of first appearance in
        ``data``, rows in data order within each cluster), a length-k vector or the name of a
        column of sampling variances (diagonal V). See :func:`block_covariance`.
    mods : str, array_like or None
        Formula (see :func:`design_matrix`, e.g. ``"~ treatment * C(week)"``) or a k x p
        design matrix (used as given, no intercept added). None: intercept only.
    random : sequence of RandomTerm
        Random-effects terms (see :class:`RandomTerm`, :func:`parse_random`).
    method : {"REML", "ML"}
    test : {"z", "t"}
        Wald-type normal or t inference for the fixed effects.
    dfs : {"residual", "contain"}
        Degrees of freedom for ``test="t"`` (see module notes).
    level : float
        Confidence level.
    cluster : str or None
        Top-level grouping column within which V and all random terms are nested (usually
        the study). None: the outermost factor of the first random term in which everything
        nests (else connected components of the random-effect groupings).
    control : dict or None
        ``maxiter`` (L-BFGS-B, 2000), ``ftol`` (1e-15), ``gtol`` (1e-10), ``newton_steps``
        (20), ``boundary_rel`` (1e-5), ``theta0`` (start, transformed scale).

    Returns
    -------
    MVResult

    Notes
    -----
    Starting values are metafor's: every variance ``max(0.001 * nvc, var(e_FE) -
    1 / mean(1 / diag V)) / nvc`` (``e_FE`` residuals of the GLS fit with V, ``nvc`` the
    number of variance components) and correlations 0.5.

    References
    ----------
    Viechtbauer (2010); Konstantopoulos (2011); Berkey et al. (1998); Ishak et al. (2007);
    Harville (1977). Full citations in the module docstring.

    Examples
    --------
    >>> from hairtrial.models.multilevel import parse_random
    >>> d = pd.DataFrame({"study": [1, 1, 2, 2, 3, 3, 4, 4], "arm": [1, 2] * 4,
    ...                   "yi": [1.0, 1.4, 0.2, 0.9, 1.9, 2.2, 0.5, 1.5], "vi": [0.1] * 8})
    >>> res = fit_mv(d, yi="yi", V="vi", random=[parse_random("~ 1 | study/arm")])
    >>> res.coefficients["term"].tolist(), res.k
    (['intrcpt'], 8)
    """
    if method not in ("REML", "ML"):
        raise ValueError("method must be 'REML' or 'ML'")
    if test not in ("z", "t"):
        raise ValueError("test must be 'z' or 't'")
    if dfs not in ("residual", "contain"):
        raise ValueError("dfs must be 'residual' or 'contain'")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    con = dict(DEFAULT_CONTROL)
    if control:
        unknown = set(control) - set(con)
        if unknown:
            raise ValueError(f"unknown control entries: {sorted(unknown)}")
        con.update(control)
    model = prepare(data, yi, V, mods, list(random), cluster)
    model.spec.update(method=method, test=test, dfs=dfs, level=level, control=con)
    reml = method == "REML"
    model, theta, info = fit_model(model, reml, con, con["theta0"])
    return _assemble(model, theta, info, method=method, test=test, dfs=dfs, level=level)


def contrast(
    result: MVResult,
    L: ArrayLike | pd.DataFrame | dict[str, dict[str, float]],
    level: float | None = None,
) -> pd.DataFrame:
    """Linear combinations ``L b`` of the fixed effects with Wald / t inference.

    Parameters
    ----------
    result : MVResult
    L : array_like (m x p or length p), DataFrame or dict
        Rows of weights on the coefficients. A DataFrame's columns (or a dict's inner keys)
        are coefficient names (missing names weigh 0); its index (dict keys) name the rows.
    level : float or None
        Confidence level (default: the fit's).

    Returns
    -------
    DataFrame
        ``contrast, estimate, se, statistic, df, pvalue, ci_lower, ci_upper``. For
        ``test="t"`` the df of a row is the smallest df among the coefficients it involves
        (all equal k - p for ``dfs="residual"``).

    Examples
    --------
    Experimental minus control at week 8, for ``mods="~ treatment * C(week)"``::

        contrast(res, {"exp-ctl wk8": {"treatmentexp": 1, "treatmentexp:C(week)8": 1}})
    """
    level = result.level if level is None else level
    names = result.terms
    if isinstance(L, dict):
        L = pd.DataFrame.from_dict(L, orient="index")
    if isinstance(L, pd.DataFrame):
        unknown = set(L.columns) - set(names)
        if unknown:
            raise KeyError(f"unknown coefficients in L: {sorted(unknown)}")
        labels = [str(i) for i in L.index]
        Lm = L.reindex(columns=names).fillna(0.0).to_numpy(dtype=float)
    else:
        Lm = np.atleast_2d(np.asarray(L, dtype=float))
        labels = [f"L{i + 1}" for i in range(Lm.shape[0])]
    if Lm.shape[1] != result.p:
        raise ValueError(f"L must have {result.p} columns")
    est = Lm @ result.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", Lm, result.vcov, Lm))
    stat = est / se
    alpha = 1 - level
    if result.test == "t":
        df = np.array([result.ddf[row != 0].min() if np.any(row != 0) else np.nan for row in Lm])
        pval = 2 * dist.t_sf(np.abs(stat), df)
        crit = dist.t_isf(alpha / 2, df)
    else:
        df = np.full(len(est), np.nan)
        pval = 2 * dist.norm_sf(np.abs(stat))
        crit = dist.norm_isf(alpha / 2)
    return pd.DataFrame(
        {
            "contrast": labels,
            "estimate": est,
            "se": se,
            "statistic": stat,
            "df": df,
            "pvalue": pval,
            "ci_lower": est - crit * se,
            "ci_upper": est + crit * se,
        }
    )


def lrt(full: MVResult, reduced: MVResult) -> pd.DataFrame:
    """Likelihood-ratio test between nested fits (metafor ``anova(full, reduced)``).

    Both fits must use the same method and the same data (``y``); with REML they must also
    have the same fixed effects (REML likelihoods of different X are not comparable). The
    model with more parameters is taken as the full model. ``LRT = 2 (ll_full - ll_reduced)``
    (negative values set to 0) is referred to chi-square with ``parms_full - parms_reduced``
    df (nestedness is the caller's responsibility; tests of variance components on the
    boundary are conservative).

    Returns
    -------
    DataFrame
        Index ``full, reduced``; columns ``parms, logLik, deviance, AIC, BIC, AICc, LRT, df,
        pvalue`` (test columns only on the ``reduced`` row, as metafor prints them).

    Examples
    --------
    ``lrt(fit_mv(..., random=[parse_random("~ 1 | district/school")]),
    fit_mv(..., random=[parse_random("~ 1 | district")]))``
    """
    if full.method != reduced.method:
        raise ValueError("full and reduced model must use the same method")
    if full.k != reduced.k or not np.array_equal(full.y, reduced.y):
        raise ValueError("models were not fitted to the same data")
    if full.parms == reduced.parms:
        raise ValueError("models have the same number of parameters; LRT not meaningful")
    if full.parms < reduced.parms:
        full, reduced = reduced, full
    if full.method == "REML" and (
        full.X.shape != reduced.X.shape or not np.allclose(full.X, reduced.X, rtol=0, atol=0)
    ):
        raise ValueError(
            "REML comparisons need identical fixed effects; refit both models with method='ML'"
        )
    stat = max(0.0, 2.0 * (full.logLik - reduced.logLik))
    df = full.parms - reduced.parms
    rows = []
    for r in (full, reduced):
        rows.append(
            {
                "parms": r.parms,
                "logLik": r.logLik,
                "deviance": r.deviance,
                "AIC": r.AIC,
                "BIC": r.BIC,
                "AICc": r.AICc,
            }
        )
    out = pd.DataFrame(rows, index=["full", "reduced"])
    out["LRT"] = [np.nan, stat]
    out["df"] = [np.nan, float(df)]
    out["pvalue"] = [np.nan, float(dist.chi2_sf(stat, df))]
    return out


@single_threaded
def blups(result: MVResult, level: float | None = None) -> pd.DataFrame:
    """Best linear unbiased predictions of the random effects (metafor ``ranef``).

    For ``~ 1 | g`` terms: one row per level of ``g`` with
    ``pred = sigma2 z' M^-1 (y - X b)`` and
    ``se^2 = sigma2 - sigma2^2 z' P z`` (``P = M^-1 - M^-1 X (X'M^-1X)^-1 X'M^-1``). For
    ``~ inner | outer`` terms: one row per observed (inner, outer) combination, ordered by outer
    then inner, level named ``"inner | outer"``. Prediction intervals use the normal quantile
    (``test="z"``) or t with ``k - p`` (``dfs="residual"``) or ``levels - p`` df
    (``"contain"``; levels of the factor, or of ``outer``).

    Returns
    -------
    DataFrame
        ``term, level, estimate, se, pi_lower, pi_upper``.
    """
    level = result.level if level is None else level
    model = result._model
    S = result._state["vb"]
    cache = result._state["cache"]
    us = result._state["us"]
    alpha = 1 - level
    k, p = model.k, model.p
    vals = result._state["values"]

    def crit_for(nlev: int) -> float:
        if result.test == "z":
            return float(dist.norm_isf(alpha / 2))
        df = k - p if result.dfs == "residual" else nlev - p
        return float(dist.t_isf(alpha / 2, max(df, 1)))

    frames = []
    for j, s in enumerate(model.sterms):
        sig = vals[j]
        nlev = len(s.levels)
        pred = np.zeros(nlev)
        zwz = np.zeros(nlev)
        zwx = np.zeros((nlev, p))
        seen = np.zeros(nlev, dtype=bool)
        for grp, (_, W, WX), u in zip(model.groups, cache, us, strict=True):
            codes = s.codes[grp.rows]  # (c, n)
            np.add.at(pred, codes.ravel(), u.ravel())
            np.add.at(zwx, codes.ravel(), WX.reshape(-1, p))
            same = grp.smasks[j]
            np.add.at(zwz, codes.ravel(), (W * same).sum(axis=2).ravel())
            seen[codes.ravel()] = True
        pred = sig * pred
        quad = np.einsum("lp,pq,lq->l", zwx, S, zwx)
        vpred = sig - sig**2 * (zwz - quad)
        pred[np.abs(pred) < 100 * EPS] = 0.0
        se = np.sqrt(np.maximum(vpred, 0.0))
        c = crit_for(nlev)
        frames.append(
            pd.DataFrame(
                {
                    "term": s.label,
                    "level": s.levels,
                    "estimate": pred,
                    "se": se,
                    "pi_lower": pred - c * se,
                    "pi_upper": pred + c * se,
                }
            )
        )
    vals_pos = len(model.sterms)
    for t, g in enumerate(model.gterms):
        ntot = g.ntau + g.nrho
        # G at the estimates, from the natural values
        tau2 = vals[vals_pos : vals_pos + g.ntau]
        rho = vals[vals_pos + g.ntau : vals_pos + ntot]
        vals_pos += ntot
        tvec = tau2 if g.ntau == g.q else np.repeat(tau2, g.q)
        R, _ = g.corr(rho)
        sd = np.sqrt(tvec)
        G = sd[:, None] * R * sd[None, :]
        np.fill_diagonal(G, tvec)
        gext = np.append(G.ravel(), 0.0)
        rows_all, pred_all, v_all = [], [], []
        for grp, (_, W, _WX), u in zip(model.groups, cache, us, strict=True):
            Gr = gext[grp.gcls[t]]
            pred = np.einsum("cij,cj->ci", Gr, u)
            B = Gr @ W
            d1 = np.einsum("cij,cji->ci", B, Gr)
            C = B @ grp.X
            d2 = np.einsum("cip,pq,ciq->ci", C, S, C)
            dg = np.diagonal(Gr, axis1=1, axis2=2)
            rows_all.append(grp.rows.ravel())
            pred_all.append(pred.ravel())
            v_all.append((dg - d1 + d2).ravel())
        rows = np.concatenate(rows_all)
        pred = np.concatenate(pred_all)
        vpred = np.concatenate(v_all)
        o = np.argsort(rows, kind="stable")
        rows, pred, vpred = rows[o], pred[o], vpred[o]
        key = pd.DataFrame({"outer": g.outer_codes[rows], "inner": g.inner_codes[rows]})
        first = ~key.duplicated().to_numpy()
        key, pred, vpred = key[first], pred[first], vpred[first]
        srt = np.lexsort((key["inner"].to_numpy(), key["outer"].to_numpy()))
        key, pred, vpred = key.iloc[srt], pred[srt], vpred[srt]
        pred = np.where(np.abs(pred) < 100 * EPS, 0.0, pred)
        se = np.sqrt(np.maximum(vpred, 0.0))
        c = crit_for(len(g.outer_levels))
        lev = [
            f"{g.levels[a]} | {g.outer_levels[o_]}"
            for a, o_ in zip(key["inner"], key["outer"], strict=True)
        ]
        frames.append(
            pd.DataFrame(
                {
                    "term": g.term.formula,
                    "level": lev,
                    "estimate": pred,
                    "se": se,
                    "pi_lower": pred - c * se,
                    "pi_upper": pred + c * se,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["term", "level", "estimate", "se", "pi_lower", "pi_upper"])
    return pd.concat(frames, ignore_index=True)
