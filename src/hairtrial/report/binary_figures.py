"""Figures of binary outcomes, drawn from the binary tables and figure data; nothing is fitted.

One function per figure kind of :func:`hairtrial.analyses.binary.figure_list`:

* ``binary_forest``: the forest plot with events / total per arm, the trial effects and the
  primary model on a log axis for RR and OR (:func:`hairtrial.plots.forest_plot`);
* ``binary_labbe``: the classic L'Abbé plot, risk in the experimental arm against risk in the
  control arm, with the primary model's pooled effect as a curve
  (:func:`hairtrial.plots.labbe.labbe_plot`);
* ``binary_robustness``: the primary model against every other model, zero-cell handling and
  set of trials (:func:`hairtrial.plots.robustness.robustness_plot`).

Labels and directions come from ``outcomes.csv`` (``data.outcomes``); without it the outcome
code is shown and an event is read as a benefit.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hairtrial.analyses.binary import primary_method
from hairtrial.core import vocab

__all__ = ["binary_figure_object", "outcome_text"]


def _outcomes(config: dict) -> pd.DataFrame:
    """``outcomes.csv`` as read and validated (read-only: shared by every figure)."""
    path = (config.get("data") or {}).get("outcomes")
    if not path:
        return pd.DataFrame(columns=["outcome", "label", "direction"])
    stat = os.stat(path)
    return _read_outcomes(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_outcomes(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    """Read once a process for each version of the file (every binary figure labels its
    outcome from it: a figure job read it once a figure)."""
    from hairtrial.data.outcomes import read_outcomes

    return read_outcomes(path)


def outcome_text(config: dict, outcome: str) -> tuple[str, str]:
    """(label, direction) of an outcome from ``outcomes.csv``; the code and "benefit" without it.

    Examples
    --------
    >>> outcome_text({"data": {}}, "scalp_pruritus")
    ('Scalp pruritus', 'benefit')
    """
    table = _outcomes(config)
    row = table[table["outcome"] == outcome]
    if row.empty:
        return outcome.replace("_", " ").capitalize(), "benefit"
    return str(row["label"].iloc[0]), str(row["direction"].iloc[0])


def _select(table: pd.DataFrame, outcome: str, week: int, measure: str | None) -> pd.DataFrame:
    sel = (table["outcome"] == outcome) & (table["week"] == int(week))
    if measure is not None:
        sel &= table["measure"] == measure
    return table[sel]


def _primary(meta: pd.DataFrame, config: dict, outcome: str, week: int, measure: str):
    method, ci_method = primary_method(config, measure)
    rows = _select(meta, outcome, week, measure)
    rows = rows[(rows["method"] == method) & (rows["ci_method"] == ci_method)]
    return None if rows.empty else rows.iloc[0]


def _zero_cell(row: Any, arms: tuple[str, str]) -> str:
    """Which cell of a trial's 2x2 table is 0, in the reader's terms (the table shows events
    and totals: a zero cell is also an arm where everyone had the event); `arms`: the arms
    (experimental, control) in words (:func:`hairtrial.core.vocab.arm_names`)."""
    where = []
    for side, arm in zip(("experimental", "control"), arms, strict=True):
        try:
            events, n = int(row[f"events_{side}"]), int(row[f"n_{side}"])
        except (KeyError, TypeError, ValueError):
            return "zero cell"
        if events == 0:
            where.append(f"no events with {arm}")
        elif events == n:
            where.append(f"all {n} with the event with {arm}")
    return f"zero cell ({'; '.join(where)})" if where else "zero cell"


def _figure_notes(
    rows: pd.DataFrame, info: pd.DataFrame, pooled: Any, arms: tuple[str, str]
) -> str:
    """Short footer notes: zero-cell corrections and exclusions per trial, model boundary cases."""
    labels = dict(zip(info["study"], info["label"], strict=False)) if len(info) else {}
    notes: list[str] = []
    for corr, g in rows.groupby("correction", sort=False):
        if corr == "none":
            continue
        names = ", ".join(labels.get(s, s) for s in g["study"])
        if corr.startswith("excluded"):
            notes.append(
                f"{names}: no events (or only events) in both arms, left out of this ratio"
            )
        else:
            for _, r in g.iterrows():
                notes.append(
                    f"{labels.get(r['study'], r['study'])}: {_zero_cell(r, arms)}, {corr} for the "
                    "trial's estimate"
                )
    if pooled is not None and int(pooled["k"]) >= 2:
        text = str(pooled.get("notes") or "")
        keep = [
            n
            for n in text.split("; ")
            if any(w in n for w in ("undefined", "not reported", "diverges", "zero variance"))
        ]
        notes += keep
    return "; ".join(dict.fromkeys(notes))


def forest_object(tables: Mapping[str, pd.DataFrame], data: Mapping[str, pd.DataFrame],
                  config: dict, *, outcome: str, week: int, measure: str):  # fmt: skip
    """The forest plot of one binary outcome x week x measure."""
    from hairtrial import plots
    from hairtrial.data import provenance

    st = _select(tables["binary_study_effects"], outcome, week, measure)
    info = _select(data["binary_study_info"], outcome, week, None)
    rows = st.merge(info[["study", "label", "year", "flags"]], on="study", how="left")
    rows = rows.sort_values(["year", "study"], kind="stable").reset_index(drop=True)
    pooled = _primary(tables["binary_meta_analysis"], config, outcome, week, measure)
    label, direction = outcome_text(config, outcome)
    p = None
    if pooled is not None:
        p = pooled.to_dict()
        p["notes"] = _figure_notes(rows, info, pooled, vocab.arm_names(**config["comparison"]))
        p["Q_df"] = max(int(p["k"]) - 1, 0) if math.isfinite(float(p.get("Q", math.nan))) else None
    level = int(round(100 * float(config.get("meta_analysis", {}).get("level", 0.95))))
    return plots.forest_plot(
        rows,
        p,
        xlabel=vocab.BINARY_AXIS_LABELS[measure],
        title=f"{label}, week {int(week)}",
        provenance_labels=provenance.PROVENANCE,
        # more events to the right: adverse events favour the control there
        favours=vocab.favours(**config["comparison"], harm=direction == "harm"),
        effect_label=f"{measure} [{level}% CI]",
        arm_labels=vocab.arm_labels(**config["comparison"]),
        counts=True,
        log_scale=measure in ("RR", "OR"),
    )


def labbe_object(tables: Mapping[str, pd.DataFrame], data: Mapping[str, pd.DataFrame],
                 config: dict, *, outcome: str, week: int, measure: str):  # fmt: skip
    """The classic L'Abbé plot (risks) of one binary outcome x week."""
    from hairtrial.plots.labbe import labbe_plot

    st = _select(tables["binary_study_effects"], outcome, week, measure)
    info = _select(data["binary_study_info"], outcome, week, None)
    rows = st.merge(info[["study", "label", "year"]], on="study", how="left")
    rows = rows.sort_values(["year", "study"], kind="stable").reset_index(drop=True)
    pooled = _primary(tables["binary_meta_analysis"], config, outcome, week, measure)
    label, _ = outcome_text(config, outcome)
    effect = None
    if pooled is not None and int(pooled["k"]) >= 2 and math.isfinite(float(pooled["estimate"])):
        effect = float(pooled["estimate"])
    method = "" if pooled is None else str(pooled["method"])
    return labbe_plot(
        rows,
        effect,
        unit_label="",
        title=f"{label}, week {int(week)}",
        risk_measure=measure,
        pooled_label=None
        if effect is None
        else f"Pooled {measure} ({vocab.BINARY_METHOD_NAMES.get(method, method)})",
    )


def robustness_object(tables: Mapping[str, pd.DataFrame], data: Mapping[str, pd.DataFrame],
                      config: dict, *, outcome: str, week: int, measure: str):  # fmt: skip
    """The robustness figure of one binary outcome x week x measure."""
    from hairtrial.plots.robustness import robustness_plot

    rows = _select(tables["binary_robustness"], outcome, week, measure)
    label, _ = outcome_text(config, outcome)
    return robustness_plot(
        rows,
        xlabel=vocab.BINARY_AXIS_LABELS[measure],
        title=f"{label}, week {int(week)}: robustness of the pooled {measure}",
        log_scale=measure in ("RR", "OR"),
    )


_KINDS = {
    "binary_forest": forest_object,
    "binary_labbe": labbe_object,
    "binary_robustness": robustness_object,
}


def binary_figure_object(
    row: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
    data: Mapping[str, pd.DataFrame],
    config: dict,
):
    """The Figure of one row of ``results/derived/binary_figures.csv``."""
    draw = _KINDS[str(row["kind"])]
    return draw(tables, data, config, outcome=str(row["outcome"]), week=int(row["week"]),
                measure=str(row["measure"]))  # fmt: skip
