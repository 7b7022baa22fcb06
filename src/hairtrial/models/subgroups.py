"""Subgroup analysis for a categorical moderator (metafor 3.8 parity).

Two ways of pooling within subgroups, both reported by :func:`subgroup_analysis`:

* ``tau2_option="separate"``: one random-effects model per subgroup, each with its own
  tau^2. The test for subgroup differences is the Q-test of a common-effect (inverse-variance)
  meta-analysis of the subgroup estimates with their standard errors,
  ``Q_between = sum_j w_j (est_j - est_bar)^2``, ``w_j = 1 / se_j^2``, chi-square with
  L - 1 df (Borenstein et al. 2009, ch. 19; Cochrane Handbook 10.11.3.1; metafor:
  ``rma(est, sei = se, method = "FE")$QE``).
* ``tau2_option="common"``: a mixed-effects model with the subgroup as the only moderator and
  one (pooled) residual tau^2, i.e. ``rma(yi, vi, mods = ~ factor(g) - 1)``; the subgroup
  estimates are its coefficients. The test for subgroup differences is the omnibus test of the
  moderator, QM of ``rma(yi, vi, mods = ~ factor(g))`` (identical to ``anova(res, X = ...)``
  with the L - 1 contrasts against the first level): chi-square with L - 1 df for
  ``ci_method="z"``, for knha/adhoc ``F = Wald / (L - 1)`` on (L - 1, k - L) df.

Agreement with metafor 3.8-1 is checked in ``tests/test_subgroups.py``.

References
----------
.. [1] Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to
   Meta-Analysis. Wiley. Chapter 19 (subgroup analyses).
.. [2] Deeks JJ, Higgins JPT, Altman DG (eds.) (2023). Chapter 10: Analysing data and
   undertaking meta-analyses, section 10.11.3.1. In Cochrane Handbook for Systematic Reviews
   of Interventions, version 6.4.
.. [3] Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. Journal
   of Statistical Software 36(3):1-48.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hairtrial.core import distributions as dist
from hairtrial.models.heterogeneity import HETEROGENEITY_COLUMNS
from hairtrial.models.metareg import MetaRegResult, metareg, predict
from hairtrial.models.tau2 import q_statistic, validate_inputs
from hairtrial.models.univariate import CI_METHODS, METHODS, MetaResult, fit

__all__ = [
    "SUBGROUP_COLUMNS",
    "TAU2_OPTIONS",
    "TEST_COLUMNS",
    "SubgroupResult",
    "subgroup_analysis",
]

#: Ways of estimating tau^2 within subgroups.
TAU2_OPTIONS: tuple[str, ...] = ("separate", "common")
#: Columns of :attr:`SubgroupResult.table`.
SUBGROUP_COLUMNS: tuple[str, ...] = (
    "moderator",
    "level",
    "tau2_option",
    "k",
    "estimate",
    "se",
    "statistic",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "pi_lower",
    "pi_upper",
    *HETEROGENEITY_COLUMNS,
    "method",
    "ci_method",
    "notes",
)
#: Columns of :attr:`SubgroupResult.test`.
TEST_COLUMNS: tuple[str, ...] = (
    "moderator",
    "tau2_option",
    "Q_between",
    "df",
    "df2",
    "distribution",
    "pvalue",
    "n_levels",
    "tau2",
    "method",
    "ci_method",
    "notes",
)

_NAN = float("nan")


@dataclass(frozen=True, eq=False)
class SubgroupResult:
    """Result of :func:`subgroup_analysis`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per tau2 option x level (levels in sorted order), columns
        :data:`SUBGROUP_COLUMNS`.
    test : pandas.DataFrame
        One row per tau2 option: test for subgroup differences, columns :data:`TEST_COLUMNS`
        (``distribution`` ``"chi2"`` or ``"F"``; ``df2`` NaN for chi2).
    overall : MetaResult
        The model without subgroups (all studies), e.g. for the overall diamond.
    levels : tuple
        Subgroup levels, sorted.
    separate_fits : dict
        Level -> :class:`~hairtrial.models.univariate.MetaResult` (tau2_option "separate").
    common_fit : MetaRegResult or None
        The ``~ factor(g) - 1`` model (tau2_option "common"; None if not requested or not
        estimable).
    """

    table: pd.DataFrame
    test: pd.DataFrame
    overall: MetaResult
    levels: tuple[Any, ...]
    separate_fits: dict[Any, MetaResult]
    common_fit: MetaRegResult | None

    def summary_frame(self) -> pd.DataFrame:
        """The tidy table of subgroup estimates (:attr:`table`).

        Returns
        -------
        pandas.DataFrame
            One row per tau2 option x level, columns :data:`SUBGROUP_COLUMNS`; the
            heterogeneity columns are each subgroup's (``separate``) or the common model's
            (``common``) :class:`~hairtrial.models.heterogeneity.Heterogeneity`, with Cochran's
            Q within the subgroup.
        """
        return self.table.copy()


def _within_q(y: np.ndarray, v: np.ndarray) -> tuple[float, int, float]:
    """Cochran's Q within a subgroup (does not depend on tau^2)."""
    if y.size < 2:
        return _NAN, 0, _NAN
    q = max(0.0, q_statistic(0.0, y, v))
    return q, y.size - 1, float(dist.chi2_sf(q, y.size - 1))


