"""Everything one run of the workflow computes, in one call per process.

:func:`contrast_analyses` computes every contrast-level table (effect sizes, meta-analyses,
robustness, meta-regression, subgroups, leave-one-out, influence, cumulative, small-study
effects) and the figure data the figures need beyond the tables (bubble-plot prediction
lines, subgroup forest inputs, Baujat coordinates, influence reference lines, trim-and-fill
points and Egger's line) together with the list of figures to draw. :func:`arm_analyses`
computes the arm model's tables. The figure job (:mod:`hairtrial.report.figures`) draws from
these and fits nothing.

Each step reads what the previous one wrote, as the workflow always has: the
meta-analyses start from the effect sizes as written to ``effects.csv`` and the sensitivity
analyses from the study effects as written to ``study_effects.csv`` (12 significant
digits, :data:`hairtrial.core.io.CSV_FLOAT_FORMAT`), so the tables do not depend on whether
the steps run in one process or several.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses import arm_model, ipd, primary, robustness, sensitivity
from hairtrial.core import vocab
from hairtrial.core.io import CSV_FLOAT_FORMAT, read_csv_output
from hairtrial.data.validate import read_studies
from hairtrial.derive.effects import ci_from_yi_vi
from hairtrial.diagnostics import influence, smallstudy
from hairtrial.models import metareg, subgroups, univariate

__all__ = [
    "CONTRAST_TABLES",
    "ARM_MODEL_TABLES",
    "Outputs",
    "arm_analyses",
    "as_written",
    "contrast_analyses",
    "figure_inputs",
    "figure_list",
]

#: Tables of :func:`contrast_analyses`, in the order they are written.
CONTRAST_TABLES = (
    "data_quality",
    "excluded",
    "meta_analysis",
    "study_effects",
    "robustness",
    *sensitivity.TABLES,
)
#: Tables of :func:`arm_analyses`.
ARM_MODEL_TABLES = (
    "arm_model_coefficients",
    "arm_model_contrasts",
    "arm_model_variance",
    "arm_model_fit",
    "arm_model_means",
)

KEYS = list(vocab.KEYS)


@dataclass
class Outputs:
    """Tables (``results/tables/{name}.csv``) and derived data (``results/derived/``)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    derived: dict[str, pd.DataFrame] = field(default_factory=dict)


def read_written(source) -> pd.DataFrame:
    """Read a CSV as the workflow's steps read each other's outputs."""
    return read_csv_output(source, keep_default_na=False, na_values=[""])


def as_written(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as a later step reads it back from the CSV the workflow writes."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")
    buf.seek(0)
    return read_written(buf)


def contrast_analyses(config: dict) -> Outputs:
    """Every contrast-level table and the figure data, from a validated config.

    Returns
    -------
    Outputs
        ``tables``: :data:`CONTRAST_TABLES`; ``derived``: ``effects`` (the study-level
        effect sizes), ``figures`` (:func:`figure_list`) and the figure data of
        :func:`figure_data`.
    """
    data = primary.read_data(config)  # once: the robustness scenarios read the same files
    effects, quality, excluded = primary.prepare(config, data)
    studies = read_studies(config["data"]["studies"])
    disagree = prisma_disagreements(config, studies, effects)
    if disagree:
        excluded = pd.concat([excluded, pd.DataFrame({"note": disagree})], ignore_index=True)
    out = Outputs()
    out.derived["effects"] = effects
    out.tables["data_quality"] = quality
    out.tables["excluded"] = excluded
    eff = as_written(effects)
    meta, study_effects = primary.meta_analyses(eff, config)
    out.tables["meta_analysis"] = meta
    out.tables["study_effects"] = study_effects
    out.tables["robustness"] = robustness.robustness_table(config, data=data, effects=effects)
    st = as_written(study_effects)
    fits = sensitivity.Fits()  # the tables' models, reused by figure_data
    for name in sensitivity.TABLES:
        out.tables[name] = sensitivity.table(name, st, studies, config, fits=fits)
    figures = figure_list(eff, studies, config)
    out.derived["figures"] = figures
    out.derived.update(figure_data(st, studies, config, figures, fits=fits))
    return out


