"""Study-level comparisons: experimental minus control change from baseline.

For each study x outcome x week with at least one control and one
experimental arm:

1. Multi-arm trials: arms of the same treatment are combined into one group
   (Cochrane Handbook 6.5.2.10), so a shared control is never counted twice.
2. A missing SD is derived from the between-arm p-value (Cochrane Handbook
   6.5.2.3) when the comparison is one control arm against one experimental
   arm; a p-value given as a bound (``p < x``) is used as ``p = x``, which
   overestimates the SD (conservative) and is flagged ``from_p_bound``.
3. Effect sizes: parallel trials use MD and Hedges' g (metafor ``MD`` /
   ``SMD``); split-scalp trials use the within-patient contrast with the
   assumed correlation between sides (``split_scalp_r``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hairtrial.data import provenance
from hairtrial.derive import dispersion, effects
from hairtrial.derive.arm_level import QUALITY_COLUMNS

EFFECT_COLUMNS = [
    "outcome",
    "unit",
    "week",
    "measure",
    "study",
    "label",
    "year",
    "design",
    "yi",
    "vi",
    "n_experimental",
    "mean_experimental",
    "sd_experimental",
    "n_control",
    "mean_control",
    "sd_control",
    "provenance",
    "flags",
]
"""Columns of the study-level effect table (before pooling)."""

MEASURES = ("MD", "SMD")


def study_label(study: str, first_author: object, year: object) -> str:
    """Display label 'Surname Year' for a study, falling back to its id.

    Examples
    --------
    >>> study_label("dhurat2013", "Dhurat R", 2013)
    'Dhurat 2013'
    >>> study_label("pmid36214061", None, 2022)
    'pmid36214061'
    """
    if isinstance(first_author, str) and first_author.strip() and pd.notna(year):
        return f"{first_author.split()[0]} {int(year)}"
    return study


def _combine(group: pd.DataFrame) -> dict:
    """Combine the arms of one role into one group (n, mean, sd, provenance)."""
    codes = [
        *group["n_provenance"],
        *group["mean_provenance"],
        *[c for c in group["sd_provenance"] if c],
    ]
    if len(group) == 1:
        r = group.iloc[0]
        return {"n": r["n"], "mean": r["mean"], "sd": r["sd"], "codes": codes}
    if group["sd"].isna().any():
        return {"n": group["n"].sum(), "mean": math.nan, "sd": math.nan, "codes": codes}
    n, mean, sd = dispersion.combine_groups(
        group["n"].to_numpy(float), group["mean"].to_numpy(float), group["sd"].to_numpy(float)
    )
    return {
        "n": float(n),
        "mean": float(mean),
        "sd": float(sd),
        "codes": [*codes, "combined_arms"],
    }


def arm_problem(mean: float, sd: float, n: float, codes: str | list[str] = "") -> str:
    """Why one arm's (or one combined group's) numbers cannot enter a model, or "".

    A mean or SD that is not finite (an extreme value, or an SD derived from one), or an SD
    whose sampling variance SD^2 / n is 0 (an SD of 0, or one so small that its square
    underflows), would give a comparison or an arm-model row infinite weight. An SD of change
    of 0 from ``change_sd_correlation = 1`` with equal baseline and follow-up SDs is named as
    such.

    Examples
    --------
    >>> arm_problem(12.0, 3.0, 20)
    ''
    >>> arm_problem(1e308 * 10, 3.0, 20)
    'mean inf is not finite'
    >>> arm_problem(5.0, 0.0, 20, "change_from_levels;change_from_levels_r")
    'SD of change 0: change_sd_correlation = 1 with equal baseline and follow-up SDs'
    """
    text = ";".join(codes) if isinstance(codes, list) else str(codes)
    if not math.isfinite(float(mean)):
        return f"mean {float(mean):g} is not finite"
    if not math.isfinite(float(sd)):
        derived = any(c in text for c in ("from_p", "from_t"))
        return f"SD {float(sd):g} is not finite" + (
            " (derived from a between-arm test of extreme means)" if derived else ""
        )
    with np.errstate(all="ignore"):
        variance = float(np.float64(sd) ** 2 / float(n)) if float(n) > 0 else math.nan
    if variance == math.inf:
        return f"SD {float(sd):g} is too large: its sampling variance overflows"
    if not variance > 0:
        if float(sd) == 0 and "change_from_levels_r" in text:
            return "SD of change 0: change_sd_correlation = 1 with equal baseline and follow-up SDs"
        return f"SD {float(sd):g} gives a sampling variance of 0"
    return ""


def fill_sds_from_tests(
    arm_changes: pd.DataFrame,
    studies: pd.DataFrame,
    *,
    control: str,
    experimental: str,
    p_bound_factor: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Fill missing arm SDs from a between-arm t statistic or p-value.

    Applies to a study x outcome x week with exactly one control and one
    experimental arm, changes reported as such, and a parallel design: the
    pooled SD of a two-sample t-test (Cochrane Handbook 6.5.2.3) is given to
    each arm that lacks an SD. ``t_value`` is preferred to ``p_value``; a
    p-value bound ``p < x`` is used as ``p_bound_factor * x``.

    Parameters
    ----------
    arm_changes : pandas.DataFrame
        Output of :func:`hairtrial.derive.arm_level.derive_arm_changes`.
    studies : pandas.DataFrame
        Validated study table (for the design).
    control, experimental : str
        Treatment codes.
    p_bound_factor : float
        See :func:`build_comparisons`.

    Returns
    -------
    arm_changes : pandas.DataFrame
        A copy with SDs (and ``sd_provenance``) filled where derivable.
    quality : pandas.DataFrame
        One :data:`hairtrial.derive.arm_level.QUALITY_COLUMNS` row per derived SD.
    notes : list of str
        Where an SD is missing and cannot be derived, and why.
    """
    arm_changes = arm_changes.copy()
    design_of = dict(zip(studies["study"], studies["design"], strict=True))
    quality: list[dict] = []
    notes: list[str] = []
    keep = arm_changes[arm_changes["treatment"].isin([control, experimental])]
    for (outcome, week, study), g in keep.groupby(["outcome", "week", "study"], sort=True):
        if not g["sd"].isna().any():  # every SD reported: nothing to derive
            continue
        where = f"{study} / {outcome} / week {week}"
        ctrl = g[g["treatment"] == control]
        expt = g[g["treatment"] == experimental]
        if ctrl.empty or expt.empty:
            continue
        design = str(design_of[study])
        n_pair = len(ctrl) == 1 and len(expt) == 1
        if (ctrl["sd"].isna().any() or expt["sd"].isna().any()) and n_pair:
            tv = g["t_value"].dropna()
            p = g["p_value"].dropna()
            if tv.empty and p.empty:
                notes.append(
                    f"{where}: SD not reported and no t or p-value to derive it; no comparison"
                )
                continue
            with np.errstate(all="ignore"):  # extreme means: said below, not warned
                md = float(expt["mean"].iloc[0] - ctrl["mean"].iloc[0])
            from_levels = g["mean_provenance"].str.contains("change_from_levels").any()
            if from_levels:
                notes.append(
                    f"{where}: SD missing and the change was computed from levels; a between-arm "
                    "test of levels cannot give the SD of change"
                )
                continue
            if design == "split_scalp":
                notes.append(
                    f"{where}: split-scalp SDs from a test statistic are not derived (side SDs "
                    "are needed for the SMD)"
                )
                continue
            n1, n2 = float(expt["n"].iloc[0]), float(ctrl["n"].iloc[0])
            if not math.isfinite(md):
                means = f"{float(expt['mean'].iloc[0]):g} and {float(ctrl['mean'].iloc[0]):g}"
                notes.append(
                    f"{where}: SD not reported and the difference of the arm means ({means}) "
                    "is not finite; check the means; no comparison"
                )
                continue
            if md == 0:
                notes.append(
                    f"{where}: SD not reported and the arm means are equal (MD = 0); a "
                    "between-arm test cannot give an SD when the difference is 0; no comparison"
                )
                continue
            if n1 + n2 < 3:
                notes.append(
                    f"{where}: SD not reported and n = {n1:g} + {n2:g} leaves no degrees of "
                    "freedom to derive it from a test; no comparison"
                )
                continue
            if not tv.empty:
                t_val = abs(float(tv.iloc[0]))
                with np.errstate(all="ignore"):
                    sd = float(dispersion.pooled_sd_from_t(md, n1, n2, t_val))
                code, bound = "from_t", False
                method = "pooled SD = |MD| / |t| / sqrt(1/n1 + 1/n2)"
                inputs = f"t = {t_val:g}; MD={md:.6g}; n1={n1:g}; n2={n2:g}"
            else:
                p_val = float(p.iloc[0])
                bound = bool((g.loc[p.index, "p_relation"] == "<").any())
                code = "from_p_bound" if bound else "from_p_value"
                p_used = p_val * p_bound_factor if bound else p_val
                with np.errstate(all="ignore"):
                    sd = float(dispersion.pooled_sd_from_p(md, n1, n2, p_used))
                method = "pooled SD = |MD| / t(1 - p/2, n1 + n2 - 2) / sqrt(1/n1 + 1/n2)"
                rel = "<" if bound else "="
                inputs = f"p {rel} {p_val:g}; MD={md:.6g}; n1={n1:g}; n2={n2:g}"
                if bound and p_bound_factor != 1:
                    inputs += f"; p used = {p_used:g} (assumptions.p_bound_factor)"
            if not (math.isfinite(sd) and sd > 0):
                notes.append(
                    f"{where}: SD not reported; the SD derived from the test ({inputs}) is "
                    f"{sd:g}, not usable; check the means and the test; no comparison"
                )
                continue
            for frame in (expt, ctrl):
                idx = frame.index[0]
                if pd.isna(frame.at[idx, "sd"]):
                    arm_changes.at[idx, "sd"] = sd
                    arm_changes.at[idx, "sd_provenance"] = provenance.join(
                        [code, *frame.at[idx, "mean_provenance"].split(";")]
                    )
                    quality.append(
                        {
                            "study": study,
                            "arm": frame.at[idx, "arm"],
                            "outcome": outcome,
                            "week": week,
                            "quantity": "sd",
                            "value": sd,
                            "unit": frame.at[idx, "unit"],
                            "provenance": arm_changes.at[idx, "sd_provenance"],
                            "method": method,
                            "inputs": inputs,
                            "assumption": "equal SDs in both arms; two-sided t-test"
                            + (
                                "; bound used as value (conservative)"
                                if bound and p_bound_factor == 1
                                else f"; bound x {p_bound_factor:g} used as value"
                                if bound
                                else ""
                            ),
                        }
                    )
    return arm_changes, pd.DataFrame(quality, columns=QUALITY_COLUMNS), notes


