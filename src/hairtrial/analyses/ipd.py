"""Participant-level data in a run: the trials' own models, and their arms in the meta-analysis.

When the config names ``data.participants`` (issue 12):

* :func:`read_participants` reads and validates the file (against ``studies.csv`` and
  ``arms.csv``);
* :func:`arm_level_rows` turns it into arm-level rows (per arm and week: n, mean change, SD of
  change; provenance ``from_ipd``) that :func:`hairtrial.analyses.primary.load_inputs` adds to
  ``arms.csv``'s rows, so every analysis uses them;
* :func:`resolved_assumptions` replaces ``assumptions.change_sd_correlation: from_ipd`` (and
  ``split_scalp_correlation: from_ipd``) by the correlation measured in the data
  (:func:`measured_correlations`), and :func:`mark_measured_r` adds the provenance code
  ``r_from_ipd`` to every number that used it;
* :func:`ipd_tables` fits each trial (:func:`hairtrial.models.ipd.fit_trial`), the pingouin
  statistics, the one-stage model across trials and its comparison with the two-stage result:
  the tables of the ``ipd`` job, and the data of the trajectory figure.

Studies whose ``studies.csv`` ``source`` starts with ``hairtrial.data.simulate`` are
synthetic: every table says so in its ``data_source`` column (:func:`data_sources`), and every
figure and notebook of a run that analyses such a study says so too (:func:`synthetic_label`,
:func:`synthetic_notice`).
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses.config import ConfigError
from hairtrial.core import distributions as dist
from hairtrial.core import vocab
from hairtrial.data import participants as participants_io
from hairtrial.data import units, validate
from hairtrial.derive import ipd as derive_ipd
from hairtrial.models import ipd as model
from hairtrial.models import univariate

__all__ = [
    "IPD_TABLES",
    "ONE_STAGE_COLUMNS",
    "UNIT_TABLES",
    "arm_level_rows",
    "data_sources",
    "ipd_tables",
    "mark_measured_r",
    "measured_correlations",
    "read_participants",
    "resolved_assumptions",
    "synthetic_in",
    "synthetic_label",
    "synthetic_notice",
    "synthetic_sources",
    "trajectory_data",
]

IPD_TABLES = (
    "ipd_contrasts",
    "ipd_coefficients",
    "ipd_variance",
    "ipd_fit",
    "ipd_correlations",
    "ipd_anova",
    "ipd_one_stage",
)
"""Tables of the ``ipd`` job (``results/tables/{name}.csv``)."""

SYNTHETIC_SOURCE = "hairtrial.data.simulate"
"""Prefix of the ``studies.csv`` ``source`` of simulated (synthetic) studies."""

ONE_STAGE_COLUMNS = [
    "outcome",
    "week",
    "approach",
    "k",
    "n_participants",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "tau2",
    "distribution",
    "converged",
    "notes",
    "unit",
    "data_source",
]
"""Columns of ``ipd_one_stage.csv``: one-stage and two-stage estimates side by side."""

UNIT_TABLES = ("ipd_contrasts", "ipd_coefficients", "ipd_variance", "ipd_anova", "ipd_one_stage")
"""Tables of the ``ipd`` job with numbers on the outcome's scale (or its square), hence a
``unit`` column: the participants' ``unit`` of the study's outcome (``participants.csv``)."""

ARM_MEAN_COLUMNS = [
    "study",
    "outcome",
    "arm",
    "week",
    "mean",
    "ci_lower",
    "ci_upper",
    "method",
    "unit",
]
"""Columns of the ``ipd_arm_means`` figure data (:func:`ipd_tables`)."""

MEASURED_CODE = "r_from_ipd"

#: assumption key -> (correlation quantity of :func:`hairtrial.derive.ipd.correlations`,
#: provenance code of the numbers that use it)
_MEASURED = {
    "change_sd_correlation": ("baseline_followup", "change_from_levels_r"),
    "split_scalp_correlation": ("side_to_side_change", "split_scalp_r"),
}


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime: float, arms: str, studies: str) -> pd.DataFrame:
    if arms:
        a, s = validate.read_inputs(arms, studies)
        return participants_io.read_participants(path, s, a)
    return participants_io.read_participants(path, validate.read_studies(studies))


def read_participants(config: dict) -> pd.DataFrame | None:
    """The validated participant-level table the config names, or None.

    Raises
    ------
    hairtrial.data.csvread.DataValidationError
        If ``participants.csv`` (or ``arms.csv`` / ``studies.csv``) breaks the contract.
    """
    key = _participants_key(config)
    return None if key is None else _read_cached(*key).copy()


def _participants_key(config: dict) -> tuple[str, float, str, str] | None:
    """What the participant table read for ``config`` depends on (the cache keys below)."""
    path = config["data"].get("participants")
    if not path:
        return None
    d = config["data"]
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        mtime = math.nan  # read_participants reports the missing file
    return str(path), mtime, str(d.get("arms") or ""), str(d["studies"])


@functools.lru_cache(maxsize=4)
def _measured_cached(
    key: tuple[str, float, str, str], control: str, experimental: str
) -> dict[str, dict[str, Any]]:
    # the correlations of one participant table, once a process: every robustness scenario
    # and the arm model resolve the same ``from_ipd`` assumptions (~0.4 s each)
    return measured_correlations(_read_cached(*key).copy(), control, experimental)


def data_sources(studies: pd.DataFrame) -> dict[str, str]:
    """Study -> ``synthetic (<source>)`` for simulated studies, ``participant-level data``
    otherwise."""
    out = {}
    for study, source in zip(studies["study"], studies["source"], strict=True):
        text = source if isinstance(source, str) else ""
        out[study] = (
            f"synthetic ({text})" if text.startswith(SYNTHETIC_SOURCE) else "participant-level data"
        )
    return out


def synthetic_sources(config: dict) -> list[str]:
    """The ``source`` of every synthetic study the run analyses, sorted; empty for real data.

    A study is synthetic when its ``studies.csv`` ``source`` starts with
    :data:`SYNTHETIC_SOURCE`; the studies analysed are those ``selection.studies`` keeps
    (``primary``: ``primary = yes``; ``all``: every study), as in
    :func:`hairtrial.analyses.primary.load_inputs`.

    Raises
    ------
    hairtrial.data.csvread.DataValidationError
        If ``studies.csv`` breaks the contract.
    """
    return synthetic_in(validate.read_studies(config["data"]["studies"]), config)


def synthetic_in(studies: pd.DataFrame, config: dict) -> list[str]:
    """:func:`synthetic_sources` of a studies table already read (columns ``source`` and, for
    ``selection.studies: primary``, ``primary``)."""
    if "source" not in studies.columns:
        return []
    if config.get("selection", {}).get("studies", "primary") == "primary":
        if "primary" not in studies.columns:
            return []
        studies = studies[studies["primary"].astype(str) == "yes"]
    return sorted(
        {s for s in studies["source"] if isinstance(s, str) and s.startswith(SYNTHETIC_SOURCE)}
    )


def synthetic_label(config: dict) -> str | None:
    """What every figure of the run is marked with: :data:`hairtrial.core.vocab.SYNTHETIC_LABEL`
    when the run analyses synthetic studies (:func:`synthetic_sources`), None for real data
    (figures left as they are). Plain data for :func:`hairtrial.plots.style.watermark`."""
    return vocab.SYNTHETIC_LABEL if synthetic_sources(config) else None


def synthetic_notice(config: dict) -> str | None:
    """The sentence (Markdown) that a notebook of a run on synthetic studies opens with
    (:data:`hairtrial.core.vocab.SYNTHETIC_NOTICE`), None for real data."""
    sources = synthetic_sources(config)
    return vocab.SYNTHETIC_NOTICE.format(sources="; ".join(sources)) if sources else None


def arm_level_rows(participants: pd.DataFrame, sources: dict[str, str]) -> pd.DataFrame:
    """Arm-level rows in the form of validated ``arms.csv`` rows, provenance ``from_ipd``.

    Per study x outcome x treatment x week (:func:`hairtrial.derive.ipd.arm_rows`): n, mean
    and SD of the baseline (week 0, ``stat = value``) and of the change from baseline
    (``stat = change``). ``arm`` is the treatment code; ``line`` 0 (no line of arms.csv);
    ``source`` names the participant data (``synthetic (...)`` for simulated studies).
    """
    rows = derive_ipd.arm_rows(participants)
    out = pd.DataFrame(
        {c.name: pd.Series([None] * len(rows), dtype=object) for c in validate.ARM_COLUMNS}
    )
    for col in ("study", "arm", "treatment", "week", "outcome", "unit", "n", "mean", "stat", "sd"):
        out[col] = rows[col].to_numpy()
    out["source"] = [f"{sources.get(s, 'participant-level data')}" for s in rows["study"]]
    out["sd"] = pd.to_numeric(out["sd"]).where(lambda x: x > 0)
    for col in ("n", "mean", "sd"):
        out[col] = pd.to_numeric(out[col])
    out["week"] = out["week"].astype(int)
    out["line"] = 0
    out["provenance"] = derive_ipd.PROVENANCE_CODE
    return out


def measured_correlations(
    participants: pd.DataFrame, control: str, experimental: str
) -> dict[str, dict[str, Any]]:
    """The correlations ``from_ipd`` stands for, pooled over trials (Fisher z, weights n - 3).

    * ``change_sd_correlation``: within-arm Pearson correlations of baseline and follow-up
      level, per study x outcome x arm (control and experimental) x follow-up week;
    * ``split_scalp_correlation``: side-to-side Pearson correlations of the change, per
      split-scalp study x outcome x follow-up week.

    Returns
    -------
    dict
        Assumption key -> :func:`hairtrial.derive.ipd.pool_correlations` output plus
        ``text`` (what was pooled).
    """
    cor = derive_ipd.correlations(participants)
    out = {}
    for key, (quantity, _) in _MEASURED.items():
        rows = cor[cor["quantity"] == quantity]
        if quantity == "baseline_followup":
            rows = rows[rows["treatment"].isin([control, experimental])]
        pooled: dict[str, Any] = dict(derive_ipd.pool_correlations(rows))
        studies = ", ".join(sorted(rows.loc[rows["r"].notna(), "study"].unique()))
        pooled["text"] = (
            f"r = {pooled['r']:.3f} measured in participant data ({quantity}, "
            f"{pooled['n_rows']} arm-week correlations of {studies or 'no study'}, pooled by "
            "Fisher z)"
        )
        out[key] = pooled
    return out


def resolved_assumptions(config: dict) -> tuple[dict[str, Any], dict[str, str]]:
    """``config['assumptions']`` with every ``from_ipd`` replaced by the measured correlation.

    Returns
    -------
    assumptions : dict
        Numbers only.
    measured : dict
        Assumption key -> description of the measured value (empty when nothing is
        ``from_ipd``).

    Raises
    ------
    hairtrial.analyses.config.ConfigError
        ``from_ipd`` without ``data.participants``, or no correlation could be measured (no
        split-scalp trial among the participants, for ``split_scalp_correlation``).
    """
    a = dict(config["assumptions"])
    wanted = [k for k in _MEASURED if a.get(k) == "from_ipd"]
    if not wanted:
        return a, {}
    table = _participants_key(config)
    if table is None:
        raise ConfigError(
            "assumptions: from_ipd needs participant-level data (config key data.participants)"
        )
    comp = config["comparison"]
    got = copy.deepcopy(_measured_cached(table, comp["control"], comp["experimental"]))
    measured = {}
    for key in wanted:
        if not math.isfinite(got[key]["r"]):
            raise ConfigError(
                f"assumptions.{key}: from_ipd, but data.participants has no "
                f"{_MEASURED[key][0]} correlation to measure (n > 3 per arm-week or study-week"
                + (", split-scalp trials" if key == "split_scalp_correlation" else "")
                + ")"
            )
        a[key] = float(got[key]["r"])
        measured[key] = got[key]["text"]
    return a, measured


def mark_measured_r(frame: pd.DataFrame, column: str, measured: dict[str, str]) -> pd.DataFrame:
    """Add ``r_from_ipd`` to the provenance (``column``) of every row that used a measured r."""
    if not measured or column not in frame.columns or frame.empty:
        return frame
    from hairtrial.data import provenance

    codes = [_MEASURED[k][1] for k in measured]
    out = frame.copy()

    def mark(text: object) -> object:
        if not isinstance(text, str) or not any(c in text.split(";") for c in codes):
            return text
        return provenance.join([text, MEASURED_CODE])

    out[column] = out[column].map(mark)
    return out


# ---------------------------------------------------------------------------------------------
# the ipd job
# ---------------------------------------------------------------------------------------------
def one_stage_table(
    participants: pd.DataFrame,
    contrasts: pd.DataFrame,
    control: str,
    experimental: str,
    level: float,
    sources: dict[str, str],
) -> pd.DataFrame:
    """One-stage (participants of every trial in one model) beside two-stage estimates.

    Per outcome and follow-up week with at least two trials: the one-stage model of
    :func:`hairtrial.models.ipd.fit_one_stage`, and the two-stage result: the per-trial
    mixed-model contrasts at that week (``contrasts``, from
    :func:`hairtrial.models.ipd.fit_trial`, which models every week of a trial jointly)
    pooled by REML random-effects meta-analysis (Wald z CI, as the one-stage model's).
    """
    ch = derive_ipd.changes(participants, treatments=[control, experimental])
    ch["experimental"] = (ch["treatment"] == experimental).astype(float)
    rows = []
    for (outcome, week), g in ch.groupby(["outcome", "week"], sort=True):
        studies = sorted(g["study"].unique())
        if len(studies) < 2:
            continue
        g = g.copy()
        # trials pooled on one scale: each trial's values in the outcome's canonical unit
        # (hairs/inch2 -> hairs/cm2, as the arm-level data are converted)
        factor = g["unit"].map(lambda u: units.lookup(str(u)).factor).astype(float)
        for col in ("baseline", "change"):
            if col in g.columns:
                g[col] = g[col] * factor
        converted = sorted({str(u) for u in g["unit"] if units.lookup(str(u)).converted})
        centre = g.groupby("study")["baseline"].transform("mean")
        g["baseline_c"] = g["baseline"] - centre
        n_part = int(g.drop_duplicates(["study", "participant"]).shape[0])
        source = "; ".join(sorted({sources.get(s, "") for s in studies}))
        base = {
            "outcome": outcome,
            "week": int(week),
            "k": len(studies),
            "n_participants": n_part,
            "unit": "; ".join(sorted({units.lookup(str(u)).canonical for u in g["unit"]})),
            "data_source": source,
        }
        unit_note = (
            f"values in {', '.join(converted)} converted to "
            f"{units.lookup(converted[0]).canonical} before pooling"
            if converted
            else ""
        )
        try:
            f = model.fit_one_stage(g, level=level)
            one = {
                "estimate": f.estimate, "se": f.se, "ci_lower": f.ci_lower,
                "ci_upper": f.ci_upper, "pvalue": f.pvalue, "tau2": f.variance["tau2"],
                "distribution": "z", "converged": f.converged, "notes": "; ".join(f.notes),
            }  # fmt: skip
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as err:
            one = {"estimate": math.nan, "converged": False, "notes": f"not fitted: {err}"}
        if unit_note:
            one["notes"] = "; ".join(x for x in (str(one.get("notes", "")), unit_note) if x)
        rows.append({**base, "approach": "one-stage (MixedLM, REML)", **one})
        c = contrasts[(contrasts["outcome"] == outcome) & (contrasts["week"] == week)]
        c = c[c["study"].isin(studies)]
        if len(c) >= 2:
            unit_of = g.drop_duplicates("study").set_index("study")["unit"]
            f_c = np.array([units.lookup(str(unit_of[s_])).factor for s_ in c["study"]])
            res = univariate.fit(
                c["estimate"].to_numpy(float) * f_c, (c["se"].to_numpy(float) * f_c) ** 2,
                method="REML", level=level,
            )  # fmt: skip
            fr = res.summary_frame().iloc[0]
            rows.append(
                {
                    **base,
                    "k": len(c),
                    "approach": "two-stage (per-trial model, REML meta-analysis)",
                    "estimate": float(fr["estimate"]),
                    "se": float(fr["se"]),
                    "ci_lower": float(fr["ci_lower"]),
                    "ci_upper": float(fr["ci_upper"]),
                    "pvalue": float(fr["pvalue"]),
                    "tau2": float(fr["tau2"]),
                    "distribution": "z",
                    "converged": True,
                    "notes": "; ".join(
                        x for x in ("stage 1: per-trial contrasts of ipd_contrasts", unit_note) if x
                    ),
                }
            )
    out = pd.DataFrame(rows, columns=ONE_STAGE_COLUMNS)
    return out


def trajectory_data(participants: pd.DataFrame, control: str, experimental: str) -> pd.DataFrame:
    """Every participant's (side's) change from baseline by week, for the spaghetti figure.

    Columns ``study, outcome, unit, unit_id, treatment, week, change`` (week 0 rows with change
    0 included, so that each line starts at the baseline).
    """
    ch = derive_ipd.changes(participants, treatments=[control, experimental])
    base = ch.drop_duplicates(["study", "outcome", "unit_id"]).assign(week=0, change=0.0)
    both = pd.concat([base, ch], ignore_index=True)
    cols = ["study", "outcome", "unit", "unit_id", "treatment", "week", "change"]
    return both.sort_values(["study", "outcome", "unit_id", "week"], kind="mergesort")[
        cols
    ].reset_index(drop=True)


def ipd_tables(config: dict) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The tables of the ``ipd`` job and the data of its figure.

    Returns
    -------
    tables : dict
        :data:`IPD_TABLES`, each with a ``data_source`` column (``synthetic (...)`` for
        simulated studies); those of :data:`UNIT_TABLES` with a ``unit`` column before it
        (the participants' unit of the study's outcome; in ``ipd_one_stage`` the units of the
        trials pooled).
    derived : dict
        ``ipd_trajectories`` (:func:`trajectory_data`) and ``ipd_arm_means`` (the model's
        control and experimental mean change per week with CIs: the control mean is the
        ``C(week)`` coefficient at the trial's mean baseline, the experimental mean that plus
        the contrast, with the SE of the sum from the fixed-effect covariance; ``unit`` the
        participants' unit).
    """
    part = read_participants(config)
    if part is None:
        raise ValueError("the ipd job needs data.participants in the config")
    studies = validate.read_studies(config["data"]["studies"])
    sources = data_sources(studies)
    ctrl, expt = config["comparison"]["control"], config["comparison"]["experimental"]
    level = float(config["meta_analysis"].get("level", 0.95))
    fits = model.fit_trials(part, ctrl, expt, level=level)
    tabs = model.summary_tables(fits)
    tables = {f"ipd_{k}": v for k, v in tabs.items()}
    tables["ipd_correlations"] = model.correlation_table(part)
    tables["ipd_anova"] = model.anova_table(part, ctrl, expt)
    tables["ipd_one_stage"] = one_stage_table(part, tabs["contrasts"], ctrl, expt, level, sources)
    unit_of = part.drop_duplicates(["study", "outcome"]).set_index(["study", "outcome"])["unit"]
    for name, t in tables.items():
        if name in UNIT_TABLES and "unit" not in t.columns:
            keys = zip(t["study"], t["outcome"], strict=True)
            t["unit"] = pd.Series([unit_of.get(k, "") for k in keys], index=t.index, dtype=object)
        if "data_source" not in t.columns:
            t["data_source"] = [sources.get(s, "") for s in t["study"]]
        tables[name] = t
    means = []
    z = float(dist.norm_ppf(0.5 + level / 2))
    for f in fits:
        names = f.coefficients["term"].tolist()
        est = f.coefficients["estimate"].to_numpy(float)
        for w in f.weeks:
            i, j = names.index(f"C(week){w}"), names.index(f"C(week){w}:experimental")
            crit = (
                z
                if f.distribution == "z"
                else float(dist.t_ppf(0.5 + level / 2, f.coefficients["df"].iloc[0]))
            )
            for arm, idx in (("control", [i]), ("experimental", [i, j])):
                m = float(est[idx].sum())
                se = float(math.sqrt(f.cov_fe[np.ix_(idx, idx)].sum()))
                means.append(
                    {
                        "study": f.study,
                        "outcome": f.outcome,
                        "arm": arm,
                        "week": int(w),
                        "mean": m,
                        "ci_lower": m - crit * se,
                        "ci_upper": m + crit * se,
                        "method": f.method,
                        "unit": unit_of.get((f.study, f.outcome), ""),
                    }
                )
    derived = {
        "ipd_trajectories": trajectory_data(part, ctrl, expt),
        "ipd_arm_means": pd.DataFrame(means, columns=ARM_MEAN_COLUMNS),
    }
    derived["ipd_trajectories"]["data_source"] = [
        sources.get(s, "") for s in derived["ipd_trajectories"]["study"]
    ]
    return tables, derived


