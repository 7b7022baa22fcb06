"""Mixed-effects meta-regression with study-level moderators (metafor 3.8 parity).

Built on :func:`hairtrial.models.univariate.fit` (``rma.uni`` with a general design matrix
``X``), this
module adds what metafor reports for models with moderators:

* :func:`design_matrix` builds ``X`` from a study table (formula ``~ m1 + m2 ...`` coded by
  :mod:`hairtrial.models.formula`, on formulaic): numeric moderators as they are, categorical
  moderators as treatment-coded dummies (reference = first level in sorted order, R's default
  ``factor`` coding), the intercept first (metafor's ``intrcpt``).
* :func:`metareg` fits the model and returns a :class:`MetaRegResult`: a tidy coefficient
  table, tau^2 with its Q-profile CI, residual I^2 / H^2, the pseudo-R^2 (proportion of
  heterogeneity accounted for), the omnibus test of the moderators (QM) and the test for
  residual heterogeneity (QE).
* :func:`predict` gives predicted effects with CI and prediction interval at new moderator
  values (``predict.rma`` with ``newmods``), e.g. for a bubble plot.
* :func:`permutest` gives permutation p-values for QM and for each coefficient
  (``permutest.rma.uni``).

Agreement with metafor 3.8-1 is checked to 1e-6 relative in ``tests/test_metareg.py`` against
``tests/reference/metafor_metareg.csv`` (written by ``tests/reference/metafor_metareg.R``).

Deliberate differences from metafor 3.8:

* :func:`permutest` in random (approximate) mode draws its permutations with
  ``numpy.random.default_rng(seed)``, not R's Mersenne-Twister ``sample()``; the permutations,
  and hence the Monte Carlo p-values, differ from metafor's for the same seed (they agree within
  Monte Carlo error). Exact mode enumerates the same set of permutations, so exact p-values are
  identical. ``exact=False`` forces random mode even when the exact test is cheap (metafor
  switches to the exact test whenever the number of unique permutations is <= ``iter``, which
  is what ``exact="auto"`` does).
* R^2 is NaN (with a note) where metafor returns ``NULL`` (intercept-only models, models
  without an intercept) or ``NA`` (intercept-only fit failed).
* Columns are not dropped silently: a rank-deficient ``X`` is an error (metafor drops
  redundant predictors with a warning).

References
----------
.. [1] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
.. [2] Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In Cooper H,
   Hedges LV, Valentine JC (eds.), The Handbook of Research Synthesis and Meta-Analysis, 2nd
   ed., 295-315. Russell Sage Foundation.
.. [3] Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
   meta-regression. Statistics in Medicine 23:1663-1682.
.. [4] Viechtbauer W, López-López JA, Sánchez-Meca J, Marín-Martínez F (2015). A comparison
   of procedures to test for moderators in mixed-effects meta-regression models.
   Psychological Methods 20:360-374.
.. [5] Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a
   single covariate. Statistics in Medicine 22:2693-2710.
.. [6] Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to
   Meta-Analysis. Wiley. Chapters 19-20.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.formula import INTERCEPT, is_categorical
from hairtrial.models.formula import design_matrix as formula_design
from hairtrial.models.heterogeneity import Heterogeneity, HeterogeneityFields
from hairtrial.models.tau2 import (
    STACK_METHODS,
    as_design,
    estimate_tau2,
    estimate_tau2_stack,
    validate_inputs,
)
from hairtrial.models.univariate import CI_METHODS, METHODS, MetaResult, fit

__all__ = [
    "COEF_COLUMNS",
    "DesignSpec",
    "MetaRegResult",
    "PermutationResult",
    "SUMMARY_COLUMNS",
    "design_matrix",
    "design_spec",
    "metareg",
    "permutest",
    "predict",
    "summary_frame",
]

#: Columns of :attr:`MetaRegResult.coefficients`.
COEF_COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "se",
    "statistic",
    "df",
    "pvalue",
    "ci_lower",
    "ci_upper",
)
#: Columns of :meth:`MetaRegResult.summary_frame`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "terms",
    "method",
    "ci_method",
    "k",
    "p",
    "tau2",
    "tau2_ci_lower",
    "tau2_ci_upper",
    "I2",
    "H2",
    "R2",
    "QM",
    "QM_df",
    "QM_df2",
    "QM_pvalue",
    "QE",
    "QE_df",
    "QE_pvalue",
    "converged",
    "notes",
)
#: Columns of :func:`predict` after the moderator / design columns.
PREDICT_COLUMNS: tuple[str, ...] = ("pred", "se", "ci_lower", "ci_upper", "pi_lower", "pi_upper")

_NAN = float("nan")
_EPS = float(np.finfo(float).eps)
_COMPTOL = math.sqrt(_EPS)  # metafor permutest: con$comptol = .Machine$double.eps^0.5
_MAX_EXACT = 10_000_000  # refuse to enumerate more unique permutations than this


# ---------------------------------------------------------------------------------------------
# design matrix
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DesignSpec:
    """How moderators map to design-matrix columns (re-usable for new data).

    Attributes
    ----------
    moderators : tuple of str
        Moderator (column) names, in model order.
    kinds : tuple of str
        ``"numeric"`` or ``"categorical"`` per moderator.
    levels : tuple of tuple
        Levels of each categorical moderator (first = reference); ``()`` for numeric ones.
    terms : tuple of str
        Column names of the design matrix: ``"intrcpt"``, numeric moderators by name,
        dummies as ``f"{moderator}{level}"`` with the level as R prints it (R's naming, e.g.
        ``allocrandom``, ``femaleTRUE``; built by :mod:`hairtrial.models.formula`).
    intercept : bool
        Whether the first column is the intercept.
    """

    moderators: tuple[str, ...]
    kinds: tuple[str, ...]
    levels: tuple[tuple[Any, ...], ...]
    terms: tuple[str, ...]
    intercept: bool = True

    def apply(self, data: pd.DataFrame) -> pd.DataFrame:
        """Build design-matrix rows for (new) moderator values.

        Parameters
        ----------
        data : pandas.DataFrame
            Must contain every moderator; categorical values must be known levels.

        Returns
        -------
        pandas.DataFrame
            Columns :attr:`terms`, float, same index as `data`.

        Raises
        ------
        ValueError
            Missing column, missing value or unknown level (the message names the moderator).
        """
        coded = data[[]].copy()
        for mod, kind, levels in zip(self.moderators, self.kinds, self.levels, strict=True):
            if mod not in data.columns:
                raise ValueError(f"moderator {mod!r} is not a column of the data")
            col = data[mod]
            if col.isna().any():
                bad = [str(i) for i in data.index[col.isna()]]
                raise ValueError(f"moderator {mod!r} has missing values (rows {', '.join(bad)})")
            if kind == "numeric":
                coded[mod] = pd.to_numeric(col, errors="raise").to_numpy(dtype=float)
                continue
            unknown = sorted({str(v) for v in col if v not in levels})
            if unknown:
                raise ValueError(
                    f"moderator {mod!r} has unknown level(s) {unknown}; known: "
                    f"{[str(v) for v in levels]}"
                )
            coded[mod] = col.to_numpy(dtype=object)
        categorical = {
            m: lev for m, kind, lev in zip(self.moderators, self.kinds, self.levels, strict=True)
            if kind == "categorical"
        }  # fmt: skip
        X, names = formula_design(self.formula, coded, levels=categorical)
        if tuple(names) != self.terms:  # pragma: no cover - the coding is fixed by the spec
            raise RuntimeError(f"design columns {names} differ from the model's {self.terms}")
        return pd.DataFrame(X, index=data.index, columns=list(self.terms))

    @property
    def formula(self) -> str:
        """The model formula (``~ m1 + m2 ...``, names quoted for formulaic where needed)."""
        quoted = [m if m.isidentifier() else f"`{m}`" for m in self.moderators]
        return "~ " + " + ".join(quoted) if quoted else "~ 1"


def design_spec(studies_df: pd.DataFrame, moderators: Sequence[str]) -> DesignSpec:
    """Work out the coding of each moderator (see :func:`design_matrix`).

    Parameters
    ----------
    studies_df : pandas.DataFrame
        One row per study.
    moderators : sequence of str
        Column names.

    Returns
    -------
    DesignSpec

    Raises
    ------
    ValueError
        Unknown column, missing values or a constant moderator (the message names it).

    Examples
    --------
    >>> df = pd.DataFrame({"dose": [1.0, 2.0, 5.0], "arm": ["b", "a", "b"]})
    >>> design_spec(df, ["dose", "arm"]).terms
    ('intrcpt', 'dose', 'armb')
    """
    mods = list(moderators)
    if len(set(mods)) != len(mods):
        raise ValueError(f"repeated moderator in {mods}")
    kinds: list[str] = []
    levels: list[tuple[Any, ...]] = []
    for mod in mods:
        if mod not in studies_df.columns:
            raise ValueError(f"moderator {mod!r} is not a column of the study table")
        col = studies_df[mod]
        if col.isna().any():
            bad = [str(i) for i in studies_df.index[col.isna()]]
            raise ValueError(
                f"moderator {mod!r} has missing values (rows {', '.join(bad)}); remove those "
                "studies or impute explicitly"
            )
        if is_categorical(col):
            if isinstance(col.dtype, pd.CategoricalDtype):
                present = set(col)
                levs = tuple(c for c in col.cat.categories if c in present)
            else:
                levs = tuple(sorted(set(col)))
            if len(levs) < 2:
                raise ValueError(
                    f"moderator {mod!r} is constant (single level {levs[0]!r}); it cannot be "
                    "separated from the intercept"
                )
            kinds.append("categorical")
            levels.append(levs)
        else:
            values = col.to_numpy(dtype=float)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"moderator {mod!r} has non-finite values")
            if np.all(values == values[0]):
                raise ValueError(
                    f"moderator {mod!r} is constant ({values[0]:g} in every study); it cannot "
                    "be separated from the intercept"
                )
            kinds.append("numeric")
            levels.append(())
    spec = DesignSpec(tuple(mods), tuple(kinds), tuple(levels), ())
    _, terms = formula_design(
        spec.formula,
        studies_df[mods],
        levels={m: lev for m, kind, lev in zip(mods, kinds, levels, strict=True) if lev},
    )
    return replace(spec, terms=tuple(terms))


def design_matrix(studies_df: pd.DataFrame, moderators: Sequence[str]) -> pd.DataFrame:
    """Design matrix of a meta-regression, coded as R's ``model.matrix`` does by default.

    Parameters
    ----------
    studies_df : pandas.DataFrame
        One row per study.
    moderators : sequence of str
        Columns to use. Numeric columns enter as they are; non-numeric (and boolean) columns
        are categorical and enter as treatment-coded dummies, one per level except the first
        (the reference). Levels are sorted (for a pandas ``Categorical``: its category order),
        as R's default ``factor`` coding does; unused categories are dropped.

    Returns
    -------
    pandas.DataFrame
        k x p float matrix, intercept (``"intrcpt"``) first, then the moderators in the order
        given; dummy columns are named ``f"{moderator}{level}"``. Same index as `studies_df`.

    Raises
    ------
    ValueError
        A moderator that is not a column, has missing values or is constant (the message
        names the moderator).

    References
    ----------
    Viechtbauer (2010), section 3.3. Full citation in the module docstring.

    Examples
    --------
    >>> df = pd.DataFrame({"weeks": [12, 24, 24, 36], "device": ["roller", "pen", "pen", "roller"]})
    >>> design_matrix(df, ["weeks", "device"])
       intrcpt  weeks  deviceroller
    0      1.0   12.0           1.0
    1      1.0   24.0           0.0
    2      1.0   24.0           0.0
    3      1.0   36.0           1.0
    """
    spec = design_spec(studies_df, moderators)
    return spec.apply(studies_df)


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MetaRegResult(HeterogeneityFields):
    """Result of :func:`metareg` (one model, one tau^2 estimator, one inference method).

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per term, columns :data:`COEF_COLUMNS` (``df`` is NaN for z inference).
    terms : tuple of str
        Names of the coefficients (``"intrcpt"`` for the intercept).
    beta : ndarray
        Estimates; ``vcov`` their covariance matrix (Knapp-Hartung scaled for knha/adhoc).
    method, ci_method : str
        tau^2 estimator (or ``"FE"``) and inference, as for :func:`hairtrial.models.univariate.fit`.
    level : float
        Confidence level.
    k, p : int
        Number of studies and of coefficients.
    intercept : bool
        Whether the model has an intercept column (a column of ones).
    btt : tuple of int
        0-based indices of the coefficients tested by QM (all but the intercept; all
        coefficients when there is no intercept; the intercept for intercept-only models).
    heterogeneity : Heterogeneity
        Residual heterogeneity: tau^2 and its Q-profile CI (NaN for FE), residual I^2
        (percent) and H^2, and the test for residual heterogeneity (``Q`` = metafor's
        ``QE``); its fields are also attributes of the result (``tau2``, ``I2``, ...), with
        ``QE``, ``QE_df``, ``QE_pvalue`` as metafor's names of ``Q``, ``Q_df``, ``Q_pvalue``.
    tau2_se : float
        metafor's ``se.tau2``.
    R2 : float
        Pseudo-R^2 in percent (metafor's default definition, see :func:`metareg`).
    tau2_RE : float
        tau^2 of the intercept-only model used for R^2 (NaN when not computed).
    QM, QM_df, QM_df2, QM_pvalue : float, int, float, float
        Omnibus test of the coefficients in ``btt``: chi-square with ``QM_df = m`` df for
        ``ci_method="z"``; for knha/adhoc the F statistic ``QM = Wald / m`` with
        ``(m, k - p)`` df (``QM_df2``; NaN for z).
    weights : ndarray
        Percent weights.
    fit : MetaResult
        The underlying :func:`hairtrial.models.univariate.fit` result.
    design : DesignSpec or None
        Moderator coding when the model was built from a study table (lets :func:`predict`
        take a table of new moderator values).
    converged : bool
        False when an iterative step did not converge.
    notes : tuple of str
        Boundary cases and remarks.
    """

    coefficients: pd.DataFrame
    terms: tuple[str, ...]
    beta: NDArray[np.float64]
    vcov: NDArray[np.float64]
    method: str
    ci_method: str
    level: float
    k: int
    p: int
    intercept: bool
    btt: tuple[int, ...]
    heterogeneity: Heterogeneity
    tau2_se: float
    R2: float
    tau2_RE: float
    QM: float
    QM_df: int
    QM_df2: float
    QM_pvalue: float
    weights: NDArray[np.float64]
    fit: MetaResult
    design: DesignSpec | None
    converged: bool
    notes: tuple[str, ...]

    @property
    def QE(self) -> float:
        """Test statistic for residual heterogeneity (metafor's name of ``Q``)."""
        return self.heterogeneity.Q

    @property
    def QE_df(self) -> int:
        """Degrees of freedom of :attr:`QE` (k - p)."""
        return self.heterogeneity.Q_df

    @property
    def QE_pvalue(self) -> float:
        """p-value of :attr:`QE`."""
        return self.heterogeneity.Q_pvalue

    def summary_frame(self) -> pd.DataFrame:
        """One row: terms, k, p, tau2 (+ CI), I2, H2, R2, QM and QE tests, notes.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`SUMMARY_COLUMNS`.

        Examples
        --------
        >>> yi, vi = [0.1, 0.3, 0.2, 0.6, 0.5], [0.01, 0.02, 0.015, 0.03, 0.02]
        >>> r = metareg(yi, vi, data=pd.DataFrame({"d": [1, 2, 3, 4, 5]}), moderators=["d"])
        >>> r.summary_frame()["terms"].tolist()
        ['intrcpt, d']
        """
        row = {
            "terms": ", ".join(self.terms),
            "method": self.method,
            "ci_method": self.ci_method,
            "k": self.k,
            "p": self.p,
            "tau2": self.tau2,
            "tau2_ci_lower": self.tau2_ci_lower,
            "tau2_ci_upper": self.tau2_ci_upper,
            "I2": self.I2,
            "H2": self.H2,
            "R2": self.R2,
            "QM": self.QM,
            "QM_df": self.QM_df,
            "QM_df2": self.QM_df2,
            "QM_pvalue": self.QM_pvalue,
            "QE": self.QE,
            "QE_df": self.QE_df,
            "QE_pvalue": self.QE_pvalue,
            "converged": self.converged,
            "notes": "; ".join(self.notes),
        }
        return pd.DataFrame([row], columns=list(SUMMARY_COLUMNS))


def _intercept_columns(X: NDArray[np.float64]) -> list[int]:
    return [j for j in range(X.shape[1]) if bool(np.all(X[:, j] == 1.0))]


def _btt(X: NDArray[np.float64]) -> tuple[tuple[int, ...], bool]:
    """metafor's default ``btt``: all coefficients but the intercept (if any)."""
    p = X.shape[1]
    icols = _intercept_columns(X)
    if p == 1:
        return (0,), bool(icols)
    if icols:
        return tuple(j for j in range(p) if j != icols[0]), True
    return tuple(range(p)), False


def _qm(
    beta: NDArray[np.float64],
    vb: NDArray[np.float64],
    btt: Sequence[int],
    knha: bool,
    ddf: int,
    pvalue: bool = True,
) -> tuple[float, float]:
    """Wald-type omnibus statistic (F = Wald / m for knha/adhoc) and its p-value."""
    idx = list(btt)
    b = beta[idx]
    try:
        wald = float(b @ np.linalg.solve(vb[np.ix_(idx, idx)], b))
    except np.linalg.LinAlgError:
        return _NAN, _NAN
    m = len(idx)
    if not pvalue:
        return (wald / m if knha else wald), _NAN
    if knha:
        qm = wald / m
        qmp = float(dist.f_sf(qm, m, ddf)) if ddf > 0 else _NAN
        return qm, qmp
    return wald, float(dist.chi2_sf(wald, m))


def _adj_r2_weighted(
    y: NDArray[np.float64], X: NDArray[np.float64], w: NDArray[np.float64]
) -> float:
    """``summary(lm(y ~ X, weights = w))$adj.r.squared`` for X containing an intercept."""
    k = y.size
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    fitted = X @ coef
    resid = y - fitted
    rank = int(np.linalg.matrix_rank(X))
    mss = float(np.sum(w * (fitted - np.sum(w * fitted) / np.sum(w)) ** 2))
    rss = float(np.sum(w * resid**2))
    r2 = mss / (mss + rss)
    return 1 - (1 - r2) * (k - 1) / (k - rank)


def _as_x(
    X: ArrayLike | pd.DataFrame | None,
    data: pd.DataFrame | None,
    moderators: Sequence[str] | None,
    k: int,
) -> tuple[NDArray[np.float64], tuple[str, ...], DesignSpec | None]:
    if data is not None or moderators is not None:
        if X is not None:
            raise ValueError("give either X or (data, moderators), not both")
        if data is None or moderators is None:
            raise ValueError("data and moderators must be given together")
        spec = design_spec(data, moderators)
        Xdf = spec.apply(data)
        if len(Xdf) != k:
            raise ValueError(f"data has {len(Xdf)} rows for k = {k} studies")
        return Xdf.to_numpy(dtype=float), spec.terms, spec
    if X is None:
        raise ValueError("give a design matrix X or (data, moderators)")
    if isinstance(X, pd.DataFrame):
        terms = tuple(str(c) for c in X.columns)
        Xa = as_design(X.to_numpy(dtype=float), k)
    else:
        Xa = as_design(X, k)
        terms = tuple(
            INTERCEPT if bool(np.all(Xa[:, j] == 1.0)) else f"x{j}" for j in range(Xa.shape[1])
        )
    return Xa, terms, None


def metareg(
    yi: ArrayLike,
    vi: ArrayLike,
    X: ArrayLike | pd.DataFrame | None = None,
    *,
    data: pd.DataFrame | None = None,
    moderators: Sequence[str] | None = None,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
) -> MetaRegResult:
    """Fit a mixed-effects meta-regression, as metafor ``rma.uni(yi, vi, mods = ...)``.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (length k).
    X : array_like or pandas.DataFrame, optional
        k x p design matrix (include the column of ones for an intercept; a DataFrame's column
        names become the term names). Alternatively give `data` and `moderators`.
    data : pandas.DataFrame, optional
        Study table (row i belongs to ``yi[i]``), coded with :func:`design_matrix`.
    moderators : sequence of str, optional
        Columns of `data` to use as moderators.
    method : {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        tau^2 estimator (``"FE"``: fixed-effects meta-regression).
    ci_method : {"z", "knha", "adhoc"}
        Inference for the coefficients and QM (Knapp & Hartung 2003 for knha).
    level : float
        Confidence level.

    Returns
    -------
    MetaRegResult

    Raises
    ------
    ValueError
        Invalid input, rank-deficient design, or too few studies (k < p + 1 for random
        effects, k < p for FE).

    Notes
    -----
    * QM tests all coefficients except the intercept (metafor's default ``btt``): a Wald
      chi-square with m = p - 1 df, or for knha/adhoc ``F = Wald / m`` on (m, k - p) df.
    * R^2 (Raudenbush 2009; metafor ``r2def = "1"``) is
      ``max(0, 100 (tau2_RE - tau2) / tau2_RE)`` with ``tau2_RE`` from the intercept-only
      model with the same estimator; it is 0 when ``tau2_RE == 0``. For ``method="FE"`` it is
      metafor's ``max(0, 100 * adjusted R^2)`` of the weighted least-squares regression
      (0 if all ``yi`` are equal). It is only defined for models with an intercept and at
      least one moderator (NaN otherwise).
    * Notes flag: k <= p + 1 (one or no residual df: tau^2, QE and knha/adhoc inference are
      extremely imprecise); few studies per moderator (k < 10 p, Higgins & Thompson 2004);
      tau^2 at 0; R^2 not defined.

    References
    ----------
    Viechtbauer (2010); Raudenbush (2009); Higgins & Thompson (2004); Knapp & Hartung
    (2003). Full citations in the module docstring.

    Examples
    --------
    >>> yi = [-0.9, -1.6, -1.4, -1.5, -0.2, -0.8, 0.0, 0.4]
    >>> vi = [0.33, 0.19, 0.42, 0.07, 0.004, 0.06, 0.05, 0.01]
    >>> lat = pd.DataFrame({"ablat": [44, 55, 42, 52, 13, 44, 19, 13]})
    >>> res = metareg(yi, vi, data=lat, moderators=["ablat"])
    >>> res.coefficients["term"].tolist()
    ['intrcpt', 'ablat']
    >>> round(float(res.coefficients["estimate"].iloc[1]), 4)
    -0.0383
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    Xa, terms, spec = _as_x(X, data, moderators, k)
    p = Xa.shape[1]
    is_fe = method == "FE"
    need = p if is_fe else p + 1
    if k < need:
        raise ValueError(
            f"too few studies: k = {k} for p = {p} coefficients ({method} needs k >= {need})"
        )
    res = fit(y, v, method=method, ci_method=ci_method, X=Xa, level=level)
    notes = list(res.notes)
    btt, intercept = _btt(Xa)
    int_only = p == 1 and intercept
    knha = ci_method in ("knha", "adhoc")
    ddf = k - p
    qm, qmp = _qm(res.beta, res.vcov, btt, knha, ddf)
    if k <= p + 1:
        notes.append(
            f"too few studies: k = {k} for p = {p} coefficients leaves {k - p} residual df; "
            "tau2, QE and the moderator tests are extremely imprecise"
        )
    elif not int_only and k < 10 * (p - int(intercept)):
        notes.append(
            f"k = {k} studies for {p - int(intercept)} moderator coefficient(s): fewer than 10 "
            "per coefficient, meta-regression has low power and a high risk of spurious "
            "findings (Higgins & Thompson 2004)"
        )

    # --- pseudo-R2 (metafor r2def = "1") ---------------------------------------------------
    R2 = tau2_re = _NAN
    if int_only or not intercept:
        notes.append("R2 not defined (needs an intercept and at least one moderator)")
    elif is_fe:
        R2 = 0.0 if float(np.var(y)) == 0.0 else max(0.0, 100 * _adj_r2_weighted(y, Xa, 1 / v))
    else:
        try:
            res0 = fit(y, v, method=method, ci_method=ci_method)
        except ValueError as exc:  # pragma: no cover - intercept-only fits with k >= 3
            notes.append(f"R2 not computed: intercept-only model failed ({exc})")
        else:
            tau2_re = res0.tau2
            if tau2_re == 0.0:
                R2 = 0.0
                notes.append("R2 set to 0: tau2 of the intercept-only model is 0")
            else:
                R2 = max(0.0, 100 * (tau2_re - res.tau2) / tau2_re)

    stat_df = float(ddf) if knha else _NAN
    coefs = pd.DataFrame(
        {
            "term": list(terms),
            "estimate": res.beta,
            "se": res.se,
            "statistic": res.statistic,
            "df": np.full(p, stat_df),
            "pvalue": res.pvalue,
            "ci_lower": res.ci_lower,
            "ci_upper": res.ci_upper,
        },
        columns=list(COEF_COLUMNS),
    )
    return MetaRegResult(
        coefficients=coefs,
        terms=terms,
        beta=res.beta,
        vcov=res.vcov,
        method=method,
        ci_method=ci_method,
        level=level,
        k=k,
        p=p,
        intercept=intercept,
        btt=btt,
        heterogeneity=res.heterogeneity,
        tau2_se=res.tau2_se,
        R2=float(R2),
        tau2_RE=float(tau2_re),
        QM=float(qm),
        QM_df=len(btt),
        QM_df2=float(ddf) if knha else _NAN,
        QM_pvalue=float(qmp),
        weights=res.weights,
        fit=res,
        design=spec,
        converged=res.converged,
        notes=tuple(notes),
    )


def summary_frame(results: Sequence[MetaRegResult]) -> pd.DataFrame:
    """One row per model (:meth:`MetaRegResult.summary_frame`).

    Parameters
    ----------
    results : sequence of MetaRegResult

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS` (no columns for no results).

    Examples
    --------
    >>> yi, vi = [0.1, 0.3, 0.2, 0.6, 0.5], [0.01, 0.02, 0.015, 0.03, 0.02]
    >>> r = metareg(yi, vi, data=pd.DataFrame({"d": [1, 2, 3, 4, 5]}), moderators=["d"])
    >>> list(summary_frame([r]).columns[:4])
    ['terms', 'method', 'ci_method', 'k']
    """
    frames = [r.summary_frame() for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------
def predict(
    result: MetaRegResult,
    newX: ArrayLike | pd.DataFrame,
    level: float | None = None,
) -> pd.DataFrame:
    """Predicted effects with CI and prediction interval (metafor ``predict.rma``, newmods).

    Parameters
    ----------
    result : MetaRegResult
        A fitted model.
    newX : array_like or pandas.DataFrame
        New moderator values. A DataFrame holding the moderator columns is coded like the
        fitting data (models fitted from ``data``/``moderators`` only). An array is taken as
        metafor's ``newmods``: p - 1 columns (the intercept is added) for a model with an
        intercept in the first column, or all p columns; a 1-D array is one value per row for
        a single-moderator model.
    level : float, optional
        Confidence level (default: the model's).

    Returns
    -------
    pandas.DataFrame
        The moderator columns (DataFrame input) or the design columns (array input), then
        ``pred, se, ci_lower, ci_upper, pi_lower, pi_upper``.

    Notes
    -----
    ``pred = x' b``, ``se = sqrt(x' V x)``; CI ``pred -/+ crit se`` and PI
    ``pred -/+ crit sqrt(se^2 + tau2)``, ``crit`` from t with k - p df for knha/adhoc and the
    normal distribution otherwise (metafor's default ``pi.type``). For FE the PI equals the CI.

    References
    ----------
    Viechtbauer (2010). Full citation in the module docstring.

    Examples
    --------
    >>> yi, vi = [0.1, 0.3, 0.2, 0.6, 0.5], [0.01, 0.02, 0.015, 0.03, 0.02]
    >>> r = metareg(yi, vi, data=pd.DataFrame({"d": [1, 2, 3, 4, 5]}), moderators=["d"])
    >>> predict(r, pd.DataFrame({"d": [0.0, 6.0]})).columns.tolist()
    ['d', 'pred', 'se', 'ci_lower', 'ci_upper', 'pi_lower', 'pi_upper']
    """
    level = result.level if level is None else level
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    p = result.p
    if (
        isinstance(newX, pd.DataFrame)
        and result.design is not None
        and all(m in newX.columns for m in result.design.moderators)
    ):
        Xn = result.design.apply(newX).to_numpy(dtype=float)
        out = newX[list(result.design.moderators)].reset_index(drop=True).copy()
    else:
        arr = np.asarray(newX, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None] if p - int(result.intercept) == 1 else arr[None, :]
        first_is_int = result.intercept and 0 not in result.btt
        if arr.shape[1] == p:
            Xn = arr
        elif arr.shape[1] == p - 1 and first_is_int:
            Xn = np.column_stack([np.ones(arr.shape[0]), arr])
        else:
            raise ValueError(
                f"newX has {arr.shape[1]} columns; the model needs {p} (or {p - 1} without "
                "the intercept)"
            )
        out = pd.DataFrame(Xn, columns=list(result.terms))
    if not np.all(np.isfinite(Xn)):
        raise ValueError("newX contains non-finite values")
    pred = Xn @ result.beta
    vpred = np.einsum("ij,jk,ik->i", Xn, result.vcov, Xn)
    se = np.sqrt(np.where(vpred < 0, np.nan, vpred))
    alpha = 1 - level
    if result.ci_method in ("knha", "adhoc"):
        ddf = result.k - p
        crit = float(dist.t_isf(alpha / 2, ddf)) if ddf > 0 else _NAN
    else:
        crit = float(dist.norm_isf(alpha / 2))
    out["pred"] = pred
    out["se"] = se
    out["ci_lower"] = pred - crit * se
    out["ci_upper"] = pred + crit * se
    half = crit * np.sqrt(vpred + result.tau2)
    out["pi_lower"] = pred - half
    out["pi_upper"] = pred + half
    return out


# ---------------------------------------------------------------------------------------------
# permutation tests
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PermutationResult:
    """Result of :func:`permutest`.

    Attributes
    ----------
    terms : tuple of str
        Coefficient names.
    statistic : ndarray
        Observed z (or t) statistics of the coefficients.
    pvalue : ndarray
        Permutation p-values of the coefficients (two-sided, ``|z_perm| >= |z_obs|``).
    QM, QM_pvalue : float
        Observed omnibus statistic and its permutation p-value.
    exact : bool
        True when every unique permutation was used.
    iterations : int
        Number of permutations the p-values are based on (incl. the observed data).
    exact_iterations : int
        Number of unique permutations (2^k sign flips for intercept-only models).
    seed : int or None
        Seed of ``numpy.random.default_rng`` in random mode.
    statistic_perm : ndarray
        iterations x p permutation distribution of the z / t statistics.
    QM_perm : ndarray
        Permutation distribution of QM.
    failed : int
        Permutations whose refit failed (excluded, as metafor's ``na.rm = TRUE``).
    notes : tuple of str
        Remarks (e.g. random mode and the difference from R's random numbers).
    """

    terms: tuple[str, ...]
    statistic: NDArray[np.float64]
    pvalue: NDArray[np.float64]
    QM: float
    QM_pvalue: float
    exact: bool
    iterations: int
    exact_iterations: int
    seed: int | None
    statistic_perm: NDArray[np.float64]
    QM_perm: NDArray[np.float64]
    failed: int
    notes: tuple[str, ...]


def _lean_fit(
    y: NDArray[np.float64],
    v: NDArray[np.float64],
    X: NDArray[np.float64],
    method: str,
    ci_method: str,
    btt: Sequence[int],
) -> tuple[NDArray[np.float64], float]:
    """z / t statistics and QM of one refit (what permutest keeps); same formulas as fit()."""
    k, p = X.shape
    tau2 = 0.0 if method == "FE" else estimate_tau2(y, v, X, method).tau2
    w = 1.0 / (v + tau2)
    WX = X * w[:, None]
    vb = np.linalg.inv(X.T @ WX)
    vb = (vb + vb.T) / 2
    beta = vb @ (WX.T @ y)
    knha = ci_method in ("knha", "adhoc")
    if knha:
        rss = float(np.sum(w * (y - X @ beta) ** 2))
        s2w = 0.0 if rss <= _EPS else rss / (k - p)
        if ci_method == "adhoc":
            s2w = max(1.0, s2w)
        vb = s2w * vb
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / np.sqrt(np.diag(vb))
    qm, _ = _qm(beta, vb, btt, knha, k - p, pvalue=False)
    return z, qm


def _lean_fits(
    y: NDArray[np.float64],
    v: NDArray[np.float64],
    Xs: NDArray[np.float64],
    method: str,
    ci_method: str,
    btt: Sequence[int],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]] | None:
    """:func:`_lean_fit` of a stack of designs ``(n, k, p)``: z (n, p), QM (n,) and ``ok``.

    One call instead of a refit per permutation (estimate_tau2_stack for ML and REML, tau^2
    = 0 for FE; None for the other estimators, refitted one by one). The same formulas over
    arrays; they agree with _lean_fit to rounding. ``ok`` False: refit with _lean_fit (a
    design the stacked estimator leaves to the scalar one, or non-finite statistics), so
    that failures and edge cases are decided as they always were.
    """
    n, k, p = Xs.shape
    if method == "FE":
        tau2, ok = np.zeros(n), np.ones(n, dtype=bool)
    elif method in STACK_METHODS:
        tau2, ok = estimate_tau2_stack(y, v, Xs, method)
        tau2 = np.where(ok, tau2, 0.0)
    else:
        return None
    w = 1.0 / (v[None, :] + tau2[:, None])
    WX = Xs * w[:, :, None]
    try:
        vb = np.linalg.inv(np.swapaxes(Xs, 1, 2) @ WX)
    except np.linalg.LinAlgError:
        return np.full((n, p), _NAN), np.full(n, _NAN), np.zeros(n, dtype=bool)
    vb = (vb + np.swapaxes(vb, 1, 2)) / 2
    beta = (vb @ (np.swapaxes(WX, 1, 2) @ y[:, None]))[:, :, 0]
    knha = ci_method in ("knha", "adhoc")
    if knha:
        rss = np.sum(w * (y[None, :] - (Xs @ beta[:, :, None])[:, :, 0]) ** 2, axis=1)
        s2w = np.where(rss <= _EPS, 0.0, rss / (k - p))
        if ci_method == "adhoc":
            s2w = np.maximum(1.0, s2w)
        vb = s2w[:, None, None] * vb
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / np.sqrt(np.diagonal(vb, axis1=1, axis2=2))
    idx = list(btt)
    b = beta[:, idx]
    try:
        wald = np.einsum(
            "ni,ni->n", b, np.linalg.solve(vb[:, idx][:, :, idx], b[:, :, None])[:, :, 0]
        )
    except np.linalg.LinAlgError:
        return z, np.full(n, _NAN), np.zeros(n, dtype=bool)
    qm = wald / len(idx) if knha else wald
    ok &= np.all(np.isfinite(z), axis=1) & np.isfinite(qm)
    return z, qm, ok


def _stack_size(k: int) -> int:
    """Designs fitted at once by _lean_fits: at most 2048, and few enough that each (n, k, k)
    working array (the projections and their products) stays within 64 MB for large k."""
    return max(1, min(2048, (1 << 23) // (k * k)))


def _unique_perms(groups: list[int]) -> Iterator[tuple[int, ...]]:
    """Distinct orderings of a multiset of group labels, in lexicographic order."""
    counts: dict[int, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    labels = sorted(counts)
    n = len(groups)
    current: list[int] = []

    def rec() -> Iterator[tuple[int, ...]]:
        if len(current) == n:
            yield tuple(current)
            return
        for g in labels:
            if counts[g]:
                counts[g] -= 1
                current.append(g)
                yield from rec()
                current.pop()
                counts[g] += 1

    yield from rec()


def permutest(
    yi: ArrayLike,
    vi: ArrayLike,
    X: ArrayLike | pd.DataFrame | None = None,
    method: str = "REML",
    ci_method: str = "z",
    *,
    exact: bool | Literal["auto"] = "auto",
    iterations: int = 1000,
    seed: int | None = None,
    stacked: bool = True,
) -> PermutationResult:
    """Permutation tests for a meta-regression, as metafor ``permutest.rma.uni``.

    For models with moderators the rows of the design matrix are permuted over the studies
    (``yi``, ``vi`` stay together) and the model is refitted; for the intercept-only model
    the signs of ``yi`` are flipped. The p-value of a coefficient is the proportion of
    permutations with ``|z_perm| >= |z_obs| - tol`` and that of QM the proportion with
    ``QM_perm >= QM_obs - tol`` (``tol = sqrt(machine eps)``, metafor's ``comptol``).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    X : array_like or pandas.DataFrame or None
        Design matrix (None: intercept only).
    method, ci_method : str
        As for :func:`metareg`; the statistics permuted are the z (or t) statistics and QM of
        that model.
    exact : {"auto", True, False}
        ``"auto"`` (metafor's rule): the exact test over all unique permutations when their
        number is <= `iterations`, otherwise `iterations` random permutations. ``True``:
        always exact (error above 10 million permutations). ``False``: always random.
    iterations : int
        Number of random permutations (>= 2); the first is the observed data, as in metafor.
    seed : int, optional
        Seed for ``numpy.random.default_rng`` (random mode). The permutations differ from R's
        ``set.seed(); sample()`` for the same seed, so random-mode p-values agree with
        metafor's only within Monte Carlo error (binomial SE ``sqrt(p (1 - p) / iterations)``).
    stacked : bool, default True
        Refit the permuted designs of a meta-regression many at once (FE, ML, REML;
        :func:`hairtrial.models.tau2.estimate_tau2_stack`); False: one by one. The
        statistics agree to rounding and the p-values (proportions with a tolerance of
        ``sqrt(eps)``) are the same; several times faster.

    Returns
    -------
    PermutationResult

    Notes
    -----
    The number of unique permutations of a design with row-multiplicities ``n_1..n_g`` is
    ``k! / prod(n_j!)`` (ties in the moderator give identical permutations); exact p-values
    are therefore multiples of ``1 / exact_iterations`` and do not depend on study order.
    Permutations whose refit fails are dropped, as metafor does.

    References
    ----------
    Viechtbauer W, López-López JA, Sánchez-Meca J, Marín-Martínez F (2015). Psychological
    Methods 20:360-374. Higgins & Thompson (2004). Full citations in the module docstring.

    Examples
    --------
    >>> yi = [-0.9, -1.6, -1.4, -1.5, -0.2, -0.8]
    >>> vi = [0.33, 0.19, 0.42, 0.07, 0.004, 0.06]
    >>> X = np.column_stack([np.ones(6), [44, 55, 42, 52, 13, 44]])
    >>> pt = permutest(yi, vi, X)
    >>> pt.exact, pt.exact_iterations  # 6! / 2! unique permutations (ablat 44 twice)
    (True, 360)
    >>> bool(0 < pt.QM_pvalue <= 1)
    True
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if exact not in ("auto", True, False):
        raise ValueError("exact must be 'auto', True or False")
    iterations = int(round(iterations))
    if iterations < 2:
        raise ValueError("iterations must be >= 2")
    if isinstance(X, pd.DataFrame):
        terms = tuple(str(c) for c in X.columns)
        Xa = as_design(X.to_numpy(dtype=float), k)
    else:
        Xa = as_design(X, k)
        terms = tuple(
            INTERCEPT if bool(np.all(Xa[:, j] == 1.0)) else f"x{j}" for j in range(Xa.shape[1])
        )
    p = Xa.shape[1]
    btt, _ = _btt(Xa)
    int_only = p == 1 and bool(np.all(Xa[:, 0] == 1.0))
    notes: list[str] = []

    z_obs, qm_obs = _lean_fit(y, v, Xa, method, ci_method, btt)

    if int_only:
        n_exact = 2**k
    else:
        _, inverse, counts = np.unique(Xa, axis=0, return_inverse=True, return_counts=True)
        groups = [int(g) for g in np.asarray(inverse).ravel()]
        n_exact = math.factorial(k)
        for c in counts:
            n_exact //= math.factorial(int(c))
    use_exact = exact is True or (exact == "auto" and n_exact <= iterations)
    if use_exact and n_exact > _MAX_EXACT:
        raise ValueError(
            f"exact test needs {n_exact} permutations (more than {_MAX_EXACT}); use "
            "exact='auto' or False"
        )

    z_perm: list[NDArray[np.float64]] = []
    qm_perm: list[float] = []
    failed = 0

    def run(yy: NDArray[np.float64], XX: NDArray[np.float64]) -> bool:
        nonlocal failed
        try:
            z, qm = _lean_fit(yy, v, XX, method, ci_method, btt)
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
            return False
        z_perm.append(z)
        qm_perm.append(qm)
        return True

    def run_stack(designs: list[NDArray[np.float64]]) -> None:
        """run() for each design, in order; many at once where _lean_fits can."""
        fits = _lean_fits(y, v, np.array(designs), method, ci_method, btt) if stacked else None
        if fits is None:
            for XX in designs:
                run(y, XX)
            return
        z, qm, ok = fits
        for i, XX in enumerate(designs):
            if ok[i]:
                z_perm.append(z[i])
                qm_perm.append(float(qm[i]))
            else:
                run(y, XX)

    if use_exact:
        if int_only:
            for signs in itertools.product((1.0, -1.0), repeat=k):
                run(np.asarray(signs) * y, Xa)
        else:
            # rows of X by group label; every distinct assignment of rows to studies
            rows_of = {g: Xa[groups.index(g)] for g in set(groups)}
            perms = _unique_perms(groups)
            while chunk := list(itertools.islice(perms, _stack_size(k))):
                run_stack([np.array([rows_of[g] for g in perm]) for perm in chunk])
        n_used = len(qm_perm)
    else:
        rng = np.random.default_rng(seed)
        z_perm.append(z_obs)
        qm_perm.append(qm_obs)
        tries = 0
        while len(qm_perm) < iterations:
            if int_only:
                tries += 1
                run(rng.choice(np.array([-1.0, 1.0]), size=k) * y, Xa)
            else:  # the permutations drawn in the order of a one-by-one loop
                need = min(iterations - len(qm_perm), _stack_size(k))
                tries += need
                run_stack([Xa[rng.permutation(k)] for _ in range(need)])
            if tries > 100 * iterations:  # pragma: no cover - refits essentially never fail
                raise RuntimeError("too many failed refits in the permutation test")
        n_used = iterations
        notes.append(
            f"random permutation test ({iterations} permutations incl. the observed data, "
            f"numpy default_rng(seed={seed})): Monte Carlo p-values; they differ from "
            "metafor's for the same seed (different random number generator)"
        )
    if failed:
        notes.append(f"{failed} permutation refit(s) failed and were excluded")

    zp = np.vstack(z_perm)
    qp = np.asarray(qm_perm, dtype=float)
    # metafor: mean(..., na.rm = TRUE) -> non-finite statistics are left out
    pval = np.array(
        [
            float(np.mean(np.abs(col[np.isfinite(col)]) >= abs(z_obs[j]) - _COMPTOL))
            for j, col in enumerate(zp.T)
        ]
    )
    pval = np.minimum(pval, 1.0)
    qmp = float(np.mean(qp[np.isfinite(qp)] >= qm_obs - _COMPTOL))
    return PermutationResult(
        terms=terms,
        statistic=z_obs,
        pvalue=pval,
        QM=float(qm_obs),
        QM_pvalue=qmp,
        exact=bool(use_exact),
        iterations=int(n_used),
        exact_iterations=int(n_exact),
        seed=seed,
        statistic_perm=zp,
        QM_perm=qp,
        failed=failed,
        notes=tuple(notes),
    )
