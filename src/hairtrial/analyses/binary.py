"""Binary outcomes (responders, adverse events): every table of one run, from a validated config.

:func:`binary_analyses` reads ``data.events`` (and ``data.outcomes``), derives events and n
per arm with their provenance (:mod:`hairtrial.derive.events`), makes one 2x2 table per
trial x outcome x week (arms of one treatment in a trial combined by summing events and n,
so a shared control arm is never counted twice) and pools every outcome x week x measure
with every configured method (``binary`` section of the config):

* ``binary_study_effects``: each trial's escalc effect (RR and OR on the log scale, RD), its
  CI and weight in the primary model, the continuity correction applied and the provenance
  of the counts (:data:`STUDY_EFFECT_COLUMNS`);
* ``binary_meta_analysis``: one row per outcome x week x measure x method x CI method
  (:data:`META_COLUMNS`); MH, Peto and GLMM have ``ci_method`` ``z``; Peto and GLMM are
  odds-ratio methods and appear for OR only;
* ``binary_robustness``: the primary model against every other model, zero-cell handling
  and set of trials (:data:`ROBUSTNESS_COLUMNS`);
* ``binary_absolute_effects``: events per 1,000 at the control-arm risk of the trials and
  the number needed to treat, from the primary models;
* ``binary_data_quality`` and ``binary_excluded``: every derived number and every row or
  trial not used, with the reason.

The primary model of a measure is the first of ``binary.methods`` that applies to it (with
the first of ``binary.ci_methods`` for an inverse-variance model). Boundary cases (one
trial, double-zero trials, tau2 at 0, a diverging or non-converged GLMM) are written into
``notes``, never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hairtrial.analyses.config import schema_default
from hairtrial.core import distributions as dist
from hairtrial.data.events import read_events
from hairtrial.data.outcomes import read_outcomes
from hairtrial.data.validate import read_studies
from hairtrial.derive import binary as escalc
from hairtrial.derive.comparisons import study_label
from hairtrial.derive.events import derive_events, event_tables
from hairtrial.models import binary as pool

__all__ = [
    "ABSOLUTE_COLUMNS",
    "META_COLUMNS",
    "ROBUSTNESS_COLUMNS",
    "STUDY_EFFECT_COLUMNS",
    "TABLES",
    "BinaryOutputs",
    "binary_analyses",
    "primary_method",
]

#: Tables of :func:`binary_analyses`, in the order they are written.
TABLES: tuple[str, ...] = (
    "binary_study_effects",
    "binary_meta_analysis",
    "binary_robustness",
    "binary_absolute_effects",
    "binary_data_quality",
    "binary_excluded",
)

STUDY_EFFECT_COLUMNS: list[str] = [
    "outcome",
    "week",
    "measure",
    "study",
    "events_experimental",
    "n_experimental",
    "events_control",
    "n_control",
    "yi",
    "vi",
    "ci_lower",
    "ci_upper",
    "weight_pct",
    "correction",
    "provenance",
]
"""Columns of ``results/tables/binary_study_effects.csv`` (issue 10)."""

META_COLUMNS: list[str] = [
    "outcome",
    "week",
    "measure",
    "method",
    "ci_method",
    "k",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "pi_lower",
    "pi_upper",
    "tau2",
    "tau2_ci_lower",
    "tau2_ci_upper",
    "I2",
    "Q",
    "Q_pvalue",
    "ratio",
    "ratio_ci_lower",
    "ratio_ci_upper",
    "notes",
]
"""Columns of ``results/tables/binary_meta_analysis.csv`` (issue 10)."""

ROBUSTNESS_COLUMNS: list[str] = [
    "outcome",
    "week",
    "measure",
    "group",
    "scenario",
    "method",
    "ci_method",
    "k",
    "studies",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pvalue",
    "pi_lower",
    "pi_upper",
    "tau2",
    "I2",
    "ratio",
    "ratio_ci_lower",
    "ratio_ci_upper",
    "primary",
    "notes",
]
"""Columns of ``results/tables/binary_robustness.csv``."""

ABSOLUTE_COLUMNS: list[str] = [
    "outcome",
    "week",
    "measure",
    "method",
    "k",
    "control_events",
    "control_n",
    "control_per_1000",
    "experimental_per_1000",
    "experimental_per_1000_ci_lower",
    "experimental_per_1000_ci_upper",
    "difference_per_1000",
    "difference_per_1000_ci_lower",
    "difference_per_1000_ci_upper",
    "nnt",
    "notes",
]
"""Columns of ``results/tables/binary_absolute_effects.csv``."""

STUDY_INFO_COLUMNS: list[str] = ["outcome", "week", "study", "label", "year", "flags"]
"""Columns of the figure data ``results/derived/binary_study_info.csv``."""

#: Methods that are not inverse-variance models (their CI is always Wald-type, ``z``).
COUNT_METHODS: tuple[str, ...] = ("MH", "Peto", "GLMM")
#: Methods that pool odds ratios only.
OR_ONLY: tuple[str, ...] = ("Peto", "GLMM")
#: Provenance codes of counts that were not reported as such.
CONVERTED_CODES: tuple[str, ...] = ("events_from_percent", "n_split_equally")


@dataclass
class BinaryOutputs:
    """Tables (``results/tables/{name}.csv``) and figure data (``results/derived/``)."""

    tables: dict[str, pd.DataFrame]
    derived: dict[str, pd.DataFrame]


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------


def _settings(config: dict) -> dict[str, Any]:
    """The ``binary`` section, with the schema's defaults for keys a partial config lacks."""
    b = config.get("binary") or {}
    zc = b.get("zero_cells") or {}

    def get(d: dict, *keys: str) -> Any:
        return d[keys[-1]] if keys[-1] in d else schema_default("binary", *keys)

    return {
        "measures": list(get(b, "measures")),
        "methods": list(get(b, "methods")),
        "ci_methods": list(get(b, "ci_methods")),
        "add": float(get(zc, "zero_cells", "add")),
        "to": str(get(zc, "zero_cells", "to")),
        "drop00": bool(get(zc, "zero_cells", "drop00")),
        "cc": str(get(zc, "zero_cells", "correction")),
        "level": float(config.get("meta_analysis", {}).get("level", 0.95)),
    }


