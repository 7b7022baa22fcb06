"""How robust is the answer: meta-regression, subgroups, influence and small-study effects.

The workflow's sensitivity step, as functions of the study effects (``study_effects.csv``,
one row per outcome x week x measure x study), the study table
(:func:`hairtrial.data.validate.read_studies`) and the validated config. Each returns a tidy table
with a ``notes`` column; the statistics are those of :mod:`hairtrial.models.metareg`,
:mod:`hairtrial.models.subgroups`, :mod:`hairtrial.diagnostics.influence` and
:mod:`hairtrial.diagnostics.smallstudy`
(metafor parity), run with the primary model (first entries of ``meta_analysis.tau2_methods``
and ``ci_methods``).

Every outcome x week x measure gets rows, also when it has too few trials: the notes then say
plainly why nothing was computed instead of printing numbers that carry no information. The
smallest k each analysis needs is in :data:`MIN_K`; a meta-regression needs
``k >= p + 2`` studies with known moderator values (p coefficients, at least two residual
degrees of freedom), and studies without a value of a moderator are left out of that model
(the notes count them).

:func:`figure_targets` lists the figures that can be drawn for the data at hand (the
workflow asks for exactly these); :mod:`hairtrial.report.figures` draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses import primary
from hairtrial.analyses.config import schema_default
from hairtrial.core import vocab
from hairtrial.diagnostics import influence, smallstudy
from hairtrial.models import metareg, subgroups
from hairtrial.models.heterogeneity import HETEROGENEITY_COLUMNS

__all__ = [
    "CUMULATIVE_TABLE_COLUMNS",
    "FIGURE_KINDS",
    "Fits",
    "INFLUENCE_TABLE_COLUMNS",
    "LEAVE_ONE_OUT_TABLE_COLUMNS",
    "META_REGRESSION_COLUMNS",
    "MIN_K",
    "SMALL_STUDY_TABLE_COLUMNS",
    "SUBGROUP_TABLE_COLUMNS",
    "TABLES",
    "cumulative_table",
    "figure_targets",
    "influence_table",
    "leave_one_out_table",
    "meta_regression_table",
    "small_study_table",
    "subgroup_table",
    "table",
]

KEYS = list(vocab.KEYS)

#: Columns of ``results/tables/meta_regression.csv`` (the extras after ``notes``).
META_REGRESSION_COLUMNS = [
    *KEYS,
    "moderators",
    "term",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "tau2",
    "R2",
    "QM",
    "QM_pvalue",
    "QE",
    "QE_pvalue",
    "k",
    "permutation_pvalue",
    "notes",
    # extras
    "method",
    "ci_method",
    "QM_df",
    "QE_df",
    "QM_permutation_pvalue",
    "permutations",
    "studies_dropped",
]
#: Columns of ``results/tables/subgroups.csv``. ``row_type`` is ``subgroup`` (pooled estimate
#: of one level) or ``test`` (test for subgroup differences: ``statistic`` is Q_between, chi2
#: on ``df``, or F on ``df`` and ``df2``, as ``distribution`` says).
SUBGROUP_TABLE_COLUMNS = [
    *KEYS,
    "moderator",
    "tau2_option",
    "row_type",
    "level",
    "k",
    "estimate",
    "se",
    "statistic",
    "df",
    "df2",
    "distribution",
    "pvalue",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    *HETEROGENEITY_COLUMNS,
    "n_levels",
    "method",
    "ci_method",
    "studies_dropped",
    "notes",
]
_MODEL = ["method", "ci_method"]
#: Columns of ``results/tables/leave_one_out.csv`` (``study``: the study left out).
LEAVE_ONE_OUT_TABLE_COLUMNS = [*KEYS, *_MODEL, *influence.LEAVE_ONE_OUT_COLUMNS]
#: Columns of ``results/tables/cumulative.csv`` (``order``: publication year of ``study``).
CUMULATIVE_TABLE_COLUMNS = [*KEYS, *_MODEL, *influence.CUMULATIVE_COLUMNS]
#: Columns of ``results/tables/influence.csv`` (intercept-only model: one DFBETAS column).
INFLUENCE_TABLE_COLUMNS = [
    *KEYS,
    *_MODEL,
    *influence.INFLUENCE_COLUMNS,
    "dfbetas_intrcpt",
    *influence.INFLUENCE_FLAG_COLUMNS,
]
#: Columns of ``results/tables/small_study.csv``.
SMALL_STUDY_TABLE_COLUMNS = [*KEYS, *_MODEL, *smallstudy.SMALL_STUDY_COLUMNS]

#: Smallest number of trials each analysis (and its figure) needs.
MIN_K: dict[str, int] = {
    "subgroups": 2,
    "leave_one_out": 2,
    "cumulative": 2,
    "influence": 3,
    "baujat": 3,
    "funnel": smallstudy.MIN_K_COMPUTABLE,
}
_WHY_MIN_K = {
    "subgroups": "subgroups need at least 2 trials",
    "leave_one_out": "leaving one trial out needs at least 2",
    "cumulative": "a cumulative meta-analysis needs at least 2 trials",
    "influence": (
        "case-deletion diagnostics need at least 3: with 2, deleting one leaves a single "
        "trial and they only restate the two estimates"
    ),
}

#: Default moderator sets, subgroup moderators, permutations and seed: the schema's.
DEFAULT_MODERATORS = schema_default("meta_regression", "moderators")
DEFAULT_SUBGROUPS = schema_default("subgroups", "moderators")
DEFAULT_PERMUTATIONS = schema_default("meta_regression", "permutation_iterations")
DEFAULT_SEED = schema_default("meta_regression", "seed")

#: Display names and units of moderators (:mod:`hairtrial.core.vocab`).
MODERATOR_LABELS = vocab.MODERATOR_LABELS
MODERATOR_UNITS = vocab.MODERATOR_UNITS
#: Categorical moderators with a natural order (first level = reference).
ORDERED_LEVELS: dict[str, list[str]] = {"rob": ["low", "some", "high"]}

#: Figure kinds; those in :data:`MODERATOR_FIGURES` carry a moderator in their name.
FIGURE_KINDS = (
    "bubble",
    "subgroups",
    "leave_one_out",
    "cumulative",
    "baujat",
    "influence",
    "funnel",
)
MODERATOR_FIGURES = ("bubble", "subgroups")

_NAN = float("nan")


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------
primary_model = primary.primary_model  # the one rule for the primary model


def _settings(config: dict) -> tuple[list[list[str]], list[str], int, int]:
    mr = config.get("meta_regression", {})
    sg = config.get("subgroups", {})
    return (
        [list(m) for m in mr.get("moderators", DEFAULT_MODERATORS)],
        list(sg.get("moderators", DEFAULT_SUBGROUPS)),
        int(mr.get("permutation_iterations", DEFAULT_PERMUTATIONS)),
        int(mr.get("seed", DEFAULT_SEED)),
    )


def _groups(effects: pd.DataFrame):
    """(outcome, week, measure, rows sorted by study) for every combination, sorted."""
    for (outcome, week, measure), g in effects.groupby(KEYS, sort=True):
        yield (
            outcome,
            int(week),
            measure,
            g.sort_values("study", kind="stable").reset_index(drop=True),
        )


def _keys(outcome: str, week: int, measure: str) -> dict[str, Any]:
    return {"outcome": outcome, "week": int(week), "measure": measure}


def _with_studies(g: pd.DataFrame, studies: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Study rows of one combination with the study-level columns added (by ``study``)."""
    cols = [c for c in dict.fromkeys(columns) if c in studies.columns]
    extra = studies[["study", *cols]].drop_duplicates("study")
    out = g.drop(columns=[c for c in cols if c in g.columns]).merge(extra, on="study", how="left")
    for c in cols:
        if c in ORDERED_LEVELS:
            out[c] = pd.Categorical(out[c], categories=ORDERED_LEVELS[c])
    return out


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, int | float | np.number) else str(x)


