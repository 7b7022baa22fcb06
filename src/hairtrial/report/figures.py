"""Figures of a run: pick rows from the result tables and draw them with :mod:`hairtrial.plots`.

Nothing is fitted here. :func:`draw_figures` draws every figure of the run's figure list
(``results/derived/figures.csv``) from the tables and the figure data that the analysis job
saved (:func:`hairtrial.analyses.run.figure_data`), and returns the files it wrote (the
figure job's manifest); given a label (a run on synthetic data:
:func:`hairtrial.analyses.ipd.synthetic_label`), it marks every figure with it
(:func:`hairtrial.plots.style.watermark`). Each ``*_figure_object`` returns one matplotlib
Figure; :func:`save` writes it in every format of ``config['figures']``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from hairtrial.analyses.primary import primary_row
from hairtrial.core import vocab
from hairtrial.core.io import read_csv_output

MEASURE_LABELS = vocab.MEASURE_AXIS_LABELS


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
        arm_labels=vocab.arm_labels(**config["comparison"]),
        favours=vocab.favours(**config["comparison"]),
    )


def save(fig, stem, config: dict) -> list:
    """Save in the config's ``figures`` formats and DPI (the schema's defaults where unset)."""
    from hairtrial import plots
    from hairtrial.analyses.config import schema_default

    figs = {**schema_default("figures"), **config.get("figures", {})}
    return plots.save_figure(fig, stem, formats=tuple(figs["formats"]), dpi=figs["dpi"])


def forest_figure(
    meta_csv, studies_csv, config: dict, *, outcome: str, week: int, measure: str, stem
) -> list:
    """Draw and save the forest plot of one outcome x week x measure.

    Returns
    -------
    list of pathlib.Path
        The files written, one per format in ``config['figures']``.
    """
    meta_table = read_csv_output(meta_csv, keep_default_na=False, na_values=[""])
    st = read_csv_output(studies_csv, keep_default_na=False, na_values=[""])
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
    table = read_csv_output(robustness_csv, keep_default_na=False, na_values=[""])
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
        m, obs, unit_label=UNIT_LABELS.get(unit, unit), title=title, contrasts=ct,
        arm_labels=vocab.arm_labels(**config["comparison"]),
    )  # fmt: skip


def ipd_figure_object(
    trajectories: pd.DataFrame, means: pd.DataFrame, config: dict, *, outcome: str
):
    """The spaghetti figure of one outcome's participant-level data (ipd job's figure data)."""
    from hairtrial.data.units import UNIT_LABELS
    from hairtrial.plots.ipd import spaghetti_plot

    t = trajectories[trajectories["outcome"] == outcome]
    m = means[means["outcome"] == outcome]
    unit = t["unit"].iloc[0] if len(t) else ""
    sources = sorted({str(s) for s in t.get("data_source", pd.Series(dtype=str)) if s})
    comp = config["comparison"]
    # synthetic data: the footer names the simulator; draw_figures marks the figure
    title = f"{outcome.replace('_', ' ').capitalize()}: participants' change from baseline"
    footer = "Data: " + "; ".join(sources) if sources else ""
    return spaghetti_plot(
        t, m, control=comp["control"], experimental=comp["experimental"],
        labels=dict(zip(("experimental", "control"), vocab.arm_labels(**comp), strict=True)),
        unit_label=UNIT_LABELS.get(unit, unit), title=title, footer=footer,
    )  # fmt: skip


def trajectory_figure(
    means_csv, contrasts_csv, data_csv, config: dict, *, outcome: str, stem
) -> list:
    """Draw and save the trajectory figure of one outcome."""

    def read(p):
        return read_csv_output(p, keep_default_na=False, na_values=[""])

    fig = trajectory_figure_object(
        read(means_csv), read(contrasts_csv), read(data_csv), config, outcome=outcome
    )
    return save(fig, stem, config)


def labbe_figure_object(
    meta_table: pd.DataFrame, study_effects: pd.DataFrame, config: dict, *, outcome: str, week: int
):
    """The L'Abbé-style plot of one outcome x week (MD rows) from the result tables."""
    from hairtrial.data.units import UNIT_LABELS
    from hairtrial.plots.labbe import labbe_plot

    st = study_effects
    rows = st[(st["outcome"] == outcome) & (st["week"] == int(week)) & (st["measure"] == "MD")]
    pooled = primary_row(meta_table, config, outcome, week, "MD")
    k = 0 if pooled is None else int(pooled["k"])
    pooled_md = None if pooled is None or k < 2 else float(pooled["estimate"])
    unit = rows["unit"].iloc[0] if len(rows) else ""
    title = f"{outcome.replace('_', ' ').capitalize()}, week {week}"
    return labbe_plot(
        rows.sort_values(["year", "study"], kind="stable").reset_index(drop=True),
        pooled_md,
        unit_label=UNIT_LABELS.get(unit, unit),
        title=title,
        arm_labels=vocab.arm_labels(**config["comparison"]),
    )