def applies(method: str, measure: str) -> bool:
    """Whether a pooling method gives an estimate of ``measure`` (Peto, GLMM: OR only).

    Examples
    --------
    >>> applies("GLMM", "RR"), applies("MH", "RD"), applies("REML", "OR")
    (False, True, True)
    """
    return not (method in OR_ONLY and measure != "OR")


def models(config: dict, measure: str) -> list[tuple[str, str]]:
    """(method, ci_method) of every model fitted for ``measure``, the primary first.

    Examples
    --------
    >>> cfg = {"binary": {"methods": ["GLMM", "MH", "DL"], "ci_methods": ["knha", "z"]}}
    >>> models(cfg, "RR")
    [('MH', 'z'), ('DL', 'knha'), ('DL', 'z')]
    """
    s = _settings(config)
    out: list[tuple[str, str]] = []
    for m in s["methods"]:
        if not applies(m, measure):
            continue
        if m in COUNT_METHODS:
            out.append((m, "z"))
        else:
            out.extend((m, c) for c in s["ci_methods"])
    return out


def primary_method(config: dict, measure: str) -> tuple[str, str]:
    """The primary model of ``measure``: the first of :func:`models`.

    Examples
    --------
    >>> primary_method({"binary": {"methods": ["Peto", "REML"], "ci_methods": ["adhoc"]}}, "RR")
    ('REML', 'adhoc')
    """
    fitted = models(config, measure)
    if not fitted:  # the schema allows e.g. methods [Peto] with measures [RR]
        return ("", "")
    return fitted[0]


