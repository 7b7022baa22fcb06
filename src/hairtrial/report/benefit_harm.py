"""Benefit and harm side by side: every outcome of a run, what it says, where data are thin.

Built from the run's tables only: the primary model of every outcome x week of
``meta_analysis.csv`` (continuous outcomes, first measure of the config) and of
``binary_meta_analysis.csv`` (binary outcomes, first binary measure), with the direction of
each outcome (``benefit`` or ``harm``) and its label from ``outcomes.csv``. Where a binary
outcome has a single trial whose ratio the primary model cannot give (no events in one arm),
the trial's own estimate from ``binary_study_effects.csv`` (escalc, with its continuity
correction) is shown and said to be so.

Each row is read against no effect, in the outcome's direction: an interval wholly on the
good side is "benefit", wholly on the bad side "harm"; an interval across no effect is
"inconclusive" and says whether it reaches into harm (a loss, for a continuous outcome where
higher is better).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hairtrial.analyses import primary as analyses_primary
from hairtrial.analyses.binary import primary_measure, primary_method

__all__ = ["OVERVIEW_COLUMNS", "overview"]

OVERVIEW_COLUMNS = [
    "outcome",
    "week",
    "direction",
    "trials",
    "measure",
    "effect",
    "reading",
    "data",
]


def _outcome_info(config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    path = (config.get("data") or {}).get("outcomes")
    if not path:
        return {}
    try:
        from hairtrial.data.outcomes import read_outcomes

        table = read_outcomes(path)
    except (OSError, ValueError):
        return {}
    return {
        str(o): (str(lbl), str(d))
        for o, lbl, d in zip(table["outcome"], table["label"], table["direction"], strict=True)
    }


def _f(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "∞" if x > 0 else "−∞" if x < 0 else ""
    a = abs(x)
    text = f"{x:.2f}" if a < 10 else f"{x:.1f}" if a < 100 else f"{x:.0f}"
    return text.replace("-", "−")


def _reading(lo: float, hi: float, null: float, good_high: bool) -> str:
    """What an interval says against no effect, for an outcome whose good side is high/low."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval: cannot say"
    if lo > null:
        return "benefit" if good_high else "harm"
    if hi < null:
        return "harm" if good_high else "benefit"
    return "inconclusive: the interval includes benefit and harm"


