"""Random-effects terms and their variance structures (the multilevel engine's model parts).

:class:`RandomTerm` and :func:`parse_random` specify one element of metafor's ``random`` list;
``STerm`` (``~ 1 | g``), ``GTerm`` (``~ inner | outer``: the parameterisation of ``G`` for each
of :data:`STRUCTS`, with its derivatives) and ``Group`` (the clusters of one size, stacked) are
the internal representation built from them; ``factor_codes``, ``factor_column``, ``as_fixed``
and ``drop_dependent`` code the data.

Names without a leading underscore are shared between the modules of
:mod:`hairtrial.models.multilevel`; its API is what the subpackage exports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hairtrial.models.formula import level_label

__all__ = [
    "EPS",
    "LOG2PI",
    "STRUCTS",
    "FArr",
    "FixedSpec",
    "GTerm",
    "Group",
    "RandomTerm",
    "STerm",
    "as_fixed",
    "drop_dependent",
    "factor_codes",
    "factor_column",
    "parse_random",
]

#: Structures accepted for ``~ inner | outer`` terms.
STRUCTS: tuple[str, ...] = ("CS", "HCS", "UN", "ID", "DIAG", "AR", "HAR", "CAR")
EPS = float(np.finfo(float).eps)
LOG2PI = math.log(2.0 * math.pi)
FArr = NDArray[np.float64]
#: A fixed value of a variance component (or one per level); None = estimate.
FixedSpec = float | Sequence[float | None] | None


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


def drop_dependent(X: FArr, names: list[str], tol: float = 1e-7) -> tuple[FArr, list[str]]:
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


def factor_codes(values: NDArray[Any]) -> tuple[NDArray[np.int64], list[str]]:
    """Integer codes (levels sorted) and R-style level labels of a random-effects factor.

    Parameters
    ----------
    values : ndarray

    Returns
    -------
    codes : ndarray of int64
    labels : list of str
    """
    codes, uniq = pd.factorize(pd.Series(values), sort=True)
    if (codes < 0).any():
        raise ValueError("missing values in a random-effects factor")
    return codes.astype(np.int64), [level_label(v) for v in uniq]


def factor_column(data: pd.DataFrame, spec: str) -> tuple[NDArray[np.int64], list[str]]:
    """Codes and level labels of a column or of a nested 'g1/g2' combination."""
    parts = spec.split("/")
    for p in parts:
        if p not in data.columns:
            raise KeyError(f"column {p!r} (random term) not in data")
    codes, labels = factor_codes(data[parts[0]].to_numpy())
    for p in parts[1:]:
        c2, l2 = factor_codes(data[p].to_numpy())
        comb = codes * (len(l2) + 1) + c2
        codes, uniq = pd.factorize(comb, sort=True)
        labels = [f"{labels[u // (len(l2) + 1)]}/{l2[u % (len(l2) + 1)]}" for u in uniq]
        codes = codes.astype(np.int64)
    return codes, labels


def as_fixed(spec: FixedSpec, n: int, what: str) -> FArr:
    """Fixed values of `n` components (NaN = estimate) from a :data:`FixedSpec`.

    Parameters
    ----------
    spec : FixedSpec
        None, one value for all, or one value (or None) per component.
    n : int
        Number of components.
    what : str
        Name used in the error message.

    Returns
    -------
    ndarray
    """
    if spec is None:
        return np.full(n, np.nan)
    if np.isscalar(spec):
        return np.full(n, float(spec))  # type: ignore[arg-type]
    vals = np.array([np.nan if v is None else float(v) for v in spec], dtype=float)  # type: ignore[union-attr]
    if vals.size != n:
        raise ValueError(f"{what}: {vals.size} fixed values given, the model has {n}")
    return vals


@dataclass
class STerm:
    """A ``~ 1 | g`` term: codes of the levels of ``g`` and the variance (fixed or NaN)."""

    label: str
    codes: NDArray[np.int64]
    levels: list[str]
    fixed: float  # nan = estimate


@dataclass
class GTerm:
    """A ``~ inner | outer`` term: codes, levels and the parameterisation of its ``G``."""

    term: RandomTerm
    struct: str
    prefix: tuple[str, str]  # ("tau2", "rho") or ("gamma2", "phi")
    inner_codes: NDArray[np.int64]
    outer_codes: NDArray[np.int64]
    levels: list[str]
    outer_levels: list[str]
    values: FArr  # CAR: numeric level values; AR/HAR: positions
    tau2_fixed: FArr
    rho_fixed: FArr

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

    def corr(self, rho: FArr) -> tuple[FArr, list[FArr]]:
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

    def build(self, theta: FArr) -> tuple[FArr, list[FArr], FArr, FArr]:
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
            tau2 = np.where(tau2 <= 10 * EPS, 0.0, tau2)
            return G, dG, tau2, rho
        pos = 0
        tau2 = self.tau2_fixed.copy()
        free_tau = np.flatnonzero(np.isnan(tau2))
        for a in free_tau:
            tau2[a] = math.exp(theta[pos])
            pos += 1
        tau2 = np.where(tau2 <= 10 * EPS, 0.0, tau2)
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

    def init_theta(self, v0: float) -> FArr:
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
class Group:
    """The clusters of one size, stacked into 3-D arrays (one batched evaluation)."""

    rows: NDArray[np.int64]  # (c, n) original row indices
    clusters: NDArray[np.int64]  # (c,) cluster codes
    X: FArr  # (c, n, p)
    y: FArr  # (c, n)
    V: FArr  # (c, n, n)
    smasks: list[FArr]  # per S-term (c, n, n) 0/1
    gcls: list[NDArray[np.int64]]  # per G-term (c, n, n) class ids a*q+b or q*q
    scodes: list[NDArray[np.int64]] = field(default_factory=list)  # per S-term level (c*n,)
    gcomb: list[NDArray[np.int64]] = field(default_factory=list)  # outer*q+inner (c*n,)