def primary_measure(config: dict) -> str:
    """The first of ``binary.measures``."""
    return _settings(config)["measures"][0]


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def prepare(config: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Read, validate and derive: the 2x2 tables of the configured comparison.

    Returns
    -------
    tables : pandas.DataFrame
        One row per trial x outcome x week: ``study, outcome, week, ai, n1i, ci, n2i, arms1,
        arms2, provenance, flags`` (arm 1 experimental).
    quality : pandas.DataFrame
        Every derived count (``binary_data_quality``).
    studies : pandas.DataFrame
        The validated ``studies.csv``.
    notes : list of str
        Rows and trials not used, and why.
    """
    data = config["data"]
    studies = read_studies(data["studies"])
    outcomes = read_outcomes(data["outcomes"]) if data.get("outcomes") else None
    events = read_events(data["events"], studies, outcomes)
    notes: list[str] = []
    if config.get("selection", {}).get("studies", "primary") == "primary":
        keep = set(studies.loc[studies["primary"] == "yes", "study"])
        left = sorted(set(events["study"]) - keep)
        if left:
            notes.append(
                "not primary (selection: primary in the config): " + ", ".join(left) + " not used"
            )
        events = events[events["study"].isin(keep)].reset_index(drop=True)
    wanted = config.get("outcomes", "all")
    if wanted != "all":
        events = events[events["outcome"].isin(wanted)].reset_index(drop=True)
    arms, quality, derive_notes = derive_events(events, studies)
    notes += derive_notes
    comp = config["comparison"]
    exp_, ctl = comp["experimental"], comp["control"]
    if arms.empty:
        cols = ["study", "outcome", "week", "ai", "n1i", "ci", "n2i", "arms1", "arms2"]
        return pd.DataFrame(columns=[*cols, "provenance", "flags"]), quality, studies, notes
    tabs = event_tables(arms, experimental=exp_, control=ctl)
    used = set(zip(tabs["study"], tabs["outcome"], tabs["week"], strict=True))
    for (s, o, w), g in arms.groupby(["study", "outcome", "week"], sort=True):
        if (s, o, w) not in used:
            have = ", ".join(sorted(set(g["treatment"])))
            notes.append(
                f"{s} / {o} / week {w}: arms {have}; no {exp_!r} vs {ctl!r} comparison: not used"
            )
    tabs = tabs.sort_values(["outcome", "week", "study"], kind="stable").reset_index(drop=True)
    return tabs, quality, studies, notes


# ---------------------------------------------------------------------------------------------
# fitting one outcome x week x measure
# ---------------------------------------------------------------------------------------------


def _nan_row() -> dict[str, float]:
    return {c: math.nan for c in META_COLUMNS[5:-1]}


def fit_model(
    tab: pd.DataFrame,
    measure: str,
    method: str,
    ci_method: str,
    s: dict[str, Any],
) -> tuple[dict[str, Any], pool.BinaryPoolResult | None]:
    """One row of ``binary_meta_analysis`` (without the keys) and the model's result."""
    a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
    drop00 = s["drop00"] if measure != "RD" else False
    level = s["level"]
    if len(tab) == 0:
        return {**_nan_row(), "k": 0, "notes": "no trials"}, None
    kw: dict[str, Any] = {"add": s["add"], "to": s["to"], "drop00": drop00, "level": level}
    if method == "MH":
        res = pool.mantel_haenszel(a, n1, c, n2, measure=measure, **kw)
    elif method == "Peto":
        res = pool.peto(a, n1, c, n2, **kw)
    elif method == "GLMM":
        res = pool.glmm_um_fs(a, n1, c, n2, **kw)
    else:
        res = pool.inverse_variance(
            a, n1, c, n2, measure=measure, method=method, ci_method=ci_method, cc=s["cc"], **kw
        )
    row: dict[str, Any] = {
        "k": res.k,
        "estimate": res.estimate,
        "se": res.se,
        "ci_lower": res.ci_lower,
        "ci_upper": res.ci_upper,
        "pvalue": res.pvalue,
        "pi_lower": math.nan,
        "pi_upper": math.nan,
        "tau2": res.tau2,
        "tau2_ci_lower": math.nan,
        "tau2_ci_upper": math.nan,
        "I2": res.I2,
        "Q": res.Q,
        "Q_pvalue": res.Q_pvalue,
    }
    notes = list(res.notes)
    details = res.details
    if method not in COUNT_METHODS and details is not None:
        het = details.heterogeneity
        row["pi_lower"], row["pi_upper"] = details.pi_lower, details.pi_upper
        row["tau2_ci_lower"], row["tau2_ci_upper"] = het.tau2_ci_lower, het.tau2_ci_upper
    if method == "GLMM":
        row["pi_lower"], row["pi_upper"] = pool.glmm_prediction_interval(res)
        diverged = any("diverges" in n for n in notes)
        if diverged or not res.converged:
            for col in ("estimate", "se", "ci_lower", "ci_upper", "pvalue", "pi_lower", "pi_upper"):
                row[col] = math.nan
            notes.append("GLMM estimate not reported (not estimable from these counts)")
    if measure in ("RR", "OR"):
        row["ratio"] = math.exp(row["estimate"]) if math.isfinite(row["estimate"]) else math.nan
        for b in ("lower", "upper"):
            v = row[f"ci_{b}"]
            row[f"ratio_ci_{b}"] = math.exp(v) if math.isfinite(v) else math.nan
    else:
        row["ratio"] = row["ratio_ci_lower"] = row["ratio_ci_upper"] = math.nan
    row["notes"] = "; ".join(dict.fromkeys(notes))
    return row, res


def _trial_notes(tab: pd.DataFrame, measure: str, s: dict[str, Any]) -> list[str]:
    """Boundary cases of the trials of one outcome x week x measure, naming them."""
    a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
    notes: list[str] = []
    d00 = escalc.double_zero(a, n1, c, n2) if len(tab) else np.zeros(0, bool)
    names = ", ".join(tab.loc[d00, "study"])
    if names and measure != "RD" and s["drop00"]:
        notes.append(f"double-zero trial(s) left out of {measure} (no information on a ratio): "
                     f"{names}")  # fmt: skip
    elif names and measure == "RD":
        notes.append(f"double-zero trial(s) kept for RD (an estimated difference of 0): {names}")
    z0 = escalc.zero_cell(a, n1, c, n2) & ~d00 if len(tab) else np.zeros(0, bool)
    if z0.any():
        notes.append("zero cell(s) in " + ", ".join(tab.loc[z0, "study"]))
    return notes


def _weights(
    tab: pd.DataFrame, es: pd.DataFrame, measure: str, method: str, res: Any
) -> np.ndarray:
    a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
    k = len(tab)
    if method in ("MH", "Peto"):
        return pool.pool_weights(a, n1, c, n2, model=method, measure=measure)
    if method == "GLMM" or res is None or res.details is None:
        return np.full(k, math.nan)  # metafor gives no weights for rma.glmm
    keep = es["included"].to_numpy() & (es["vi"].fillna(0).to_numpy() > 0)
    w = np.full(k, math.nan)
    w[keep] = res.details.weights
    return w


def analyse(
    tabs: pd.DataFrame, config: dict
) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, int, str], Any]]:
    """Study effects and every model of every outcome x week x measure.

    Returns
    -------
    study_effects, meta : pandas.DataFrame
        :data:`STUDY_EFFECT_COLUMNS` and :data:`META_COLUMNS`.
    results : dict
        (outcome, week, measure, method, ci_method) -> result, for the robustness table.
    """
    s = _settings(config)
    level = s["level"]
    crit = float(dist.norm_isf((1.0 - level) / 2.0))
    st_rows: list[pd.DataFrame] = []
    meta_rows: list[dict[str, Any]] = []
    results: dict[Any, Any] = {}
    for (outcome, week), tab in tabs.groupby(["outcome", "week"], sort=True):
        tab = tab.sort_values("study", kind="stable").reset_index(drop=True)
        a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
        for measure in s["measures"]:
            drop00 = s["drop00"] if measure != "RD" else False
            es = escalc.binary_effects(
                a, n1, c, n2, measure=measure, add=s["add"], to=s["to"], drop00=drop00, cc=s["cc"]
            )
            trial_notes = _trial_notes(tab, measure, s)
            informative = int(np.sum(~es["double_zero"].to_numpy())) if drop00 else len(tab)
            fitted = models(config, measure)
            first = None
            for method, ci_method in fitted:
                row, res = fit_model(tab, measure, method, ci_method, s)
                results[(outcome, int(week), measure, method, ci_method)] = (row, res)
                single = ["single trial: no pooling, the estimate is that trial's"]
                notes = [*(single if informative == 1 else []), *trial_notes, row["notes"]]
                notes = [n for n in notes if n]
                meta_rows.append(
                    {
                        "outcome": outcome,
                        "week": int(week),
                        "measure": measure,
                        "method": method,
                        "ci_method": ci_method,
                        **row,
                        "notes": "; ".join(notes),
                    }
                )
                if first is None:
                    first = (method, res)
            yi, vi = es["yi"].to_numpy(float), es["vi"].to_numpy(float)
            with np.errstate(invalid="ignore"):
                half = crit * np.sqrt(vi)
            w = (
                _weights(tab, es, measure, first[0], first[1])
                if first
                else np.full(len(tab), math.nan)
            )
            st_rows.append(
                pd.DataFrame(
                    {
                        "outcome": outcome,
                        "week": int(week),
                        "measure": measure,
                        "study": tab["study"],
                        "events_experimental": tab["ai"].astype(int),
                        "n_experimental": tab["n1i"].astype(int),
                        "events_control": tab["ci"].astype(int),
                        "n_control": tab["n2i"].astype(int),
                        "yi": yi,
                        "vi": vi,
                        "ci_lower": yi - half,
                        "ci_upper": yi + half,
                        "weight_pct": w,
                        "correction": es["correction"],
                        "provenance": tab["provenance"],
                    }
                )
            )
    study_effects = (
        pd.concat(st_rows, ignore_index=True)
        if st_rows
        else pd.DataFrame(columns=STUDY_EFFECT_COLUMNS)
    )
    meta = pd.DataFrame(meta_rows, columns=META_COLUMNS)
    return study_effects[STUDY_EFFECT_COLUMNS], meta, results