def labbe_figure(meta_csv, studies_csv, config: dict, *, outcome: str, week: int, stem) -> list:
    """Draw and save the L'Abbé-style plot of one outcome x week (MD rows)."""
    fig = labbe_figure_object(
        _read(meta_csv), _read(studies_csv), config, outcome=outcome, week=week
    )
    return save(fig, stem, config)


def prisma_figure(prisma_csv, config: dict, *, stem) -> list:
    """Draw and save the PRISMA 2020 flow diagram from the counts file."""
    from hairtrial.data.prisma import read_prisma
    from hairtrial.plots.prisma import prisma_diagram

    return save(prisma_diagram(read_prisma(prisma_csv)), stem, config)


def _label(name: str) -> str:
    return vocab.MODERATOR_LABELS.get(name, name.replace("_", " "))


def _level_label(level: Any) -> str:
    s = str(level).replace("_", " ")
    return s[:1].upper() + s[1:]


KEYS = list(vocab.KEYS)
_MODEL = list(vocab.MODEL_COLUMNS)


def _select(table: pd.DataFrame, outcome: str, week: int, measure: str) -> pd.DataFrame:
    t = table
    sel = t[(t["outcome"] == outcome) & (t["week"] == int(week)) & (t["measure"] == measure)]
    return sel.reset_index(drop=True)


def _of(data: Mapping[str, pd.DataFrame], name: str, stem: str) -> pd.DataFrame:
    """Rows of the figure data ``name`` that belong to the figure ``stem``."""
    d = data[name]
    return d[d["stem"] == stem].drop(columns="stem").reset_index(drop=True)


def _namespace(row: pd.Series, prefix: str) -> SimpleNamespace:
    """The ``{prefix}_*`` values of a row as attributes (``trimfill_k0`` -> ``.k0``)."""
    values = {c[len(prefix) + 1 :]: row[c] for c in row.index if c.startswith(prefix + "_")}
    return SimpleNamespace(**values)


