"""Cluster-robust (CR2) variance estimation with small-sample (Satterthwaite / HTZ) tests.

This module reproduces what R's ``clubSandwich`` 0.5.8 computes for metafor ``rma.mv`` and
``rma.uni`` fits with ``vcovCR(fit, cluster, type = "CR2")`` followed by ``coef_test(...,
test = "Satterthwaite")``, ``conf_int()``, ``linear_contrast()`` and ``Wald_test(..., test =
"HTZ")``. It works on plain arrays (design matrix, outcomes, per-cluster marginal covariance
and weight matrices), so any fitting engine can call it.

Notation (clubSandwich's): clusters ``j = 1..J``; ``X_j`` (n_j x p), ``W_j`` the weight
matrices, ``Theta_j`` the *target* (working-model) covariance, ``M = (sum_j X_j' W_j X_j)^-1``,
residuals ``e = y - X beta``. The CR2 estimator is::

    V^CR2 = M [sum_j X_j' W_j A_j e_j e_j' A_j' W_j X_j] M,

with adjustment matrices ``A_j = U_j' G_j^{-1/2} U_j``, where ``U_j`` is the upper Cholesky
factor of ``Theta_j`` (``Theta_j = U_j' U_j``) and ``G_j = U_j [(I - H) Theta (I - H)']_jj U_j'``
with ``H = X M X' W``. ``G^{-1/2}`` is the symmetric eigen-decomposition power in which
eigenvalues ``<= 1e-12`` (absolute, as in ``clubSandwich:::matrix_power``) are set to zero.

Choices reproduced from clubSandwich for metafor objects:

* ``rma.mv`` without a user weight matrix (``obj$W`` is ``NULL``): ``W_j = M_j^{-1}`` and
  ``inverse_var = TRUE``; the target is then ``Theta_j = W_j^{-1}`` and ``(I - H)_jj`` uses the
  inverse-variance shortcut ``G_j = U_j (I - X_j M X_j' W_j) Theta_j U_j'``. This is
  ``target="model"`` with ``W_blocks=None``.
* ``rma.mv`` fitted with ``W = ...``: ``W_j`` are the user weights, the target is the model's
  marginal covariance ``obj$M`` (``targetVariance``), ``inverse_var = FALSE``: the full
  ``(I - H) Theta (I - H)'`` block is used. This is ``target="model"`` with ``W_blocks`` given.
* ``rma.uni`` (diagonal blocks ``vi + tau2``): weighted without user weights is the
  inverse-variance case; with ``weights =`` (or ``weighted = FALSE``, i.e. ``W = I``) it is the
  general case with target ``vi + tau2``. clubSandwich rescales rma.uni weights by their mean;
  the estimator, the adjustment matrices and the degrees of freedom are invariant to that
  scale, so it is not done here.
* ``target="inverse_var"`` forces the inverse-variance form with ``Theta_j = W_j^{-1}``
  (clubSandwich's ``inverse_var = TRUE`` with user weights); a sequence of matrices is an
  explicit target (clubSandwich's ``target =`` argument, with ``inverse_var = FALSE``).

Degrees of freedom. For a linear combination ``c' beta`` with ``g_j = A_j' W_j X_j M c``, the
CR2 variance is ``sum_j (g_j' e_j)^2``; under the target model ``e ~ N(0, (I-H) Theta (I-H)')``
its covariance structure is the J x J matrix ``P_jk = g_j' [(I-H) Theta (I-H)']_jk g_k``, and
the Satterthwaite df is ``tr(P)^2 / sum(P^2)`` (clubSandwich ``Satterthwaite``, via
``get_GH`` / ``get_P_array``). The HTZ test of ``C beta = 0`` (q rows) uses the q x q x J x J
array ``P^{st}``, ``Omega_st = tr(P^{st})``, ``B = Omega^{-1/2} P Omega^{-1/2}``,
``nu = q (q + 1) / sum_st [sum(B^{st} * B^{ts}) + sum(B^{ss} * B^{tt})]`` and the Hotelling
approximation ``F = (nu - q + 1) / nu * Q / q ~ F(q, nu - q + 1)``.

Not reproduced: clubSandwich's removal of aliased (``NA``) coefficients (``X`` must have full
column rank here), rows with zero weights (drop them before calling), the saddlepoint test,
the HTA/HTB/EDF/EDT Wald variants, CR0/CR1/CR3 and the augmented model matrix used for
absorbed fixed effects (not used for metafor objects).

References
----------
.. [1] Bell RM, McCaffrey DF (2002). Bias reduction in standard errors for linear regression
   with multi-stage samples. Survey Methodology 28(2):169-181.
.. [2] Pustejovsky JE, Tipton E (2018). Small-sample methods for cluster-robust variance
   estimation and hypothesis testing in fixed effects models. Journal of Business & Economic
   Statistics 36(4):672-683.
.. [3] Tipton E, Pustejovsky JE (2015). Small-sample adjustments for tests of moderators and
   model fit using robust variance estimation in meta-regression. Journal of Educational and
   Behavioral Statistics 40(6):604-634.
.. [4] Pustejovsky JE (2023). clubSandwich: Cluster-robust (sandwich) variance estimators with
   small-sample corrections. R package version 0.5.8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy  # scipy.optimize and scipy.linalg load on first use: see hairtrial.models
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist

__all__ = ["RobustResult", "WaldResult", "cr2", "matrix_power", "split_blocks"]

Array = NDArray[np.float64]

#: eigenvalue threshold of ``clubSandwich:::matrix_power`` (``tol = -12`` -> ``10^-12``)
EIGEN_TOL = 1e-12

_TABLE_COLUMNS = [
    "term",
    "estimate",
    "se",
    "statistic",
    "df",
    "pvalue",
    "ci_lower",
    "ci_upper",
]


def matrix_power(x: ArrayLike, p: float, tol: float = EIGEN_TOL) -> Array:
    """Power of a symmetric matrix through its eigen-decomposition.

    Eigenvalues ``<= tol`` (an absolute threshold) are mapped to 0, as in
    ``clubSandwich:::matrix_power``; with ``p < 0`` this gives a generalised inverse power.

    Parameters
    ----------
    x : array_like
        Symmetric matrix (only the lower triangle is read, like R's ``eigen(symmetric=TRUE)``).
    p : float
        The power.
    tol : float, optional
        Eigenvalues at or below ``tol`` are treated as zero.

    Returns
    -------
    ndarray
        ``V diag(lambda^p) V'``.

    Examples
    --------
    >>> matrix_power([[4.0, 0.0], [0.0, 9.0]], -0.5)
    array([[0.5       , 0.        ],
           [0.        , 0.33333333]])
    """
    vals, vecs = np.linalg.eigh(np.asarray(x, dtype=float))
    pos = vals > tol
    val_p = np.zeros_like(vals)
    val_p[pos] = vals[pos] ** p
    return (vecs * val_p) @ vecs.T


def split_blocks(matrix: ArrayLike, cluster: ArrayLike) -> list[Array]:
    """Diagonal blocks of an n x n matrix for contiguous cluster labels.

    Parameters
    ----------
    matrix : array_like
        n x n matrix (e.g. metafor's ``M`` or ``W``), rows in cluster order.
    cluster : array_like
        n cluster labels, each cluster in one contiguous run.

    Returns
    -------
    list of ndarray
        One block per cluster, in order of appearance.

    Examples
    --------
    >>> [b.shape for b in split_blocks(np.eye(3), ["a", "a", "b"])]
    [(2, 2), (1, 1)]
    """
    mat = np.asarray(matrix, dtype=float)
    starts, sizes, _ = _cluster_runs(cluster)
    if mat.shape != (int(sizes.sum()),) * 2:
        raise ValueError("matrix must be n x n with n = len(cluster)")
    return [mat[s : s + m, s : s + m] for s, m in zip(starts, sizes, strict=True)]


def _cluster_runs(cluster: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.intp], list]:
    labels = list(np.asarray(cluster).ravel())
    if not labels:
        raise ValueError("cluster is empty")
    starts, names = [0], [labels[0]]
    for i in range(1, len(labels)):
        if labels[i] != labels[i - 1]:
            starts.append(i)
            names.append(labels[i])
    if len(set(names)) != len(names):
        raise ValueError("cluster labels must be contiguous (rows sorted by cluster)")
    starts_arr = np.asarray(starts, dtype=np.intp)
    sizes = np.diff(np.append(starts_arr, len(labels)))
    return starts_arr, sizes, names


def _as_block(b: ArrayLike, m: int, what: str) -> Array:
    arr = np.asarray(b, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim == 1:
        arr = np.diag(arr)
    if arr.shape != (m, m):
        raise ValueError(f"{what} block has shape {arr.shape}, cluster has {m} rows")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} block contains non-finite values")
    return arr


def _chol_inv(a: Array) -> Array:
    """``chol2inv(chol(a))``: inverse of a symmetric positive-definite matrix."""
    c = scipy.linalg.cho_factor(a, lower=False)
    return scipy.linalg.cho_solve(c, np.eye(a.shape[0]))


@dataclass(frozen=True)
class WaldResult:
    """HTZ Wald test of ``L beta = 0`` (clubSandwich ``Wald_test(..., test = "HTZ")``).

    Attributes
    ----------
    statistic : float
        The approximate F statistic ``delta * Q / q`` (``Fstat``).
    df_num : int
        Numerator df ``q`` (number of constraints).
    df_denom : float
        Denominator df ``nu - q + 1``.
    pvalue : float
        Upper-tail F probability (NaN when ``df_denom <= 0``, as in clubSandwich).
    delta : float
        Hotelling scaling ``max((nu - q + 1) / nu, 0)``.
    q_stat : float
        The unscaled Wald statistic ``Q = (L b)' (L V L')^{-1} (L b)``.
    """

    statistic: float
    df_num: int
    df_denom: float
    pvalue: float
    delta: float
    q_stat: float


@dataclass(frozen=True)
class _Pieces:
    """Per-cluster quantities needed for the Satterthwaite / HTZ degrees of freedom."""

    bread: Array  # M = (X'WX)^-1
    omega: Array | None  # M (sum X'W Theta W X) M; None in the inverse-variance case
    est: tuple[Array, ...]  # E_j = X_j' W_j A_j  (p x n_j)
    x: tuple[Array, ...]
    theta: tuple[Array, ...]
    thetawx: tuple[Array, ...] | None  # Theta_j W_j X_j (general case only)


@dataclass(frozen=True, eq=False)
class RobustResult:
    """CR2 cluster-robust inference for a linear (GLS / WLS) model.

    Attributes
    ----------
    vcov : ndarray
        p x p CR2 covariance matrix of the coefficient estimates.
    table : pandas.DataFrame
        Tidy coefficient table: ``term, estimate, se, statistic, df, pvalue, ci_lower,
        ci_upper`` (Satterthwaite df; ``level`` CIs as ``clubSandwich::conf_int``).
    terms : tuple of str
        Coefficient names.
    beta : ndarray
        Coefficient estimates.
    n_clusters : int
        Number of clusters J.
    inverse_var : bool
        Whether the inverse-variance form of the adjustment matrices was used.
    level : float
        Confidence level of ``table``.
    adjustments : tuple of ndarray
        The CR2 adjustment matrices ``A_j``, in cluster order.
    """

    vcov: Array
    table: pd.DataFrame
    terms: tuple[str, ...]
    beta: Array
    n_clusters: int
    inverse_var: bool
    level: float
    adjustments: tuple[Array, ...] = field(repr=False)
    _pieces: _Pieces = field(repr=False)

    # ------------------------------------------------------------------------------------
    def _contrast_matrix(self, L: ArrayLike) -> Array:
        mat = np.atleast_2d(np.asarray(L, dtype=float))
        if mat.ndim != 2 or mat.shape[1] != len(self.terms):
            raise ValueError(f"L must have {len(self.terms)} columns")
        return mat

    def _p_array(self, C: Array) -> Array:
        """P[s, t, j, k] for the rows of C (clubSandwich ``get_P_array(all_terms = TRUE)``)."""
        pc = self._pieces
        # G_j = C M E_j (q x n_j): row s is g_{sj}'
        g = [C @ pc.bread @ e for e in pc.est]
        u = np.stack([gj @ xj for gj, xj in zip(g, pc.x, strict=True)])  # J x q x p
        diag = np.stack([gj @ th @ gj.T for gj, th in zip(g, pc.theta, strict=True)])  # J q q
        if pc.omega is None:
            P = -np.einsum("jsa,ab,ktb->stjk", u, pc.bread, u)
        else:
            assert pc.thetawx is not None
            t = np.stack([gj @ f for gj, f in zip(g, pc.thetawx, strict=True)])  # J x q x p
            ut = np.einsum("jsa,ab,ktb->stjk", u, pc.bread, t)
            P = (
                np.einsum("jsa,ab,ktb->stjk", u, pc.omega, u)
                - ut
                - np.einsum("jsa,ab,ktb->stjk", t, pc.bread, u)
            )
        J = len(g)
        idx = np.arange(J)
        P[:, :, idx, idx] += np.transpose(diag, (1, 2, 0))
        return P

    def _satterthwaite(self, C: Array) -> Array:
        P = self._p_array(C)
        q = C.shape[0]
        df = np.empty(q)
        for s in range(q):
            Ps = P[s, s]
            denom = float(np.sum(Ps**2))
            df[s] = np.trace(Ps) ** 2 / denom if denom > 0 else np.nan
        return df

    def _table(self, names: Sequence[str], est: Array, C: Array, level: float) -> pd.DataFrame:
        se = np.sqrt(np.diag(C @ self.vcov @ C.T))
        df = self._satterthwaite(C)
        with np.errstate(divide="ignore", invalid="ignore"):
            tstat = est / se
        crit = dist.t_ppf(1.0 - (1.0 - level) / 2.0, df)
        return pd.DataFrame(
            {
                "term": list(names),
                "estimate": est,
                "se": se,
                "statistic": tstat,
                "df": df,
                "pvalue": 2.0 * dist.t_sf(np.abs(tstat), df),
                "ci_lower": est - se * crit,
                "ci_upper": est + se * crit,
            },
            columns=_TABLE_COLUMNS,
        )

    # ------------------------------------------------------------------------------------
    def contrast(
        self,
        L: ArrayLike,
        *,
        names: Sequence[str] | None = None,
        level: float | None = None,
    ) -> pd.DataFrame:
        """Linear combinations ``L beta`` with CR2 SEs and Satterthwaite df.

        Equivalent to ``clubSandwich::linear_contrast(obj, vcov, contrasts = L, test =
        "Satterthwaite", p_values = TRUE)``; each row is tested / given a CI separately.

        Parameters
        ----------
        L : array_like
            q x p contrast matrix (a length-p vector for a single contrast).
        names : sequence of str, optional
            Row names (default ``"Contrast 1"``, ... as in clubSandwich).
        level : float, optional
            Confidence level (default: the result's ``level``).

        Returns
        -------
        pandas.DataFrame
            Columns ``term, estimate, se, statistic, df, pvalue, ci_lower, ci_upper``.

        Examples
        --------
        >>> res = cr2(np.c_[np.ones(6), np.arange(6.0)], [1.0, 3, 2, 5, 4, 6],
        ...           [np.eye(2)] * 3, [1, 1, 2, 2, 3, 3])
        >>> res.contrast([1.0, 2.0], names=["at x = 2"])["term"].tolist()
        ['at x = 2']
        """
        C = self._contrast_matrix(L)
        lev = self.level if level is None else float(level)
        if not 0.0 < lev < 1.0:
            raise ValueError("level must be in (0, 1)")
        if names is None:
            names = [f"Contrast {i + 1}" for i in range(C.shape[0])]
        if len(names) != C.shape[0]:
            raise ValueError("names must have one entry per row of L")
        return self._table(names, C @ self.beta, C, lev)

    def wald(self, L: ArrayLike) -> WaldResult:
        """HTZ Wald test of ``L beta = 0`` (Tipton & Pustejovsky 2015).

        Equivalent to ``clubSandwich::Wald_test(obj, constraints = L, vcov, test = "HTZ")``.

        Parameters
        ----------
        L : array_like
            q x p constraint matrix of full row rank.

        Returns
        -------
        WaldResult

        Examples
        --------
        >>> res = cr2(np.c_[np.ones(6), np.arange(6.0)], [1.0, 3, 2, 5, 4, 6],
        ...           [np.eye(2)] * 3, [1, 1, 2, 2, 3, 3])
        >>> res.wald([[0.0, 1.0]]).df_num
        1
        """
        C = self._contrast_matrix(L)
        q = C.shape[0]
        P = self._p_array(C)
        omega = np.einsum("stjj->st", P)
        ons = matrix_power(omega, -0.5)
        B = np.einsum("sa,abjk,bt->stjk", ons, P, ons)
        var_mat = np.einsum("stjk,tsjk->st", B, B) + np.einsum(
            "sjk,tjk->st", np.einsum("ssjk->sjk", B), np.einsum("ssjk->sjk", B)
        )
        nu = q * (q + 1) / float(np.sum(var_mat))
        cb = C @ self.beta
        Q = float(cb @ _chol_inv(C @ self.vcov @ C.T) @ cb)
        delta = max((nu - q + 1.0) / nu, 0.0)
        df = nu - q + 1.0
        fstat = delta * Q / q
        pval = float(dist.f_sf(fstat, q, df)) if df > 0 else float("nan")
        return WaldResult(
            statistic=fstat, df_num=q, df_denom=df, pvalue=pval, delta=delta, q_stat=Q
        )


def cr2(
    X: ArrayLike,
    y: ArrayLike,
    M_blocks: Sequence[ArrayLike],
    cluster: ArrayLike,
    *,
    W_blocks: Sequence[ArrayLike] | None = None,
    beta: ArrayLike | None = None,
    target: Literal["model", "inverse_var"] | Sequence[ArrayLike] = "model",
    terms: Sequence[str] | None = None,
    level: float = 0.95,
) -> RobustResult:
    """CR2 cluster-robust covariance with Satterthwaite df, as clubSandwich does for metafor.

    Parameters
    ----------
    X : array_like
        n x p design matrix of full column rank, rows in cluster order (a DataFrame's
        columns give the term names).
    y : array_like
        n outcomes.
    M_blocks : sequence of array_like
        Per-cluster marginal covariance of the working model at the estimates,
        ``M_j = V_j + Z_j G Z_j'`` (metafor's ``fit$M`` blocks; for ``rma.uni`` the diagonal
        ``vi + tau2``). A 1-D block is read as a diagonal.
    cluster : array_like
        n cluster labels; each cluster must be one contiguous run of rows, in the order of
        ``M_blocks``.
    W_blocks : sequence of array_like, optional
        Per-cluster weight matrices. Default ``M_j^{-1}`` (metafor's GLS weights).
    beta : array_like, optional
        Coefficient estimates. Default: the weighted least-squares solution
        ``(X'WX)^{-1} X'Wy``.
    target : {"model", "inverse_var"} or sequence of array_like, optional
        Working covariance ``Theta_j`` for the CR2 adjustment. ``"model"`` (default): as
        ``clubSandwich::vcovCR`` for metafor fits: with ``W_blocks=None`` the
        inverse-variance form (``Theta_j = W_j^{-1}``), otherwise the general form with
        ``Theta_j = M_j``. ``"inverse_var"``: the inverse-variance form with
        ``Theta_j = W_j^{-1}``. A sequence of matrices: an explicit target (general form).
    terms : sequence of str, optional
        Coefficient names (default: DataFrame columns or ``"x1"``, ``"x2"``, ...).
    level : float, optional
        Confidence level for the coefficient table.

    Returns
    -------
    RobustResult
        CR2 ``vcov``, the coefficient ``table`` and ``contrast`` / ``wald`` methods.

    Raises
    ------
    ValueError
        On inconsistent shapes, non-contiguous clusters, fewer than two clusters or a
        rank-deficient ``X``.

    Notes
    -----
    See the module docstring for the formulas and for what is and is not reproduced from
    clubSandwich 0.5.8.

    References
    ----------
    .. [1] Bell RM, McCaffrey DF (2002). Survey Methodology 28(2):169-181.
    .. [2] Pustejovsky JE, Tipton E (2018). Journal of Business & Economic Statistics
       36(4):672-683.
    .. [3] Tipton E, Pustejovsky JE (2015). Journal of Educational and Behavioral Statistics
       40(6):604-634.

    Examples
    --------
    >>> X = np.c_[np.ones(6), [0.0, 1, 0, 1, 0, 1]]
    >>> res = cr2(X, [1.0, 2.5, 0.5, 2.0, 1.2, 3.1], [np.eye(2)] * 3, [1, 1, 2, 2, 3, 3],
    ...           terms=["intrcpt", "trt"])
    >>> list(res.table.columns)
    ['term', 'estimate', 'se', 'statistic', 'df', 'pvalue', 'ci_lower', 'ci_upper']
    >>> res.vcov.shape
    (2, 2)
    """
    if terms is None and isinstance(X, pd.DataFrame):
        terms = [str(c) for c in X.columns]
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=float).ravel()
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    n, p = Xa.shape
    if ya.shape != (n,):
        raise ValueError("y must have one value per row of X")
    if not (np.all(np.isfinite(Xa)) and np.all(np.isfinite(ya))):
        raise ValueError("X and y must be finite")
    starts, sizes, _ = _cluster_runs(cluster)
    if int(sizes.sum()) != n:
        raise ValueError("cluster must have one label per row of X")
    J = len(sizes)
    if J < 2:
        raise ValueError("CR2 needs at least two clusters")
    if len(M_blocks) != J:
        raise ValueError(f"M_blocks has {len(M_blocks)} blocks, cluster has {J} clusters")
    if terms is None:
        terms = [f"x{i + 1}" for i in range(p)]
    terms = tuple(str(t) for t in terms)
    if len(terms) != p:
        raise ValueError("terms must have one name per column of X")
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    if np.linalg.matrix_rank(Xa) < p:
        raise ValueError("X must have full column rank")

    sl = [slice(int(s), int(s + m)) for s, m in zip(starts, sizes, strict=True)]
    x_list = [Xa[s] for s in sl]
    m_list = [_as_block(b, int(m), "M") for b, m in zip(M_blocks, sizes, strict=True)]
    if W_blocks is None:
        w_list = [_chol_inv(m) for m in m_list]
        user_w = False
    else:
        if len(W_blocks) != J:
            raise ValueError(f"W_blocks has {len(W_blocks)} blocks, expected {J}")
        w_list = [_as_block(b, int(m), "W") for b, m in zip(W_blocks, sizes, strict=True)]
        user_w = True

    if isinstance(target, str):
        if target == "model":
            inverse_var = not user_w
        elif target == "inverse_var":
            inverse_var = True
        else:
            raise ValueError("target must be 'model', 'inverse_var' or a list of matrices")
        theta = [_chol_inv(w) for w in w_list] if inverse_var else m_list
    else:
        if len(target) != J:
            raise ValueError(f"target has {len(target)} blocks, expected {J}")
        theta = [_as_block(b, int(m), "target") for b, m in zip(target, sizes, strict=True)]
        inverse_var = False

    xw = [x.T @ w for x, w in zip(x_list, w_list, strict=True)]  # X_j' W_j
    xwx = sum(a @ x for a, x in zip(xw, x_list, strict=True))
    bread = _chol_inv(xwx)
    if beta is None:
        xwy = sum(a @ ya[s] for a, s in zip(xw, sl, strict=True))
        beta_a = bread @ xwy
    else:
        beta_a = np.asarray(beta, dtype=float).ravel()
        if beta_a.shape != (p,):
            raise ValueError("beta must have one value per column of X")
    resid = ya - Xa @ beta_a

    # CR2 adjustment matrices (clubSandwich:::CR2)
    m_u = matrix_power(xwx, -1.0)
    chol_up = [scipy.linalg.cholesky(t, lower=False) for t in theta]  # R's chol(): Theta = U'U
    omega = None
    thetawx = None
    if inverse_var:
        g_list = [
            uc @ (np.eye(x.shape[0]) - x @ m_u @ a) @ th @ uc.T
            for uc, x, a, th in zip(chol_up, x_list, xw, theta, strict=True)
        ]
    else:
        uwtwu = sum(a @ th @ a.T for a, th in zip(xw, theta, strict=True))
        mid = m_u @ uwtwu @ m_u
        g_list = []
        for uc, x, a, th in zip(chol_up, x_list, xw, theta, strict=True):
            h = x @ m_u @ a
            g_list.append(uc @ (th - h @ th - th @ h.T + x @ mid @ x.T) @ uc.T)
        omega = bread @ uwtwu @ bread
        thetawx = tuple(th @ a.T for th, a in zip(theta, xw, strict=True))
    adj = tuple(uc.T @ matrix_power(g, -0.5) @ uc for uc, g in zip(chol_up, g_list, strict=True))

    est = tuple(a @ aj for a, aj in zip(xw, adj, strict=True))  # E_j = X_j' W_j A_j
    comps = np.column_stack([e @ resid[s] for e, s in zip(est, sl, strict=True)])  # p x J
    vcov = bread @ (comps @ comps.T) @ bread

    pieces = _Pieces(
        bread=bread,
        omega=omega,
        est=est,
        x=tuple(x_list),
        theta=tuple(theta),
        thetawx=thetawx,
    )
    res = RobustResult(
        vcov=vcov,
        table=pd.DataFrame(columns=_TABLE_COLUMNS),
        terms=terms,
        beta=beta_a,
        n_clusters=J,
        inverse_var=inverse_var,
        level=float(level),
        adjustments=adj,
        _pieces=pieces,
    )
    table = res._table(terms, beta_a, np.eye(p), float(level))
    object.__setattr__(res, "table", table)
    return res