# ---------------------------------------------------------------------------------------------
# robustness
# ---------------------------------------------------------------------------------------------

SAME_AS_PRIMARY = "same as primary"


def _rob_row(keys: dict[str, Any], row: dict[str, Any], tab: pd.DataFrame) -> dict[str, Any]:
    out = {**keys, **{c: row.get(c, math.nan) for c in ROBUSTNESS_COLUMNS if c in row}}
    out["studies"] = ";".join(sorted(tab["study"]))
    return out


def robustness(
    tabs: pd.DataFrame, studies: pd.DataFrame, config: dict, results: dict
) -> pd.DataFrame:
    """The primary model of each outcome x week x measure against every other choice.

    Groups: ``Model`` (every other method and CI method fitted), ``Zero cells (...)`` (the first
    inverse-variance model of the config under other continuity corrections, and double-zero
    trials kept / left out), ``Trials`` (without trials whose counts were converted, without
    high risk-of-bias trials). A scenario that cannot change anything here has a note
    saying "same as primary" (the figure names it in its footer instead of drawing it).
    """
    s = _settings(config)
    rob = dict(zip(studies["study"], studies["rob"], strict=True))
    iv = [m for m in s["methods"] if m not in COUNT_METHODS]
    rows: list[dict[str, Any]] = []
    for (outcome, week), tab in tabs.groupby(["outcome", "week"], sort=True):
        tab = tab.sort_values("study", kind="stable").reset_index(drop=True)
        a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
        has0 = bool(escalc.zero_cell(a, n1, c, n2).any())
        has00 = bool(escalc.double_zero(a, n1, c, n2).any())
        for measure in s["measures"]:
            fitted = models(config, measure)
            if not fitted:
                continue
            m0, c0 = fitted[0]
            base = {"outcome": outcome, "week": int(week), "measure": measure}

            def add(group: str, scenario: str, method: str, ci: str, row: dict, t: pd.DataFrame,
                    primary: bool = False, extra: tuple[str, ...] = (),
                    base: dict = base) -> None:  # fmt: skip
                r = _rob_row({**base, "group": group, "scenario": scenario, "method": method,
                              "ci_method": ci, "primary": primary}, row, t)  # fmt: skip
                r["notes"] = "; ".join(n for n in (*extra, row.get("notes", "")) if n)
                rows.append(r)

            def label(method: str, ci: str) -> str:
                if method in COUNT_METHODS:
                    return {"MH": "Mantel-Haenszel", "Peto": "Peto", "GLMM": "GLMM (UM.FS)"}[method]
                return f"{method}, {ci}"

            row0, _ = results[(outcome, int(week), measure, m0, c0)]
            add("Primary", f"Primary: {label(m0, c0)}", m0, c0, row0, tab, primary=True)
            for method, ci in fitted[1:]:
                row, _ = results[(outcome, int(week), measure, method, ci)]
                add("Model", label(method, ci), method, ci, row, tab)
            # zero cells: the first inverse-variance model under other corrections
            if iv:
                # with one trial only a Wald-type CI exists: show the corrections with it
                mz, cz = iv[0], (s["ci_methods"][0] if len(tab) >= 2 else "z")
                variants: list[tuple[str, dict[str, Any], bool]] = [
                    ("0.5 added to every trial", {"add": 0.5, "to": "all"}, has0),
                    (
                        "Treatment-arm correction",
                        {"cc": "treatment-arm", "add": 0.5, "to": "only0"},
                        has0,
                    ),  # fmt: skip
                    ("0.1 added to zero-cell trials", {"add": 0.1, "to": "only0"}, has0),
                ]
                if measure != "RD":
                    variants.append(("Double-zero trials kept", {"drop00": False}, has00))
                for name, change, matters in variants:
                    ss = {**s, **change}
                    if measure == "RD" and "drop00" in change:
                        continue
                    if ss == s:
                        continue
                    if not matters:
                        what = "double-zero" if "drop00" in change else "zero-cell"
                        add(f"Zero cells ({mz}, {cz})", name, mz, cz,
                            {"k": len(tab), "notes": ""}, tab,
                            extra=(f"no {what} trial here: {SAME_AS_PRIMARY}",))  # fmt: skip
                        continue
                    ss_fit = dict(ss)
                    if measure != "RD" and "drop00" in change:
                        ss_fit["drop00"] = False
                    row, _ = fit_model(tab, measure, mz, cz, ss_fit)
                    add(f"Zero cells ({mz}, {cz})", name, mz, cz, row, tab)
            # trials
            conv = (
                tab["provenance"]
                .astype(str)
                .apply(lambda p: any(code in p.split(";") for code in CONVERTED_CODES))
            )
            for name, drop, why in (
                ("Without converted counts", conv.to_numpy(),
                 "no trial here has converted counts"),
                ("Without high risk-of-bias trials",
                 np.array([rob.get(st) == "high" for st in tab["study"]]),
                 "no trial here is at high risk of bias"),
            ):  # fmt: skip
                if not drop.any():
                    add("Trials", name, m0, c0, {"k": len(tab), "notes": ""}, tab,
                        extra=(f"{why}: {SAME_AS_PRIMARY}",))  # fmt: skip
                    continue
                t = tab[~drop].reset_index(drop=True)
                if t.empty:
                    add("Trials", name, m0, c0, {"k": 0, "notes": ""}, t,
                        extra=("no trials remain",))  # fmt: skip
                    continue
                row, _ = fit_model(t, measure, m0, c0, s)
                add("Trials", name, m0, c0, row, t)
    out = pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)
    out["primary"] = out["primary"].astype(bool)
    return out