# ---------------------------------------------------------------------------------------------
# the example analysis (config/examples/ipd.yaml)
# ---------------------------------------------------------------------------------------------
EXAMPLE_SEED = 20261201
"""Seed of the example's synthetic data (:func:`write_example`)."""


def write_example(folder: str | Path, seed: int = EXAMPLE_SEED) -> dict[str, Path]:
    """Write the synthetic data of ``config/examples/ipd.yaml`` (every number simulated).

    :func:`hairtrial.data.simulate.simulate_participants` with 8 trials (one split-scalp, no
    third arms, every trial in hairs/cm2) and ``seed``; the split-scalp trial and the first
    two parallel trials are given as participants (``participants.csv``), the other five as
    the arm-level summaries a paper would print (``arms.csv``); ``studies.csv`` lists all
    eight, each with ``source = hairtrial.data.simulate seed=<seed>`` (synthetic).

    Regenerate the committed files from the repository root with::

        python -c "from hairtrial.analyses.ipd import write_example; \\
                   write_example('data/examples/ipd')"

    Returns
    -------
    dict of str to Path
        ``arms``, ``studies``, ``participants``.
    """
    from hairtrial.data.simulate import SimulationSpec, simulate_participants

    spec = SimulationSpec(n_trials=8, three_arm_fraction=0.0, inch2_fraction=0.0)
    arms, studies, _, part = simulate_participants(spec, seed)
    split = studies.loc[studies["design"] == "split_scalp", "study"].tolist()
    parallel = studies.loc[studies["design"] == "parallel", "study"].tolist()
    ipd_studies = sorted([*split, *parallel[:2]])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in ("arms", "studies", "participants")}
    studies = studies.assign(note=studies["note"] + "; synthetic data")
    arms[~arms["study"].isin(ipd_studies)].to_csv(paths["arms"], index=False, lineterminator="\n")
    studies.to_csv(paths["studies"], index=False, lineterminator="\n")
    part[part["study"].isin(ipd_studies)].to_csv(
        paths["participants"], index=False, lineterminator="\n"
    )
    return paths