def sensitivity_figure_object(
    kind: str,
    tables: Mapping[str, pd.DataFrame],
    data: Mapping[str, pd.DataFrame],
    config: dict,
    *,
    outcome: str,
    week: int,
    measure: str,
    moderator: str | None = None,
    stem: str | None = None,
):
    """Draw one sensitivity figure (a matplotlib Figure) of one outcome x week x measure.

    Everything comes from the run's tables (``study_effects``, ``meta_analysis``,
    ``meta_regression``, ``leave_one_out``, ``cumulative``) and its figure
    data (:func:`hairtrial.analyses.run.figure_data`, keyed by the figure's ``stem``);
    nothing is fitted here.

    Raises
    ------
    ValueError
        For an unknown kind, a moderator given to a kind that takes none (or missing), or
        a figure that is not in the run's figure list (``data['figures']``): not computable
        for these data.
    """
    # here, not at the top: a notebook drawing a forest or a trajectory needs none of the
    # sensitivity, meta-regression or diagnostics code (~0.3 s of imports in each kernel)
    from hairtrial.analyses import sensitivity
    from hairtrial.plots import bubble, funnel, subgroup_forest
    from hairtrial.plots import influence as iplots

    if kind not in sensitivity.FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {kind!r}; choose one of {sensitivity.FIGURE_KINDS}")
    if (kind in sensitivity.MODERATOR_FIGURES) != (moderator is not None):
        need = "needs a" if moderator is None else "takes no"
        raise ValueError(f"figure kind {kind!r} {need} moderator")
    week = int(week)
    if stem is None:
        stem = f"{kind}_{outcome}_week{week}_{measure}" + (f"_{moderator}" if moderator else "")
    if "figures" in data and stem not in set(data["figures"]["stem"]):
        raise ValueError(
            f"{kind} figure not computable for {outcome}, week {week}, {measure}"
            + (f", {moderator}" if moderator else "")
            + " (not in the run's figure list); the sensitivity tables say why"
        )
    method, ci_method, level = sensitivity.primary_model(config)
    g = _select(tables["study_effects"], outcome, week, measure)
    g = g.sort_values("study", kind="stable").reset_index(drop=True)
    unit = g["unit"].iloc[0] if "unit" in g.columns and len(g) else ""
    title, xlabel = figure_text(outcome, week, measure, unit)
    pct = int(round(100 * level))
    effect_label = f"{measure} [{pct}% CI]"
    labels = dict(zip(g["study"], g["label"] if "label" in g.columns else g["study"], strict=True))
    pooled = primary_row(tables["meta_analysis"], config, outcome, week, measure)

    if kind == "bubble":
        assert moderator is not None
        pts = _of(data, "bubble_points", stem)
        pred = _of(data, "bubble_lines", stem).rename(columns={"x": moderator})
        x = pts.pop("x").to_numpy(float)
        mr = _select(tables["meta_regression"], outcome, week, measure)
        slope = mr[(mr["moderators"] == moderator) & (mr["term"] == moderator)].iloc[0]
        r2 = float(slope["R2"])
        ann = (
            f"Slope {slope['estimate']:.3g} per "
            f"{vocab.MODERATOR_UNITS.get(moderator, 'unit')} "
            f"[{pct}% CI {slope['ci_lower']:.3g} to "
            f"{slope['ci_upper']:.3g}]; QM p = {slope['QM_pvalue']:.2g}; permutation p = "
            f"{slope['permutation_pvalue']:.2g}; residual \u03c4\u00b2 = {slope['tau2']:.3g}"
            + (f"; R\u00b2 = {r2:.0f}%" if math.isfinite(r2) else "")
            + f"; k = {int(slope['k'])} ({method}, {ci_method})"
        )
        dropped = slope["studies_dropped"]
        if isinstance(dropped, str) and dropped:
            ann += f". Not shown (no {moderator} recorded): " + ", ".join(
                labels.get(s, s) for s in dropped.split(";")
            )
        return bubble.bubble_plot(
            pts, x, pred, xlabel=_label(moderator), ylabel=xlabel,
            title=f"{title}: meta-regression on {_label(moderator).lower()}",
            x_column=moderator, annotation=ann,
        )  # fmt: skip

    if kind == "subgroups":
        assert moderator is not None
        d = _of(data, "subgroup_studies", stem)
        d["subgroup"] = d["subgroup"].astype(str)
        tab = _of(data, "subgroup_levels", stem)
        tab["level"] = tab["level"].astype(str)
        test = _of(data, "subgroup_tests", stem).iloc[0]
        over = _of(data, "subgroup_overall", stem)
        n_dropped = int(over.pop("studies_dropped").iloc[0])
        t = f"{title}: subgroups by {_label(moderator)}"
        if n_dropped:
            t += f" ({n_dropped} trial(s) without {moderator} left out)"
        levels = sorted(set(d["subgroup"]))
        return subgroup_forest.subgroup_forest_plot(
            d, tab, test, over.iloc[0], xlabel=xlabel, group_column="subgroup", title=t,
            effect_label=effect_label, level_labels={lv: _level_label(lv) for lv in levels},
        )  # fmt: skip

    if kind in ("leave_one_out", "cumulative"):
        rows = _select(tables[kind], outcome, week, measure).drop(columns=_MODEL)
        rows = rows.drop(columns=KEYS)
        if kind == "leave_one_out":
            return iplots.leave_one_out_plot(
                rows, pooled, xlabel=xlabel, title=f"{title}: leave-one-out analysis",
                effect_label=effect_label, study_labels=labels,
            )  # fmt: skip
        return iplots.cumulative_plot(
            rows, pooled, xlabel=xlabel, title=f"{title}: cumulative meta-analysis by year",
            effect_label=effect_label, order_label="Year", study_labels=labels,
        )  # fmt: skip

    if kind == "baujat":
        bj = _of(data, "baujat", stem)
        attrs = {"xlabel": bj.pop("xlabel").iloc[0], "ylabel": bj.pop("ylabel").iloc[0]}
        bj.attrs = attrs
        prov = dict(zip(g["study"], g["provenance"], strict=True)) if "provenance" in g else None
        return iplots.baujat_plot(
            bj, provenance=prov, study_labels=labels, title=f"{title}: Baujat plot ({measure})"
        )

    if kind == "influence":
        infl = _of(data, "influence_panels", stem)
        ref = _of(data, "influence_reference", stem).iloc[0]
        infl.attrs = {
            "k": int(ref["k"]),
            "p": int(ref["p"]),
            "method": ref["method"],
            "ci_method": ref["ci_method"],
            "tau2": float(ref["tau2"]),
            "QE": float(ref["QE"]),
            "cutoffs": {
                c[len("cutoff_") :]: float(ref[c]) for c in ref.index if c.startswith("cutoff_")
            },
        }
        return iplots.influence_plot(
            infl, title=f"{title}: influence diagnostics ({measure})", study_labels=labels
        )

    # funnel
    line = _of(data, "funnel_lines", stem).iloc[0]
    filled = _of(data, "funnel_filled", stem)
    tf = _namespace(line, "trimfill")
    tf.computable, tf.k0 = bool(tf.computable), int(tf.k0)
    empty = pd.Series(dtype=float)
    tf.filled_yi = filled.get("yi", empty).to_numpy(float)
    tf.filled_vi = filled.get("vi", empty).to_numpy(float)
    eg = _namespace(line, "egger")
    eg.computable = bool(eg.computable)
    pts = g.copy()
    pts["label"] = [labels[s] for s in g["study"]]
    estimate = {"estimate": float(line["pooled_estimate"]), "method": line["pooled_method"]}
    return funnel.funnel_plot(
        pts, estimate=estimate, trimfill=vars(tf), egger=vars(eg), xlabel=xlabel,
        title=f"{title}: funnel plot ({measure})", width=5.0,
    )  # fmt: skip


