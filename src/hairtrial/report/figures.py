"""Figures of a run: pick rows from the result tables and draw them with :mod:`hairtrial.plots`.

Each ``*_figure_object`` returns a matplotlib Figure; each ``*_figure`` draws it and saves it
in every format of ``config['figures']`` (:func:`save`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses import sensitivity
from hairtrial.analyses.primary import primary_row
from hairtrial.diagnostics import influence, smallstudy
from hairtrial.models import metareg, subgroups, univariate

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
    from hairtrial.data.units import UNIT_LABELS

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
    from hairtrial import plots
    from hairtrial.data import provenance

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


def save(fig, stem, config: dict) -> list:
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
    return save(fig, stem, config)


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
    return save(fig, stem, config)


def trajectory_figure_object(
    means: pd.DataFrame,
    contrasts: pd.DataFrame,
    data: pd.DataFrame,
    config: dict,
    *,
    outcome: str,
):
    """The trajectory figure of one outcome from the arm-model tables."""
    from hairtrial.data.units import UNIT_LABELS
    from hairtrial.plots.trajectory import trajectory_plot

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
    return save(fig, stem, config)


def labbe_figure(meta_csv, studies_csv, config: dict, *, outcome: str, week: int, stem) -> list:
    """Draw and save the L'Abbé-style plot of one outcome x week (MD rows)."""
    from hairtrial.data.units import UNIT_LABELS
    from hairtrial.plots.labbe import labbe_plot

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
    return save(fig, stem, config)


def prisma_figure(prisma_csv, config: dict, *, stem) -> list:
    """Draw and save the PRISMA 2020 flow diagram from the counts file."""
    from hairtrial.data.prisma import read_prisma
    from hairtrial.plots.prisma import prisma_diagram

    return save(prisma_diagram(read_prisma(prisma_csv)), stem, config)


def _label(name: str) -> str:
    return sensitivity.MODERATOR_LABELS.get(name, name.replace("_", " "))


def _level_label(level: Any) -> str:
    s = str(level).replace("_", " ")
    return s[:1].upper() + s[1:]


