"""The arm-based longitudinal model of mean change, as the workflow runs it.

Every arm's mean change from baseline at every reported week enters one
multilevel model (:func:`hairtrial.models.multilevel.fit_mv`, metafor ``rma.mv``):

* outcome: mean change of one arm at one week; known sampling variance
  ``sd^2 / n``; rows of the same arm at different weeks are correlated
  (``arm_model.within_arm_correlation``: the same patients are measured
  against the same baseline), and the two sides of a split-scalp trial at the
  same week are correlated (``assumptions.split_scalp_correlation``);
* fixed effects (``arm_model.mods``, default ``~ C(week) + C(week):experimental - 1``):
  the control mean change at each week and the experimental-minus-control
  difference at each week, so the coefficients answer the question directly;
* random effects (``arm_model.random``, default ``~ 1 | study/arm``): a study
  effect (trials differ in their populations and measurement) and an arm
  effect within study (arms differ beyond sampling error: this carries the
  between-trial heterogeneity of the microneedling effect).

Arms of other treatments are not modelled. Multi-arm trials need no
combining: each arm is its own row, and the shared control is one row.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hairtrial.analyses import primary
from hairtrial.derive import arm_level, comparisons
from hairtrial.models import cr2, multilevel

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

DEFAULT_ARM_MODEL = {
    "mods": "~ C(week) + C(week):experimental - 1",
    "random": [{"formula": "~ 1 | study/arm"}],
    "within_arm_correlation": 0.5,
    "method": "REML",
    "test": "t",
    "dfs": "contain",
    "robust": "none",
}


def arm_rows(config: dict) -> tuple[pd.DataFrame, list[str]]:
    """Arm-level rows of change from baseline for the arm model.

    Uses the same validation, derivations and SD-from-test rules as the
    contrast-level analysis (:func:`hairtrial.analyses.primary.load_inputs`,
    :func:`hairtrial.derive.arm_level.derive_arm_changes`,
    :func:`hairtrial.derive.comparisons.fill_sds_from_tests`), then keeps the control
    and experimental arms with an SD.

    Returns
    -------
    rows : pandas.DataFrame
        :data:`OBSERVED_COLUMNS` plus ``experimental`` (0/1), one row per arm x week.
    notes : list of str
        Arm-weeks left out, and why.
    """
    arms, studies = primary.load_inputs(config)
    a = config["assumptions"]
    ctrl, expt = config["comparison"]["control"], config["comparison"]["experimental"]
    changes, _, notes = arm_level.derive_arm_changes(
        arms, studies, change_sd_correlation=a["change_sd_correlation"]
    )
    changes, _, more = comparisons.fill_sds_from_tests(
        changes,
        studies,
        control=ctrl,
        experimental=expt,
        p_bound_factor=a.get("p_bound_factor", 1.0),
    )
    notes = [*notes, *more]
    keep = changes[changes["treatment"].isin([ctrl, expt])].copy()
    no_sd = keep["sd"].isna()
    for _, r in keep[no_sd].iterrows():
        notes.append(f"{r.study} / {r.arm} / {r.outcome} / week {r.week}: no SD; not modelled")
    keep = keep[~no_sd]
    sinfo = studies.set_index("study")
    keep["label"] = [
        comparisons.study_label(s, sinfo.at[s, "first_author"], sinfo.at[s, "year"])
        for s in keep["study"]
    ]
    keep["design"] = [sinfo.at[s, "design"] for s in keep["study"]]
    keep["treatment"] = np.where(keep["treatment"] == expt, "experimental", "control")
    keep["experimental"] = (keep["treatment"] == "experimental").astype(float)
    keep["vi"] = keep["sd"] ** 2 / keep["n"]
    keep["provenance"] = [
        comparisons.provenance.join([n, m, s])
        for n, m, s in zip(
            keep["n_provenance"], keep["mean_provenance"], keep["sd_provenance"], strict=True
        )
    ]
    keep["arm"] = keep["study"] + ": " + keep["arm"]  # arm labels unique across studies
    keep = keep.sort_values(["outcome", "study", "arm", "week"], kind="stable")
    return keep[[*OBSERVED_COLUMNS, "experimental"]].reset_index(drop=True), notes


def sampling_covariance(rows: pd.DataFrame, rho_time: float, rho_side: float) -> sp.csr_matrix:
    """Known covariance of the arm-week means.

    Diagonal ``sd^2 / n``; two weeks of one arm: ``rho_time * sd_t sd_s / max(n_t, n_s)``
    (:func:`hairtrial.models.multilevel.block_covariance`); the two sides of a split-scalp
    trial: ``rho_side * sqrt(v_1 v_2)`` at the same week and
    ``rho_side * rho_time * sqrt(v_1 v_2)`` across weeks (a Kronecker product of the
    side and time correlations, which keeps V positive definite).
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


