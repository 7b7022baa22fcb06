"""The arm-based longitudinal model of mean change: one outcome, DataFrames in, tables out.

Every arm's mean change from baseline at every reported week enters one multilevel model
(:func:`hairtrial.models.multilevel.fit_mv`, metafor ``rma.mv``):

* outcome: mean change of one arm at one week; known sampling variance ``sd^2 / n``; rows of
  the same arm at different weeks are correlated (``within_arm_correlation``: the same patients
  are measured against the same baseline), and the two sides of a split-scalp trial at the same
  week are correlated (``split_scalp_correlation``), see :func:`sampling_covariance`;
* fixed effects (``mods``, default ``~ C(week) + C(week):experimental - 1``): the control mean
  change at each week and the experimental-minus-control difference at each week, so the
  coefficients answer the question directly;
* random effects (``random``, default ``~ 1 | study/arm``): a study effect (trials differ in
  their populations and measurement) and an arm effect within study (arms differ beyond
  sampling error: this carries the between-trial heterogeneity of the microneedling effect).

Arms of other treatments are not modelled. Multi-arm trials need no combining: each arm is its
own row, and the shared control is one row. The rows come from
:func:`hairtrial.analyses.arm_model.arm_rows`, which also reads the settings from the config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hairtrial.models import cr2, multilevel

__all__ = [
    "COEFFICIENT_COLUMNS",
    "CONTRAST_COLUMNS",
    "DEFAULT_MODS",
    "DEFAULT_RANDOM",
    "FIT_COLUMNS",
    "MEANS_COLUMNS",
    "OBSERVED_COLUMNS",
    "VARIANCE_COLUMNS",
    "empty_table",
    "fit_outcome",
    "random_terms",
    "sampling_covariance",
]

COEFFICIENT_COLUMNS = ["outcome", "term", "estimate", "se", "ci_lower", "ci_upper", "pvalue"]
CONTRAST_COLUMNS = [
    "outcome",
    "week",
    "contrast",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "df",
]
VARIANCE_COLUMNS = ["outcome", "component", "estimate", "ci_lower", "ci_upper", "notes"]
FIT_COLUMNS = [
    "outcome",
    "method",
    "k",
    "p",
    "logLik",
    "deviance",
    "AIC",
    "BIC",
    "AICc",
    "converged",
    "notes",
]
MEANS_COLUMNS = ["outcome", "treatment", "week", "estimate", "se", "ci_lower", "ci_upper"]
OBSERVED_COLUMNS = [
    "outcome",
    "unit",
    "study",
    "label",
    "arm",
    "treatment",
    "week",
    "mean",
    "sd",
    "n",
    "vi",
    "provenance",
    "design",
]

#: Default fixed effects: control mean change per week, experimental - control per week.
DEFAULT_MODS = "~ C(week) + C(week):experimental - 1"
#: Default random effects: study, and arm within study.
DEFAULT_RANDOM = "~ 1 | study/arm"

RandomSpec = multilevel.RandomTerm | str | Mapping[str, Any]


def sampling_covariance(rows: pd.DataFrame, rho_time: float, rho_side: float) -> sp.csr_matrix:
    """Known covariance of the arm-week means.

    Diagonal ``sd^2 / n``; two weeks of one arm: ``rho_time * sd_t sd_s / max(n_t, n_s)``
    (:func:`hairtrial.models.multilevel.block_covariance`); the two sides of a split-scalp
    trial: ``rho_side * sqrt(v_1 v_2)`` at the same week and
    ``rho_side * rho_time * sqrt(v_1 v_2)`` across weeks (a Kronecker product of the
    side and time correlations, which keeps V positive definite).

    Parameters
    ----------
    rows : pandas.DataFrame
        Arm-week rows with columns ``study, arm, week, sd, n, vi, design`` and a default
        (0..k-1) index.
    rho_time : float
        Correlation of two weeks of one arm.
    rho_side : float
        Correlation of the two sides of a split-scalp trial at the same week.

    Returns
    -------
    scipy.sparse.csr_matrix
        k x k covariance matrix.
    """
    V = multilevel.block_covariance(
        rows, arm="arm", time="week", rho=rho_time, sd="sd", n="n"
    ).tolil()
    split = rows.index[rows["design"] == "split_scalp"]
    for _, g in rows.loc[split].groupby("study"):
        idx = list(g.index)
        for i in idx:
            for j in idx:
                if rows.at[i, "arm"] == rows.at[j, "arm"]:
                    continue
                r = rho_side * (1.0 if rows.at[i, "week"] == rows.at[j, "week"] else rho_time)
                V[i, j] = r * math.sqrt(rows.at[i, "vi"] * rows.at[j, "vi"])
    return V.tocsr()


def random_terms(spec: Sequence[RandomSpec]) -> list[multilevel.RandomTerm]:
    """Random terms from their specifications.

    Parameters
    ----------
    spec : sequence
        Each a :class:`hairtrial.models.multilevel.RandomTerm`, a formula such as
        ``"~ 1 | study/arm"``, or a mapping with ``formula``, optional ``struct`` and fixed
        values (``sigma2``, ``tau2``, ``rho``, ...), as the config's ``arm_model.random``.

    Returns
    -------
    list of RandomTerm

    Examples
    --------
    >>> random_terms(["~ 1 | study/arm", {"formula": "~ week | arm", "struct": "CAR"}])[1].struct
    'CAR'
    """
    terms = []
    for t in spec:
        if isinstance(t, multilevel.RandomTerm):
            terms.append(t)
        elif isinstance(t, str):
            terms.append(multilevel.parse_random(t))
        else:
            kwargs = {k: v for k, v in t.items() if k not in ("formula", "struct")}
            terms.append(
                multilevel.parse_random(t["formula"], struct=t.get("struct", "CS"), **kwargs)
            )
    return terms


_WEEK_DIFF = re.compile(r"^C\(week\)(\d+):experimental$")
_WEEK_MEAN = re.compile(r"^C\(week\)(\d+)$")


def empty_table(columns: Sequence[str]) -> pd.DataFrame:
    """An empty table with the given columns (object dtype), for outcomes without a fit.

    Parameters
    ----------
    columns : sequence of str

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def fit_outcome(
    rows: pd.DataFrame,
    outcome: str,
    *,
    mods: str = DEFAULT_MODS,
    random: Sequence[RandomSpec] = (DEFAULT_RANDOM,),
    within_arm_correlation: float = 0.5,
    split_scalp_correlation: float = 0.5,
    method: str = "REML",
    test: str = "t",
    dfs: str = "contain",
    robust: str = "none",
    level: float = 0.95,
    profile: bool = True,
) -> dict[str, pd.DataFrame]:
    """Fit the arm model of one outcome; return its tidy tables.

    Parameters
    ----------
    rows : pandas.DataFrame
        Arm-week rows (:data:`OBSERVED_COLUMNS` plus ``experimental``, 0/1), e.g. from
        :func:`hairtrial.analyses.arm_model.arm_rows`; rows of other outcomes are ignored.
    outcome : str
        The outcome to model.
    mods : str
        Fixed effects (:func:`hairtrial.models.formula.design_matrix`). Contrasts and means
        are derived from terms named ``C(week)<w>`` and ``C(week)<w>:experimental``.
    random : sequence
        Random terms (see :func:`random_terms`).
    within_arm_correlation, split_scalp_correlation : float
        Sampling correlations (see :func:`sampling_covariance`).
    method : {"REML", "ML"}
    test : {"t", "z"}
    dfs : {"contain", "residual"}
        As :func:`hairtrial.models.multilevel.fit_mv`.
    robust : {"none", "CR2"}
        ``"CR2"``: fixed effects, contrasts and means with cluster-robust (by study) CR2 SEs
        and Satterthwaite df (:func:`hairtrial.models.cr2.cr2`).
    level : float
        Confidence level.
    profile : bool
        False skips the profile-likelihood CIs of the variance components (simulations).

    Returns
    -------
    dict
        ``coefficients``, ``contrasts`` (experimental minus control at each
        modelled week, and the change of that difference from the first
        modelled week), ``variance`` (with profile-likelihood CIs),
        ``fit`` and ``means`` (model-based mean change per treatment and week),
        with the columns of this module's ``*_COLUMNS`` constants. A model that
        cannot be fitted gives a ``fit`` row whose ``notes`` say why and empty
        other tables.
    """
    d = rows[rows["outcome"] == outcome].reset_index(drop=True)
    out = {
        "coefficients": empty_table(COEFFICIENT_COLUMNS),
        "contrasts": empty_table(CONTRAST_COLUMNS),
        "variance": empty_table(VARIANCE_COLUMNS),
        "means": empty_table(MEANS_COLUMNS),
    }
    try:
        X, _ = multilevel.design_matrix(mods, d)
        if len(d) <= X.shape[1]:
            raise ValueError(
                f"{len(d)} arm-week rows for {X.shape[1]} fixed effects: nothing left to "
                "estimate the variance components"
            )
        V = sampling_covariance(d, within_arm_correlation, split_scalp_correlation)
        res = multilevel.fit_mv(
            d,
            yi="mean",
            V=V,
            mods=mods,
            random=random_terms(random),
            method=method,
            test=test,
            dfs=dfs,
            level=level,
            cluster="study",
        )
    except (ValueError, np.linalg.LinAlgError) as err:
        out["fit"] = pd.DataFrame(
            [
                {
                    "outcome": outcome,
                    "method": method,
                    "k": len(d),
                    "converged": False,
                    "notes": f"not fitted: {err}",
                }
            ],
            columns=FIT_COLUMNS,
        )
        return out
    rr = None
    if robust == "CR2":
        order = np.concatenate(res.cluster_rows)
        labels = np.concatenate([np.repeat(i, len(r)) for i, r in enumerate(res.cluster_rows)])
        rr = cr2.cr2(
            res.X[order],
            res.y[order],
            res.blocks_M,
            labels,
            beta=res.beta,
            terms=res.terms,
            level=level,
        )

    def combine(L: pd.DataFrame) -> pd.DataFrame:
        if rr is None:
            return multilevel.contrast(res, L, level=level).reset_index(drop=True)
        return rr.contrast(L.to_numpy(float), names=list(L.index), level=level)

    coefs = (res.coefficients if rr is None else rr.table).copy()
    coefs.insert(0, "outcome", outcome)
    out["coefficients"] = coefs[COEFFICIENT_COLUMNS + ["statistic", "df"]]
    terms = list(coefs["term"])
    diff_terms = {int(m.group(1)): t for t in terms if (m := _WEEK_DIFF.match(t))}
    mean_terms = {int(m.group(1)): t for t in terms if (m := _WEEK_MEAN.match(t))}
    contrasts = []
    weeks = sorted(diff_terms)
    for w in weeks:
        contrasts.append((w, "experimental - control", {diff_terms[w]: 1.0}))
    for w in weeks[1:]:
        contrasts.append(
            (
                w,
                f"change of difference since week {weeks[0]}",
                {diff_terms[w]: 1.0, diff_terms[weeks[0]]: -1.0},
            )  # fmt: skip
        )
    if contrasts:
        L = pd.DataFrame([c[2] for c in contrasts], columns=terms).fillna(0.0)
        L.index = [f"{c[1]} @ {c[0]}" for c in contrasts]
        ct = combine(L)
        ct = ct.drop(columns=[c for c in ("contrast", "term") if c in ct.columns])
        ct.insert(0, "contrast", [c[1] for c in contrasts])
        ct.insert(0, "week", [c[0] for c in contrasts])
        ct.insert(0, "outcome", outcome)
        out["contrasts"] = ct[CONTRAST_COLUMNS]
    means = []
    for w in sorted(mean_terms):
        means.append(("control", w, {mean_terms[w]: 1.0}))
        if w in diff_terms:
            means.append(("experimental", w, {mean_terms[w]: 1.0, diff_terms[w]: 1.0}))
    if means:
        L = pd.DataFrame([m[2] for m in means], columns=terms).fillna(0.0)
        L.index = [f"{m[0]} @ {m[1]}" for m in means]
        mt = combine(L)
        mt = mt.drop(columns=[c for c in ("contrast", "term") if c in mt.columns])
        mt.insert(0, "week", [m[1] for m in means])
        mt.insert(0, "treatment", [m[0] for m in means])
        mt.insert(0, "outcome", outcome)
        out["means"] = mt[MEANS_COLUMNS]
    var_rows = []
    for _, c in res.variance_components.iterrows():
        lo = hi = math.nan
        note = "fixed" if bool(c["fixed"]) else ""
        if not bool(c["fixed"]) and profile:
            try:
                ci = multilevel.profile_ci(res, c["component"], level=level)
                lo, hi = float(ci["ci_lower"].iloc[0]), float(ci["ci_upper"].iloc[0])
                if "notes" in ci.columns and isinstance(ci["notes"].iloc[0], str):
                    note = ci["notes"].iloc[0]
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
                note = f"profile CI not available: {err}"
        mentions = [n for n in res.notes if c["component"].split(" ")[0] in n]
        note = "; ".join(x for x in [note, *mentions] if x)
        var_rows.append(
            {
                "outcome": outcome,
                "component": c["component"],
                "estimate": float(c["estimate"]),
                "ci_lower": lo,
                "ci_upper": hi,
                "notes": note,
            }
        )
    out["variance"] = pd.DataFrame(var_rows, columns=VARIANCE_COLUMNS)
    out["fit"] = pd.DataFrame(
        [
            {
                "outcome": outcome,
                "method": res.method,
                "k": res.k,
                "p": res.p,
                "logLik": res.logLik,
                "deviance": res.deviance,
                "AIC": res.AIC,
                "BIC": res.BIC,
                "AICc": res.AICc,
                "converged": res.converged,
                "notes": "; ".join(
                    [*res.notes]
                    + (
                        ["fixed effects: CR2 cluster-robust SEs by study, Satterthwaite df"]
                        if rr is not None
                        else []
                    )
                ),
            }
        ],
        columns=FIT_COLUMNS,
    )
    return out