def subgroup_analysis(
    yi: ArrayLike,
    vi: ArrayLike,
    groups: ArrayLike,
    *,
    moderator: str = "subgroup",
    method: str = "REML",
    ci_method: str = "z",
    level: float = 0.95,
    tau2_options: Sequence[str] = TAU2_OPTIONS,
) -> SubgroupResult:
    """Pooled estimate per subgroup and the test for subgroup differences.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (length k).
    groups : array_like
        Subgroup of each study (no missing values; at least 2 levels).
    moderator : str
        Name of the moderator, copied into the output tables.
    method : {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
        tau^2 estimator (``"FE"``: common-effect; both options then coincide).
    ci_method : {"z", "knha", "adhoc"}
        Inference for the subgroup estimates (and for the common-tau2 test).
    level : float
        Confidence level.
    tau2_options : sequence of {"separate", "common"}
        Which analyses to run.

    Returns
    -------
    SubgroupResult

    Raises
    ------
    ValueError
        Missing group labels, fewer than 2 levels, unknown options.

    Notes
    -----
    * ``separate``: each row is :func:`hairtrial.models.univariate.fit` on the subgroup's studies
      (tau2, its Q-profile CI, I2, H2 and PI of that subgroup). A subgroup with one study gets
      its own estimate (tau2 = 0, see the notes of
      :func:`~hairtrial.models.univariate.fit`). Q_between
      uses the subgroup standard errors as reported (Knapp-Hartung scaled for knha/adhoc);
      it is always referred to chi-square with L - 1 df.
    * ``common``: rows are the coefficients of the ``~ factor(g) - 1`` model; ``tau2``,
      its CI, ``I2`` and ``H2`` are the model's (residual) values, repeated on each row; the
      PI is ``predict.rma`` at the level (pred -/+ crit sqrt(se^2 + tau2)). Needs
      k >= L + 1 studies for a random-effects model (otherwise NaN rows and a note).
    * ``Q``, ``Q_df``, ``Q_pvalue`` are Cochran's Q within each subgroup (no tau^2 involved;
      NaN for a single study) under both options.
    * Subgroup comparisons are observational (not randomised) comparisons; with few studies
      per subgroup the test has low power (Borenstein et al. 2009, ch. 19).

    References
    ----------
    Borenstein et al. (2009), ch. 19; Cochrane Handbook 10.11.3.1; Viechtbauer (2010). Full
    citations in the module docstring.

    Examples
    --------
    >>> yi = [-0.9, -1.6, -1.4, -1.5, -0.2, -0.8, 0.0, 0.4, -0.5]
    >>> vi = [0.33, 0.19, 0.42, 0.07, 0.004, 0.06, 0.05, 0.01, 0.02]
    >>> g = ["a", "a", "a", "a", "b", "b", "b", "c", "c"]
    >>> res = subgroup_analysis(yi, vi, g, moderator="alloc")
    >>> res.test[["tau2_option", "df"]].values.tolist()
    [['separate', 2], ['common', 2]]
    >>> res.table["level"].tolist()[:3]
    ['a', 'b', 'c']
    """
    y, v = validate_inputs(yi, vi)
    k = y.size
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown ci_method {ci_method!r}; choose one of {CI_METHODS}")
    options = list(tau2_options)
    bad = [o for o in options if o not in TAU2_OPTIONS]
    if bad or not options:
        raise ValueError(f"tau2_options must be a non-empty subset of {TAU2_OPTIONS}")
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != k:
        raise ValueError(f"groups has {len(g)} entries for k = {k} studies")
    if g.isna().any():
        raise ValueError(
            f"moderator {moderator!r} has missing values (positions "
            f"{np.flatnonzero(g.isna()).tolist()})"
        )
    levels = tuple(sorted(set(g)))
    if len(levels) < 2:
        raise ValueError(f"moderator {moderator!r} has a single level: no subgroups to compare")
    masks = {lev: (g == lev).to_numpy() for lev in levels}

    overall = fit(y, v, method=method, ci_method=ci_method, level=level)
    rows: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    separate: dict[Any, MetaResult] = {}
    common: MetaRegResult | None = None
    base = {"moderator": moderator, "method": method, "ci_method": ci_method}

    if "separate" in options:
        for lev in levels:
            m = masks[lev]
            r = fit(y[m], v[m], method=method, ci_method=ci_method, level=level)
            separate[lev] = r
            q, qdf, qp = _within_q(y[m], v[m])
            rows.append(
                {
                    **base,
                    "level": lev,
                    "tau2_option": "separate",
                    "k": r.k,
                    "estimate": r.estimate,
                    "se": r.estimate_se,
                    "statistic": r.estimate_statistic,
                    "ci_lower": r.estimate_ci_lower,
                    "ci_upper": r.estimate_ci_upper,
                    "pvalue": r.estimate_pvalue,
                    "pi_lower": r.pi_lower,
                    "pi_upper": r.pi_upper,
                    **replace(r.heterogeneity, Q=q, Q_df=qdf, Q_pvalue=qp).as_dict(),
                    "notes": "; ".join(r.notes),
                }
            )
        est = np.array([separate[lev].estimate for lev in levels])
        se = np.array([separate[lev].estimate_se for lev in levels])
        notes: list[str] = []
        if np.all(np.isfinite(se)) and np.all(se > 0):
            between = fit(est, se**2, method="FE")
            qb, qb_df, qb_p = between.Q, between.Q_df, between.Q_pvalue
        else:
            qb, qb_df, qb_p = _NAN, len(levels) - 1, _NAN
            notes.append("a subgroup standard error is 0 or not defined: no test")
        if any(separate[lev].k == 1 for lev in levels):
            notes.append("a subgroup has a single study (its se is the study's own)")
        if ci_method != "z":
            notes.append(f"subgroup standard errors are {ci_method}-scaled; Q_between is chi2")
        tests.append(
            {
                **base,
                "tau2_option": "separate",
                "Q_between": qb,
                "df": qb_df,
                "df2": _NAN,
                "distribution": "chi2",
                "pvalue": qb_p,
                "n_levels": len(levels),
                "tau2": _NAN,
                "notes": "; ".join(notes),
            }
        )

    if "common" in options:
        X = np.column_stack([masks[lev].astype(float) for lev in levels])
        names = [f"{moderator}{lev}" for lev in levels]
        notes = []
        try:
            common = metareg(
                y,
                v,
                pd.DataFrame(X, columns=names),
                method=method,
                ci_method=ci_method,
                level=level,
            )
            with_int = metareg(
                y,
                v,
                np.column_stack([np.ones(k), X[:, 1:]]),
                method=method,
                ci_method=ci_method,
                level=level,
            )
        except ValueError as exc:
            notes.append(f"common-tau2 model not estimable: {exc}")
            common = None
        for j, lev in enumerate(levels):
            q, qdf, qp = _within_q(y[masks[lev]], v[masks[lev]])
            row: dict[str, Any] = {
                **base,
                "level": lev,
                "tau2_option": "common",
                "k": int(masks[lev].sum()),
                "Q": q,
                "Q_df": qdf,
                "Q_pvalue": qp,
            }
            if common is None:
                row.update({c: _NAN for c in SUBGROUP_COLUMNS if c not in row})
                row.update(base, notes="; ".join(notes))
            else:
                c = common.coefficients.iloc[j]
                pr = predict(common, np.eye(len(levels))[j : j + 1])
                row.update(
                    {
                        "estimate": c["estimate"],
                        "se": c["se"],
                        "statistic": c["statistic"],
                        "ci_lower": c["ci_lower"],
                        "ci_upper": c["ci_upper"],
                        "pvalue": c["pvalue"],
                        "pi_lower": float(pr["pi_lower"].iloc[0]),
                        "pi_upper": float(pr["pi_upper"].iloc[0]),
                        **replace(common.heterogeneity, Q=q, Q_df=qdf, Q_pvalue=qp).as_dict(),
                        "notes": "; ".join(common.fit.notes),
                    }
                )
            rows.append(row)
        if common is None:
            tests.append(
                {
                    **base,
                    "tau2_option": "common",
                    "Q_between": _NAN,
                    "df": len(levels) - 1,
                    "df2": _NAN,
                    "distribution": "chi2" if ci_method == "z" else "F",
                    "pvalue": _NAN,
                    "n_levels": len(levels),
                    "tau2": _NAN,
                    "notes": "; ".join(notes),
                }
            )
        else:
            tests.append(
                {
                    **base,
                    "tau2_option": "common",
                    "Q_between": with_int.QM,
                    "df": with_int.QM_df,
                    "df2": with_int.QM_df2,
                    "distribution": "chi2" if ci_method == "z" else "F",
                    "pvalue": with_int.QM_pvalue,
                    "n_levels": len(levels),
                    "tau2": common.tau2,
                    "notes": "; ".join(notes),
                }
            )

    table = pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS))
    table["k"] = table["k"].astype(int)
    table["Q_df"] = table["Q_df"].astype(int)
    test = pd.DataFrame(tests, columns=list(TEST_COLUMNS))
    test["df"] = test["df"].astype(int)
    return SubgroupResult(
        table=table,
        test=test,
        overall=overall,
        levels=levels,
        separate_fits=separate,
        common_fit=common,
    )
