"""The (RE)ML log-likelihood of the multilevel model, its analytic gradient and its optimiser.

``Model`` holds the data by cluster (clusters of equal size stacked, so that every evaluation
is a few batched numpy operations) and evaluates the log-likelihood and its gradient;
``prepare`` builds it from the data and the random terms (with metafor's rules for components
that cannot be estimated); ``fit_model`` optimises it (L-BFGS-B, Newton polishing, boundary
handling). See :mod:`hairtrial.models.multilevel` for the model and the conventions.

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy  # scipy.optimize and scipy.linalg load on first use: see hairtrial.models
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from hairtrial.models.formula import design_matrix
from hairtrial.models.multilevel.structures import (
    EPS,
    LOG2PI,
    FArr,
    Group,
    GTerm,
    RandomTerm,
    STerm,
    as_fixed,
    drop_dependent,
    factor_codes,
    factor_column,
)

__all__ = [
    "DEFAULT_CONTROL",
    "Model",
    "component_values",
    "fit_model",
    "prepare",
    "theta_from_values",
]


@dataclass
class Model:
    """The data by cluster and the random terms; evaluates the (RE)ML criterion.

    :meth:`evaluate` gives the log-likelihood (and its analytic gradient) at transformed
    parameters ``theta``; built by :func:`prepare`, optimised by :func:`fit_model`.
    """

    data_index: pd.Index
    y: FArr
    X: FArr
    xnames: list[str]
    sterms: list[STerm]
    gterms: list[GTerm]
    groups: list[Group]
    cluster_codes: NDArray[np.int64]
    cluster_levels: list[str]
    cluster_name: str
    logdetV: float
    allvipos: bool
    total0: float
    reml_const: float  # 1/2 log det X'X
    notes: list[str]
    random: tuple[RandomTerm, ...]
    spec: dict[str, Any]

    @property
    def k(self) -> int:
        return self.y.size

    @property
    def p(self) -> int:
        return self.X.shape[1]

    # ---- parameter bookkeeping --------------------------------------------------------------
    def components(self) -> list[dict[str, Any]]:
        """Natural-scale components in metafor order, with fixed values (nan = free)."""
        out: list[dict[str, Any]] = []
        for j, s in enumerate(self.sterms):
            out.append(
                dict(
                    kind="sigma2",
                    term=("S", j),
                    idx=0,
                    name=f"sigma2.{j + 1} ({s.label})",
                    fixed=s.fixed,
                    index=j + 1,
                )
            )
        for t, g in enumerate(self.gterms):
            vname, rname = g.prefix
            lab = f"{g.term.inner} | {g.term.outer}"
            for a in range(g.ntau):
                nm = vname if g.ntau == 1 else f"{vname}.{a + 1}"
                desc = lab if g.ntau == 1 else f"{lab}: {g.levels[a]}"
                out.append(
                    dict(
                        kind=vname,
                        term=("G", t),
                        idx=a,
                        name=f"{nm} ({desc})",
                        fixed=g.tau2_fixed[a],
                        index=a + 1,
                    )
                )
            pairs = g.rho_pairs() if (g.struct == "UN" and g.q > 1) else [(1, 0)]
            for b in range(g.nrho):
                if g.nrho == 1:
                    nm = rname
                    desc = lab
                else:
                    i, j = pairs[b]
                    nm = f"{rname}.{i + 1}.{j + 1}"
                    desc = f"{lab}: {g.levels[i]}, {g.levels[j]}"
                out.append(
                    dict(
                        kind=rname,
                        term=("G", t),
                        idx=b,
                        name=f"{nm} ({desc})",
                        fixed=g.rho_fixed[b],
                        index=b + 1,
                    )
                )
        return out

    def with_fixed(self, overrides: dict[int, float]) -> Model:
        """Copy with some components (index into components()) fixed."""
        comps = self.components()
        sterms = [replace(s) for s in self.sterms]
        gterms = [
            replace(g, tau2_fixed=g.tau2_fixed.copy(), rho_fixed=g.rho_fixed.copy())
            for g in self.gterms
        ]
        for ci, val in overrides.items():
            c = comps[ci]
            kind, t = c["term"]
            if kind == "S":
                sterms[t].fixed = float(val)
            elif c["kind"] in ("tau2", "gamma2"):
                gterms[t].tau2_fixed[c["idx"]] = float(val)
            else:
                gterms[t].rho_fixed[c["idx"]] = float(val)
        return replace(self, sterms=sterms, gterms=gterms)

    def n_free(self) -> int:
        return sum(int(np.isnan(s.fixed)) for s in self.sterms) + sum(
            g.n_free() for g in self.gterms
        )

    def init_theta(self) -> FArr:
        nvc = len(self.sterms) + sum(g.ntau for g in self.gterms)
        v0 = self.total0 / max(nvc, 1)
        parts = [np.full(int(np.isnan(s.fixed)), math.log(v0)) for s in self.sterms]
        parts += [g.init_theta(v0) for g in self.gterms]
        return np.concatenate(parts) if parts else np.zeros(0)

    def bounds(self) -> list[tuple[float, float]]:
        nvc = len(self.sterms) + sum(g.ntau for g in self.gterms)
        ls = math.log(max(self.total0 / max(nvc, 1), 1e-300))
        out: list[tuple[float, float]] = []
        for s in self.sterms:
            if np.isnan(s.fixed):
                out.append((ls - 40.0, ls + 25.0))
        for g in self.gterms:
            out += g.bounds(ls)
        return out

    def natural(self, theta: FArr) -> tuple[FArr, list[tuple[FArr, list[FArr], FArr, FArr]]]:
        pos = 0
        sig = np.empty(len(self.sterms))
        for j, s in enumerate(self.sterms):
            if np.isnan(s.fixed):
                sig[j] = math.exp(theta[pos])
                pos += 1
            else:
                sig[j] = s.fixed
        sig = np.where(sig <= 10 * EPS, 0.0, sig)
        gs = []
        for g in self.gterms:
            m = g.n_free()
            gs.append(g.build(theta[pos : pos + m]))
            pos += m
        return sig, gs

    # ---- likelihood -------------------------------------------------------------------------
    def evaluate(
        self, theta: FArr, reml: bool, grad: bool = True, full: bool = False
    ) -> dict[str, Any]:
        sig, gs = self.natural(theta)
        gext = [np.append(G.ravel(), 0.0) for G, _, _, _ in gs]
        p = self.p
        logdet = 0.0
        XtWX = np.zeros((p, p))
        XtWy = np.zeros(p)
        cache = []
        for grp in self.groups:
            M = grp.V.copy()
            for s, mask in zip(sig, grp.smasks, strict=True):
                if s != 0.0:
                    M += s * mask
            for ge, cls in zip(gext, grp.gcls, strict=True):
                M += ge[cls]
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                return {"ll": -np.inf}
            diag = np.diagonal(L, axis1=1, axis2=2)
            if not np.all(diag > 0):
                return {"ll": -np.inf}
            logdet += 2.0 * float(np.log(diag).sum())
            W = np.linalg.inv(M)
            WX = W @ grp.X
            c, n = grp.y.shape
            XtWX += grp.X.reshape(c * n, p).T @ WX.reshape(c * n, p)
            XtWy += WX.reshape(c * n, p).T @ grp.y.ravel()
            cache.append((M, W, WX))
        XtWX = 0.5 * (XtWX + XtWX.T)
        try:
            cX = np.linalg.cholesky(XtWX)
        except np.linalg.LinAlgError:
            return {"ll": -np.inf}
        S = np.linalg.inv(XtWX)
        beta = np.linalg.solve(XtWX, XtWy)
        rss = 0.0
        us = []
        for grp, (_, W, _) in zip(self.groups, cache, strict=True):
            r = grp.y - grp.X @ beta
            u = np.einsum("cij,cj->ci", W, r)
            rss += float((r * u).sum())
            us.append(u)
        k = self.k
        ll_ml = -0.5 * (k * LOG2PI + logdet + rss)
        logdet_xwx = 2.0 * float(np.log(np.diag(cX)).sum())
        ll_reml = -0.5 * ((k - p) * LOG2PI + logdet + logdet_xwx + rss) + self.reml_const
        out: dict[str, Any] = {
            "ll": ll_reml if reml else ll_ml,
            "ll_ml": ll_ml,
            "ll_reml": ll_reml,
            "beta": beta,
            "vb": S,
            "sig": sig,
            "gs": gs,
        }
        if grad:
            out["grad"] = self._gradient(sig, gs, cache, us, S, reml)
        if full:
            out["cache"] = cache
            out["us"] = us
        return out

    def _gradient(
        self,
        sig: FArr,
        gs: list[tuple[FArr, list[FArr], FArr, FArr]],
        cache: list[tuple[FArr, FArr, FArr]],
        us: list[FArr],
        S: FArr,
        reml: bool,
    ) -> FArr:
        """Analytic gradient w.r.t. the free transformed parameters.

        d ll / d M_ij = -1/2 (P_ij - u_i u_j) with P = W (ML) or W - WX S X'W (REML). Every
        dM is constant on groups of (i, j) pairs (same level of a factor; same outer level and
        a given pair of inner levels), so the sums of P and u u' over those pairs are level sums
        of u and WX (O(n)) plus masked sums of W (O(n^2) per cluster, done in bulk).
        """
        p = self.p
        trW_s = np.zeros(len(self.sterms))
        usum_s = [np.zeros(len(s.levels)) for s in self.sterms]
        ysum_s = [np.zeros((len(s.levels), p)) for s in self.sterms]
        tW_g = [np.zeros(g.q * g.q) for g in self.gterms]
        usum_g = [np.zeros(len(g.outer_levels) * g.q) for g in self.gterms]
        ysum_g = [np.zeros((len(g.outer_levels) * g.q, p)) for g in self.gterms]
        for grp, (_, W, WX), u in zip(self.groups, cache, us, strict=True):
            Wf = W.ravel()
            uf = u.ravel()
            WXf = WX.reshape(-1, p) if reml else None
            for j, (mask, codes) in enumerate(zip(grp.smasks, grp.scodes, strict=True)):
                trW_s[j] += float(np.vdot(Wf, mask.ravel()))
                nl = usum_s[j].size
                usum_s[j] += np.bincount(codes, weights=uf, minlength=nl)
                if reml:
                    for c in range(p):
                        ysum_s[j][:, c] += np.bincount(codes, weights=WXf[:, c], minlength=nl)
            for t, (g, cls, comb) in enumerate(zip(self.gterms, grp.gcls, grp.gcomb, strict=True)):
                qq = g.q * g.q
                tW_g[t] += np.bincount(cls.ravel(), weights=Wf, minlength=qq + 1)[:qq]
                nl = usum_g[t].size
                usum_g[t] += np.bincount(comb, weights=uf, minlength=nl)
                if reml:
                    for c in range(p):
                        ysum_g[t][:, c] += np.bincount(comb, weights=WXf[:, c], minlength=nl)
        gtheta: list[float] = []
        for j, s in enumerate(self.sterms):
            if not np.isnan(s.fixed):
                continue
            a = trW_s[j] - float(np.vdot(usum_s[j], usum_s[j]))
            if reml:
                a -= float(np.einsum("lp,pq,lq->", ysum_s[j], S, ysum_s[j]))
            gtheta.append(sig[j] * (-0.5 * a))
        for t, g in enumerate(self.gterms):
            q = g.q
            U = usum_g[t].reshape(-1, q)
            T = tW_g[t].reshape(q, q) - U.T @ U
            if reml:
                Y = ysum_g[t].reshape(-1, q, p)
                T -= np.einsum("oap,pr,obr->ab", Y, S, Y, optimize=True)
            T *= -0.5
            for dG in gs[t][1]:
                gtheta.append(float(np.vdot(T, dG)))
        return np.array(gtheta, dtype=float)


def _v_blocks(
    V: Any,
    data: pd.DataFrame,
    cl_codes: NDArray[np.int64],
    groups_rows: list[NDArray[np.int64]],
    first_order: NDArray[np.int64],
) -> list[FArr]:
    """Per-group stacked V blocks from any accepted V input."""
    n = len(data)
    out = [np.zeros((r.shape[0], r.shape[1], r.shape[1])) for r in groups_rows]
    if isinstance(V, str):
        v = data[V].to_numpy(dtype=float)
        for g, r in enumerate(groups_rows):
            idx = np.arange(r.shape[1])
            out[g][:, idx, idx] = v[r]
        return out
    if isinstance(V, (list, tuple)):
        blocks = [np.atleast_2d(np.asarray(b, dtype=float)) for b in V]
        if len(blocks) != len(first_order):
            raise ValueError(f"V: {len(blocks)} blocks given for {len(first_order)} clusters")
        rank = np.empty(len(first_order), dtype=np.int64)
        rank[first_order] = np.arange(len(first_order))  # cluster code -> block index
        for g, r in enumerate(groups_rows):
            c0 = cl_codes[r[:, 0]]
            for ci, cc in enumerate(c0):
                b = blocks[rank[cc]]
                if b.shape != (r.shape[1], r.shape[1]):
                    raise ValueError("V: block size does not match the cluster's number of rows")
                out[g][ci] = b
        return out
    if sp.issparse(V):
        Vc = sp.coo_matrix(V)
        if Vc.shape != (n, n):
            raise ValueError(f"V must be {n} x {n}")
        row, col, val = Vc.row, Vc.col, Vc.data
    else:
        Va = np.asarray(V, dtype=float)
        if Va.ndim == 1:
            if Va.size != n:
                raise ValueError(f"V must have {n} entries")
            for g, r in enumerate(groups_rows):
                idx = np.arange(r.shape[1])
                out[g][:, idx, idx] = Va[r]
            return out
        if Va.shape != (n, n):
            raise ValueError(f"V must be {n} x {n}")
        row, col = np.nonzero(Va)
        val = Va[row, col]
    if np.any(cl_codes[row] != cl_codes[col]):
        raise ValueError("V has non-zero covariances between clusters: choose a coarser cluster")
    grp_of = np.empty(cl_codes.max() + 1, dtype=np.int64)
    pos_in_grp = np.empty(cl_codes.max() + 1, dtype=np.int64)
    local = np.empty(n, dtype=np.int64)
    for g, r in enumerate(groups_rows):
        c0 = cl_codes[r[:, 0]]
        grp_of[c0] = g
        pos_in_grp[c0] = np.arange(len(c0))
        local[r] = np.arange(r.shape[1])[None, :]
    cc = cl_codes[row]
    gi = grp_of[cc]
    for g in range(len(groups_rows)):
        m = gi == g
        np.add.at(out[g], (pos_in_grp[cc[m]], local[row[m]], local[col[m]]), val[m])
    return out


def prepare(
    data: pd.DataFrame,
    yi: str,
    V: Any,
    mods: str | ArrayLike | None,
    random: Sequence[RandomTerm],
    cluster: str | None,
) -> Model:
    """Build the :class:`Model` of :func:`hairtrial.models.multilevel.fit_mv` from its inputs.

    Codes the fixed effects (``mods``) and the random terms, checks that ``V`` and every term
    are nested in the clusters, fixes the components that cannot be estimated (as metafor,
    with notes) and stacks clusters of equal size.

    Parameters
    ----------
    data, yi, V, mods, random, cluster
        As :func:`hairtrial.models.multilevel.fit_mv`.

    Returns
    -------
    Model
    """
    notes: list[str] = []
    data = data.reset_index(drop=True)
    y = data[yi].to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("yi must be finite (drop rows with missing values first)")
    k = y.size
    if k <= 1:
        raise ValueError("need at least 2 rows")
    if mods is None:
        X, xnames = np.ones((k, 1)), ["intrcpt"]
    elif isinstance(mods, str):
        X, xnames = design_matrix(mods, data)
    else:
        X = np.asarray(mods, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.shape[0] != k:
            raise ValueError("mods has the wrong number of rows")
        xnames = [f"X{j + 1}" for j in range(X.shape[1])]
        if isinstance(mods, pd.DataFrame):
            xnames = [str(c) for c in mods.columns]
    n0 = xnames
    X, xnames = drop_dependent(X, xnames)
    if len(xnames) < len(n0):
        dropped = [nm for nm in n0 if nm not in xnames]
        notes.append(f"redundant predictors dropped from the model: {', '.join(dropped)}")
    if np.linalg.eigvalsh(X.T @ X).min() <= 1e-7:
        raise ValueError("model matrix not of full rank")
    p = X.shape[1]
    if p >= k:
        raise ValueError("need more rows than coefficients")

    # ---- random terms
    sterms: list[STerm] = []
    gterms: list[GTerm] = []
    outer_candidates: list[str] = []
    for term in random:
        if term.inner is None:
            parts = term.outer.split("/")
            fixed = as_fixed(term.sigma2, len(parts), f"sigma2 of {term.formula}")
            for d in range(len(parts)):
                spec = "/".join(parts[: d + 1])
                codes, levels = factor_column(data, spec)
                fx = float(fixed[d])
                if len(levels) == 1 and np.isnan(fx):
                    fx = 0.0
                    notes.append(f"single-level factor {spec!r}: its sigma2 fixed to 0")
                sterms.append(STerm(spec, codes, levels, fx))
            outer_candidates.append(parts[0])
        else:
            if len(gterms) == 2:
                raise ValueError("at most two '~ inner | outer' terms (as metafor)")
            prefix = ("tau2", "rho") if not gterms else ("gamma2", "phi")
            if term.inner not in data.columns:
                raise KeyError(f"column {term.inner!r} (random term) not in data")
            raw = data[term.inner].to_numpy()
            if term.struct == "CAR":
                if not pd.api.types.is_numeric_dtype(data[term.inner]):
                    raise ValueError("inner variable must be numeric for struct='CAR'")
                raw = np.round(raw.astype(float), 8)
            icodes, ilevels = factor_codes(raw)
            uniq = np.sort(pd.unique(raw)) if term.struct == "CAR" else None
            ocodes, olevels = factor_column(data, term.outer)
            q = len(ilevels)
            ntau = q if term.struct in ("HCS", "DIAG", "HAR", "UN") else 1
            nrho = q * (q - 1) // 2 if (term.struct == "UN" and q > 1) else 1
            tau_spec = term.tau2 if term.tau2 is not None else term.gamma2
            rho_spec = term.rho if term.rho is not None else term.phi
            g = GTerm(
                term=term,
                struct=term.struct,
                prefix=prefix,
                inner_codes=icodes,
                outer_codes=ocodes,
                levels=ilevels,
                outer_levels=olevels,
                values=(uniq.astype(float) if uniq is not None else np.arange(q, dtype=float)),
                tau2_fixed=as_fixed(tau_spec, ntau, f"{prefix[0]} of {term.formula}"),
                rho_fixed=as_fixed(rho_spec, nrho, f"{prefix[1]} of {term.formula}"),
            )
            if np.any(g.tau2_fixed < 0):
                raise ValueError("fixed variances must be >= 0")
            lab = term.formula
            if g.struct in ("ID", "DIAG"):
                g.rho_fixed[:] = 0.0
            elif g.struct in ("CS", "HCS", "AR", "HAR", "CAR"):
                if q == 1 and np.isnan(g.rho_fixed[0]):
                    g.rho_fixed[0] = 0.0
                    notes.append(f"{lab}: inner factor has a single level, {prefix[1]} fixed to 0")
                elif len(olevels) == k and np.isnan(g.rho_fixed[0]):
                    g.rho_fixed[0] = 0.0
                    notes.append(
                        f"{lab}: each outer level has a single row, {prefix[1]} fixed to 0 "
                        "(not identifiable)"
                    )
            elif g.struct == "UN":
                if q == 1:
                    if np.isnan(g.rho_fixed[0]):
                        g.rho_fixed[0] = 0.0
                else:
                    occ = np.zeros((len(olevels), q), dtype=bool)
                    occ[ocodes, icodes] = True
                    co = occ.T.astype(int) @ occ.astype(int)
                    for b, (i, j) in enumerate(g.rho_pairs()):
                        if co[i, j] == 0 and np.isnan(g.rho_fixed[b]):
                            g.rho_fixed[b] = 0.0
                            notes.append(
                                f"{lab}: levels {ilevels[i]!r} and {ilevels[j]!r} never occur in "
                                f"the same {term.outer!r}: {prefix[1]}.{i + 1}.{j + 1} fixed to 0"
                            )
            if g.struct == "CAR" and np.any((g.rho_fixed < 0) | (g.rho_fixed > 1)):
                raise ValueError("CAR correlation must be in [0, 1]")
            if np.any(np.abs(g.rho_fixed[~np.isnan(g.rho_fixed)]) > 1):
                raise ValueError("fixed correlations must be in [-1, 1]")
            gterms.append(g)
            outer_candidates.append(term.outer)

    # ---- cluster
    groupings = [s.codes for s in sterms] + [g.outer_codes for g in gterms]

    def nests_in(cc: NDArray[np.int64]) -> bool:
        for gc in groupings:
            f = pd.DataFrame({"g": gc, "c": cc}).groupby("g")["c"].nunique()
            if (f > 1).any():
                return False
        return True

    if cluster is not None:
        cl_codes, cl_levels = factor_column(data, cluster)
        if not nests_in(cl_codes):
            raise ValueError(f"random terms are not nested within cluster {cluster!r}")
        cluster_name = cluster
    else:
        cl_codes = None
        for cand in sorted(set(outer_candidates), key=outer_candidates.index):
            codes, levels = factor_column(data, cand)
            if nests_in(codes):
                cl_codes, cl_levels, cluster_name = codes, levels, cand
                break
        if cl_codes is None:
            if groupings:
                from scipy.sparse.csgraph import connected_components

                rows_ = np.concatenate([np.arange(k)] * len(groupings))
                offs = np.cumsum([0] + [int(g.max()) + 1 for g in groupings])
                cols_ = np.concatenate([g + k + o for g, o in zip(groupings, offs, strict=False)])
                A = sp.coo_matrix(
                    (np.ones(rows_.size), (rows_, cols_)), shape=(k + offs[-1], k + offs[-1])
                )
                _, lab = connected_components(A, directed=False)
                cl_codes, uniq = pd.factorize(lab[:k], sort=True)
                cl_codes = cl_codes.astype(np.int64)
                cl_levels = [f"component{u + 1}" for u in range(len(uniq))]
            else:
                cl_codes, cl_levels = np.arange(k, dtype=np.int64), [str(i) for i in range(k)]
            cluster_name = "<components>"

    # ---- groups of equal-size clusters (rows sorted by cluster, data order within)
    order = np.argsort(cl_codes, kind="stable")
    counts = np.bincount(cl_codes, minlength=len(cl_levels))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    first_order = pd.unique(cl_codes)  # cluster codes in order of first appearance
    groups_rows: list[NDArray[np.int64]] = []
    for size in np.unique(counts):
        if size == 0:
            continue
        cids = np.flatnonzero(counts == size)
        groups_rows.append(order[starts[cids][:, None] + np.arange(size)[None, :]])
    Vg = _v_blocks(V, data, cl_codes, groups_rows, np.asarray(first_order))
    groups: list[Group] = []
    for r, Vb in zip(groups_rows, Vg, strict=True):
        Vb = 0.5 * (Vb + np.swapaxes(Vb, 1, 2))
        smasks = [(s.codes[r][:, :, None] == s.codes[r][:, None, :]).astype(float) for s in sterms]
        gcls = []
        for g in gterms:
            a = g.inner_codes[r]
            same = g.outer_codes[r][:, :, None] == g.outer_codes[r][:, None, :]
            gcls.append(np.where(same, a[:, :, None] * g.q + a[:, None, :], g.q * g.q))
        scodes = [s.codes[r].ravel() for s in sterms]
        gcomb = [(g.outer_codes[r] * g.q + g.inner_codes[r]).ravel() for g in gterms]
        groups.append(Group(r, cl_codes[r[:, 0]], X[r], y[r], Vb, smasks, gcls, scodes, gcomb))
    # identical groupings -> non-identifiable
    for i in range(len(sterms)):
        for j in range(i + 1, len(sterms)):
            if len(sterms[i].levels) == len(sterms[j].levels) and np.array_equal(
                pd.factorize(sterms[i].codes)[0], pd.factorize(sterms[j].codes)[0]
            ):
                notes.append(
                    f"sigma2.{i + 1} ({sterms[i].label}) and sigma2.{j + 1} ({sterms[j].label}) "
                    "have identical groupings: only their sum is identifiable"
                )
    # ---- V: log det, diagonal, starting values (as metafor)
    logdetV = 0.0
    vdiag = np.empty(k)
    Vpd = True
    for grp in groups:
        idx = np.arange(grp.V.shape[1])
        vdiag[grp.rows] = grp.V[:, idx, idx]
        sign, ld = np.linalg.slogdet(grp.V)
        if np.any(sign <= 0):
            Vpd = False
        logdetV += float(ld.sum())
    allvipos = bool(np.all(vdiag > 0))
    if np.any(vdiag < 0):
        raise ValueError("negative sampling variances in V")
    nvc = len(sterms) + sum(g.ntau for g in gterms)
    total = None
    if Vpd:
        XtWX = np.zeros((p, p))
        XtWy = np.zeros(p)
        for grp in groups:
            W = np.linalg.inv(grp.V)
            WX = W @ grp.X
            c, n = grp.y.shape
            XtWX += grp.X.reshape(c * n, p).T @ WX.reshape(c * n, p)
            XtWy += WX.reshape(c * n, p).T @ grp.y.ravel()
        bFE = np.linalg.solve(XtWX, XtWy)
        res = y - X @ bFE
        total = max(0.001 * nvc, float(np.var(res, ddof=1)) - 1.0 / float(np.mean(1.0 / vdiag)))
    else:
        bOLS = np.linalg.lstsq(X, y, rcond=None)[0]
        total = float(np.sum((y - X @ bOLS) ** 2) / (k - p))
    reml_const = 0.5 * float(np.linalg.slogdet(X.T @ X)[1])
    return Model(
        data_index=data.index,
        y=y,
        X=X,
        xnames=xnames,
        sterms=sterms,
        gterms=gterms,
        groups=groups,
        cluster_codes=cl_codes,
        cluster_levels=list(cl_levels),
        cluster_name=cluster_name,
        logdetV=logdetV if Vpd else float("nan"),
        allvipos=allvipos,
        total0=float(total),
        reml_const=reml_const,
        notes=notes,
        random=tuple(random),
        spec={},
    )


DEFAULT_CONTROL: dict[str, Any] = {
    "maxiter": 2000,  # L-BFGS-B iterations
    "ftol": 1e-15,  # L-BFGS-B relative change of the criterion
    "gtol": 1e-10,  # L-BFGS-B projected gradient
    "newton_steps": 20,  # polishing steps after L-BFGS-B
    "boundary_rel": 1e-5,  # variance < boundary_rel * (total / #vc) is tried at exactly 0
    "theta0": None,  # starting values on the transformed scale
}


def _fd_hessian(model: Model, theta: FArr, reml: bool) -> FArr:
    m = theta.size
    H = np.zeros((m, m))
    for j in range(m):
        h = 1e-5 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h
        tm[j] -= h
        ep, em = model.evaluate(tp, reml), model.evaluate(tm, reml)
        if not (np.isfinite(ep["ll"]) and np.isfinite(em["ll"])):
            return np.full((m, m), np.nan)
        H[:, j] = (ep["grad"] - em["grad"]) / (2 * h)
    return 0.5 * (H + H.T)


def _optimise(
    model: Model, reml: bool, con: dict[str, Any], theta0: FArr | None = None
) -> tuple[FArr, dict[str, Any]]:
    """Maximise the (RE)ML criterion over the free transformed parameters."""
    m = model.n_free()
    info: dict[str, Any] = {"converged": True, "iterations": 0, "notes": [], "hessian": None}
    if m == 0:
        return np.zeros(0), info
    th0 = model.init_theta() if theta0 is None else np.asarray(theta0, dtype=float)
    bounds = model.bounds()
    th0 = np.clip(
        th0,
        [b[0] if b[0] is not None else -np.inf for b in bounds],
        [b[1] if b[1] is not None else np.inf for b in bounds],
    )
    big = 1e300

    def fun(th: FArr) -> tuple[float, FArr]:
        ev = model.evaluate(th, reml)
        if not np.isfinite(ev["ll"]):
            return big, np.zeros_like(th)
        return -ev["ll"], -ev["grad"]

    if not np.isfinite(model.evaluate(th0, reml, grad=False)["ll"]):
        raise ValueError("marginal covariance not positive definite at the starting values")
    res = scipy.optimize.minimize(
        fun,
        th0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": con["maxiter"], "ftol": con["ftol"], "gtol": con["gtol"], "maxcor": 30},
    )
    theta = np.asarray(res.x, dtype=float)
    info["iterations"] = int(res.nit)
    lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    hi = np.array([b[1] if b[1] is not None else np.inf for b in bounds])
    # Newton polishing with a finite-difference Hessian of the analytic gradient
    ev = model.evaluate(theta, reml)
    H = None
    for step in range(con["newton_steps"]):
        if H is None or step % 5 == 0:
            H = _fd_hessian(model, theta, reml)
        if not np.all(np.isfinite(H)):
            break
        free = (theta > lo + 1e-8) & (theta < hi - 1e-8)
        if not free.any():
            break
        Hf = -H[np.ix_(free, free)]
        try:
            np.linalg.cholesky(Hf)
        except np.linalg.LinAlgError:
            break
        g = ev["grad"][free]
        d = np.linalg.solve(Hf, g)
        dec = float(g @ d)
        if dec < 1e-13 * (1.0 + abs(ev["ll"])):
            break
        t = 1.0
        accepted = False
        for _ in range(30):
            trial = theta.copy()
            trial[free] += t * d
            trial = np.clip(trial, lo, hi)
            et = model.evaluate(trial, reml)
            if np.isfinite(et["ll"]) and et["ll"] >= ev["ll"] - 1e-12 * abs(ev["ll"]):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        theta, ev = trial, et
        info["iterations"] += 1
    info["hessian"] = H
    gmax = float(np.max(np.abs(ev["grad"]))) if m else 0.0
    atb = (theta <= lo + 1e-6) | (theta >= hi - 1e-6)
    ginterior = float(np.max(np.abs(ev["grad"][~atb]))) if (~atb).any() else 0.0
    if not res.success and ginterior > 1e-4 * max(1.0, abs(ev["ll"])) ** 0.5:
        info["converged"] = False
        info["notes"].append(f"optimiser did not converge: {res.message} (max |grad| {gmax:.2g})")
    elif ginterior > 1e-3:
        info["converged"] = False
        info["notes"].append(f"optimiser stopped with max |gradient| {ginterior:.2g}")
    return theta, info


def fit_model(
    model: Model,
    reml: bool,
    con: dict[str, Any],
    theta0: FArr | None = None,
    boundary: bool = True,
) -> tuple[Model, FArr, dict[str, Any]]:
    """Optimise, then move variance components that run to 0 onto the boundary exactly."""
    theta, info = _optimise(model, reml, con, theta0)
    if not boundary or theta.size == 0:
        return model, theta, info
    comps = model.components()
    free_idx = [i for i, c in enumerate(comps) if np.isnan(c["fixed"])]
    ev = model.evaluate(theta, reml, grad=False)
    vc = component_values(model, ev)
    nvc = len(model.sterms) + sum(g.ntau for g in model.gterms)
    thresh = con["boundary_rel"] * model.total0 / max(nvc, 1)
    cands = [
        i
        for i in free_idx
        if comps[i]["kind"] in ("sigma2", "tau2", "gamma2")
        and vc[i] < thresh
        and not (comps[i]["term"][0] == "G" and model.gterms[comps[i]["term"][1]].use_chol)
    ]
    if not cands:
        return model, theta, info
    m0 = model.with_fixed({i: 0.0 for i in cands})
    # starting values: current estimates of the other free parameters
    th_start = theta_from_values(m0, vc)
    theta0b, info0 = _optimise(m0, reml, con, th_start)
    ll0 = m0.evaluate(theta0b, reml, grad=False)["ll"]
    if ll0 >= ev["ll"] - 1e-9 * (1.0 + abs(ev["ll"])):
        info0["iterations"] += info["iterations"]
        info0["boundary"] = cands
        return m0, theta0b, info0
    return model, theta, info


def component_values(model: Model, ev: dict[str, Any]) -> FArr:
    """Natural values of every component (sigma2, then tau2 and rho per G-term) of `ev`.

    Parameters
    ----------
    model : Model
    ev : dict
        Output of :meth:`Model.evaluate`.

    Returns
    -------
    ndarray
    """
    out = list(ev["sig"])
    for _, _, tau2, rho in ev["gs"]:
        out += list(tau2) + list(rho)
    return np.array(out, dtype=float)


def theta_from_values(model: Model, values: FArr) -> FArr:
    """Transformed free parameters of `model` from natural component values."""
    th: list[float] = []
    for j, s in enumerate(model.sterms):
        if np.isnan(s.fixed):
            th.append(math.log(max(values[j], 1e-300)))
    pos = len(model.sterms)
    for g in model.gterms:
        tau2 = values[pos : pos + g.ntau]
        rho = values[pos + g.ntau : pos + g.ntau + g.nrho]
        pos += g.ntau + g.nrho
        if g.use_chol:
            R, _ = g.corr(np.clip(rho, -0.999999, 0.999999))
            sd = np.sqrt(np.maximum(tau2, 1e-300))
            G = sd[:, None] * R * sd[None, :]
            try:
                L = np.linalg.cholesky(G)
            except np.linalg.LinAlgError:
                L = np.linalg.cholesky(G + 1e-8 * np.diag(np.diag(G)))
            th += list(np.log(np.diag(L))) + [L[i, j] for i, j in g.rho_pairs()]
            continue
        _, from_nat, _ = g.rho_transform()
        for a in np.flatnonzero(np.isnan(g.tau2_fixed)):
            th.append(math.log(max(tau2[a], 1e-300)))
        lim = (1e-12, 1 - 1e-12) if g.struct == "CAR" else (-1 + 1e-12, 1 - 1e-12)
        for b in np.flatnonzero(np.isnan(g.rho_fixed)):
            th.append(from_nat(float(np.clip(rho[b], *lim))))
    return np.array(th, dtype=float)