#: Tables the figures are drawn from (``results/tables/{name}.csv``).
FIGURE_TABLES = (
    "meta_analysis",
    "study_effects",
    "robustness",
    "meta_regression",
    "leave_one_out",
    "cumulative",
    "arm_model_means",
    "arm_model_contrasts",
    "binary_study_effects",
    "binary_meta_analysis",
    "binary_robustness",
    # the evidence job (hairtrial.analyses.evidence)
    "summary_of_findings",
    "bayes",
    "bayes_sensitivity",
    "next_trial",
    "next_trial_sample_size",
)
#: Figure data (``results/derived/{name}.csv``, :func:`hairtrial.analyses.run.figure_data`).
FIGURE_DATA = (
    "figures",
    "arm_model_data",
    "bubble_points",
    "bubble_lines",
    "subgroup_studies",
    "subgroup_levels",
    "subgroup_tests",
    "subgroup_overall",
    "baujat",
    "influence_reference",
    "influence_panels",
    "funnel_filled",
    "funnel_lines",
    "binary_study_info",
    "binary_figures",
    "bayes_posterior",
    "evidence_figures",
)


def figure_object(
    row: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    data: Mapping[str, pd.DataFrame],
    config: dict,
):
    """The Figure of one row of the figure list (``results/derived/figures.csv``)."""
    from hairtrial.analyses.evidence import EVIDENCE_KINDS  # (as above: the Bayesian models)

    kind, stem = row["kind"], row["stem"]
    if str(kind).startswith("binary_"):
        from hairtrial.report.binary_figures import binary_figure_object

        return binary_figure_object(row, tables, data, config)
    if kind in EVIDENCE_KINDS:
        from hairtrial.report.evidence import evidence_figure_object

        return evidence_figure_object(row, tables, data, config)
    if kind == "prisma":
        from hairtrial.data.prisma import read_prisma
        from hairtrial.plots.prisma import prisma_diagram

        return prisma_diagram(read_prisma(config["data"]["prisma"]))
    outcome = row["outcome"]
    if kind == "ipd_trajectories":
        return ipd_figure_object(
            data["ipd_trajectories"], data["ipd_arm_means"], config, outcome=outcome
        )
    if kind == "trajectory":
        return trajectory_figure_object(
            tables["arm_model_means"], tables["arm_model_contrasts"], data["arm_model_data"],
            config, outcome=outcome,
        )  # fmt: skip
    week = int(row["week"])
    if kind == "labbe":
        return labbe_figure_object(
            tables["meta_analysis"], tables["study_effects"], config, outcome=outcome, week=week
        )
    measure = row["measure"]
    if kind == "forest":
        return forest_figure_object(
            tables["meta_analysis"], tables["study_effects"], config,
            outcome=outcome, week=week, measure=measure,
        )  # fmt: skip
    if kind == "robustness":
        rows = _select(tables["robustness"], outcome, week, measure)
        return robustness_figure_object(rows, outcome=outcome, week=week, measure=measure)
    moderator = row.get("moderator")
    moderator = moderator if isinstance(moderator, str) and moderator else None
    return sensitivity_figure_object(
        kind, tables, data, config, outcome=outcome, week=week, measure=measure,
        moderator=moderator, stem=stem,
    )  # fmt: skip