def sensitivity_figure_object(
    kind: str,
    effects: pd.DataFrame,
    studies: pd.DataFrame,
    config: dict,
    *,
    outcome: str,
    week: int,
    measure: str,
    moderator: str | None = None,
):
    """Draw one sensitivity figure (a matplotlib Figure) of one outcome x week x measure.

    Raises
    ------
    ValueError
        For an unknown kind, a combination without trials, or a figure that is not
        computable for these data (not in :func:`sensitivity.figure_targets`).
    """
    from hairtrial.plots import bubble, funnel, subgroup_forest
    from hairtrial.plots import influence as iplots

    if kind not in sensitivity.FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; choose one of {sensitivity.FIGURE_KINDS}")
    if (kind in sensitivity.MODERATOR_FIGURES) != (moderator is not None):
        need = "needs a" if moderator is None else "takes no"
        raise ValueError(f"figure kind {kind!r} {need} moderator")
    e = effects
    g = e[(e["outcome"] == outcome) & (e["week"] == int(week)) & (e["measure"] == measure)]
    g = g.sort_values("study", kind="stable").reset_index(drop=True)
    if (kind, outcome, int(week), measure, moderator) not in sensitivity.figure_targets(
        g, studies, config
    ):
        raise ValueError(
            f"{kind} figure not computable for {outcome}, week {week}, {measure}"
            + (f", {moderator}" if moderator else "")
            + f" (k = {len(g)}); the sensitivity tables say why"
        )
    method, ci_method, level = sensitivity.primary_model(config)
    unit = g["unit"].iloc[0] if "unit" in g.columns else ""
    title, xlabel = figure_text(outcome, int(week), measure, unit)
    pct = int(round(100 * level))
    effect_label = f"{measure} [{pct}% CI]"
    labels = dict(zip(g["study"], g["label"] if "label" in g.columns else g["study"], strict=True))
    yi, vi = g["yi"].to_numpy(float), g["vi"].to_numpy(float)
    overall = univariate.fit(yi, vi, method=method, ci_method=ci_method, level=level)
    pooled = univariate.results_frame([overall]).iloc[0]

    if kind == "bubble":
        assert moderator is not None
        mf = sensitivity.fit_moderators(g, studies, [moderator], config)
        res, perm, d = mf.result, mf.perm, mf.md.data
        assert res is not None and perm is not None
        x = d[moderator].to_numpy(float)
        grid = pd.DataFrame({moderator: np.linspace(x.min(), x.max(), 101)})
        pred = metareg.predict(res, grid)
        slope = res.coefficients.iloc[1]
        ann = (
            f"Slope {slope['estimate']:.3g} per "
            f"{sensitivity.MODERATOR_UNITS.get(moderator, 'unit')} "
            f"[{pct}% CI {slope['ci_lower']:.3g} to "
            f"{slope['ci_upper']:.3g}]; QM p = {res.QM_pvalue:.2g}; permutation p = "
            f"{perm.pvalue[1]:.2g}; residual \u03c4\u00b2 = {res.tau2:.3g}"
            + (f"; R\u00b2 = {res.R2:.0f}%" if math.isfinite(res.R2) else "")
            + f"; k = {res.k} ({method}, {ci_method})"
        )
        if mf.md.dropped:
            ann += f". Not shown (no {moderator} recorded): " + ", ".join(
                labels.get(s, s) for s in mf.md.dropped
            )
        pts = d[["study", "yi"]].copy()
        pts["label"] = [labels.get(s, s) for s in d["study"]]
        pts["weight_pct"] = res.weights
        if "provenance" in d.columns:
            pts["provenance"] = d["provenance"].to_numpy()
        return bubble.bubble_plot(
            pts, x, pred, xlabel=_label(moderator), ylabel=xlabel,
            title=f"{title}: meta-regression on {_label(moderator).lower()}",
            x_column=moderator, annotation=ann,
        )  # fmt: skip

    if kind == "subgroups":
        assert moderator is not None
        md = sensitivity.moderator_data(g, studies, [moderator], subgroup=True)
        d = md.data.copy()
        d["subgroup"] = d[moderator].astype(str)
        res = subgroups.subgroup_analysis(
            d["yi"].to_numpy(float), d["vi"].to_numpy(float), d["subgroup"].to_numpy(),
            moderator=moderator, method=method, ci_method=ci_method, level=level,
        )  # fmt: skip
        d["weight_pct"] = res.overall.weights
        lo, hi = _study_ci(d, level)
        d["ci_lower"], d["ci_upper"] = lo, hi
        tab = res.table[res.table["tau2_option"] == "separate"].copy()
        # a one-trial subgroup has no tau2 (fixed at 0, not estimated): show none
        tab.loc[tab["k"] < 2, "tau2"] = math.nan
        test = res.test[res.test["tau2_option"] == "separate"].iloc[0]
        over = univariate.results_frame([res.overall]).iloc[0]
        t = f"{title}: subgroups by {_label(moderator)}"
        if md.dropped:
            t += f" ({len(md.dropped)} trial(s) without {moderator} left out)"
        return subgroup_forest.subgroup_forest_plot(
            d, tab, test, over, xlabel=xlabel, group_column="subgroup", title=t,
            effect_label=effect_label, level_labels={lv: _level_label(lv) for lv in res.levels},
        )  # fmt: skip

    if kind == "leave_one_out":
        loo = influence.leave_one_out(yi, vi, list(g["study"]), method=method,
                                      ci_method=ci_method, level=level)  # fmt: skip
        return iplots.leave_one_out_plot(
            loo, pooled, xlabel=xlabel, title=f"{title}: leave-one-out analysis",
            effect_label=effect_label, study_labels=labels,
        )  # fmt: skip

    if kind == "cumulative":
        d = sensitivity.by_year(g, studies)
        cum = influence.cumulative(
            d["yi"].to_numpy(float), d["vi"].to_numpy(float), list(d["study"]),
            order_by=list(d["year"]), method=method, ci_method=ci_method, level=level,
        )  # fmt: skip
        return iplots.cumulative_plot(
            cum, pooled, xlabel=xlabel, title=f"{title}: cumulative meta-analysis by year",
            effect_label=effect_label, order_label="Year", study_labels=labels,
        )  # fmt: skip

    if kind == "baujat":
        bj = influence.baujat(yi, vi, list(g["study"]), method=method, ci_method=ci_method)
        prov = dict(zip(g["study"], g["provenance"], strict=True)) if "provenance" in g else None
        return iplots.baujat_plot(
            bj, provenance=prov, study_labels=labels, title=f"{title}: Baujat plot ({measure})"
        )

    if kind == "influence":
        return iplots.influence_plot(
            sensitivity.influence_frame(g, method, ci_method),
            title=f"{title}: influence diagnostics ({measure})",
            study_labels=labels,
        )

    # funnel
    tf = smallstudy.trimfill(yi, vi, method=method, ci_method=ci_method, level=level)
    eg = smallstudy.regtest(yi, vi, model="lm", predictor="sei", level=level)
    pts = g.copy()
    pts["label"] = [labels[s] for s in g["study"]]
    return funnel.funnel_plot(
        pts, estimate=pooled, trimfill=vars(tf), egger=vars(eg), xlabel=xlabel,
        title=f"{title}: funnel plot ({measure})", width=5.0,
    )  # fmt: skip


def _study_ci(d: pd.DataFrame, level: float) -> tuple[np.ndarray, np.ndarray]:
    if {"ci_lower", "ci_upper"} <= set(d.columns) and d[["ci_lower", "ci_upper"]].notna().all(
        axis=None
    ):
        return d["ci_lower"].to_numpy(float), d["ci_upper"].to_numpy(float)
    from hairtrial.derive.effects import ci_from_yi_vi

    lo, hi = ci_from_yi_vi(d["yi"].to_numpy(float), d["vi"].to_numpy(float), level=level)
    return np.atleast_1d(lo), np.atleast_1d(hi)


def sensitivity_figure(
    kind: str,
    study_effects_csv,
    config: dict,
    *,
    outcome: str,
    week: int,
    measure: str,
    moderator: str | None = None,
    stem,
) -> list:
    """Draw and save one sensitivity figure in every format of ``config['figures']``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from hairtrial.data.validate import read_studies

    effects = sensitivity.read_study_effects(study_effects_csv)
    studies = read_studies(config["data"]["studies"])
    fig = sensitivity_figure_object(
        kind, effects, studies, config, outcome=outcome, week=week, measure=measure,
        moderator=moderator,
    )  # fmt: skip
    return save(fig, stem, config)
