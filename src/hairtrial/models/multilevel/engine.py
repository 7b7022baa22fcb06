"""Multilevel / multivariate meta-analysis (metafor 3.8 ``rma.mv`` parity), fast.

Model (Viechtbauer 2010; Konstantopoulos 2011; Berkey et al. 1998)::

    y = X b + sum_s Z_s u_s + sum_t (inner | outer)_t + e,    e ~ N(0, V),  V known,

fitted by maximum likelihood (``"ML"``) or restricted maximum likelihood (``"REML"``,
Harville 1977). Random terms are given as :class:`RandomTerm` objects:

* ``~ 1 | g`` (``RandomTerm(None, "g")``): a variance component ``sigma2`` for the levels of
  ``g``; ``~ 1 | g1/g2`` (``RandomTerm(None, "g1/g2")``) adds one component for ``g1`` and one
  for the ``g1/g2`` combinations (as metafor).
* ``~ inner | outer`` (``RandomTerm("inner", "outer", struct=...)``): correlated effects for the
  levels of ``inner`` within each level of ``outer``, with variance-covariance matrix ``G``:
  ``CS`` (tau2, rho), ``HCS`` (tau2 per level, one rho), ``UN`` (tau2 per level, one rho per
  pair), ``ID`` (tau2), ``DIAG`` (tau2 per level), ``AR`` (tau2 rho^|i-j|, i, j = positions of
  the sorted levels of an integer-coded time), ``HAR`` (as AR with a tau2 per level) and
  ``CAR`` (tau2 rho^|t_i - t_j| for a continuous time ``inner``). The first such term has
  components ``tau2``/``rho``, the second ``gamma2``/``phi`` (metafor's naming).

Performance design
------------------
The marginal covariance ``M = V + Z G Z'`` is block-diagonal by ``cluster`` (the top-level
grouping in which ``V`` and every random term are nested). Clusters of equal size are stacked
into 3-D arrays, so every likelihood evaluation is a handful of batched numpy operations
(Cholesky, inverse, matmul, ``bincount``) whose cost is linear in the number of clusters. The
(RE)ML log-likelihood has an analytic gradient::

    d ll / d phi = -1/2 sum_ij (P_ij - u_i u_j) dM_ij / d phi,   u = M^-1 (y - X b),

(``P`` = ``M^-1 - M^-1 X (X'M^-1X)^-1 X'M^-1`` for REML, ``M^-1`` for ML; only the diagonal
blocks of ``P`` are needed because ``dM`` is block-diagonal). Variance parameters are optimised
on transformed scales (log variances; ``atanh`` of CS/HCS/AR/HAR correlations; ``logit`` of the
CAR correlation; log-Cholesky factor for an all-free ``UN`` matrix, as metafor) with
L-BFGS-B, then polished with Newton steps on a finite-difference Hessian of the analytic
gradient. Variances whose estimate runs to 0 are then fixed at exactly 0 (boundary) and the
remaining parameters re-optimised.

Conventions that follow metafor 3.8
-----------------------------------
* REML log-likelihood includes ``+ 1/2 log det(X'X)`` (metafor's ``REMLf = TRUE``).
* ``fitstats``: ``parms`` = p + number of estimated components; ML: ``dev = -2 (ll - llQE)``
  with ``llQE = -k/2 log(2 pi) - 1/2 log det V`` (all ``vi > 0``), ``BIC = -2 ll + parms log k``;
  REML: ``dev = -2 ll``, ``BIC`` uses ``log(k - p)`` and ``AICc`` uses ``k - p``.
* ``test="t"``: ``dfs="residual"`` gives ``k - p``; ``dfs="contain"`` gives, per coefficient,
  the smallest number of levels among the random-effect factors within whose levels the
  coefficient's column is constant (``k`` if none), minus ``p``; df < 1 are set to 1.
* Components that cannot be estimated are fixed as metafor does (noted): ``sigma2`` of a
  single-level factor -> 0; ``rho`` when the inner factor has one level or every outer level
  has a single row -> 0; UN correlations of level pairs that never co-occur -> 0.
* Variance components <= 10 machine epsilon are set to 0.

Deliberate differences from metafor (reported in ``MVResult.notes``): linearly dependent
columns of ``X`` are dropped (metafor too, but with a warning only); components at the
boundary are reported as exactly 0 (metafor reports e.g. 3e-8); a nearly singular Hessian of the
(RE)ML criterion is reported as possibly non-identifiable components.

References
----------
.. [1] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
.. [2] Konstantopoulos S (2011). Fixed effects and variance components estimation in
   three-level meta-analysis. Research Synthesis Methods 2:61-76.
.. [3] Berkey CS, Hoaglin DC, Antczak-Bouckoms A, Mosteller F, Colditz GA (1998).
   Meta-analysis of multiple outcomes by regression with random effects. Statistics in
   Medicine 17:2537-2550.
.. [4] Ishak KJ, Platt RW, Joseph L, Hanley JA, Caro JJ (2007). Meta-analysis of longitudinal
   studies. Clinical Trials 4:525-539.
.. [5] Harville DA (1977). Maximum likelihood approaches to variance component estimation and
   to related problems. Journal of the American Statistical Association 72:320-338.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, wraps
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats
from threadpoolctl import ThreadpoolController

from hairtrial.models.formula import design_matrix, level_label

__all__ = [
    "STRUCTS",
    "MVResult",
    "RandomTerm",
    "block_covariance",
    "blups",
    "contrast",
    "design_matrix",
    "fit_mv",
    "lrt",
    "parse_random",
    "profile_ci",
]

#: Structures accepted for ``~ inner | outer`` terms.
STRUCTS: tuple[str, ...] = ("CS", "HCS", "UN", "ID", "DIAG", "AR", "HAR", "CAR")
_EPS = float(np.finfo(float).eps)
_LOG2PI = math.log(2.0 * math.pi)
_FArr = NDArray[np.float64]
FixedSpec = float | Sequence[float | None] | None


# =============================================================================================
# BLAS threads: the work is many tiny matrices; OpenBLAS threads only add contention (busy
# waiting), which on a loaded 2-core machine made fits 5x slower. Fits run with 1 BLAS thread
# (threadpoolctl; the controller is created once, at the first fit, after numpy/scipy loaded
# their BLAS).
# =============================================================================================
@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _single_threaded(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _blas_controller().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


# =============================================================================================
# random-effects specification
# =============================================================================================
@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term, as one element of metafor's ``random`` list.

    Parameters
    ----------
    inner : str or None
        ``None`` for ``~ 1 | outer``; otherwise the column of the inner variable of
        ``~ inner | outer`` (a factor; integer-coded time for AR/HAR; numeric time for CAR).
    outer : str
        Grouping column; for ``inner=None`` it may be nested, ``"g1/g2"``.
    struct : str
        Variance structure of ``~ inner | outer`` terms, one of :data:`STRUCTS`.
    sigma2 : float, sequence or None
        ``~ 1 | g`` terms: fixed value(s) of the variance component(s) (one per nesting level
        for ``"g1/g2"``); ``None`` (or ``None`` entries) = estimate.
    tau2, rho : float, sequence or None
        ``~ inner | outer`` terms: fixed variance(s) / correlation(s) (sequences for HCS, DIAG,
        HAR, UN; UN correlations in metafor's order (2,1), (3,1), ..., (3,2), ...).
    gamma2, phi : float, sequence or None
        Aliases of ``tau2`` / ``rho`` (metafor's names for the second ``inner | outer`` term).

    Examples
    --------
    >>> RandomTerm(None, "study/arm")
    RandomTerm(inner=None, outer='study/arm', struct='CS', sigma2=None, tau2=None, rho=None, \
gamma2=None, phi=None)
    >>> parse_random("~ week | arm", struct="CAR").struct
    'CAR'
    """

    inner: str | None
    outer: str
    struct: str = "CS"
    sigma2: FixedSpec = None
    tau2: FixedSpec = None
    rho: FixedSpec = None
    gamma2: FixedSpec = None
    phi: FixedSpec = None

    def __post_init__(self) -> None:
        if self.struct not in STRUCTS:
            raise ValueError(f"unknown struct {self.struct!r}; choose one of {STRUCTS}")
        if self.inner is not None and "/" in self.outer:
            raise ValueError("nested outer factors ('g1/g2') are only allowed for '~ 1 | g1/g2'")
        if self.inner is None and any(v is not None for v in (self.tau2, self.rho)):
            raise ValueError("tau2/rho only apply to '~ inner | outer' terms")
        if self.inner is not None and self.sigma2 is not None:
            raise ValueError("sigma2 only applies to '~ 1 | g' terms")
        if self.tau2 is not None and self.gamma2 is not None:
            raise ValueError("give tau2 or its alias gamma2, not both")
        if self.rho is not None and self.phi is not None:
            raise ValueError("give rho or its alias phi, not both")

    @property
    def formula(self) -> str:
        """The term in metafor's formula notation."""
        return f"~ {self.inner if self.inner is not None else 1} | {self.outer}"