def _effect(
    measure: str, design: str, e: dict, c: dict, split_scalp_correlation: float
) -> tuple[float, float, str]:
    """(yi, vi, "") of one comparison, or (nan, nan, why) when it cannot be computed.

    A comparison whose effect size or sampling variance is not finite, or whose variance is
    not positive, is excluded with the reason instead of entering a model with infinite weight.
    """
    try:
        if design == "split_scalp":
            n = min(e["n"], c["n"])
            args = (e["mean"], e["sd"], c["mean"], c["sd"], n, split_scalp_correlation)
            fn = effects.paired_mean_difference if measure == "MD" else effects.paired_smd
        else:
            args = (e["mean"], e["sd"], e["n"], c["mean"], c["sd"], c["n"])
            fn = effects.mean_difference if measure == "MD" else effects.hedges_g
        with np.errstate(all="ignore"):
            yi, vi = (float(x) for x in fn(*args))
    except (ValueError, ZeroDivisionError, OverflowError) as err:
        return math.nan, math.nan, f"{err} (n = {e['n']:g} and {c['n']:g})"
    if not (math.isfinite(yi) and math.isfinite(vi)):
        return (
            math.nan,
            math.nan,
            (
                f"the effect size or its variance is not finite (yi = {yi:g}, vi = {vi:g}); "
                "check the means and SDs for extreme values"
            ),
        )
    if vi <= 0:
        return (
            math.nan,
            math.nan,
            (f"the sampling variance is {vi:g} (SDs {e['sd']:g} and {c['sd']:g})"),
        )
    return yi, vi, ""


