"""The analysis steps the workflow runs, as functions of a validated config.

Each function takes DataFrames (or paths) and the config dict and returns
DataFrames; the Snakemake scripts only read inputs, call one of these and
write the outputs. Keeping the composition here means a notebook or a user's
script can run exactly what the workflow runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses import ipd
from hairtrial.core import vocab
from hairtrial.data import validate
from hairtrial.derive import arm_level, comparisons, effects
from hairtrial.models import univariate

STUDY_EFFECT_COLUMNS = [
    "outcome",
    "week",
    "measure",
    "study",
    "yi",
    "vi",
    "ci_lower",
    "ci_upper",
    "weight_pct",
    "n_control",
    "n_experimental",
    "provenance",
    # extras, after the stable columns of the contract
    "label",
    "year",
    "design",
    "unit",
    "mean_experimental",
    "sd_experimental",
    "mean_control",
    "sd_control",
    "flags",
]
"""Columns of ``results/tables/study_effects.csv``."""

META_COLUMNS = [*vocab.KEYS, *univariate.FRAME_COLUMNS]
"""Columns of ``results/tables/meta_analysis.csv``."""


def read_data(config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The arm-level rows and the study table that ``config['data']`` names, read and
    validated, before any selection (:func:`load_inputs` applies it).

    With ``data.participants``, the arm-level rows computed from the participant data
    (:func:`hairtrial.analyses.ipd.arm_level_rows`, provenance ``from_ipd``) are added.

    Raises
    ------
    hairtrial.data.validate.DataValidationError
        If a file breaks the input contract.
    """
    arms, studies = validate.read_inputs(config["data"]["arms"], config["data"]["studies"])
    participants = ipd.read_participants(config)
    if participants is not None:  # arm-level rows computed from participant data (from_ipd)
        extra = ipd.arm_level_rows(participants, ipd.data_sources(studies))
        arms = pd.concat([arms.assign(provenance="reported"), extra], ignore_index=True)
    return arms, studies