def parse_random(formula: str, *, struct: str = "CS", **fixed: FixedSpec) -> RandomTerm:
    """Build a :class:`RandomTerm` from ``"~ 1 | g"``, ``"~ 1 | g1/g2"`` or ``"~ x | g"``.

    Parameters
    ----------
    formula : str
        The term; ``~`` is optional.
    struct : str
        Structure for ``~ inner | outer`` terms.
    **fixed
        ``sigma2``, ``tau2``, ``rho``, ``gamma2``, ``phi`` fixed values (see :class:`RandomTerm`).

    Examples
    --------
    >>> parse_random("~ 1 | study/arm").outer
    'study/arm'
    >>> parse_random("~ week | arm", struct="CAR").inner
    'week'
    """
    text = formula.strip().lstrip("~").strip()
    if text.count("|") != 1:
        raise ValueError(f"random term must look like '~ inner | outer', got {formula!r}")
    inner, outer = (part.strip() for part in text.split("|"))
    outer = "/".join(p.strip() for p in outer.split("/"))
    if not outer or not inner:
        raise ValueError(f"random term must look like '~ inner | outer', got {formula!r}")
    return RandomTerm(None if inner == "1" else inner, outer, struct=struct, **fixed)


# =============================================================================================
# design matrix (formulas: hairtrial.models.formula, on formulaic)
# =============================================================================================
def _drop_dependent(X: _FArr, names: list[str], tol: float = 1e-7) -> tuple[_FArr, list[str]]:
    """Drop columns linearly dependent on earlier ones (pivot order as R's lm)."""
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        nx = np.linalg.norm(x)
        if nx == 0:
            continue
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)
        nr = np.linalg.norm(r)
        if nr > tol * nx:
            keep.append(j)
            Q = np.column_stack([Q, r / nr])
    return X[:, keep], [names[j] for j in keep]