def prisma_disagreements(config: dict, studies: pd.DataFrame, effects: pd.DataFrame) -> list[str]:
    """Notes for PRISMA counts that disagree with the studies this analysis reads.

    ``studies_included`` is compared with the rows of studies.csv and
    ``studies_meta_analysis`` with the studies that give a comparison; a count left empty
    is not compared. No PRISMA file, no notes.
    """
    path = config["data"].get("prisma")
    if not path:
        return []
    from hairtrial.data.prisma import read_prisma

    with warnings.catch_warnings():  # arithmetic warnings go in the diagram's footer
        warnings.simplefilter("ignore")
        counts = read_prisma(path)
    name = Path(path).name
    notes = []
    for box, actual, what in (
        ("studies_included", len(studies), f"{Path(config['data']['studies']).name} lists"),
        (
            "studies_meta_analysis",
            effects["study"].nunique() if len(effects) else 0,
            "the analysis has comparisons from",
        ),
    ):
        stated = counts[box]
        if stated is not None and stated != actual:
            notes.append(
                f"PRISMA counts disagree with the data: {name} gives {box} = {stated}, "
                f"but {what} {actual} studies"
            )
    return notes


def arm_analyses(config: dict) -> Outputs:
    """The arm model's tables (:data:`ARM_MODEL_TABLES`) and its modelled rows."""
    res = arm_model.arm_model_tables(config)
    return Outputs(
        tables={k: res[k] for k in ARM_MODEL_TABLES},
        derived={"arm_model_data": res["arm_model_data"]},
    )


# ---------------------------------------------------------------------------------------------
# the figures of a run
# ---------------------------------------------------------------------------------------------
FIGURE_LIST_COLUMNS = ["stem", "kind", "outcome", "week", "measure", "moderator"]