# ---------------------------------------------------------------------------------------------
# absolute effects
# ---------------------------------------------------------------------------------------------


def absolute(
    tabs: pd.DataFrame, meta: pd.DataFrame, config: dict, direction: Callable[[str], str]
) -> pd.DataFrame:
    """Events per 1,000 and the NNT from the primary model of each outcome x week x measure.

    The control-arm risk (``control_per_1000``) is the assumed risk of GRADE's summary of
    findings, the median of the trials' control-arm risks
    (:func:`hairtrial.models.binary.assumed_control_risk`), so this table and the summary of
    findings give one number per outcome; ``control_events`` and ``control_n`` are the trials'
    totals. RR and OR: the pooled ratio applied to that risk (GRADE); RD: the pooled
    difference itself, and the NNT (NNTB / NNTH by the outcome's direction).
    """
    rows: list[dict[str, Any]] = []
    for (outcome, week), tab in tabs.groupby(["outcome", "week"], sort=True):
        ce, cn = int(tab["ci"].sum()), int(tab["n2i"].sum())
        cr = pool.assumed_control_risk(tab["ci"], tab["n2i"])
        for measure in _settings(config)["measures"]:
            m0, c0 = primary_method(config, measure)
            sel = meta[
                (meta["outcome"] == outcome)
                & (meta["week"] == int(week))
                & (meta["measure"] == measure)
                & (meta["method"] == m0)
                & (meta["ci_method"] == c0)
            ]
            if sel.empty:
                continue
            p = sel.iloc[0]
            row: dict[str, Any] = {
                "outcome": outcome,
                "week": int(week),
                "measure": measure,
                "method": m0,
                "k": p["k"],
                "control_events": ce,
                "control_n": cn,
                "control_per_1000": 1000.0 * cr,
                "nnt": "",
            }
            notes: list[str] = []
            est, lo, hi = (float(p[x]) for x in ("estimate", "ci_lower", "ci_upper"))
            if not math.isfinite(est):
                notes.append("no pooled estimate")
            elif measure in ("RR", "OR"):
                ae = pool.absolute_effects(
                    math.exp(est), cr, measure=measure, ratio_ci=(math.exp(lo), math.exp(hi))
                ) if math.isfinite(lo) and math.isfinite(hi) else pool.absolute_effects(
                    math.exp(est), cr, measure=measure
                )  # fmt: skip
                row.update(
                    {
                        "experimental_per_1000": ae.experimental,
                        "experimental_per_1000_ci_lower": ae.experimental_ci_lower,
                        "experimental_per_1000_ci_upper": ae.experimental_ci_upper,
                        "difference_per_1000": ae.difference,
                        "difference_per_1000_ci_lower": ae.difference_ci_lower,
                        "difference_per_1000_ci_upper": ae.difference_ci_upper,
                    }
                )
                notes += list(ae.notes)
                if ce == 0:
                    notes.append("no events in the control arms: a ratio gives 0 per 1,000")
                elif cr == 0:
                    notes.append(
                        "median control-arm risk 0 (most trials had no control events): a "
                        "ratio gives 0 per 1,000"
                    )
            else:
                row.update(
                    {
                        "experimental_per_1000": 1000.0 * (cr + est),
                        "experimental_per_1000_ci_lower": 1000.0 * (cr + lo),
                        "experimental_per_1000_ci_upper": 1000.0 * (cr + hi),
                        "difference_per_1000": 1000.0 * est,
                        "difference_per_1000_ci_lower": 1000.0 * lo,
                        "difference_per_1000_ci_upper": 1000.0 * hi,
                    }
                )
                good = direction(outcome) == "benefit"
                row["nnt"] = pool.number_needed(est, lo, hi, event_is_beneficial=good).text
            row["notes"] = "; ".join(notes)
            rows.append(row)
    return pd.DataFrame(rows, columns=ABSOLUTE_COLUMNS)