# =============================================================================================
# internal model representation
# =============================================================================================
def _codes(values: NDArray[Any]) -> tuple[NDArray[np.int64], list[str]]:
    codes, uniq = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError("missing values in a random-effects factor")
    return codes.astype(np.int64), [level_label(v) for v in uniq]


def _factor_column(data: pd.DataFrame, spec: str) -> tuple[NDArray[np.int64], list[str]]:
    """Codes and level labels of a column or of a nested 'g1/g2' combination."""
    parts = spec.split("/")
    for p in parts:
        if p not in data.columns:
            raise KeyError(f"column {p!r} (random term) not in data")
    codes, labels = _codes(data[parts[0]].to_numpy())
    for p in parts[1:]:
        c2, l2 = _codes(data[p].to_numpy())
        comb = codes * (len(l2) + 1) + c2
        codes, uniq = pd.factorize(comb, sort=True)
        labels = [f"{labels[u // (len(l2) + 1)]}/{l2[u % (len(l2) + 1)]}" for u in uniq]
        codes = codes.astype(np.int64)
    return codes, labels


def _as_fixed(spec: FixedSpec, n: int, what: str) -> _FArr:
    if spec is None:
        return np.full(n, np.nan)
    if np.isscalar(spec):
        return np.full(n, float(spec))  # type: ignore[arg-type]
    vals = np.array([np.nan if v is None else float(v) for v in spec], dtype=float)  # type: ignore[union-attr]
    if vals.size != n:
        raise ValueError(f"{what}: {vals.size} fixed values given, the model has {n}")
    return vals


@dataclass
class _STerm:
    label: str
    codes: NDArray[np.int64]
    levels: list[str]
    fixed: float  # nan = estimate