def figure_list(effects: pd.DataFrame, studies: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The figures this run draws, one row each (``stem`` names the files).

    Forest plots for every outcome x week x measure; robustness figures where at least two
    trials are pooled (with one trial no scenario can change the answer); the sensitivity
    figures that are computable (:func:`hairtrial.analyses.sensitivity.figure_targets`);
    the trajectory of the arm model per outcome; the L'Abbé-style plot per outcome x week
    (MD); the PRISMA diagram when ``data.prisma`` is set; the participants' trajectories per
    outcome when ``data.participants`` is set.
    """
    rows: list[dict[str, Any]] = []

    def add(kind: str, outcome=None, week=None, measure=None, moderator=None) -> None:
        parts = [kind]
        if outcome is not None:
            parts.append(str(outcome))
        if week is not None:
            parts.append(f"week{int(week)}")
        if measure is not None:
            parts.append(str(measure))
        if moderator is not None:
            parts.append(str(moderator))
        rows.append(
            {
                "stem": "_".join(parts),
                "kind": kind,
                "outcome": outcome,
                "week": None if week is None else int(week),
                "measure": measure,
                "moderator": moderator,
            }
        )

    k = effects.groupby(KEYS).size().reset_index(name="k")
    for o, w, m in k[KEYS].itertuples(index=False):
        add("forest", o, w, m)
    for o, w, m in k.loc[k["k"] >= 2, KEYS].itertuples(index=False):
        add("robustness", o, w, m)
    for kind, o, w, m, mod in sensitivity.figure_targets(effects, studies, config):
        add(kind, o, w, m, mod)
    for o in sorted(effects["outcome"].unique()):
        add("trajectory", o)
    md = effects[effects["measure"] == "MD"][["outcome", "week"]].drop_duplicates()
    for o, w in md.itertuples(index=False):
        add("labbe", o, w)
    if config["data"].get("prisma"):
        add("prisma")
    participants = ipd.read_participants(config)
    if participants is not None:  # drawn from the ipd job's figure data
        for o in sorted(participants["outcome"].unique()):
            add("ipd_trajectories", o)
    out = pd.DataFrame(rows, columns=FIGURE_LIST_COLUMNS)
    out["week"] = out["week"].astype("Int64")
    return out


def _group(st: pd.DataFrame, outcome: str, week: int, measure: str) -> pd.DataFrame:
    g = st[(st["outcome"] == outcome) & (st["week"] == int(week)) & (st["measure"] == measure)]
    return g.sort_values("study", kind="stable").reset_index(drop=True)


def _labels(g: pd.DataFrame) -> dict[str, str]:
    return dict(zip(g["study"], g["label"] if "label" in g.columns else g["study"], strict=True))


def _keyed(df: pd.DataFrame, keys: dict[str, Any]) -> pd.DataFrame:
    df = df.reset_index(drop=True).copy()
    for i, (c, v) in enumerate(keys.items()):
        if c in df.columns:
            df = df.drop(columns=c)
        df.insert(i, c, v)
    return df


def figure_data(
    st: pd.DataFrame,
    studies: pd.DataFrame,
    config: dict,
    figures: pd.DataFrame,
    *,
    fits: sensitivity.Fits | None = None,
) -> dict[str, pd.DataFrame]:
    """What the sensitivity figures draw beyond the tables, as tidy frames.

    One frame per name, each with the figure's ``stem`` first:

    * ``bubble_points`` (trials: moderator value ``x``, effect, weight) and ``bubble_lines``
      (fitted line with CI and prediction bands on a grid of 101 moderator values);
    * ``subgroup_studies`` (trials with their subgroup, CI and weight in the overall model),
      ``subgroup_levels``, ``subgroup_tests`` and ``subgroup_overall`` (separate tau² per
      subgroup; a one-trial subgroup has no tau²);
    * ``baujat`` (coordinates, axis titles);
    * ``influence_reference`` (k, p, the full-data tau² and Q, metafor's cut-offs) and
      ``influence_panels`` (the case-deletion diagnostics of ``influence.csv``, every digit);
    * ``funnel_filled`` (trim-and-fill's imputed studies) and ``funnel_lines`` (the pooled
      estimate, the trim-and-fill estimate, k0 and estimator; Egger's line ``x = intercept
      + slope * SE``).

    The figures are drawn from these rather than from the rounded tables wherever a
    figure's coordinates would otherwise move in the last digits.

    ``fits``: the models the sensitivity tables of the same ``st``, ``studies`` and ``config``
    fitted (:class:`hairtrial.analyses.sensitivity.Fits`); what is not there is fitted here.
    """
    fits = fits if fits is not None else sensitivity.Fits()
    method, ci_method, level = sensitivity.primary_model(config)
    parts: dict[str, list[pd.DataFrame]] = {
        name: []
        for name in (
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
        )
    }
    groups: dict[tuple[str, int, str], pd.DataFrame] = {}  # several figures per combination
    for f in figures.itertuples(index=False):
        if f.kind not in sensitivity.FIGURE_KINDS:
            continue
        combo = (f.outcome, int(f.week), f.measure)
        if combo not in groups:
            groups[combo] = _group(st, *combo)
        g = groups[combo]
        keys = {"stem": f.stem}
        labels = _labels(g)
        yi, vi = g["yi"].to_numpy(float), g["vi"].to_numpy(float)
        if f.kind == "bubble":
            mod = f.moderator
            # the line and bands only: the permutation test is the table's (meta_regression)
            mf = fits.moderator_fits.get((*combo, (mod,)))
            if mf is None:
                mf = sensitivity.fit_moderators(g, studies, [mod], config, permutation=False)
            res, d = mf.result, mf.md.data
            assert res is not None
            x = d[mod].to_numpy(float)
            grid = pd.DataFrame({mod: np.linspace(x.min(), x.max(), 101)})
            pred = metareg.predict(res, grid).rename(columns={mod: "x"})
            pts = d[["study", "yi"]].copy()
            pts["label"] = [labels.get(s, s) for s in d["study"]]
            pts["x"] = x
            pts["weight_pct"] = res.weights
            if "provenance" in d.columns:
                pts["provenance"] = d["provenance"].to_numpy()
            parts["bubble_points"].append(_keyed(pts, keys))
            parts["bubble_lines"].append(_keyed(pred, keys))
        elif f.kind == "subgroups":
            mod = f.moderator
            # the subgroup table's analysis, unless it made none
            md, sres = fits.subgroup_fits.get((*combo, mod), (None, None))
            if md is None:
                md = sensitivity.moderator_data(g, studies, [mod], subgroup=True)
            d = md.data.copy()
            d["subgroup"] = d[mod].astype(str)
            if sres is None:
                sres = subgroups.subgroup_analysis(
                    d["yi"].to_numpy(float), d["vi"].to_numpy(float), d["subgroup"].to_numpy(),
                    moderator=mod, method=method, ci_method=ci_method, level=level,
                )  # fmt: skip
            d["weight_pct"] = sres.overall.weights
            lo, hi = _study_ci(d, level)
            d["ci_lower"], d["ci_upper"] = lo, hi
            table = sres.summary_frame()
            tab = table[table["tau2_option"] == "separate"].copy()
            # a one-trial subgroup has no tau2 (fixed at 0, not estimated): show none
            tab.loc[tab["k"] < 2, "tau2"] = math.nan
            test = sres.test[sres.test["tau2_option"] == "separate"].iloc[:1]
            over = sres.overall.summary_frame()
            dropped = pd.Series([len(md.dropped)], name="studies_dropped")
            parts["subgroup_studies"].append(_keyed(d.drop(columns=[mod]), keys))
            parts["subgroup_levels"].append(_keyed(tab, keys))
            parts["subgroup_tests"].append(_keyed(test, keys))
            parts["subgroup_overall"].append(
                _keyed(pd.concat([over, dropped.to_frame()], axis=1), keys)
            )
        elif f.kind == "baujat":
            bj = influence.baujat(yi, vi, list(g["study"]), method=method, ci_method=ci_method)
            bj = bj.assign(xlabel=bj.attrs["xlabel"], ylabel=bj.attrs["ylabel"])
            parts["baujat"].append(_keyed(bj, keys))
        elif f.kind == "influence":
            infl = fits.influence_frames.get(combo)
            if infl is None:
                infl = sensitivity.influence_frame(g, method, ci_method)
            a = infl.attrs
            ref = {
                "k": a["k"], "p": a["p"], "method": a["method"], "ci_method": a["ci_method"],
                "tau2": a["tau2"], "QE": a["QE"],
                **{f"cutoff_{c}": v for c, v in a["cutoffs"].items()},
                "notes": a.get("notes", ""),
            }  # fmt: skip
            parts["influence_reference"].append(_keyed(pd.DataFrame([ref]), keys))
            parts["influence_panels"].append(_keyed(infl, keys))
        elif f.kind == "funnel":
            tf = smallstudy.trimfill(yi, vi, method=method, ci_method=ci_method, level=level)
            eg = smallstudy.regtest(yi, vi, model="lm", predictor="sei", level=level)
            if tf.computable and tf.k0 > 0:
                filled = pd.DataFrame(
                    {"yi": np.asarray(tf.filled_yi, float), "vi": np.asarray(tf.filled_vi, float)}
                )
                parts["funnel_filled"].append(_keyed(filled, keys))
            pooled = univariate.fit(yi, vi, method=method, ci_method=ci_method, level=level)
            line = {
                "pooled_estimate": pooled.estimate,
                "pooled_method": method,
                "trimfill_computable": bool(tf.computable),
                "trimfill_estimator": tf.estimator,
                "trimfill_k0": tf.k0,
                "trimfill_estimate": tf.estimate,
                "egger_computable": bool(eg.computable),
                "egger_predictor": eg.predictor,
                "egger_intercept": eg.intercept,
                "egger_slope": eg.slope,
            }
            parts["funnel_lines"].append(_keyed(pd.DataFrame([line]), keys))
    return {
        name: (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["stem"]))
        for name, frames in parts.items()
    }


def figure_inputs(
    st: pd.DataFrame, studies: pd.DataFrame, config: dict
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Tables and figure data for the sensitivity figures of some study effects.

    For a notebook or a test that has study effects (``study_effects.csv`` rows) but no
    run: the primary model's rows of ``meta_analysis``, the sensitivity tables, and the
    figure list with its figure data (:func:`figure_list` keeps to the sensitivity kinds).
    """
    method, ci_method, level = sensitivity.primary_model(config)
    meta = []
    for (outcome, week, measure), g in st.groupby(KEYS, sort=True):
        g = g.sort_values("study", kind="stable")
        fit = univariate.fit(
            g["yi"].to_numpy(float), g["vi"].to_numpy(float),
            method=method, ci_method=ci_method, level=level,
        )  # fmt: skip
        meta.append(
            _keyed(
                fit.summary_frame(),
                dict(zip(KEYS, (outcome, week, measure), strict=True)),
            )
        )
    fits = sensitivity.Fits()  # the tables' models, reused by figure_data
    tables = {
        "study_effects": st,
        "meta_analysis": pd.concat(meta, ignore_index=True),
        **{
            name: sensitivity.table(name, st, studies, config, fits=fits)
            for name in sensitivity.TABLES
        },
    }
    figures = figure_list(st, studies, config)
    figures = figures[figures["kind"].isin(sensitivity.FIGURE_KINDS)].reset_index(drop=True)
    return tables, {"figures": figures, **figure_data(st, studies, config, figures, fits=fits)}


def _study_ci(d: pd.DataFrame, level: float) -> tuple[np.ndarray, np.ndarray]:
    if {"ci_lower", "ci_upper"} <= set(d.columns) and d[["ci_lower", "ci_upper"]].notna().all(
        axis=None
    ):
        return d["ci_lower"].to_numpy(float), d["ci_upper"].to_numpy(float)
    lo, hi = ci_from_yi_vi(d["yi"].to_numpy(float), d["vi"].to_numpy(float), level=level)
    return np.atleast_1d(lo), np.atleast_1d(hi)
