"""The analysis steps the workflow runs, as functions of a validated config.

Each function takes DataFrames (or paths) and the config dict and returns
DataFrames; the Snakemake scripts only read inputs, call one of these and
write the outputs. Keeping the composition here means a notebook or a user's
script can run exactly what the workflow runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hairtrial import comparisons, derive, effects, meta, validate

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

META_COLUMNS = ["outcome", "week", "measure", *meta.FRAME_COLUMNS]
"""Columns of ``results/tables/meta_analysis.csv``."""


def load_inputs(config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate the inputs named by ``config['data']``.

    Applies ``selection.studies``: ``primary`` keeps the studies with
    ``primary = yes`` in ``studies.csv``; ``all`` keeps every study.

    Raises
    ------
    hairtrial.validate.DataValidationError
        If a file breaks the input contract.
    """
    arms, studies = validate.read_inputs(config["data"]["arms"], config["data"]["studies"])
    if config.get("selection", {}).get("studies", "primary") == "primary":
        keep = set(studies.loc[studies["primary"] == "yes", "study"])
        arms = arms[arms["study"].isin(keep)].reset_index(drop=True)
    outcomes = config.get("outcomes", "all")
    if outcomes != "all":
        arms = arms[arms["outcome"].isin(outcomes)].reset_index(drop=True)
    return arms, studies