def build_comparisons(
    arm_changes: pd.DataFrame,
    studies: pd.DataFrame,
    *,
    control: str,
    experimental: str,
    split_scalp_correlation: float,
    measures: tuple[str, ...] | list[str] = MEASURES,
    p_bound_factor: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Effect sizes of every study x outcome x week comparison.

    Parameters
    ----------
    arm_changes : pandas.DataFrame
        Output of :func:`hairtrial.derive.arm_level.derive_arm_changes`.
    studies : pandas.DataFrame
        Validated study table (design, first author, year).
    control, experimental : str
        Treatment codes of the two groups; arms of other treatments are ignored.
    split_scalp_correlation : float
        Assumed correlation between the two sides' changes within a patient.
    measures : sequence of {"MD", "SMD"}
        Effect measures to compute.
    p_bound_factor : float
        A p-value reported as a bound ``p < x`` is used as ``p = p_bound_factor * x``.
        1 (default) uses the bound itself, which overestimates the SD (conservative);
        sensitivity analyses use smaller factors.

    Returns
    -------
    effects : pandas.DataFrame
        Columns :data:`EFFECT_COLUMNS`, one row per comparison and measure.
    quality : pandas.DataFrame
        Columns of :data:`hairtrial.derive.arm_level.QUALITY_COLUMNS` for SDs derived
        from p-values and for combined arms.
    notes : list of str
        Comparisons that could not be made, and why.
    """
    sinfo = studies.set_index("study")
    rows: list[dict] = []
    arm_changes, quality_frame, notes = fill_sds_from_tests(
        arm_changes,
        studies,
        control=control,
        experimental=experimental,
        p_bound_factor=p_bound_factor,
    )
    quality: list[dict] = quality_frame.to_dict("records")
    keep = arm_changes[arm_changes["treatment"].isin([control, experimental])]
    for (outcome, week, study), g in keep.groupby(["outcome", "week", "study"], sort=True):
        where = f"{study} / {outcome} / week {week}"
        ctrl = g[g["treatment"] == control]
        expt = g[g["treatment"] == experimental]
        if ctrl.empty or expt.empty:
            missing, code = ("control", control) if ctrl.empty else ("experimental", experimental)
            here = arm_changes[
                (arm_changes["study"] == study)
                & (arm_changes["outcome"] == outcome)
                & (arm_changes["week"] == week)
            ]
            coded = ", ".join(f"'{t}'" for t in sorted(set(here["treatment"].astype(str))))
            notes.append(
                f"{where}: no {missing} arm (treatment '{code}') with usable data; its arms "
                f"are coded {coded}; no comparison"
            )
            continue
        design = str(sinfo.at[study, "design"])
        if ctrl["sd"].isna().any() or expt["sd"].isna().any():
            if not any(n.startswith(f"{where}: ") for n in notes):  # said why already
                notes.append(f"{where}: SD not available for every arm; no comparison")
            continue
        with np.errstate(all="ignore"):
            e, c = _combine(expt), _combine(ctrl)
        problems = [
            f"{role} {why}"
            for role, grp in (("experimental", e), ("control", c))
            if (why := arm_problem(grp["mean"], grp["sd"], grp["n"], grp["codes"]))
        ]
        if problems:
            notes.append(f"{where}: {'; '.join(problems)}; no comparison")
            continue
        for role, grp, comb in (("experimental", expt, e), ("control", ctrl, c)):
            if len(grp) > 1:
                for qty in ("n", "mean", "sd"):
                    quality.append(
                        {
                            "study": study,
                            "arm": " + ".join(grp["arm"]),
                            "outcome": outcome,
                            "week": week,
                            "quantity": qty,
                            "value": comb[qty],
                            "unit": "participants" if qty == "n" else grp["unit"].iloc[0],
                            "provenance": "combined_arms",
                            "method": f"{role} arms combined (Cochrane Handbook 6.5.2.10)",
                            "inputs": "; ".join(
                                f"{a}: n={n:g}, mean={m:.6g}, sd={s:.6g}"
                                for a, n, m, s in zip(
                                    grp["arm"], grp["n"], grp["mean"], grp["sd"], strict=True
                                )
                            ),
                            "assumption": "",
                        }
                    )
        codes = [*e["codes"], *c["codes"]]
        if design == "split_scalp":
            codes.append("split_scalp_r")
        flags = sorted({f for fl in g["flags"] for f in str(fl).split(";") if f})
        for measure in measures:
            yi, vi, why = _effect(measure, design, e, c, split_scalp_correlation)
            if why:
                notes.append(f"{where}: {measure} not computable: {why}; no {measure} comparison")
                continue
            rows.append(
                {
                    "outcome": outcome,
                    "unit": g["unit"].iloc[0],
                    "week": int(week),
                    "measure": measure,
                    "study": study,
                    "label": study_label(
                        study, sinfo.at[study, "first_author"], sinfo.at[study, "year"]
                    ),
                    "year": sinfo.at[study, "year"],
                    "design": design,
                    "yi": float(yi),
                    "vi": float(vi),
                    "n_experimental": e["n"],
                    "mean_experimental": e["mean"],
                    "sd_experimental": e["sd"],
                    "n_control": c["n"],
                    "mean_control": c["mean"],
                    "sd_control": c["sd"],
                    "provenance": provenance.join(codes),
                    "flags": ";".join(flags),
                }
            )
    out = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    if not out.empty:
        out = out.sort_values(["outcome", "week", "measure", "study"], kind="stable")
    out = out.reset_index(drop=True)
    for col in ("yi", "vi"):
        out[col] = out[col].astype(np.float64)
    return out, pd.DataFrame(quality, columns=QUALITY_COLUMNS), notes