def _all(k: int) -> str:
    return "both trials" if k == 2 else f"all {k} trials"


def _too_few(analysis: str, k: int) -> str:
    return f"k = {k}: too few trials ({_WHY_MIN_K[analysis]}); nothing computed"


# ---------------------------------------------------------------------------------------------
# moderators: which studies, can the model be fitted
# ---------------------------------------------------------------------------------------------
@dataclass
class ModeratorData:
    """Studies usable for one moderator set, and why a model can or cannot be fitted."""

    moderators: list[str]
    data: pd.DataFrame  # rows with every moderator known
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fittable: bool = True
    p: int = 0


def _is_numeric(col: pd.Series) -> bool:
    """Numeric moderators enter as they are; others (and booleans) as categories."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def moderator_data(
    g: pd.DataFrame, studies: pd.DataFrame, moderators: Sequence[str], *, subgroup: bool = False
) -> ModeratorData:
    """Drop studies with a missing moderator value and check whether a model is estimable.

    Parameters
    ----------
    g : pandas.DataFrame
        Study effects of one outcome x week x measure.
    studies : pandas.DataFrame
        The study table.
    moderators : sequence of str
        Study-level columns.
    subgroup : bool
        True for a subgroup analysis (a categorical grouping, >= 2 levels and >= 2 trials
        needed); False for a meta-regression (non-constant moderators and k >= p + 2).

    Returns
    -------
    ModeratorData
    """
    mods = list(moderators)
    unknown = [m for m in mods if m not in studies.columns]
    out = ModeratorData(mods, g.iloc[:0])
    if unknown:
        out.fittable = False
        out.notes.append(f"not a column of the study table: {', '.join(unknown)}; not fitted")
        return out
    d = _with_studies(g, studies, mods)
    missing = d[mods].isna().any(axis=1)
    out.dropped = sorted(d.loc[missing, "study"])
    d = d[~missing].reset_index(drop=True)
    out.data = d
    k_all, k = len(g), len(d)
    what = " or ".join(mods)
    if out.dropped:
        out.notes.append(
            f"{len(out.dropped)} of {k_all} trials dropped: {what} not recorded "
            f"({', '.join(out.dropped)})"
        )
    if k < 2:
        out.fittable = False
        out.notes.append(
            f"{what} not recorded for any trial; not fitted"
            if k == 0
            else f"only 1 trial with {what} recorded; not fitted"
        )
        return out
    p = 1
    for m in mods:
        col = d[m]
        if subgroup or not _is_numeric(col):
            levels = sorted({str(v) for v in col})
            if len(levels) < 2:
                out.fittable = False
                out.notes.append(
                    f"{m} is the same in {_all(k)} ({levels[0]}): "
                    + (
                        "no subgroups to compare; not fitted"
                        if subgroup
                        else "it cannot be separated from the intercept; not fitted"
                    )
                )
            p += len(levels) - 1
        else:
            values = col.to_numpy(dtype=float)
            if np.all(values == values[0]):
                out.fittable = False
                out.notes.append(
                    f"{m} is constant ({_fmt(float(values[0]))} in {_all(k)}): it cannot be "
                    "separated from the intercept; not fitted"
                )
            p += 1
    out.p = p
    if not out.fittable:
        return out
    if subgroup:
        if k < MIN_K["subgroups"]:
            out.fittable = False
            out.notes.append(f"k = {k}: too few trials for subgroups; not fitted")
    elif k < p + 2:
        out.fittable = False
        out.notes.append(
            f"k = {k} trials with {' and '.join(mods)} recorded, fewer than p + 2 = {p + 2} "
            f"(p = {p} coefficients; a meta-regression needs at least 2 residual degrees of "
            "freedom); not fitted"
        )
    return out


@dataclass
class ModelFit:
    """A fitted meta-regression with its permutation test (or why there is none)."""

    md: ModeratorData
    result: metareg.MetaRegResult | None = None
    perm: metareg.PermutationResult | None = None
    notes: list[str] = field(default_factory=list)


def fit_moderators(
    g: pd.DataFrame,
    studies: pd.DataFrame,
    moderators: Sequence[str],
    config: dict,
    *,
    permutation: bool = True,
) -> ModelFit:
    """Fit one meta-regression (primary model) and its permutation test, where estimable.

    ``permutation=False``: the model only (``perm`` None), for what does not report the
    test (the bubble plots' data); the permutation test refits the model
    ``meta_regression.permutation_iterations`` times and is most of the cost.
    """
    method, ci_method, level = primary_model(config)
    _, _, iterations, seed = _settings(config)
    md = moderator_data(g, studies, moderators)
    out = ModelFit(md, notes=list(md.notes))
    if not md.fittable:
        return out
    d = md.data
    yi, vi = d["yi"].to_numpy(float), d["vi"].to_numpy(float)
    try:
        res = metareg.metareg(
            yi, vi, data=d, moderators=md.moderators, method=method, ci_method=ci_method,
            level=level,
        )  # fmt: skip
    except ValueError as err:
        out.notes.append(f"not estimable: {err}")
        return out
    out.result = res
    out.notes.extend(res.notes)
    if not permutation:
        return out
    X = res.design.apply(d) if res.design is not None else None
    perm = metareg.permutest(
        yi, vi, X, method=method, ci_method=ci_method, iterations=iterations, seed=seed
    )
    out.perm = perm
    if perm.exact:
        out.notes.append(f"exact permutation test ({perm.exact_iterations} permutations)")
    out.notes.extend(perm.notes)
    return out


@dataclass
class Fits:
    """The models the sensitivity tables fitted, kept for the figure data.

    Pass one (empty) object to the table builders (:func:`table`), then to
    :func:`hairtrial.analyses.run.figure_data` with the same study effects, studies and config:
    the bubble plots, subgroup forest plots and influence panels then reuse the tables' models
    instead of fitting them again. Keyed by ``(outcome, week, measure, moderator(s))``.
    """

    #: meta_regression: every moderator set's model (with its permutation test)
    moderator_fits: dict[tuple[str, int, str, tuple[str, ...]], ModelFit] = field(
        default_factory=dict
    )
    #: subgroups: the studies used and the analysis, per subgroup moderator
    subgroup_fits: dict[
        tuple[str, int, str, str], tuple[ModeratorData, subgroups.SubgroupResult]
    ] = field(default_factory=dict)
    #: influence: :func:`influence_frame` as it returned it (before the table's key columns)
    influence_frames: dict[tuple[str, int, str], pd.DataFrame] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
def meta_regression_table(
    effects: pd.DataFrame, studies: pd.DataFrame, config: dict, *, fits: Fits | None = None
) -> pd.DataFrame:
    """One meta-regression per entry of ``meta_regression.moderators``, per outcome x week x
    measure: one row per coefficient, or one row with the reason it was not fitted.

    Returns
    -------
    pandas.DataFrame
        :data:`META_REGRESSION_COLUMNS`. ``moderators`` names the set (``" + "``-joined);
        ``term`` is metafor's coefficient name (``intrcpt``, the moderator, or
        ``<moderator><level>`` for a level of a categorical moderator); ``tau2``, ``R2``
        (percent), ``QM`` (chi2, or F for knha/adhoc), ``QE`` and ``k`` belong to the model
        and repeat on its rows; ``permutation_pvalue`` is the coefficient's permutation
        p-value (exact when the number of distinct permutations is at most
        ``meta_regression.permutation_iterations``, else that many random permutations with
        ``meta_regression.seed``).

    ``fits``: where to keep the models for the figure data (:class:`Fits`).
    """
    method, ci_method, _ = primary_model(config)
    moderator_sets, _, _, _ = _settings(config)
    rows: list[dict[str, Any]] = []
    for outcome, week, measure, g in _groups(effects):
        keys = _keys(outcome, week, measure)
        if len(g) < 2:
            rows.append(
                {
                    **keys,
                    "k": len(g),
                    "method": method,
                    "ci_method": ci_method,
                    "notes": f"k = {len(g)}: a single trial; no meta-regression is possible",
                }
            )
            continue
        for mods in moderator_sets:
            mf = fit_moderators(g, studies, mods, config)
            if fits is not None:
                fits.moderator_fits[(outcome, week, measure, tuple(mods))] = mf
            base = {
                **keys,
                "moderators": " + ".join(mods),
                "method": method,
                "ci_method": ci_method,
                "studies_dropped": ";".join(mf.md.dropped),
            }
            notes = _join(*mf.notes)
            res, perm = mf.result, mf.perm
            if res is None or perm is None:
                rows.append({**base, "k": len(mf.md.data), "notes": notes})
                continue
            model = {
                "tau2": res.tau2,
                "R2": res.R2,
                "QM": res.QM,
                "QM_df": res.QM_df,
                "QM_pvalue": res.QM_pvalue,
                "QE": res.QE,
                "QE_df": res.QE_df,
                "QE_pvalue": res.QE_pvalue,
                "k": res.k,
                "QM_permutation_pvalue": perm.QM_pvalue,
                "permutations": perm.iterations,
            }
            for j, c in res.coefficients.reset_index(drop=True).iterrows():
                rows.append(
                    {
                        **base,
                        **model,
                        "term": c["term"],
                        "estimate": c["estimate"],
                        "se": c["se"],
                        "ci_lower": c["ci_lower"],
                        "ci_upper": c["ci_upper"],
                        "pvalue": c["pvalue"],
                        "permutation_pvalue": float(perm.pvalue[j]),
                        "notes": notes,
                    }
                )
    return _frame(rows, META_REGRESSION_COLUMNS)


def subgroup_table(
    effects: pd.DataFrame, studies: pd.DataFrame, config: dict, *, fits: Fits | None = None
) -> pd.DataFrame:
    """Subgroup analyses for every moderator of ``subgroups.moderators``.

    Both ways of estimating tau^2 (``separate`` per subgroup, ``common``) and, per option, the
    test for subgroup differences (:func:`hairtrial.models.subgroups.subgroup_analysis`).

    Returns
    -------
    pandas.DataFrame
        :data:`SUBGROUP_TABLE_COLUMNS`. A moderator that cannot be analysed (too few trials,
        a single level after dropping trials without a value) gets one ``test`` row with
        empty numbers and the reason in ``notes``.

    ``fits``: where to keep the analyses for the figure data (:class:`Fits`).
    """
    method, ci_method, level = primary_model(config)
    _, moderators, _, _ = _settings(config)
    rows: list[dict[str, Any]] = []
    for outcome, week, measure, g in _groups(effects):
        keys = _keys(outcome, week, measure)
        model = {"method": method, "ci_method": ci_method}
        if len(g) < MIN_K["subgroups"]:
            rows.append(
                {**keys, **model, "row_type": "test", "k": len(g),
                 "notes": _too_few("subgroups", len(g))}
            )  # fmt: skip
            continue
        for mod in moderators:
            md = moderator_data(g, studies, [mod], subgroup=True)
            base = {**keys, **model, "moderator": mod, "studies_dropped": ";".join(md.dropped)}
            pre = _join(*md.notes)
            if not md.fittable:
                rows.append({**base, "row_type": "test", "k": len(md.data), "notes": pre})
                continue
            d = md.data
            res = subgroups.subgroup_analysis(
                d["yi"].to_numpy(float),
                d["vi"].to_numpy(float),
                d[mod].astype(str).to_numpy(),
                moderator=mod,
                method=method,
                ci_method=ci_method,
                level=level,
            )
            if fits is not None:
                fits.subgroup_fits[(outcome, week, measure, mod)] = (md, res)
            table = res.summary_frame()
            for option in subgroups.TAU2_OPTIONS:
                for _, r in table[table["tau2_option"] == option].iterrows():
                    row = {c: r[c] for c in subgroups.SUBGROUP_COLUMNS if c != "moderator"}
                    row.update(base, row_type="subgroup", notes=_join(pre, r["notes"]))
                    rows.append(row)
                t = res.test[res.test["tau2_option"] == option].iloc[0]
                rows.append(
                    {
                        **base,
                        "tau2_option": option,
                        "row_type": "test",
                        "k": len(d),
                        "statistic": t["Q_between"],
                        "df": t["df"],
                        "df2": t["df2"],
                        "distribution": t["distribution"],
                        "pvalue": t["pvalue"],
                        "tau2": t["tau2"],
                        "n_levels": t["n_levels"],
                        "notes": _join(pre, t["notes"]),
                    }
                )
    return _frame(rows, SUBGROUP_TABLE_COLUMNS)


def _per_combo(
    effects: pd.DataFrame,
    config: dict,
    analysis: str,
    columns: Sequence[str],
    run: Callable[[pd.DataFrame, str, str, float], pd.DataFrame],
) -> pd.DataFrame:
    method, ci_method, level = primary_model(config)
    parts: list[pd.DataFrame] = []
    for outcome, week, measure, g in _groups(effects):
        keys = {**_keys(outcome, week, measure), "method": method, "ci_method": ci_method}
        if len(g) < MIN_K[analysis]:
            parts.append(_frame([{**keys, "notes": _too_few(analysis, len(g))}], columns))
            continue
        t = run(g, method, ci_method, level)
        for i, (c, v) in enumerate(keys.items()):
            t.insert(i, c, v)
        parts.append(t.reindex(columns=list(columns)))
    parts = [p for p in parts if len(p)]
    if not parts:
        return _frame([], columns)
    return pd.concat(parts, ignore_index=True)[list(columns)]


def leave_one_out_table(effects: pd.DataFrame, studies: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The primary model refitted without each trial in turn (:data:`MIN_K` trials at least).

    Returns
    -------
    pandas.DataFrame
        :data:`LEAVE_ONE_OUT_TABLE_COLUMNS`; ``study`` is the trial left out.
    """

    def run(g: pd.DataFrame, method: str, ci_method: str, level: float) -> pd.DataFrame:
        return influence.leave_one_out(
            g["yi"].to_numpy(float), g["vi"].to_numpy(float), list(g["study"]),
            method=method, ci_method=ci_method, level=level,
        )  # fmt: skip

    return _per_combo(effects, config, "leave_one_out", LEAVE_ONE_OUT_TABLE_COLUMNS, run)


