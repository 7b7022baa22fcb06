"""Leave-one-out, influence diagnostics, cumulative and Baujat analyses (metafor 3.8 parity).

Pure functions over arrays that return tidy :class:`pandas.DataFrame` objects, one row per
study (or per cumulative step), with stable column names:

* :func:`leave_one_out` -- metafor ``leave1out.rma.uni``: the model refitted without each
  study in turn.
* :func:`influence_diagnostics` -- metafor ``influence.rma.uni``: externally standardised
  residuals, DFFITS, Cook's distances, covariance ratios, leave-one-out tau^2 and Q, hat
  values, weights, DFBETAS and metafor's flag of influential studies (Viechtbauer & Cheung
  2010).
* :func:`cumulative` -- metafor ``cumul.rma.uni``: the model refitted on the first 1, 2, ..., k
  studies in a given order, e.g. by publication year (Lau et al. 1992).
* :func:`baujat` -- the coordinates of metafor ``baujat.rma`` for ``rma.uni`` models: each
  study's contribution to the (residual) heterogeneity against its influence on the pooled
  estimate / fitted value (Baujat et al. 2002).

Every refit is a call of :func:`hairtrial.models.univariate.fit` on the remaining studies,
with the same
``method`` and ``ci_method``, so the refits follow its boundary rules. Agreement with
metafor 3.8-1 is checked to 1e-6 relative in ``tests/test_influence.py`` against
``tests/reference/metafor_influence.csv``. Differences from metafor, all of them reported in
the ``notes`` column of the affected rows:

* A refit on a single study (leave-one-out / influence with k = 2, cumulative step 1):
  metafor reports Q = 0, Q p-value = 1, I2 = 0, H2 = 1 and silently switches Hartung-Knapp
  inference to Wald-type; here Q, its p-value, I2 and H2 are NaN and, for
  ``ci_method="knha"/"adhoc"``, so are the statistic, p-value and CI (no residual degrees of
  freedom), exactly as :func:`hairtrial.models.univariate.fit` does for k = 1. Estimates,
  standard errors,
  tau2 (0) and every influence measure of :func:`influence_diagnostics` and :func:`baujat`
  are unaffected and equal metafor's.
* A refit on k - 1 = p studies of a common-effect meta-regression: metafor reports QE (about
  0 on k - p = 0 df); here ``QE_del`` is NaN (Q is not defined without residual df).
* metafor stops with an error for k = 1; here every function returns its table with NaN
  entries and a note.
* A refit that cannot be done (too few studies for the random-effects meta-regression, or a
  rank-deficient design after deleting a study) gives a row of NaN and a note, as metafor's
  ``try()`` gives NA.

References
----------
.. [1] Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for
   meta-analysis. Research Synthesis Methods 1:112-125. doi:10.1002/jrsm.11
.. [2] Baujat B, Mahé C, Pignon J-P, Hill C (2002). A graphical method for exploring
   heterogeneity in meta-analyses: application to a meta-analysis of 65 trials. Statistics
   in Medicine 21:2641-2652. doi:10.1002/sim.1221
.. [3] Lau J, Antman EM, Jimenez-Silva J, Kupelnick B, Mosteller F, Chalmers TC (1992).
   Cumulative meta-analysis of therapeutic trials for myocardial infarction. New England
   Journal of Medicine 327:248-254. doi:10.1056/NEJM199207233270406
.. [4] Belsley DA, Kuh E, Welsch RE (1980). Regression Diagnostics. New York: Wiley.
.. [5] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hairtrial.core import distributions as dist
from hairtrial.models.tau2 import as_design, validate_inputs
from hairtrial.models.univariate import CI_METHODS, METHODS, MetaResult, fit

__all__ = [
    "BAUJAT_COLUMNS",
    "CUMULATIVE_COLUMNS",
    "INFLUENCE_COLUMNS",
    "LEAVE_ONE_OUT_COLUMNS",
    "baujat",
    "cumulative",
    "influence_cutoffs",
    "influence_diagnostics",
    "leave_one_out",
]

_NAN = float("nan")
_EPS = float(np.finfo(float).eps)

#: Model-level columns shared by :func:`leave_one_out` and :func:`cumulative`.
_MODEL_COLUMNS: tuple[str, ...] = (
    "k",
    "estimate",
    "se",
    "statistic",
    "pvalue",
    "ci_lower",
    "ci_upper",
    "Q",
    "Q_df",
    "Q_pvalue",
    "tau2",
    "I2",
    "H2",
    "converged",
    "notes",
)
#: Columns of :func:`leave_one_out` (``study``: the omitted study).
LEAVE_ONE_OUT_COLUMNS: tuple[str, ...] = ("study", *_MODEL_COLUMNS)
#: Columns of :func:`cumulative` (``study``: the study added at ``step``).
CUMULATIVE_COLUMNS: tuple[str, ...] = ("step", "study", "order", *_MODEL_COLUMNS)
#: Columns of :func:`influence_diagnostics` before the ``dfbetas_<coef>`` columns.
INFLUENCE_COLUMNS: tuple[str, ...] = (
    "study",
    "rstudent",
    "dffits",
    "cook_d",
    "cov_r",
    "tau2_del",
    "QE_del",
    "hat",
    "weight",
)
#: Columns of :func:`influence_diagnostics` after the ``dfbetas_<coef>`` columns.
INFLUENCE_FLAG_COLUMNS: tuple[str, ...] = (
    "inf",
    "inf_dffits",
    "inf_cook_d",
    "inf_hat",
    "inf_dfbetas",
    "notes",
)
#: Columns of :func:`baujat`.
BAUJAT_COLUMNS: tuple[str, ...] = ("study", "x", "y", "notes")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _check_options(method: str, ci_method: str, level: float = 0.95) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1), e.g. 0.95")


def _labels(study: Sequence[Any] | ArrayLike | None, k: int) -> list[str]:
    """Study labels as strings (metafor's default slab: "1", ..., "k")."""
    if study is None:
        return [str(i + 1) for i in range(k)]
    labels = [str(s) for s in list(np.asarray(study, dtype=object).ravel())]
    if len(labels) != k:
        raise ValueError(f"study has {len(labels)} labels for k = {k} studies")
    return labels


def _refit(
    y: NDArray[np.float64],
    v: NDArray[np.float64],
    X: NDArray[np.float64] | None,
    keep: NDArray[np.bool_],
    method: str,
    ci_method: str,
    level: float,
) -> tuple[MetaResult | None, str]:
    """Fit on the studies in ``keep``; ``(None, reason)`` when the fit is not possible."""
    if not keep.any():
        return None, "no studies left"
    try:
        res = fit(
            y[keep],
            v[keep],
            method=method,
            ci_method=ci_method,
            X=None if X is None else X[keep],
            level=level,
        )
    except (ValueError, np.linalg.LinAlgError) as err:
        return None, f"refit not possible: {err}"
    return res, ""


def _model_row(res: MetaResult | None, k: int, reason: str) -> dict[str, Any]:
    if res is None:
        row: dict[str, Any] = dict.fromkeys(_MODEL_COLUMNS, _NAN)
        row.update(k=k, Q_df=k - 1, converged=False, notes=reason)
        return row
    return {
        "k": res.k,
        "estimate": res.estimate,
        "se": res.estimate_se,
        "statistic": res.estimate_statistic,
        "pvalue": res.estimate_pvalue,
        "ci_lower": res.estimate_ci_lower,
        "ci_upper": res.estimate_ci_upper,
        "Q": res.Q,
        "Q_df": res.Q_df,
        "Q_pvalue": res.Q_pvalue,
        "tau2": res.tau2,
        "I2": res.I2,
        "H2": res.H2,
        "converged": res.converged,
        "notes": "; ".join(res.notes),
    }


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _coef_names(X: NDArray[np.float64], names: Sequence[str] | None) -> list[str]:
    p = X.shape[1]
    if names is not None:
        out = [str(n) for n in names]
        if len(out) != p:
            raise ValueError(f"coef_names has {len(out)} names for p = {p} coefficients")
        return out
    if bool(np.all(X[:, 0] == 1.0)):
        return ["intrcpt", *[f"x{j}" for j in range(1, p)]]
    return [f"x{j + 1}" for j in range(p)]


def _hat_values(X: NDArray[np.float64], v: NDArray[np.float64], tau2: float) -> NDArray:
    """Diagonal of H = X (X'WX)^-1 X'W, W = diag(1/(vi + tau2)), as metafor ``hatvalues``."""
    w = 1.0 / (v + tau2)
    A = np.linalg.inv(X.T @ (X * w[:, None]))
    hii = np.einsum("ij,jk,ik->i", X, A, X) * w
    hii[hii > 1 - 10 * _EPS] = 1.0
    return hii


# ---------------------------------------------------------------------------------------------
# leave-one-out
# ---------------------------------------------------------------------------------------------


def leave_one_out(
    yi: ArrayLike,
    vi: ArrayLike,
    study: Sequence[Any] | ArrayLike | None = None,
    *,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
) -> pd.DataFrame:
    """Leave-one-out analysis of an intercept-only model, as metafor ``leave1out.rma.uni``.

    The model is refitted k times, each time without one study.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (1-D, finite, ``vi > 0``).
    study : sequence, optional
        Study labels (default ``"1"``, ..., ``"k"``, metafor's default).
    method, ci_method, level
        As for :func:`hairtrial.models.univariate.fit`.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study, in input order; columns exactly
        :data:`LEAVE_ONE_OUT_COLUMNS`: ``study`` (the omitted study), ``k`` (studies in the
        refit), ``estimate``, ``se``, ``statistic`` (metafor's ``zval`` or, for
        knha / adhoc, ``tval``), ``pvalue``, ``ci_lower``, ``ci_upper``, ``Q``, ``Q_df``,
        ``Q_pvalue`` (metafor ``Qp``), ``tau2`` (0 for FE; metafor drops the column),
        ``I2``, ``H2``, ``converged`` and ``notes`` (boundary rules of the refit, see the
        module docstring).

    Notes
    -----
    With k = 2 every refit has a single study (estimate yi, se sqrt(vi); Q, I2, H2 NaN);
    with k = 1 the single row is NaN with a note.

    References
    ----------
    Viechtbauer & Cheung (2010); Viechtbauer (2010). Full citations in the module docstring.

    Examples
    --------
    >>> out = leave_one_out([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04], method="DL")
    >>> out["estimate"].round(4).tolist()
    [0.4085, 0.2677, 0.4834, 0.1507]
    """
    _check_options(method, ci_method, level)
    y, v = validate_inputs(yi, vi)
    k = y.size
    labels = _labels(study, k)
    rows = []
    for i in range(k):
        keep = np.arange(k) != i
        res, reason = _refit(y, v, None, keep, method, ci_method, level)
        row = _model_row(res, k - 1, reason)
        rows.append({"study": labels[i], **row})
    return pd.DataFrame(rows, columns=list(LEAVE_ONE_OUT_COLUMNS))


# ---------------------------------------------------------------------------------------------
# cumulative meta-analysis
# ---------------------------------------------------------------------------------------------


def cumulative(
    yi: ArrayLike,
    vi: ArrayLike,
    study: Sequence[Any] | ArrayLike | None = None,
    *,
    order_by: Sequence[Any] | ArrayLike | None = None,
    decreasing: bool = False,
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
) -> pd.DataFrame:
    """Cumulative meta-analysis of an intercept-only model, as metafor ``cumul.rma.uni``.

    Studies are sorted by `order_by` (stably: ties keep their input order, as R's
    ``order()``), and the model is fitted to the first 1, 2, ..., k of them.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (1-D, finite, ``vi > 0``).
    study : sequence, optional
        Study labels (default ``"1"``, ..., ``"k"``).
    order_by : sequence, optional
        Sort key per study, e.g. publication year (numbers or strings; no missing values).
        Default: input order.
    decreasing : bool, default False
        Sort in decreasing order (metafor ``cumul(..., decreasing = TRUE)``).
    method, ci_method, level
        As for :func:`hairtrial.models.univariate.fit`.

    Returns
    -------
    pandas.DataFrame
        One row per step; columns exactly :data:`CUMULATIVE_COLUMNS`: ``step`` (1, ..., k),
        ``study`` (the study added at this step), ``order`` (its sort key, or the 1-based
        input position when `order_by` is None), then the model columns of
        :func:`leave_one_out` for the fit on the first ``step`` studies. Step 1 is a
        single-study fit (Q, I2, H2 NaN; see the module docstring); the last step is the
        fit on all studies.

    Raises
    ------
    ValueError
        If `order_by` has the wrong length or missing values.

    References
    ----------
    Lau et al. (1992); Viechtbauer (2010). Full citations in the module docstring.

    Examples
    --------
    >>> out = cumulative([0.1, 0.5, -0.2], [0.02, 0.03, 0.05], ["A", "B", "C"],
    ...                  order_by=[2019, 2015, 2017], method="DL")
    >>> out[["step", "study", "k"]].values.tolist()
    [[1, 'B', 1], [2, 'C', 2], [3, 'A', 3]]
    """
    _check_options(method, ci_method, level)
    y, v = validate_inputs(yi, vi)
    k = y.size
    labels = _labels(study, k)
    if order_by is None:
        key = pd.Series(np.arange(1, k + 1))
    else:
        key = pd.Series(list(np.asarray(order_by, dtype=object).ravel()))
        if len(key) != k:
            raise ValueError(f"order_by has {len(key)} values for k = {k} studies")
        if key.isna().any():
            raise ValueError("order_by has missing values")
    rank = key.rank(method="dense").to_numpy(dtype=float)
    order = np.argsort(-rank if decreasing else rank, kind="stable")
    ys, vs = y[order], v[order]
    rows = []
    for step in range(1, k + 1):
        keep = np.arange(k) < step
        res, reason = _refit(ys, vs, None, keep, method, ci_method, level)
        row = _model_row(res, step, reason)
        j = int(order[step - 1])
        rows.append({"step": step, "study": labels[j], "order": key.iloc[j], **row})
    return pd.DataFrame(rows, columns=list(CUMULATIVE_COLUMNS))


# ---------------------------------------------------------------------------------------------
# influence diagnostics
# ---------------------------------------------------------------------------------------------


def influence_cutoffs(k: int, p: int = 1) -> dict[str, float]:
    """Cut-offs of metafor's influence flag and the reference lines of its plot.

    Parameters
    ----------
    k : int
        Number of studies.
    p : int, default 1
        Number of model coefficients (metafor's ``m``, the number of coefficients that
        Cook's distance covers, equals p for the default ``btt``).

    Returns
    -------
    dict
        ``dffits``: 3 sqrt(p / (k - p)) (infinite for k <= p); ``cook_d``: the median of
        chi^2 with p df (``pchisq(cook.d, p) > 0.5``); ``hat``: 3 p / k; ``dfbetas``: 1;
        ``rstudent``: the 97.5% normal quantile (plot lines only, not part of the flag);
        ``hat_mean``: p / k and ``weight_mean``: 100 / k (reference lines).

    Examples
    --------
    >>> c = influence_cutoffs(10)
    >>> round(c["dffits"], 4), round(c["cook_d"], 4), c["hat"]
    (1.0, 0.4549, 0.3)
    """
    return {
        "dffits": 3 * math.sqrt(p / (k - p)) if k > p else math.inf,
        "cook_d": float(dist.chi2_ppf(0.5, p)),
        "hat": 3 * p / k,
        "dfbetas": 1.0,
        "rstudent": float(dist.norm_ppf(0.975)),
        "hat_mean": p / k,
        "weight_mean": 100 / k,
    }


def influence_diagnostics(
    yi: ArrayLike,
    vi: ArrayLike,
    study: Sequence[Any] | ArrayLike | None = None,
    *,
    X: ArrayLike | None = None,
    method: str = "REML",
    ci_method: str = "z",
    coef_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Case-deletion influence diagnostics, as metafor ``influence.rma.uni``.

    For each study i, the model (with design `X`) is refitted without it; with the full fit
    (beta, vb, tau2, hat values h_i) and the refit (beta_(-i), vb_(-i), tau2_(-i), Knapp-Hartung
    factor s2_(-i), 1 for ``ci_method="z"``):

    * ``rstudent`` = (y_i - x_i'beta_(-i)) / sqrt(s2_(-i) (v_i + tau2_(-i)) + x_i'vb_(-i)x_i)
      (externally studentised residual; residuals below 100 eps in absolute value are 0);
    * ``dffits`` = (x_i'beta - x_i'beta_(-i)) / sqrt(s2_(-i) h_i (tau2_(-i) + v_i));
    * ``cook_d`` = (beta - beta_(-i))' vb^-1 (beta - beta_(-i));
    * ``cov_r`` = det(vb_(-i)) / det(vb);
    * ``tau2_del``, ``QE_del``: tau2 and Cochran's Q of the refit;
    * ``hat``: diagonal of X (X'WX)^-1 X'W with W = diag(1/(v + tau2)) (values above
      1 - 10 eps set to 1), ``weight``: percent weights of the full fit;
    * ``dfbetas_<coef>`` = (beta - beta_(-i)) / sqrt(s2_(-i) diag((X'W_(-i)X)^-1)), where
      W_(-i) = diag(1/(v + tau2_(-i))) over all k studies.

    A study is flagged influential (``inf``), exactly as metafor 3.8, when at least one of
    |dffits| > 3 sqrt(p / (k - p)), ``pchisq(cook_d, p) > 0.5``, hat > 3 p / k or any
    |dfbetas| > 1 holds (``cov_r``, ``rstudent``, ``tau2_del`` and ``QE_del`` do not enter
    the rule); a criterion that is NaN counts as not met.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (1-D, finite, ``vi > 0``).
    study : sequence, optional
        Study labels (default ``"1"``, ..., ``"k"``).
    X : array_like, optional
        k x p design matrix (default: intercept only).
    method, ci_method
        As for :func:`hairtrial.models.univariate.fit`.
    coef_names : sequence of str, optional
        Names of the p coefficients for the ``dfbetas_<name>`` columns (default
        ``"intrcpt"``, ``"x1"``, ... when the first column of X is 1, else ``"x1"``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per study, in input order. Columns: :data:`INFLUENCE_COLUMNS`, one
        ``dfbetas_<name>`` per coefficient, then :data:`INFLUENCE_FLAG_COLUMNS`: ``inf``
        (bool, metafor's ``"*"``), the criteria ``inf_dffits``, ``inf_cook_d``, ``inf_hat``,
        ``inf_dfbetas`` (bool) and ``notes``. ``DataFrame.attrs`` holds the context the plot
        needs: ``k``, ``p``, ``method``, ``ci_method``, ``tau2`` and ``QE`` of the full fit,
        ``cutoffs`` (:func:`influence_cutoffs`) and ``coef_names``.

    Notes
    -----
    Refits that are not possible (e.g. k = 3 with p = 2 random-effects coefficients, or a
    rank-deficient design without study i) give NaN for every case-deletion measure of that
    study, as metafor does; ``hat`` and ``weight`` are still defined. With k = 2 every refit
    has one study; ``QE_del`` is then NaN (metafor: 0).

    References
    ----------
    Viechtbauer & Cheung (2010); Belsley, Kuh & Welsch (1980); Viechtbauer (2010). Full
    citations in the module docstring.

    Examples
    --------
    >>> d = influence_diagnostics([0.1, 0.5, -0.2, 0.9, 2.5], [0.02, 0.03, 0.05, 0.04, 0.03],
    ...                           ["A", "B", "C", "D", "E"], method="DL")
    >>> d.loc[d["inf"], "study"].tolist()
    ['E']
    >>> round(float(d["hat"].sum()), 12)
    1.0
    """
    _check_options(method, ci_method)
    y, v = validate_inputs(yi, vi)
    k = y.size
    labels = _labels(study, k)
    Xa = as_design(X, k)
    p = Xa.shape[1]
    names = _coef_names(Xa, coef_names)
    dfb_cols = [f"dfbetas_{n}" for n in names]
    columns = [*INFLUENCE_COLUMNS, *dfb_cols, *INFLUENCE_FLAG_COLUMNS]

    full = fit(y, v, method=method, ci_method=ci_method, X=Xa)
    cut = influence_cutoffs(k, p)
    attrs: dict[str, Any] = {
        "k": k,
        "p": p,
        "method": method,
        "ci_method": ci_method,
        "tau2": full.tau2,
        "QE": full.Q,
        "cutoffs": cut,
        "coef_names": names,
    }
    hat = _hat_values(Xa, v, full.tau2)
    weight = np.asarray(full.weights, dtype=float)
    pred_full = Xa @ full.beta
    det_full = float(np.linalg.det(full.vcov))
    if det_full > 0:
        svb = np.linalg.inv(full.vcov)
    else:  # Knapp-Hartung s2 = 0 (identical fitted residuals): metafor's chol() fails
        svb = np.full((p, p), _NAN)
        attrs["notes"] = "full-data covariance matrix is singular: cook_d and cov_r are NaN"

    rows = []
    for i in range(k):
        keep = np.arange(k) != i
        res, reason = _refit(y, v, Xa, keep, method, ci_method, full.level)
        row: dict[str, Any] = dict.fromkeys(columns, _NAN)
        row.update(study=labels[i], hat=float(hat[i]), weight=float(weight[i]))
        if res is None:
            row["notes"] = reason
            rows.append(row)
            continue
        xi = Xa[i]
        delpred = float(xi @ res.beta)
        vdelpred = float(xi @ res.vcov @ xi)
        s2w = res.s2w
        tau2_del = res.tau2
        resid = y[i] - delpred
        if abs(resid) < 100 * _EPS:
            resid = 0.0
        seresid = np.sqrt(np.float64(v[i] * s2w + vdelpred + tau2_del * s2w))
        with np.errstate(divide="ignore", invalid="ignore"):
            dffits = (pred_full[i] - delpred) / np.sqrt(s2w * hat[i] * (tau2_del + v[i]))
            w_del = 1.0 / (v + tau2_del)
            vb_del = np.linalg.inv(Xa.T @ (Xa * w_del[:, None]))
            dfb = full.beta - res.beta
            dfbs = dfb / np.sqrt(s2w * np.diag(vb_del))
            rstudent = np.float64(resid) / seresid  # 0 / 0 -> NaN (knha with s2 = 0)
        row.update(
            rstudent=float(rstudent),
            dffits=float(dffits),
            cook_d=float(dfb @ svb @ dfb),
            cov_r=float(np.linalg.det(res.vcov)) / det_full if det_full > 0 else _NAN,
            tau2_del=tau2_del,
            QE_del=res.Q,
            notes=_join(
                "; ".join(res.notes),
                "refit on 1 study: QE_del not defined (metafor: 0)" if res.k == 1 else "",
            ),
        )
        row.update(zip(dfb_cols, (float(d) for d in dfbs), strict=True))
        rows.append(row)

    out = pd.DataFrame(rows, columns=columns)
    dfbs_abs = out[dfb_cols].abs().to_numpy(dtype=float)
    # metafor: |dffits| > 3 sqrt(p/(k-p)) | pchisq(cook.d, df = m) > 0.5 | hat > 3p/k |
    # any(|dfbs| > 1); NA | TRUE is TRUE and an NA result is shown as not influential, so a
    # NaN criterion simply counts as not met (NaN comparisons are False).
    out["inf_dffits"] = np.abs(out["dffits"].to_numpy(dtype=float)) > cut["dffits"]
    out["inf_cook_d"] = dist.chi2_cdf(out["cook_d"].to_numpy(dtype=float), p) > 0.5
    out["inf_hat"] = out["hat"].to_numpy(dtype=float) > cut["hat"]
    out["inf_dfbetas"] = (dfbs_abs > cut["dfbetas"]).any(axis=1)
    out["inf"] = out[["inf_dffits", "inf_cook_d", "inf_hat", "inf_dfbetas"]].any(axis=1)
    for c in ("inf", "inf_dffits", "inf_cook_d", "inf_hat", "inf_dfbetas"):
        out[c] = out[c].astype(bool)
    out["notes"] = out["notes"].fillna("").astype(str)
    if k == 1:
        out["notes"] = "k = 1: no case-deletion diagnostics (metafor stops)"
    out = out[columns]
    out.attrs = attrs
    return out


# ---------------------------------------------------------------------------------------------
# Baujat plot coordinates
# ---------------------------------------------------------------------------------------------


def baujat(
    yi: ArrayLike,
    vi: ArrayLike,
    study: Sequence[Any] | ArrayLike | None = None,
    *,
    X: ArrayLike | None = None,
    method: str = "REML",
    ci_method: str = "z",
) -> pd.DataFrame:
    """Coordinates of the Baujat plot, as metafor ``baujat.rma`` for ``rma.uni`` models.

    * ``x`` = (y_i - x_i'beta)^2 / (tau2 + v_i): the squared Pearson residual of the full
      fit. For the common-effect model (tau2 = 0) it is study i's contribution to Cochran's
      Q (overall heterogeneity, or residual heterogeneity with moderators), so the x values
      sum to Q; for random-effects models they sum to the weighted residual sum of squares
      with weights 1/(v_i + tau2) (= (k - p) s2 of the Knapp-Hartung adjustment).
    * ``y`` = (x_i'beta_(-i) - x_i'beta)^2 / x_i'vb_(-i)x_i: the squared change of the
      pooled estimate (fitted value for study i) when study i is left out, relative to its
      variance in the refit (which includes the Knapp-Hartung factor for knha / adhoc).

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (1-D, finite, ``vi > 0``).
    study : sequence, optional
        Study labels (default ``"1"``, ..., ``"k"``).
    X : array_like, optional
        k x p design matrix (default: intercept only).
    method, ci_method
        As for :func:`hairtrial.models.univariate.fit`.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`BAUJAT_COLUMNS`, one row per study in input order; ``y`` is
        NaN (with a note) where the refit is not possible. ``DataFrame.attrs`` holds
        metafor's axis titles (``xlabel``, ``ylabel``), ``method``, ``k``, ``p`` and ``Q``.

    References
    ----------
    Baujat et al. (2002); Viechtbauer (2010). Full citations in the module docstring.

    Examples
    --------
    >>> b = baujat([0.1, 0.5, -0.2, 0.9], [0.02, 0.03, 0.05, 0.04], method="FE")
    >>> round(float(b["x"].sum()), 6) == round(float(b.attrs["Q"]), 6)
    True
    """
    _check_options(method, ci_method)
    y, v = validate_inputs(yi, vi)
    k = y.size
    labels = _labels(study, k)
    Xa = as_design(X, k)
    p = Xa.shape[1]
    int_only = p == 1 and bool(np.all(Xa[:, 0] == 1.0))
    full = fit(y, v, method=method, ci_method=ci_method, X=Xa)
    pred_full = Xa @ full.beta
    xs = (y - pred_full) ** 2 / (full.tau2 + v)
    ys = np.full(k, _NAN)
    notes = [""] * k
    for i in range(k):
        keep = np.arange(k) != i
        res, reason = _refit(y, v, Xa, keep, method, ci_method, full.level)
        if res is None:
            notes[i] = reason
            continue
        xi = Xa[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            ys[i] = (xi @ res.beta - pred_full[i]) ** 2 / (xi @ res.vcov @ xi)
    if k == 1:
        notes = ["k = 1: no Baujat coordinates (metafor stops)"]
        xs = np.full(1, _NAN)
    if method == "FE":
        xlabel = (
            "Contribution to overall heterogeneity"
            if int_only
            else "Contribution to residual heterogeneity"
        )
    else:
        xlabel = "Squared Pearson residual"
    ylabel = "Influence on overall result" if int_only else "Influence on fitted value"
    out = pd.DataFrame(
        {"study": labels, "x": xs, "y": ys, "notes": notes}, columns=list(BAUJAT_COLUMNS)
    )
    out.attrs = {"xlabel": xlabel, "ylabel": ylabel, "method": method, "k": k, "p": p, "Q": full.Q}
    return out
