"""The arm-based longitudinal model as the workflow runs it: settings and rows from the config.

The model itself (sampling covariance, random terms, the fit of one outcome and its tables) is
:mod:`hairtrial.models.arm_model`; this module builds the arm-week rows from the configured
inputs (:func:`arm_rows`), reads the ``arm_model`` settings with their defaults
(:data:`DEFAULT_ARM_MODEL`, :func:`settings`) and fits every outcome (:func:`arm_model_tables`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses import ipd, primary
from hairtrial.derive import arm_level, comparisons
from hairtrial.models import arm_model as model

__all__ = ["DEFAULT_ARM_MODEL", "arm_model_tables", "arm_rows", "fit_outcome", "settings"]

DEFAULT_ARM_MODEL = {
    "mods": model.DEFAULT_MODS,
    "random": [{"formula": model.DEFAULT_RANDOM}],
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

    Parameters
    ----------
    config : dict
        Validated config (``data``, ``assumptions``, ``comparison``).

    Returns
    -------
    rows : pandas.DataFrame
        :data:`hairtrial.models.arm_model.OBSERVED_COLUMNS` plus ``experimental`` (0/1), one
        row per arm x week.
    notes : list of str
        Arm-weeks left out, and why.
    """
    arms, studies = primary.load_inputs(config)
    a, measured = ipd.resolved_assumptions(config)
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
    # the contrast level's rule: no arm with a non-finite mean or SD or a zero variance
    why = [
        comparisons.arm_problem(m, sd, n, f"{mp};{sp}")
        for m, sd, n, mp, sp in zip(
            keep["mean"], keep["sd"], keep["n"], keep["mean_provenance"],
            keep["sd_provenance"], strict=True,
        )
    ]  # fmt: skip
    for (_, r), w in zip(keep.iterrows(), why, strict=True):
        if w:
            notes.append(f"{r.study} / {r.arm} / {r.outcome} / week {r.week}: {w}; not modelled")
    keep = keep[[not w for w in why]]
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
    keep = ipd.mark_measured_r(keep, "provenance", measured)
    keep["arm"] = keep["study"] + ": " + keep["arm"]  # arm labels unique across studies
    keep = keep.sort_values(["outcome", "study", "arm", "week"], kind="stable")
    return keep[[*model.OBSERVED_COLUMNS, "experimental"]].reset_index(drop=True), notes


def settings(config: dict) -> dict[str, Any]:
    """Keyword settings of :func:`hairtrial.models.arm_model.fit_outcome` from the config.

    Parameters
    ----------
    config : dict
        Validated config; ``arm_model`` keys override :data:`DEFAULT_ARM_MODEL`.

    Returns
    -------
    dict
        ``mods, random, within_arm_correlation, split_scalp_correlation, method, test, dfs,
        robust, level``.
    """
    am = {**DEFAULT_ARM_MODEL, **config.get("arm_model", {})}
    return {
        "mods": am["mods"],
        "random": am["random"],
        "within_arm_correlation": am["within_arm_correlation"],
        "split_scalp_correlation": ipd.resolved_assumptions(config)[0]["split_scalp_correlation"],
        "method": am["method"],
        "test": am["test"],
        "dfs": am["dfs"],
        "robust": am.get("robust", "none"),
        "level": float(config["meta_analysis"].get("level", 0.95)),
    }


def fit_outcome(
    rows: pd.DataFrame, config: dict, outcome: str, *, profile: bool = True
) -> dict[str, pd.DataFrame]:
    """Fit the arm model of one outcome with the config's settings.

    Parameters
    ----------
    rows : pandas.DataFrame
        From :func:`arm_rows`.
    config : dict
        Validated config (see :func:`settings`).
    outcome : str
        The outcome to model.
    profile : bool
        False skips the profile-likelihood CIs of the variance components (simulations).

    Returns
    -------
    dict
        The tables of :func:`hairtrial.models.arm_model.fit_outcome`.
    """
    return model.fit_outcome(rows, outcome, **settings(config), profile=profile)


def arm_model_tables(config: dict) -> dict[str, pd.DataFrame]:
    """Fit the arm model for every outcome; tables keyed by output name.

    Parameters
    ----------
    config : dict
        Validated config.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``arm_model_coefficients``, ``arm_model_contrasts``, ``arm_model_variance``,
        ``arm_model_fit``, ``arm_model_means`` and ``arm_model_data`` (the modelled rows, for
        the trajectory figure).
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
        "coefficients": [*model.COEFFICIENT_COLUMNS, "statistic", "df"],
        "contrasts": model.CONTRAST_COLUMNS,
        "variance": model.VARIANCE_COLUMNS,
        "fit": model.FIT_COLUMNS,
        "means": model.MEANS_COLUMNS,
    }
    out = {}
    for k, frames in parts.items():
        frames = [f for f in frames if len(f)]
        out[f"arm_model_{k}"] = (
            pd.concat(frames, ignore_index=True)[cols[k]] if frames else model.empty_table(cols[k])
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