def by_year(g: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    d = _with_studies(g, studies, ["year"])
    return d.sort_values(["year", "study"], kind="stable").reset_index(drop=True)


def cumulative_table(effects: pd.DataFrame, studies: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Cumulative meta-analysis by publication year (ties: by study id).

    Returns
    -------
    pandas.DataFrame
        :data:`CUMULATIVE_TABLE_COLUMNS`; ``study`` is the trial added at ``step`` and
        ``order`` its publication year.
    """

    def run(g: pd.DataFrame, method: str, ci_method: str, level: float) -> pd.DataFrame:
        d = by_year(g, studies)
        return influence.cumulative(
            d["yi"].to_numpy(float), d["vi"].to_numpy(float), list(d["study"]),
            order_by=list(d["year"]), method=method, ci_method=ci_method, level=level,
        )  # fmt: skip

    return _per_combo(effects, config, "cumulative", CUMULATIVE_TABLE_COLUMNS, run)


def influence_table(
    effects: pd.DataFrame, studies: pd.DataFrame, config: dict, *, fits: Fits | None = None
) -> pd.DataFrame:
    """Case-deletion influence diagnostics of the primary model, with metafor's ``inf`` flag.

    ``fits``: where to keep the diagnostics for the figure data (:class:`Fits`).

    Returns
    -------
    pandas.DataFrame
        :data:`INFLUENCE_TABLE_COLUMNS`.
    """

    def run(g: pd.DataFrame, method: str, ci_method: str, level: float) -> pd.DataFrame:
        frame = influence_frame(g, method, ci_method)
        if fits is not None:  # a copy: the table inserts its key columns into `frame`
            key = (str(g["outcome"].iloc[0]), int(g["week"].iloc[0]), str(g["measure"].iloc[0]))
            fits.influence_frames[key] = frame.copy()
        return frame

    return _per_combo(effects, config, "influence", INFLUENCE_TABLE_COLUMNS, run)


def influence_frame(g: pd.DataFrame, method: str, ci_method: str) -> pd.DataFrame:
    return influence.influence_diagnostics(
        g["yi"].to_numpy(float), g["vi"].to_numpy(float), list(g["study"]),
        method=method, ci_method=ci_method,
    )  # fmt: skip


def small_study_table(effects: pd.DataFrame, studies: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Regression (Egger) and rank (Begg) tests and trim-and-fill, one row per test.

    With fewer than 10 trials every row has ``informative = False`` and a note saying the
    tests are uninformative (Sterne et al. 2011); with fewer than 3 nothing is computed.

    Returns
    -------
    pandas.DataFrame
        :data:`SMALL_STUDY_TABLE_COLUMNS`.
    """
    method, ci_method, level = primary_model(config)
    parts = []
    for outcome, week, measure, g in _groups(effects):
        t = smallstudy.small_study_table(
            g["yi"].to_numpy(float), g["vi"].to_numpy(float),
            method=method, ci_method=ci_method, level=level,
        )  # fmt: skip
        keys = {**_keys(outcome, week, measure), "method": method, "ci_method": ci_method}
        for i, (c, v) in enumerate(keys.items()):
            t.insert(i, c, v)
        parts.append(t)
    if not parts:
        return _frame([], SMALL_STUDY_TABLE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SMALL_STUDY_TABLE_COLUMNS]


#: Table name (file stem under ``results/tables/``) -> function.
TABLES: dict[str, Callable[[pd.DataFrame, pd.DataFrame, dict], pd.DataFrame]] = {
    "meta_regression": meta_regression_table,
    "subgroups": subgroup_table,
    "leave_one_out": leave_one_out_table,
    "influence": influence_table,
    "cumulative": cumulative_table,
    "small_study": small_study_table,
}


#: The tables whose models the figure data reuse (:class:`Fits`).
_KEEP_FITS = {
    "meta_regression": meta_regression_table,
    "subgroups": subgroup_table,
    "influence": influence_table,
}


def table(
    name: str,
    effects: pd.DataFrame,
    studies: pd.DataFrame,
    config: dict,
    *,
    fits: Fits | None = None,
) -> pd.DataFrame:
    """The sensitivity table ``name`` (a key of :data:`TABLES`).

    ``fits``: where the meta-regression, subgroup and influence tables keep their models for
    the figure data of the same study effects (:class:`Fits`); the other tables ignore it.
    """
    if name not in TABLES:
        raise ValueError(f"unknown sensitivity table {name!r}; choose one of {list(TABLES)}")
    if fits is not None and name in _KEEP_FITS:
        return _KEEP_FITS[name](effects, studies, config, fits=fits)
    return TABLES[name](effects, studies, config)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def figure_targets(
    effects: pd.DataFrame, studies: pd.DataFrame, config: dict
) -> list[tuple[str, str, int, str, str | None]]:
    """The figures that can be drawn: ``(kind, outcome, week, measure, moderator or None)``.

    Leave-one-out and cumulative plots need 2 trials, Baujat, influence and funnel plots 3
    (:data:`MIN_K`); a bubble plot is drawn for every fitted meta-regression on a single
    numeric moderator and a subgroup forest plot for every subgroup moderator that could be
    analysed. The matching tables say why the others are missing.
    """
    moderator_sets, sub_mods, _, _ = _settings(config)
    out: list[tuple[str, str, int, str, str | None]] = []
    for outcome, week, measure, g in _groups(effects):
        k = len(g)
        for mods in moderator_sets:
            if len(mods) != 1 or k < 2:
                continue
            md = moderator_data(g, studies, mods)
            if md.fittable and _is_numeric(md.data[mods[0]]):
                out.append(("bubble", outcome, week, measure, mods[0]))
        for mod in sub_mods:
            if (
                k >= MIN_K["subgroups"]
                and moderator_data(g, studies, [mod], subgroup=True).fittable
            ):
                out.append(("subgroups", outcome, week, measure, mod))
        for kind in ("leave_one_out", "cumulative", "baujat", "influence", "funnel"):
            if k >= MIN_K[kind]:
                out.append((kind, outcome, week, measure, None))
    return out


def read_study_effects(path) -> pd.DataFrame:
    """Read ``study_effects.csv`` (or ``derived/effects.csv``) as the workflow writes it."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