# ---------------------------------------------------------------------------------------------
# everything
# ---------------------------------------------------------------------------------------------


def outcome_info(config: dict) -> pd.DataFrame:
    """``outcomes.csv`` (validated) or an empty frame with its columns when not configured."""
    path = config["data"].get("outcomes")
    cols = ["outcome", "label", "kind", "direction", "unit", "mid", "mid_source"]
    if not path:
        return pd.DataFrame(columns=cols)
    return read_outcomes(path)[cols]


def binary_analyses(config: dict) -> BinaryOutputs:
    """Every binary-outcome table and the figure data, from a validated config.

    Returns
    -------
    BinaryOutputs
        ``tables``: :data:`TABLES`; ``derived``: ``binary_study_info`` (study labels, years
        and extraction flags for the figures) and ``binary_figures`` (the figures to draw).
    """
    tabs, quality, studies, notes = prepare(config)
    outs = outcome_info(config)
    directions = dict(zip(outs["outcome"], outs["direction"], strict=True))
    study_effects, meta, results = analyse(tabs, config)
    tables = {
        "binary_study_effects": study_effects,
        "binary_meta_analysis": meta,
        "binary_robustness": robustness(tabs, studies, config, results),
        "binary_absolute_effects": absolute(
            tabs, meta, config, lambda o: directions.get(o, "benefit")
        ),
        "binary_data_quality": quality,
        "binary_excluded": pd.DataFrame({"note": notes}),
    }
    info = tabs[["outcome", "week", "study", "flags"]].merge(
        studies[["study", "first_author", "year"]], on="study", how="left"
    )
    info["label"] = [
        study_label(s, a, y)
        for s, a, y in zip(info["study"], info["first_author"], info["year"], strict=True)
    ]
    info["year"] = pd.to_numeric(info["year"], errors="coerce").astype("Int64")
    derived = {
        "binary_study_info": info[STUDY_INFO_COLUMNS],
        "binary_figures": figure_list(tabs, config),
    }
    return BinaryOutputs(tables=tables, derived=derived)