def draw_figures(
    tables: Mapping[str, str | Path],
    data: Mapping[str, str | Path],
    config: dict,
    figures_dir: str | Path,
    *,
    processes: int = 1,
    label: str | None = None,
) -> list[Path]:
    """Draw every figure of the figure list from tables and figure data; fit nothing.

    Parameters
    ----------
    tables : mapping
        Path of each table of :data:`FIGURE_TABLES`.
    data : mapping
        Path of each figure data file of :data:`FIGURE_DATA` (``figures``: the list).
    config : dict
        The validated config (``figures``: formats and DPI; the primary model).
    figures_dir : str or Path
        Where the figures go (``{stem}.{format}``).
    processes : int
        Figures drawn at once (forked worker processes when more than 1, after this
        process has drawn the first figure; each figure is drawn by one process, so the
        files do not depend on this).
    label : str, optional
        Drawn across every figure (:func:`hairtrial.plots.style.watermark`): the
        :func:`hairtrial.analyses.ipd.synthetic_label` of a run on synthetic data. None (real
        data): the figures are drawn as they are.

    Returns
    -------
    list of pathlib.Path
        Every file written, in the order of the figure list and of the formats.
    """
    global _JOB
    t = {name: _read(path) for name, path in tables.items()}
    d = {name: _read(path) for name, path in data.items()}
    # a config without continuous (or binary) outcomes has no such list
    lists = ("figures", "binary_figures", "evidence_figures")
    rows = [r for name in lists if name in d for r in d[name].to_dict("records")]
    _JOB = (t, d, rows, config, Path(figures_dir), label)
    n = max(1, min(int(processes), len(rows)))
    if n == 1:
        return [p for i in range(len(rows)) for p in _draw(i)]
    import multiprocessing

    # The first figure is drawn here, before the workers are forked: they inherit what it
    # imported (matplotlib, the plot modules, about 1 s) and the fonts and text layouts it
    # loaded and measured (a worker's first figure took ~0.8 s, later ones ~0.15 s), instead
    # of each worker doing it again. The figures are the same bytes: each is drawn by one
    # process from the same job, whatever process that is.
    first = _draw(0)
    with multiprocessing.get_context("fork").Pool(min(n, len(rows) - 1)) as pool:
        rest = pool.map(_draw, range(1, len(rows)), chunksize=1)
    return first + [p for files in rest for p in files]


_JOB: tuple[Any, ...] | None = None  # what the forked workers of draw_figures draw from


def _draw(i: int) -> list[Path]:
    import matplotlib.pyplot as plt

    from hairtrial.plots.style import watermark

    assert _JOB is not None
    t, d, rows, config, figures_dir, label = _JOB
    row = rows[i]
    fig = watermark(figure_object(row, t, d, config), label)
    written = save(fig, figures_dir / row["stem"], config)
    plt.close(fig)
    return written


def _read(path: str | Path) -> pd.DataFrame:
    return read_csv_output(path, keep_default_na=False, na_values=[""])