def _random_terms(spec: list[dict]) -> list[multilevel.RandomTerm]:
    terms = []
    for t in spec:
        kwargs = {k: v for k, v in t.items() if k not in ("formula", "struct")}
        terms.append(multilevel.parse_random(t["formula"], struct=t.get("struct", "CS"), **kwargs))
    return terms


_WEEK_DIFF = re.compile(r"^C\(week\)(\d+):experimental$")
_WEEK_MEAN = re.compile(r"^C\(week\)(\d+)$")


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def fit_outcome(
    rows: pd.DataFrame, config: dict, outcome: str, *, profile: bool = True
) -> dict[str, pd.DataFrame]:
    """Fit the arm model of one outcome; return its tidy tables.

    Returns
    -------
    dict
        ``coefficients``, ``contrasts`` (experimental minus control at each
        modelled week, and the change of that difference from the first
        modelled week), ``variance`` (with profile-likelihood CIs),
        ``fit`` and ``means`` (model-based mean change per treatment and week),
        with the columns of this module's ``*_COLUMNS`` constants. ``profile=False``
        skips the profile-likelihood CIs of the variance components (simulations). A model that
        cannot be fitted gives a ``fit`` row whose ``notes`` say why and empty
        other tables.
    """
    am = {**DEFAULT_ARM_MODEL, **config.get("arm_model", {})}
    level = float(config["meta_analysis"].get("level", 0.95))
    d = rows[rows["outcome"] == outcome].reset_index(drop=True)
    out = {
        "coefficients": _empty(COEFFICIENT_COLUMNS),
        "contrasts": _empty(CONTRAST_COLUMNS),
        "variance": _empty(VARIANCE_COLUMNS),
        "means": _empty(MEANS_COLUMNS),
    }
    try:
        X, names = multilevel.design_matrix(am["mods"], d)
        if len(d) <= X.shape[1]:
            raise ValueError(
                f"{len(d)} arm-week rows for {X.shape[1]} fixed effects: nothing left to "
                "estimate the variance components"
            )
        V = sampling_covariance(
            d, am["within_arm_correlation"], config["assumptions"]["split_scalp_correlation"]
        )
        res = multilevel.fit_mv(
            d,
            yi="mean",
            V=V,
            mods=am["mods"],
            random=_random_terms(am["random"]),
            method=am["method"],
            test=am["test"],
            dfs=am["dfs"],
            level=level,
            cluster="study",
        )
    except (ValueError, np.linalg.LinAlgError) as err:
        out["fit"] = pd.DataFrame(
            [
                {
                    "outcome": outcome,
                    "method": am["method"],
                    "k": len(d),
                    "converged": False,
                    "notes": f"not fitted: {err}",
                }
            ],
            columns=FIT_COLUMNS,
        )
        return out
    rr = None
    if am.get("robust", "none") == "CR2":
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


def arm_model_tables(config: dict) -> dict[str, pd.DataFrame]:
    """Fit the arm model for every outcome; tables keyed by output name.

    Keys: ``arm_model_coefficients``, ``arm_model_contrasts``,
    ``arm_model_variance``, ``arm_model_fit``, ``arm_model_means`` and
    ``arm_model_data`` (the modelled rows, for the trajectory figure).
    """
    rows, notes = arm_rows(config)
    parts: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("coefficients", "contrasts", "variance", "fit", "means")
    }
    for outcome in sorted(rows["outcome"].unique()):
        res = fit_outcome(rows, config, outcome)
        for k in parts:
            parts[k].append(res[k])
    cols = {
        "coefficients": [*COEFFICIENT_COLUMNS, "statistic", "df"],
        "contrasts": CONTRAST_COLUMNS,
        "variance": VARIANCE_COLUMNS,
        "fit": FIT_COLUMNS,
        "means": MEANS_COLUMNS,
    }
    out = {}
    for k, frames in parts.items():
        frames = [f for f in frames if len(f)]
        out[f"arm_model_{k}"] = (
            pd.concat(frames, ignore_index=True)[cols[k]] if frames else _empty(cols[k])
        )
    out["arm_model_data"] = rows.drop(columns=["experimental"])
    fit = out["arm_model_fit"]
    merged = []
    for outcome, note in zip(fit["outcome"], fit["notes"], strict=True):
        mine = sorted({n for n in notes if f"/ {outcome} /" in n})
        extra = f"inputs not modelled: {'; '.join(mine)}" if mine else ""
        merged.append("; ".join(x for x in (note, extra) if isinstance(x, str) and x))
    fit["notes"] = merged
    return out