FIGURE_COLUMNS = ["stem", "kind", "outcome", "week", "measure"]


def figure_list(tabs: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The binary figures of a run, one row each (``stem`` names the files).

    A forest plot per outcome x week for the primary measure, and for the other measures
    where at least two trials are pooled; a L'Abbé plot per outcome x week with at least two
    trials; a robustness figure (primary measure) where at least two trials are pooled or a
    trial has a zero cell (the continuity correction can then move the answer).
    """
    s = _settings(config)
    m0 = s["measures"][0]
    rows: list[dict[str, Any]] = []
    for (outcome, week), tab in tabs.groupby(["outcome", "week"], sort=True):
        k = len(tab)
        a, n1, c, n2 = (tab[x].to_numpy(float) for x in ("ai", "n1i", "ci", "n2i"))
        has0 = bool(escalc.zero_cell(a, n1, c, n2).any())
        w = int(week)
        for measure in s["measures"]:
            if measure == m0 or k >= 2:
                rows.append({"stem": f"binary_forest_{outcome}_week{w}_{measure}",
                             "kind": "binary_forest", "outcome": outcome, "week": w,
                             "measure": measure})  # fmt: skip
        if k >= 2:
            rows.append({"stem": f"binary_labbe_{outcome}_week{w}", "kind": "binary_labbe",
                         "outcome": outcome, "week": w, "measure": m0})  # fmt: skip
        if k >= 2 or has0:
            rows.append({"stem": f"binary_robustness_{outcome}_week{w}_{m0}",
                         "kind": "binary_robustness", "outcome": outcome, "week": w,
                         "measure": m0})  # fmt: skip
    return pd.DataFrame(rows, columns=FIGURE_COLUMNS)