def overview(
    tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    """The benefit-and-harm table and the sentences that summarise it.

    Returns
    -------
    table : pandas.DataFrame
        :data:`OVERVIEW_COLUMNS`, one row per outcome x week (benefit outcomes first).
    sentences : list of str
        What the evidence says about benefit and about harm, naming harm explicitly, and
        where the data are too thin to say anything.
    """
    info = _outcome_info(config)
    level = float((config.get("meta_analysis") or {}).get("level", 0.95))
    pct = f"{100 * level:g}%"
    rows: list[dict[str, Any]] = []

    meta = tables.get("meta_analysis", pd.DataFrame())
    if not meta.empty and config.get("measures"):
        measure = config["measures"][0]
        method, ci_method, _ = analyses_primary.primary_model(dict(config))
        sel = meta[
            (meta["measure"] == measure)
            & (meta["method"] == method)
            & (meta["ci_method"] == ci_method)
        ]
        for r in sel.itertuples(index=False):
            label, direction = info.get(
                str(r.outcome), (str(r.outcome).replace("_", " "), "benefit")
            )
            k = int(_f(r.k))
            st = tables.get("study_effects", pd.DataFrame())
            t = (
                st[
                    (st["outcome"] == r.outcome)
                    & (st["week"] == r.week)
                    & (st["measure"] == measure)
                ]  # fmt: skip
                if not st.empty
                else st
            )
            est, lo, hi, source = analyses_primary.effect_shown(r._asdict(), t)
            own = f"; {source}" if source else ""
            good_high = direction != "harm"
            reading = _reading(lo, hi, 0.0, good_high)
            if reading.startswith("inconclusive") and good_high and lo < 0:
                reading = "inconclusive: the interval reaches into losses (harm)"
            effect = f"{_num(est)} [{_num(lo)}, {_num(hi)}]" if math.isfinite(lo) else _num(est)
            rows.append({
                "outcome": label, "week": int(r.week), "direction": direction, "trials": k,
                "measure": measure, "effect": effect, "reading": reading,
                "data": ("single trial" + own) if k == 1 else f"{k} trials",
                "_kind": "continuous", "_lo": lo, "_hi": hi,
            })  # fmt: skip

    bmeta = tables.get("binary_meta_analysis", pd.DataFrame())
    bst = tables.get("binary_study_effects", pd.DataFrame())
    if not bmeta.empty:
        measure = primary_measure(dict(config))
        method, ci_method = primary_method(dict(config), measure)
        sel = bmeta[
            (bmeta["measure"] == measure)
            & (bmeta["method"] == method)
            & (bmeta["ci_method"] == ci_method)
        ]
        ratio = measure in ("RR", "OR")
        null = 1.0 if ratio else 0.0
        for r in sel.itertuples(index=False):
            label, direction = info.get(
                str(r.outcome), (str(r.outcome).replace("_", " "), "benefit")
            )
            trials = bst[
                (bst["outcome"] == r.outcome)
                & (bst["week"] == r.week)
                & (bst["measure"] == measure)
            ]
            est, lo, hi, source = analyses_primary.effect_shown(r._asdict(), trials)
            notes: list[str] = []
            k = len(trials)
            ev = int(trials["events_experimental"].sum() + trials["events_control"].sum())
            if k == 1:
                notes.append("single trial")
            else:
                notes.append(f"{k} trials")
            notes.append(
                f"{int(trials['events_experimental'].sum())}/{int(trials['n_experimental'].sum())}"
                f" vs {int(trials['events_control'].sum())}/{int(trials['n_control'].sum())}"
                " events"
            )
            if source.startswith("the trial's own estimate"):
                notes.append(f"{method} not defined (zero cell): {source}")
            elif source:
                notes.append(source)
            elif not math.isfinite(est):
                notes.append("no estimate: no events in either arm" if ev == 0 else "no estimate")
            if trials["provenance"].astype(str).str.contains("events_from_percent|n_split").any():
                notes.append("counts derived (see provenance)")
            if ratio:
                est, lo, hi = (math.exp(x) if math.isfinite(x) else x for x in (est, lo, hi))
            good_high = direction != "harm"
            reading = "no information (no events)" if ev == 0 else _reading(lo, hi, null, good_high)
            effect = (
                f"{_num(est)} [{_num(lo)}, {_num(hi)}]"
                if math.isfinite(lo) and math.isfinite(hi)
                else (_num(est) or "not estimable")
            )
            rows.append({
                "outcome": label, "week": int(r.week), "direction": direction, "trials": k,
                "measure": measure, "effect": effect, "reading": reading,
                "data": "; ".join(notes), "_kind": "binary", "_lo": lo, "_hi": hi,
            })  # fmt: skip

    if not rows:
        return pd.DataFrame(columns=OVERVIEW_COLUMNS), []
    df = pd.DataFrame(rows)
    df["_order"] = (df["direction"] == "harm").astype(int)
    df = df.sort_values(["_order", "_kind", "outcome", "week"], kind="stable")
    sentences = _sentences(df, pct)
    return df[OVERVIEW_COLUMNS].reset_index(drop=True), sentences


def _sentences(df: pd.DataFrame, pct: str) -> list[str]:
    out: list[str] = []
    ben = df[df["direction"] != "harm"]
    harm = df[df["direction"] == "harm"]

    def names(d: pd.DataFrame) -> str:
        items = [f"{o} (week {w}, {m} {e})" for o, w, m, e in
                 d[["outcome", "week", "measure", "effect"]].itertuples(index=False)]  # fmt: skip
        return "; ".join(items)

    shows_benefit = ben[ben["reading"] == "benefit"]
    if len(shows_benefit):
        out.append(
            f"Benefit: {len(shows_benefit)} of {len(ben)} benefit outcomes have a {pct} interval "
            f"wholly on the side of benefit: {names(shows_benefit)}."
        )
    elif len(ben):
        out.append(f"Benefit: none of the {len(ben)} benefit outcomes shows a clear benefit.")
    losses = ben[ben["reading"].str.contains("losses|harm")]
    if len(losses):
        out.append(
            "Harm on benefit outcomes: the interval reaches into losses (worse than control) "
            f"for {names(losses)}; a loss cannot be ruled out there."
        )
    if len(harm):
        clear = harm[harm["reading"] == "harm"]
        none_ev = harm[harm["reading"].str.startswith("no information")]
        unclear = harm[harm["reading"].str.startswith("inconclusive")]
        text = f"Harm: {len(harm)} adverse outcomes were counted"
        single = int((harm["trials"] <= 1).sum())
        text += f", {single} of them in a single trial" if single else ""
        text += ". "
        if len(clear):
            text += f"More harm with microneedling: {names(clear)}. "
        else:
            text += "None shows a clear increase in harm with microneedling. "
        if len(unclear):
            text += (
                f"For {len(unclear)} the interval includes both fewer and more events "
                f"(too few events to say anything either way): {names(unclear)}. "
            )
        if len(none_ev):
            text += (
                "With no event in either arm, "
                + ", ".join(none_ev["outcome"])
                + " carry no information on harm. "
            )
        text += (
            "The absence of a clear harm here is absence of evidence from few, small trials, "
            "not evidence of safety."
        )
        out.append(text)
    else:
        out.append(
            "Harm: no adverse outcome was analysed in this run, so nothing can be said about harm."
        )
    thin = df[df["trials"] <= 1]
    if len(thin):
        out.append(
            f"Thin data: {len(thin)} of {len(df)} outcome-week results rest on a single trial; "
            "they describe that trial, not a pooled body of evidence."
        )
    return out