def load_inputs(
    config: dict, data: tuple[pd.DataFrame, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate the inputs named by ``config['data']`` (:func:`read_data`), then
    apply ``selection.studies`` (``primary`` keeps the studies with ``primary = yes`` in
    ``studies.csv``; ``all`` keeps every study) and ``outcomes``.

    ``data``: what :func:`read_data` returned for a config with the same ``data`` section,
    instead of reading the files again (the robustness scenarios, which differ only in
    assumptions and selection). Not modified.

    Raises
    ------
    hairtrial.data.validate.DataValidationError
        If a file breaks the input contract.
    """
    arms, studies = data if data is not None else read_data(config)
    arms, studies = arms.copy(), studies.copy()
    if config.get("selection", {}).get("studies", "primary") == "primary":
        keep = set(studies.loc[studies["primary"] == "yes", "study"])
        arms = arms[arms["study"].isin(keep)].reset_index(drop=True)
    outcomes = config.get("outcomes", "all")
    if outcomes != "all":
        arms = arms[arms["outcome"].isin(outcomes)].reset_index(drop=True)
    return arms, studies


def arm_level_changes(
    config: dict, data: tuple[pd.DataFrame, pd.DataFrame] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """The arm-level changes :func:`prepare` builds its comparisons from.

    :func:`load_inputs`, then :func:`hairtrial.derive.arm_level.derive_arm_changes` with the
    (resolved) ``assumptions.change_sd_correlation``. ``data`` as for :func:`prepare`.

    Returns
    -------
    tuple
        ``(arm_changes, studies, quality, notes)``: the arm changes, the study table, the
        quality rows and the notes of the arm-level derivation.
    """
    arms, studies = load_inputs(config, data)
    assumptions, _ = ipd.resolved_assumptions(config)
    changes, quality, notes = arm_level.derive_arm_changes(
        arms, studies, change_sd_correlation=assumptions["change_sd_correlation"]
    )
    return changes, studies, quality, notes


def prepare(
    config: dict,
    data: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    *,
    changes: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validate, derive arm-level changes and build study comparisons.

    ``data``: :func:`read_data` of a config with the same ``data`` section, so that the files
    are read once for many analysis variants (see :func:`load_inputs`).

    ``changes``: :func:`arm_level_changes` of a config with the same ``data``, ``selection``,
    ``outcomes`` and (resolved) ``assumptions.change_sd_correlation``, instead of deriving
    them again (robustness scenarios that change another assumption). Not modified.

    Returns
    -------
    effects : pandas.DataFrame
        Study-level effect sizes (:data:`hairtrial.derive.comparisons.EFFECT_COLUMNS`).
    quality : pandas.DataFrame
        Every derived, converted or assumed number (``data_quality.csv``).
    notes : pandas.DataFrame
        One column ``note``: inputs that could not be used, and why.
    """
    changed, studies, quality_arms, notes_arms = (
        changes if changes is not None else arm_level_changes(config, data)
    )
    assumptions, measured = ipd.resolved_assumptions(config)
    eff, quality_cmp, notes_cmp = comparisons.build_comparisons(
        changed,
        studies,
        control=config["comparison"]["control"],
        experimental=config["comparison"]["experimental"],
        split_scalp_correlation=assumptions["split_scalp_correlation"],
        measures=config["measures"],
        p_bound_factor=assumptions.get("p_bound_factor", 1.0),
    )
    quality = pd.concat([quality_arms, quality_cmp], ignore_index=True)
    eff = ipd.mark_measured_r(eff, "provenance", measured)
    quality = ipd.mark_measured_r(quality, "provenance", measured)
    for key, text in measured.items():
        quality.loc[
            quality["assumption"].str.contains(f"assumptions.{key}", na=False), "assumption"
        ] = f"{text} (assumptions.{key}: from_ipd)"
    quality = quality.sort_values(
        ["outcome", "week", "study", "arm", "quantity"], kind="stable"
    ).reset_index(drop=True)
    notes = pd.DataFrame({"note": [*notes_arms, *notes_cmp]})
    return eff, quality, notes


def meta_analyses(eff: pd.DataFrame, config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool every outcome x week x measure with every configured method.

    Parameters
    ----------
    eff : pandas.DataFrame
        Output of :func:`prepare`.
    config : dict
        Validated config; ``meta_analysis.tau2_methods`` and ``ci_methods``
        (first entries primary) and ``level``.

    Returns
    -------
    meta_table : pandas.DataFrame
        :data:`META_COLUMNS`, one row per outcome x week x measure x method x
        ci_method.
    study_effects : pandas.DataFrame
        :data:`STUDY_EFFECT_COLUMNS`; ``weight_pct`` from the primary model.
    """
    ma = config["meta_analysis"]
    level = float(ma.get("level", 0.95))
    methods, ci_methods = ma["tau2_methods"], ma["ci_methods"]
    tables = []
    studies_out = []
    for (outcome, week, measure), g in eff.groupby(["outcome", "week", "measure"], sort=True):
        g = g.sort_values("study", kind="stable")
        yi, vi = g["yi"].to_numpy(float), g["vi"].to_numpy(float)
        fits = [
            univariate.fit(yi, vi, method=m, ci_method=c, level=level)
            for m in methods
            for c in ci_methods
        ]
        t = pd.concat([f.summary_frame() for f in fits], ignore_index=True)
        t.insert(0, "measure", measure)
        t.insert(0, "week", int(week))
        t.insert(0, "outcome", outcome)
        tables.append(t)
        lo, hi = effects.ci_from_yi_vi(yi, vi, level=level)
        s = g.copy()
        s["ci_lower"], s["ci_upper"] = np.atleast_1d(lo), np.atleast_1d(hi)
        s["weight_pct"] = fits[0].weights
        studies_out.append(s)
    meta_table = (
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=META_COLUMNS)
    )
    study_effects = (
        pd.concat(studies_out, ignore_index=True)
        if studies_out
        else pd.DataFrame(columns=STUDY_EFFECT_COLUMNS)
    )
    return meta_table[META_COLUMNS], study_effects[STUDY_EFFECT_COLUMNS]


def primary_model(config: dict) -> tuple[str, str, float]:
    """(tau² method, CI method, level) of the primary analysis.

    The one rule for the primary model, used by every table, figure, the report and the
    notebooks: the first entries of ``meta_analysis.tau2_methods`` and
    ``meta_analysis.ci_methods``, at ``meta_analysis.level`` (default 0.95).

    Examples
    --------
    >>> primary_model({"meta_analysis": {"tau2_methods": ["REML", "DL"], "ci_methods": ["adhoc"]}})
    ('REML', 'adhoc', 0.95)
    """
    ma = config["meta_analysis"]
    return ma["tau2_methods"][0], ma["ci_methods"][0], float(ma.get("level", 0.95))


def primary_row(meta_table: pd.DataFrame, config: dict, outcome: str, week: int, measure: str):
    """The primary model's row (:func:`primary_model`) of one outcome x week x measure, or None."""
    method, ci_method, _ = primary_model(config)
    sel = meta_table[
        (meta_table["outcome"] == outcome)
        & (meta_table["week"] == int(week))
        & (meta_table["measure"] == measure)
        & (meta_table["method"] == method)
        & (meta_table["ci_method"] == ci_method)
    ]
    return None if sel.empty else sel.iloc[0]


def effect_shown(pooled: Any, trials: pd.DataFrame) -> tuple[float, float, float, str]:
    """The estimate and CI that summaries show for one outcome x week x measure.

    The primary model's, except where the model leaves them undefined for a single trial:
    with k = 1 nothing is pooled (an ad hoc Hartung-Knapp CI has no residual degrees of
    freedom; Mantel-Haenszel and Peto are undefined with a zero cell), and the result is the
    trial's own - its estimate and CI from the study-effects table (escalc, with the zero-cell
    correction named there), as a summary of findings reports a single study. The one rule
    for the summary of findings and the report's benefit-and-harm overview.

    Parameters
    ----------
    pooled : mapping or pandas.Series
        The primary model's row (``k``, ``estimate``, ``ci_lower``, ``ci_upper``).
    trials : pandas.DataFrame
        The study-effects rows of the same outcome x week x measure (``yi``, ``ci_lower``,
        ``ci_upper``; ``correction`` for binary outcomes).

    Returns
    -------
    tuple
        ``(estimate, ci_lower, ci_upper, source)`` on the analysis scale (log for ratios);
        ``source`` is ``""`` for the model's numbers, ``"the trial's own CI"`` or
        ``"the trial's own estimate"`` (with its correction, when one was added).

    Examples
    --------
    >>> trial = pd.DataFrame({"yi": [12.0], "ci_lower": [4.4], "ci_upper": [19.6]})
    >>> effect_shown({"k": 1, "estimate": 12.0, "ci_lower": float("nan"),
    ...               "ci_upper": float("nan")}, trial)
    (12.0, 4.4, 19.6, "the trial's own CI")
    """

    def num(x: Any) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return float("nan")

    est, lo, hi = (num(pooled.get(c)) for c in ("estimate", "ci_lower", "ci_upper"))
    if num(pooled.get("k")) != 1 or len(trials) != 1:
        return est, lo, hi, ""
    t = trials.iloc[0]
    yi, tlo, thi = (num(t.get(c)) for c in ("yi", "ci_lower", "ci_upper"))
    if not np.isfinite(est) and np.isfinite(yi):
        corr = str(t.get("correction", "none") or "none").lstrip("'")
        source = "the trial's own estimate" + ("" if corr in ("none", "nan") else f", {corr}")
        return yi, tlo, thi, source
    own_ci = bool(np.isfinite(tlo) and np.isfinite(thi))
    if np.isfinite(est) and not (np.isfinite(lo) and np.isfinite(hi)) and own_ci:
        return est, tlo, thi, "the trial's own CI"
    return est, lo, hi, ""