def prepare(config: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validate, derive arm-level changes and build study comparisons.

    Returns
    -------
    effects : pandas.DataFrame
        Study-level effect sizes (:data:`hairtrial.comparisons.EFFECT_COLUMNS`).
    quality : pandas.DataFrame
        Every derived, converted or assumed number (``data_quality.csv``).
    notes : pandas.DataFrame
        One column ``note``: inputs that could not be used, and why.
    """
    arms, studies = load_inputs(config)
    assumptions = config["assumptions"]
    arm_changes, quality_arms, notes_arms = derive.derive_arm_changes(
        arms, studies, change_sd_correlation=assumptions["change_sd_correlation"]
    )
    eff, quality_cmp, notes_cmp = comparisons.build_comparisons(
        arm_changes,
        studies,
        control=config["comparison"]["control"],
        experimental=config["comparison"]["experimental"],
        split_scalp_correlation=assumptions["split_scalp_correlation"],
        measures=config["measures"],
        p_bound_factor=assumptions.get("p_bound_factor", 1.0),
    )
    quality = pd.concat([quality_arms, quality_cmp], ignore_index=True)
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
            meta.fit(yi, vi, method=m, ci_method=c, level=level)
            for m in methods
            for c in ci_methods
        ]
        t = meta.results_frame(fits)
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


def primary_row(meta_table: pd.DataFrame, config: dict, outcome: str, week: int, measure: str):
    """The primary model's row (first tau2 method x first CI method), or None."""
    ma = config["meta_analysis"]
    sel = meta_table[
        (meta_table["outcome"] == outcome)
        & (meta_table["week"] == int(week))
        & (meta_table["measure"] == measure)
        & (meta_table["method"] == ma["tau2_methods"][0])
        & (meta_table["ci_method"] == ma["ci_methods"][0])
    ]
    return None if sel.empty else sel.iloc[0]


MEASURE_LABELS = {
    "MD": "Mean difference in change from baseline ({unit})",
    "SMD": "Standardised mean difference in change (Hedges' g)",
}


def figure_text(outcome: str, week: int, measure: str, unit: str) -> tuple[str, str]:
    """Title and x-axis label of a forest plot.

    Examples
    --------
    >>> figure_text("hair_density", 12, "MD", "hairs/cm2")
    ('Hair density, week 12', 'Mean difference in change from baseline (hairs/cm²)')
    """
    from hairtrial.units import UNIT_LABELS

    title = f"{outcome.replace('_', ' ').capitalize()}, week {week}"
    xlabel = MEASURE_LABELS[measure].format(unit=UNIT_LABELS.get(unit, unit))
    return title, xlabel


def forest_figure_object(
    meta_table: pd.DataFrame,
    study_effects: pd.DataFrame,
    config: dict,
    *,
    outcome: str,
    week: int,
    measure: str,
):
    """The forest plot (a matplotlib Figure) of one outcome x week x measure.

    Selects the study rows (chronological order) and the primary model's row
    from the result tables and draws them with :func:`hairtrial.plots.forest_plot`.
    """
    from hairtrial import plots, provenance

    st = study_effects
    rows = st[(st["outcome"] == outcome) & (st["week"] == int(week)) & (st["measure"] == measure)]
    rows = rows.sort_values(["year", "study"], kind="stable")  # chronological, as journals show
    pooled = primary_row(meta_table, config, outcome, week, measure)
    unit = rows["unit"].iloc[0] if len(rows) else ""
    title, xlabel = figure_text(outcome, week, measure, unit)
    level = int(round(100 * config["meta_analysis"].get("level", 0.95)))
    return plots.forest_plot(
        rows.reset_index(drop=True),
        pooled,
        xlabel=xlabel,
        title=title,
        provenance_labels=provenance.PROVENANCE,
        effect_label=f"{measure} [{level}% CI]",
    )


def _save(fig, stem, config: dict) -> list:
    from hairtrial import plots

    figs = config.get("figures", {})
    formats = tuple(figs.get("formats", ("png", "svg", "pdf")))
    return plots.save_figure(fig, stem, formats=formats, dpi=figs.get("dpi", 300))


def forest_figure(
    meta_csv, studies_csv, config: dict, *, outcome: str, week: int, measure: str, stem
) -> list:
    """Draw and save the forest plot of one outcome x week x measure.

    Returns
    -------
    list of pathlib.Path
        The files written, one per format in ``config['figures']``.
    """
    meta_table = pd.read_csv(meta_csv, keep_default_na=False, na_values=[""])
    st = pd.read_csv(studies_csv, keep_default_na=False, na_values=[""])
    fig = forest_figure_object(meta_table, st, config, outcome=outcome, week=week, measure=measure)
    return _save(fig, stem, config)


def robustness_figure_object(rows: pd.DataFrame, *, outcome: str, week: int, measure: str):
    """The robustness figure (a Figure) from rows of ``robustness.csv``."""
    from hairtrial.plots.robustness import robustness_plot

    unit = rows["unit"].iloc[0] if len(rows) else ""
    title, xlabel = figure_text(outcome, week, measure, unit)
    return robustness_plot(
        rows, xlabel=xlabel, title=f"{title}: robustness of the pooled {measure}"
    )


def robustness_figure(
    robustness_csv, config: dict, *, outcome: str, week: int, measure: str, stem
) -> list:
    """Draw and save the robustness figure of one outcome x week x measure."""
    table = pd.read_csv(robustness_csv, keep_default_na=False, na_values=[""])
    rows = table[
        (table["outcome"] == outcome) & (table["week"] == int(week)) & (table["measure"] == measure)
    ]
    fig = robustness_figure_object(rows, outcome=outcome, week=week, measure=measure)
    return _save(fig, stem, config)


def trajectory_figure_object(
    means: pd.DataFrame,
    contrasts: pd.DataFrame,
    data: pd.DataFrame,
    config: dict,
    *,
    outcome: str,
):
    """The trajectory figure of one outcome from the arm-model tables."""
    from hairtrial.plots.trajectory import trajectory_plot
    from hairtrial.units import UNIT_LABELS

    obs = data[data["outcome"] == outcome]
    unit = obs["unit"].iloc[0] if len(obs) and "unit" in obs.columns else ""
    m = means[means["outcome"] == outcome]
    ct = contrasts[
        (contrasts["outcome"] == outcome) & (contrasts["contrast"] == "experimental - control")
    ]
    title = f"{outcome.replace('_', ' ').capitalize()}: change from baseline over weeks"
    return trajectory_plot(
        m, obs, unit_label=UNIT_LABELS.get(unit, unit), title=title, contrasts=ct
    )


def trajectory_figure(
    means_csv, contrasts_csv, data_csv, config: dict, *, outcome: str, stem
) -> list:
    """Draw and save the trajectory figure of one outcome."""

    def read(p):
        return pd.read_csv(p, keep_default_na=False, na_values=[""])

    fig = trajectory_figure_object(
        read(means_csv), read(contrasts_csv), read(data_csv), config, outcome=outcome
    )
    return _save(fig, stem, config)


def labbe_figure(meta_csv, studies_csv, config: dict, *, outcome: str, week: int, stem) -> list:
    """Draw and save the L'Abbé-style plot of one outcome x week (MD rows)."""
    from hairtrial.plots.labbe import labbe_plot
    from hairtrial.units import UNIT_LABELS

    meta_table = pd.read_csv(meta_csv, keep_default_na=False, na_values=[""])
    st = pd.read_csv(studies_csv, keep_default_na=False, na_values=[""])
    rows = st[(st["outcome"] == outcome) & (st["week"] == int(week)) & (st["measure"] == "MD")]
    pooled = primary_row(meta_table, config, outcome, week, "MD")
    k = 0 if pooled is None else int(pooled["k"])
    pooled_md = None if pooled is None or k < 2 else float(pooled["estimate"])
    unit = rows["unit"].iloc[0] if len(rows) else ""
    title = f"{outcome.replace('_', ' ').capitalize()}, week {week}"
    fig = labbe_plot(
        rows.sort_values(["year", "study"], kind="stable").reset_index(drop=True),
        pooled_md,
        unit_label=UNIT_LABELS.get(unit, unit),
        title=title,
    )
    return _save(fig, stem, config)


def prisma_figure(prisma_csv, config: dict, *, stem) -> list:
    """Draw and save the PRISMA 2020 flow diagram from the counts file."""
    from hairtrial.plots.prisma import prisma_diagram
    from hairtrial.prisma import read_prisma

    return _save(prisma_diagram(read_prisma(prisma_csv)), stem, config)