@dataclass
class _GTerm:
    term: RandomTerm
    struct: str
    prefix: tuple[str, str]  # ("tau2", "rho") or ("gamma2", "phi")
    inner_codes: NDArray[np.int64]
    outer_codes: NDArray[np.int64]
    levels: list[str]
    outer_levels: list[str]
    values: _FArr  # CAR: numeric level values; AR/HAR: positions
    tau2_fixed: _FArr
    rho_fixed: _FArr

    @property
    def q(self) -> int:
        return len(self.levels)

    @property
    def ntau(self) -> int:
        return self.q if self.struct in ("HCS", "DIAG", "HAR", "UN") else 1

    @property
    def nrho(self) -> int:
        return self.q * (self.q - 1) // 2 if (self.struct == "UN" and self.q > 1) else 1

    @property
    def use_chol(self) -> bool:
        return (
            self.struct == "UN"
            and self.q > 1
            and bool(np.all(np.isnan(self.tau2_fixed)))
            and bool(np.all(np.isnan(self.rho_fixed)))
        )

    def n_free(self) -> int:
        if self.use_chol:
            return self.q + self.q * (self.q - 1) // 2
        return int(np.isnan(self.tau2_fixed).sum() + np.isnan(self.rho_fixed).sum())

    def rho_pairs(self) -> list[tuple[int, int]]:
        q = self.q
        return [(i, j) for j in range(q) for i in range(j + 1, q)]  # R lower.tri order

    def corr(self, rho: _FArr) -> tuple[_FArr, list[_FArr]]:
        """Correlation matrix and its derivatives w.r.t. each rho (natural scale)."""
        q = self.q
        s = self.struct
        if s in ("ID", "DIAG") or q == 1:
            return np.eye(q), [np.zeros((q, q)) for _ in rho]
        if s in ("CS", "HCS"):
            R = np.full((q, q), rho[0])
            np.fill_diagonal(R, 1.0)
            d = np.ones((q, q))
            np.fill_diagonal(d, 0.0)
            return R, [d]
        if s == "UN":
            R = np.eye(q)
            ds = []
            for r, (i, j) in zip(rho, self.rho_pairs(), strict=True):
                R[i, j] = R[j, i] = r
                d = np.zeros((q, q))
                d[i, j] = d[j, i] = 1.0
                ds.append(d)
            return R, ds
        if s in ("AR", "HAR"):
            lag = np.abs(np.subtract.outer(np.arange(q), np.arange(q))).astype(float)
        else:  # CAR
            lag = np.abs(np.subtract.outer(self.values, self.values))
        r = float(rho[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            R = np.where(lag == 0, 1.0, np.power(r, lag))
            d = np.where(lag == 0, 0.0, lag * np.power(r, lag - 1.0))
        d = np.where(np.isfinite(d), d, 0.0)
        return R, [d]

    def rho_transform(self) -> tuple[Callable[[float], float], Callable[[float], float], Callable]:
        if self.struct == "CAR":
            return (
                lambda t: 1.0 / (1.0 + math.exp(-t)),
                lambda r: math.log(r / (1.0 - r)),
                lambda r: r * (1.0 - r),
            )
        return math.tanh, math.atanh, lambda r: 1.0 - r * r

    def build(self, theta: _FArr) -> tuple[_FArr, list[_FArr], _FArr, _FArr]:
        """G, dG/dtheta (list), tau2 (ntau), rho (nrho) for this term's free parameters."""
        q = self.q
        if self.use_chol:
            L = np.zeros((q, q))
            di = np.arange(q)
            L[di, di] = np.exp(theta[:q])
            pairs = self.rho_pairs()
            for t, (i, j) in zip(theta[q:], pairs, strict=True):
                L[i, j] = t
            G = L @ L.T
            dG = []
            for a in range(q):
                E = np.zeros((q, q))
                E[a, a] = L[a, a]
                dG.append(E @ L.T + L @ E.T)
            for i, j in pairs:
                E = np.zeros((q, q))
                E[i, j] = 1.0
                dG.append(E @ L.T + L @ E.T)
            tau2 = np.diag(G).copy()
            sd = np.sqrt(tau2)
            rho = np.array([G[i, j] / (sd[i] * sd[j]) for i, j in pairs])
            tau2 = np.where(tau2 <= 10 * _EPS, 0.0, tau2)
            return G, dG, tau2, rho
        pos = 0
        tau2 = self.tau2_fixed.copy()
        free_tau = np.flatnonzero(np.isnan(tau2))
        for a in free_tau:
            tau2[a] = math.exp(theta[pos])
            pos += 1
        tau2 = np.where(tau2 <= 10 * _EPS, 0.0, tau2)
        rho = self.rho_fixed.copy()
        free_rho = np.flatnonzero(np.isnan(rho))
        to_nat, _, dnat = self.rho_transform()
        for b in free_rho:
            rho[b] = to_nat(float(theta[pos]))
            pos += 1
        tvec = tau2 if self.ntau == q else np.repeat(tau2, q)
        sd = np.sqrt(tvec)
        R, dR = self.corr(rho)
        G = sd[:, None] * R * sd[None, :]
        np.fill_diagonal(G, tvec)
        dG = []
        for a in free_tau:
            if self.ntau == 1:
                dG.append(G.copy())
            else:
                E = np.zeros((q, q))
                E[a, a] = 1.0
                dG.append(0.5 * (E @ G + G @ E))
        for b in free_rho:
            dG.append(sd[:, None] * dR[b] * sd[None, :] * dnat(float(rho[b])))
        return G, dG, tau2, rho

    def init_theta(self, v0: float) -> _FArr:
        q = self.q
        if self.use_chol:
            G0 = np.full((q, q), 0.5 * v0)
            np.fill_diagonal(G0, v0)
            L = np.linalg.cholesky(G0)
            return np.concatenate([np.log(np.diag(L)), [L[i, j] for i, j in self.rho_pairs()]])
        _, from_nat, _ = self.rho_transform()
        out = [math.log(v0)] * int(np.isnan(self.tau2_fixed).sum())
        out += [from_nat(0.5)] * int(np.isnan(self.rho_fixed).sum())
        return np.array(out, dtype=float)

    def bounds(self, logscale: float) -> list[tuple[float, float]]:
        q = self.q
        lo, hi = logscale - 40.0, logscale + 25.0
        if self.use_chol:
            return [(lo / 2, hi / 2)] * q + [(None, None)] * (q * (q - 1) // 2)  # type: ignore[list-item]
        rb = (-35.0, 35.0) if self.struct == "CAR" else (-15.0, 15.0)
        return [(lo, hi)] * int(np.isnan(self.tau2_fixed).sum()) + [rb] * int(
            np.isnan(self.rho_fixed).sum()
        )


@dataclass
class _Group:
    rows: NDArray[np.int64]  # (c, n) original row indices
    clusters: NDArray[np.int64]  # (c,) cluster codes
    X: _FArr  # (c, n, p)
    y: _FArr  # (c, n)
    V: _FArr  # (c, n, n)
    smasks: list[_FArr]  # per S-term (c, n, n) 0/1
    gcls: list[NDArray[np.int64]]  # per G-term (c, n, n) class ids a*q+b or q*q
    scodes: list[NDArray[np.int64]] = field(default_factory=list)  # per S-term level (c*n,)
    gcomb: list[NDArray[np.int64]] = field(default_factory=list)  # outer*q+inner (c*n,)


@dataclass
class _Model:
    data_index: pd.Index
    y: _FArr
    X: _FArr
    xnames: list[str]
    sterms: list[_STerm]
    gterms: list[_GTerm]
    groups: list[_Group]
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

    def with_fixed(self, overrides: dict[int, float]) -> _Model:
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

    def init_theta(self) -> _FArr:
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

    def natural(self, theta: _FArr) -> tuple[_FArr, list[tuple[_FArr, list[_FArr], _FArr, _FArr]]]:
        pos = 0
        sig = np.empty(len(self.sterms))
        for j, s in enumerate(self.sterms):
            if np.isnan(s.fixed):
                sig[j] = math.exp(theta[pos])
                pos += 1
            else:
                sig[j] = s.fixed
        sig = np.where(sig <= 10 * _EPS, 0.0, sig)
        gs = []
        for g in self.gterms:
            m = g.n_free()
            gs.append(g.build(theta[pos : pos + m]))
            pos += m
        return sig, gs

    # ---- likelihood -------------------------------------------------------------------------
    def evaluate(
        self, theta: _FArr, reml: bool, grad: bool = True, full: bool = False
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
        ll_ml = -0.5 * (k * _LOG2PI + logdet + rss)
        logdet_xwx = 2.0 * float(np.log(np.diag(cX)).sum())
        ll_reml = -0.5 * ((k - p) * _LOG2PI + logdet + logdet_xwx + rss) + self.reml_const
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
        sig: _FArr,
        gs: list[tuple[_FArr, list[_FArr], _FArr, _FArr]],
        cache: list[tuple[_FArr, _FArr, _FArr]],
        us: list[_FArr],
        S: _FArr,
        reml: bool,
    ) -> _FArr:
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


# =============================================================================================
# preparation
# =============================================================================================
def _v_blocks(
    V: Any,
    data: pd.DataFrame,
    cl_codes: NDArray[np.int64],
    groups_rows: list[NDArray[np.int64]],
    first_order: NDArray[np.int64],
) -> list[_FArr]:
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


def _prepare(
    data: pd.DataFrame,
    yi: str,
    V: Any,
    mods: str | ArrayLike | None,
    random: Sequence[RandomTerm],
    cluster: str | None,
) -> _Model:
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
    X, xnames = _drop_dependent(X, xnames)
    if len(xnames) < len(n0):
        dropped = [nm for nm in n0 if nm not in xnames]
        notes.append(f"redundant predictors dropped from the model: {', '.join(dropped)}")
    if np.linalg.eigvalsh(X.T @ X).min() <= 1e-7:
        raise ValueError("model matrix not of full rank")
    p = X.shape[1]
    if p >= k:
        raise ValueError("need more rows than coefficients")

    # ---- random terms
    sterms: list[_STerm] = []
    gterms: list[_GTerm] = []
    outer_candidates: list[str] = []
    for term in random:
        if term.inner is None:
            parts = term.outer.split("/")
            fixed = _as_fixed(term.sigma2, len(parts), f"sigma2 of {term.formula}")
            for d in range(len(parts)):
                spec = "/".join(parts[: d + 1])
                codes, levels = _factor_column(data, spec)
                fx = float(fixed[d])
                if len(levels) == 1 and np.isnan(fx):
                    fx = 0.0
                    notes.append(f"single-level factor {spec!r}: its sigma2 fixed to 0")
                sterms.append(_STerm(spec, codes, levels, fx))
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
            icodes, ilevels = _codes(raw)
            uniq = np.sort(pd.unique(raw)) if term.struct == "CAR" else None
            ocodes, olevels = _factor_column(data, term.outer)
            q = len(ilevels)
            ntau = q if term.struct in ("HCS", "DIAG", "HAR", "UN") else 1
            nrho = q * (q - 1) // 2 if (term.struct == "UN" and q > 1) else 1
            tau_spec = term.tau2 if term.tau2 is not None else term.gamma2
            rho_spec = term.rho if term.rho is not None else term.phi
            g = _GTerm(
                term=term,
                struct=term.struct,
                prefix=prefix,
                inner_codes=icodes,
                outer_codes=ocodes,
                levels=ilevels,
                outer_levels=olevels,
                values=(uniq.astype(float) if uniq is not None else np.arange(q, dtype=float)),
                tau2_fixed=_as_fixed(tau_spec, ntau, f"{prefix[0]} of {term.formula}"),
                rho_fixed=_as_fixed(rho_spec, nrho, f"{prefix[1]} of {term.formula}"),
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
        cl_codes, cl_levels = _factor_column(data, cluster)
        if not nests_in(cl_codes):
            raise ValueError(f"random terms are not nested within cluster {cluster!r}")
        cluster_name = cluster
    else:
        cl_codes = None
        for cand in sorted(set(outer_candidates), key=outer_candidates.index):
            codes, levels = _factor_column(data, cand)
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
    groups: list[_Group] = []
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
        groups.append(_Group(r, cl_codes[r[:, 0]], X[r], y[r], Vb, smasks, gcls, scodes, gcomb))
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
    return _Model(
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


# =============================================================================================
# optimisation
# =============================================================================================
_DEFAULT_CONTROL: dict[str, Any] = {
    "maxiter": 2000,  # L-BFGS-B iterations
    "ftol": 1e-15,  # L-BFGS-B relative change of the criterion
    "gtol": 1e-10,  # L-BFGS-B projected gradient
    "newton_steps": 20,  # polishing steps after L-BFGS-B
    "boundary_rel": 1e-5,  # variance < boundary_rel * (total / #vc) is tried at exactly 0
    "theta0": None,  # starting values on the transformed scale
}


def _fd_hessian(model: _Model, theta: _FArr, reml: bool) -> _FArr:
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
    model: _Model, reml: bool, con: dict[str, Any], theta0: _FArr | None = None
) -> tuple[_FArr, dict[str, Any]]:
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

    def fun(th: _FArr) -> tuple[float, _FArr]:
        ev = model.evaluate(th, reml)
        if not np.isfinite(ev["ll"]):
            return big, np.zeros_like(th)
        return -ev["ll"], -ev["grad"]

    if not np.isfinite(model.evaluate(th0, reml, grad=False)["ll"]):
        raise ValueError("marginal covariance not positive definite at the starting values")
    res = optimize.minimize(
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


def _fit_model(
    model: _Model,
    reml: bool,
    con: dict[str, Any],
    theta0: _FArr | None = None,
    boundary: bool = True,
) -> tuple[_Model, _FArr, dict[str, Any]]:
    """Optimise, then move variance components that run to 0 onto the boundary exactly."""
    theta, info = _optimise(model, reml, con, theta0)
    if not boundary or theta.size == 0:
        return model, theta, info
    comps = model.components()
    free_idx = [i for i, c in enumerate(comps) if np.isnan(c["fixed"])]
    ev = model.evaluate(theta, reml, grad=False)
    vc = _component_values(model, ev)
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
    th_start = _theta_from_values(m0, vc)
    theta0b, info0 = _optimise(m0, reml, con, th_start)
    ll0 = m0.evaluate(theta0b, reml, grad=False)["ll"]
    if ll0 >= ev["ll"] - 1e-9 * (1.0 + abs(ev["ll"])):
        info0["iterations"] += info["iterations"]
        info0["boundary"] = cands
        return m0, theta0b, info0
    return model, theta, info


def _component_values(model: _Model, ev: dict[str, Any]) -> _FArr:
    out = list(ev["sig"])
    for _, _, tau2, rho in ev["gs"]:
        out += list(tau2) + list(rho)
    return np.array(out, dtype=float)


def _theta_from_values(model: _Model, values: _FArr) -> _FArr:
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


# =============================================================================================
# results
# =============================================================================================
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
    vcov: _FArr
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
    X: _FArr
    y: _FArr
    cluster: NDArray[Any]
    cluster_levels: list[str]
    cluster_rows: list[NDArray[np.int64]]
    cluster_name: str
    ddf: _FArr
    _model: _Model = field(repr=False)
    _theta: _FArr = field(repr=False)
    _state: dict[str, Any] = field(repr=False)

    @property
    def beta(self) -> _FArr:
        """Fixed-effect estimates (array)."""
        return self.coefficients["estimate"].to_numpy()

    @property
    def se(self) -> _FArr:
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

    def _blocks(self, which: str) -> list[_FArr]:
        key = f"_blocks_{which}"
        if key not in self._state:
            out: list[_FArr] = [np.zeros((0, 0))] * len(self.cluster_levels)
            for grp, (M, W, _) in zip(self._model.groups, self._state["cache"], strict=True):
                arr = M if which == "M" else W
                for ci, cc in enumerate(grp.clusters):
                    out[cc] = arr[ci]
            self._state[key] = out
        return self._state[key]

    @cached_property
    def blocks_M(self) -> list[_FArr]:
        """Marginal covariance blocks ``V_j + Z_j G Z_j'`` per cluster (cluster order)."""
        return self._blocks("M")

    @cached_property
    def weights(self) -> list[_FArr]:
        """Fixed-effect weight blocks ``M_j^-1`` per cluster (cluster order)."""
        return self._blocks("W")


def _ddf(model: _Model, dfs: str) -> _FArr:
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
    model: _Model,
    theta: _FArr,
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
        pval = 2 * stats.t.sf(np.abs(stat), ddf)
        crit = stats.t.isf(alpha / 2, ddf)
    else:
        ddf = np.full(p, np.nan)
        pval = 2 * stats.norm.sf(np.abs(stat))
        crit = np.full(p, stats.norm.isf(alpha / 2))
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
    vals = _component_values(model, ev)
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
        -2 * (ll_ml - (-0.5 * k * _LOG2PI - 0.5 * model.logdetV))
        if model.allvipos
        else (-2 * ll_ml)
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


def _comp_term(model: _Model, c: dict[str, Any]) -> str:
    kind, t = c["term"]
    if kind == "S":
        return f"~ 1 | {model.sterms[t].label}"
    return model.gterms[t].term.formula


@_single_threaded
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
    con = dict(_DEFAULT_CONTROL)
    if control:
        unknown = set(control) - set(con)
        if unknown:
            raise ValueError(f"unknown control entries: {sorted(unknown)}")
        con.update(control)
    model = _prepare(data, yi, V, mods, list(random), cluster)
    model.spec.update(method=method, test=test, dfs=dfs, level=level, control=con)
    reml = method == "REML"
    model, theta, info = _fit_model(model, reml, con, con["theta0"])
    return _assemble(model, theta, info, method=method, test=test, dfs=dfs, level=level)


# =============================================================================================
# inference helpers
# =============================================================================================
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
        pval = 2 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.isf(alpha / 2, df)
    else:
        df = np.full(len(est), np.nan)
        pval = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.isf(alpha / 2)
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
    out["pvalue"] = [np.nan, float(stats.chi2.sf(stat, df))]
    return out


def _refit_fixed(result: MVResult, comp: int, val: float) -> float:
    """(RE)ML criterion maximised with component `comp` fixed at `val` (others free)."""
    model = result._model
    vc = result._state["values"]
    m1 = model.with_fixed({comp: val})
    vals = vc.copy()
    vals[comp] = val
    th0 = _theta_from_values(m1, vals)
    con = dict(model.spec["control"])
    reml = result.method == "REML"
    if m1.n_free() == 0:
        return float(m1.evaluate(np.zeros(0), reml, grad=False)["ll"])
    if not np.isfinite(m1.evaluate(th0, reml, grad=False)["ll"]):
        th0 = None
    m1, th, _ = _fit_model(m1, reml, con, th0, boundary=True)
    return float(m1.evaluate(th, reml, grad=False)["ll"])


@_single_threaded
def profile_ci(
    result: MVResult,
    component: str | int | None = None,
    level: float | None = None,
    tol: float = 1e-10,
) -> pd.DataFrame:
    """Profile-likelihood CIs of variance components / correlations (metafor ``confint``).

    The bound for component c is where ``-2 (ll_c(val) - ll_hat) = chi2_{1, level}``, with the
    other components re-estimated at each ``val`` (components fixed in the fit stay fixed).
    Search intervals follow metafor: variances ``[0, max(10, 100 * est)]`` (``[0, 10]`` if the
    estimate is <= sqrt(eps)); CS/HCS/UN correlations ``[-1, 1]``; AR/HAR/CAR ``[min(0, est),
    1]``. If the criterion at an end of the interval is still inside the region, that end is
    the bound (noted). Roots are found with Brent's method to ``tol``.

    Parameters
    ----------
    result : MVResult
    component : str, int or None
        Full or short component name (``"sigma2.1"``), a row of ``variance_components``, or
        None for all estimated components.
    level : float or None
        Confidence level (default: the fit's).
    tol : float
        Root-finding tolerance.

    Returns
    -------
    DataFrame
        ``component, estimate, ci_lower, ci_upper, note``.
    """
    level = result.level if level is None else level
    vc = result.variance_components
    if component is None:
        rows = [i for i in range(len(vc)) if not vc["fixed"].iloc[i]]
    elif isinstance(component, (int, np.integer)):
        rows = [int(component)]
    else:
        hit = vc.index[
            (vc["component"] == component) | (vc["component"].str.split(" ").str[0] == component)
        ]
        if len(hit) != 1:
            raise KeyError(f"no (unique) component {component!r}")
        rows = [int(hit[0])]
    crit = stats.chi2.isf(1 - level, 1)
    ll_hat = result.logLik
    model = result._model
    out = []
    for i in rows:
        if vc["fixed"].iloc[i]:
            raise ValueError(f"component {vc['component'].iloc[i]} was fixed")
        est = float(vc["estimate"].iloc[i])
        kind = vc["type"].iloc[i]
        if kind in ("sigma2", "tau2", "gamma2"):
            vmin = 0.0
            vmax = 10.0 if est <= math.sqrt(_EPS) else max(10.0, 100 * est)
        else:
            struct = model.gterms[model.components()[i]["term"][1]].struct
            vmin = -1.0 if struct in ("CS", "HCS", "UN") else min(0.0, est)
            vmax = 1.0

        def f(val: float, i: int = i) -> float:
            try:
                return -2.0 * (_refit_fixed(result, i, val) - ll_hat) - crit
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                return float("nan")

        notes = []
        bounds = []
        for end, sign in ((vmin, -1), (vmax, 1)):
            step = abs(end - est) / 10
            e = end
            val = float("nan")
            for _ in range(10):
                fe = f(e)
                if np.isfinite(fe):
                    if fe < 0:
                        val = e
                        if (
                            kind in ("sigma2", "tau2", "gamma2")
                            and sign > 0
                            or (kind in ("rho", "phi") and abs(e) < 1)
                        ):
                            notes.append(
                                f"{'upper' if sign > 0 else 'lower'} bound at the end "
                                "of the search interval"
                            )
                    else:
                        lo_, hi_ = (e, est) if sign < 0 else (est, e)
                        val = optimize.brentq(f, lo_, hi_, xtol=tol, rtol=4 * _EPS, maxiter=500)
                    break
                e = e - sign * step
            if not np.isfinite(val):
                notes.append(f"{'upper' if sign > 0 else 'lower'} bound not found")
            bounds.append(val)
        out.append(
            {
                "component": vc["component"].iloc[i],
                "estimate": est,
                "ci_lower": bounds[0],
                "ci_upper": bounds[1],
                "note": "; ".join(notes),
            }
        )
    return pd.DataFrame(out)


@_single_threaded
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
            return float(stats.norm.isf(alpha / 2))
        df = k - p if result.dfs == "residual" else nlev - p
        return float(stats.t.isf(alpha / 2, max(df, 1)))

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
        pred[np.abs(pred) < 100 * _EPS] = 0.0
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
        pred = np.where(np.abs(pred) < 100 * _EPS, 0.0, pred)
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


# =============================================================================================
# sampling covariance helpers (vcalc-like)
# =============================================================================================
@_single_threaded
def block_covariance(
    data: pd.DataFrame,
    *,
    vi: str | None = None,
    arm: str | None = None,
    time: str | None = None,
    rho: float | Callable[[_FArr, _FArr], _FArr] = 0.0,
    sd: str | None = None,
    n: str | None = None,
    contrast: tuple[str, str] | None = None,
    var: tuple[str, str] | None = None,
    V: ArrayLike | sp.spmatrix | None = None,
) -> sp.csr_matrix:
    """Known sampling covariance V for arm-week rows or for contrasts sharing a control arm.

    Three uses:

    1. **Arm-level rows** (``arm`` given, ``contrast`` None): rows are the mean change of one arm
       at one time. Diagonal: ``vi`` (or ``sd^2 / n``). Two rows of the same arm at times t and s
       have covariance ``rho_ts * sqrt(v_t v_s)``; with ``sd`` and ``n`` columns this is
       ``rho_ts * sd_t * sd_s / max(n_t, n_s)`` (the later sample is a subset of the earlier
       one; ``sd_t sd_s rho / n`` with no drop-out). ``rho`` is a number or a function of the
       two time arrays (e.g. ``lambda t, s: 0.9 ** abs(t - s)``); rows of the same arm at the
       same time are treated as the same measurement (covariance ``sqrt(v_t v_s)``).
    2. **Contrast rows** (``contrast=(exp_arm_col, control_arm_col)``, ``var=(var_exp_col,
       var_control_col)``): each row is ``mean(exp) - mean(control)`` at ``time``. The
       covariance of two rows is the sum, over the arms they share (with sign), of the
       arm-level covariances from 1.; two contrasts against the same control arm at the same
       time thus have covariance ``var(control mean)``.
    3. **User-supplied V** (``V`` given): returned as sparse CSR after checking symmetry.

    Returns
    -------
    scipy.sparse.csr_matrix
        k x k (use ``.toarray()`` for a dense matrix); block-diagonal by arm (1.) or by
        connected arms (2.).

    Examples
    --------
    >>> d = pd.DataFrame({"arm": ["a", "a", "b"], "week": [4, 8, 4], "vi": [1.0, 4.0, 2.0]})
    >>> block_covariance(d, vi="vi", arm="arm", time="week", rho=0.5).toarray()
    array([[1., 1., 0.],
           [1., 4., 0.],
           [0., 0., 2.]])
    """
    k = len(data)
    if V is not None:
        Vs = sp.csr_matrix(V, dtype=float)
        if Vs.shape != (k, k):
            raise ValueError(f"V must be {k} x {k}")
        if abs(Vs - Vs.T).max() > 1e-12 * max(abs(Vs).max(), 1e-300):
            raise ValueError("V must be symmetric")
        return Vs
    tvals = data[time].to_numpy(dtype=float) if time is not None else np.zeros(k)

    def rho_fn(t1: _FArr, t2: _FArr) -> _FArr:
        r = rho(t1, t2) if callable(rho) else np.full(np.broadcast(t1, t2).shape, float(rho))
        return np.where(t1 == t2, 1.0, r)

    # list of (row, arm label, sign, variance, sd, n) "arm terms"
    if contrast is None:
        if arm is None:
            raise ValueError("give arm= (arm-level rows) or contrast= (contrast rows)")
        if vi is not None:
            v = data[vi].to_numpy(dtype=float)
        elif sd is not None and n is not None:
            v = data[sd].to_numpy(dtype=float) ** 2 / data[n].to_numpy(dtype=float)
        else:
            raise ValueError("give vi= or both sd= and n=")
        terms = [(np.arange(k), data[arm].astype(str).to_numpy(), np.ones(k), v)]
    else:
        if var is None:
            raise ValueError("contrast rows need var=(var_exp_col, var_control_col)")
        terms = [
            (
                np.arange(k),
                data[contrast[0]].astype(str).to_numpy(),
                np.ones(k),
                data[var[0]].to_numpy(dtype=float),
            ),
            (
                np.arange(k),
                data[contrast[1]].astype(str).to_numpy(),
                -np.ones(k),
                data[var[1]].to_numpy(dtype=float),
            ),
        ]
    use_sdn = contrast is None and sd is not None and n is not None and vi is None
    sdv = data[sd].to_numpy(dtype=float) if use_sdn else None
    nv = data[n].to_numpy(dtype=float) if use_sdn else None
    rows_ = np.concatenate([t[0] for t in terms])
    arms_ = np.concatenate([t[1] for t in terms])
    sign_ = np.concatenate([t[2] for t in terms])
    var_ = np.concatenate([t[3] for t in terms])
    if np.any(var_ < 0) or not np.all(np.isfinite(var_)):
        raise ValueError("variances must be finite and >= 0")
    codes, _ = pd.factorize(arms_)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ii, jj, vv = [], [], []
    for size in np.unique(counts):  # arms of equal size in one batch
        cid = np.flatnonzero(counts == size)
        blk = order[starts[cid][:, None] + np.arange(size)[None, :]]  # (c, size) entries
        r = rows_[blk]
        t = tvals[r]
        corr = rho_fn(t[:, :, None], t[:, None, :])
        if use_sdn:
            c = (
                corr
                * sdv[r][:, :, None]
                * sdv[r][:, None, :]
                / np.maximum(nv[r][:, :, None], nv[r][:, None, :])
            )
        else:
            sq = np.sqrt(var_[blk])
            c = corr * sq[:, :, None] * sq[:, None, :]
        c = c * sign_[blk][:, :, None] * sign_[blk][:, None, :]
        ii.append(np.broadcast_to(r[:, :, None], c.shape).ravel())
        jj.append(np.broadcast_to(r[:, None, :], c.shape).ravel())
        vv.append(c.ravel())
    out = sp.coo_matrix(
        (np.concatenate(vv), (np.concatenate(ii), np.concatenate(jj))), shape=(k, k)
    ).tocsr()
    out.sum_duplicates()
    out.eliminate_zeros()
    return out
