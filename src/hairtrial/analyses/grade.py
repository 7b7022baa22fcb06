"""GRADE summary of findings: certainty of evidence by stated rules that a person can override.

One row per outcome (benefit and harm outcomes in one table), at the outcome's primary week
(the week with the most trials; the latest of equals), from the primary model of
``meta_analysis.csv`` (and ``binary_meta_analysis.csv`` when the run has binary outcomes).
Evidence from randomised trials starts at **high** certainty and loses one level per
*serious* and two per *very serious* concern in five domains (Guyatt et al. 2011; GRADE
Handbook 5.2); it cannot fall below *very low*. Every judgement comes from a rule below
unless ``data/grade.csv`` gives a person's judgement with a reason
(:func:`hairtrial.data.grade.read_grade`); the table says which (``*_by``: ``rule`` or
``person``) and prints the reason of each.

The rules (:data:`RULES` holds the text the report's methods section prints):

* **Risk of bias** from ``studies.csv`` ``rob`` (low / some / high), weighted by each trial's
  weight in the primary model: very serious when trials at high risk carry at least half of
  the weight; serious when trials at high risk, with some concerns or *not assessed* carry at
  least half (GRADE treats risk of bias that nobody assessed as a serious concern, not as no
  concern); otherwise not serious.
* **Inconsistency** (two or more trials; one trial: not applicable) from I² and the 95%
  prediction interval: very serious when I² >= ``grade.i2_very_serious`` and the prediction
  interval spans both a noticeable benefit and a noticeable harm (beyond both MID
  thresholds); serious when I² >= ``grade.i2_serious`` and the prediction interval includes
  the null, or when it spans both MID thresholds; otherwise not serious.
* **Imprecision** against the null (the certainty rated is that there is an effect; Hultcrantz
  et al. 2017) and the optimal information size (OIS: the participants one trial would need
  for ``grade.ois_power`` power at two-sided ``grade.ois_alpha``, to detect the MID (continuous,
  on the SMD scale when the outcome has no MID) or a relative change of
  ``grade.ois_relative_risk_reduction`` from the median control risk (binary); GRADE's rule of
  thumb, 400, when neither is known): very serious when the CI spans both MID thresholds, or
  includes the null with fewer participants than the OIS; serious when the CI includes the
  null or there are fewer participants than the OIS; otherwise not serious.
* **Indirectness**: serious when the analysis includes trials flagged as indirect
  comparisons (``selection.studies: all`` adds trials with other devices or co-interventions);
  otherwise not serious. Population and outcome indirectness are a person's judgement
  (``grade.csv``).
* **Publication bias**: with fewer than ``grade.publication_bias_min_k`` trials not assessable
  (funnel-plot tests cannot tell asymmetry from chance; Sterne et al. 2011) and not
  downgraded, as GRADE advises, said in the table; otherwise serious when Egger's regression
  test gives p < 0.10.

For a continuous outcome without an MID, inconsistency, imprecision and the probabilities are
judged on the SMD of the same trials with the threshold ``bayes.smd_mid`` (``judged_on`` says
which measure was used). The plain-language statement uses GRADE's standard wording (Santesso
et al. 2020): high certainty "increases", moderate "probably increases", low "may increase",
very low "the evidence is very uncertain about the effect"; "slightly" when the estimate lies
between the null and the MID; "little to no difference" when the CI lies within both MIDs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy  # scipy.special loads on first use (see hairtrial.models)

from hairtrial.analyses import bayes as abayes
from hairtrial.analyses import binary as abinary
from hairtrial.analyses import primary as aprimary
from hairtrial.data.grade import DOMAINS, JUDGEMENTS
from hairtrial.data.units import UNIT_LABELS
from hairtrial.models import binary as pool

__all__ = [
    "CERTAINTY",
    "RULES",
    "SOF_COLUMNS",
    "intervention_text",
    "optimal_information_size",
    "plain_language",
    "primary_rows",
    "rules_text",
    "summary_of_findings",
]

CERTAINTY = ("very low", "low", "moderate", "high")
"""Levels of certainty, lowest first (index = 4 - downgrades, floored at 0)."""

SYMBOLS = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very low": "⊕◯◯◯"}

DOMAIN_LABELS = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}

RULES: dict[str, str] = {
    "start": (
        "Evidence from randomised trials starts at high certainty and is rated down one level "
        "for each serious and two for each very serious concern (never below very low)."
    ),
    "risk_of_bias": (
        "Risk of bias from the overall judgement of each trial (studies.csv, rob: low, some "
        "concerns, high), weighted by the trial's weight in the primary model: very serious "
        "when trials at high risk carry at least half of the weight; serious when trials at "
        "high risk, with some concerns, or not assessed carry at least half (risk of bias that "
        "nobody assessed counts as a concern); otherwise not serious."
    ),
    "inconsistency": (
        "Inconsistency from I² and the 95% prediction interval: very serious when I² is at "
        "least {i2_very_serious}% and the prediction interval reaches beyond both the MID for "
        "benefit and the MID for harm; serious when I² is at least {i2_serious}% and the "
        "prediction interval includes no effect, or when it reaches beyond both MIDs; "
        "otherwise not serious. Not applicable to a single trial."
    ),
    "imprecision": (
        "Imprecision against no effect and the optimal information size (OIS, the participants "
        "a single trial would need for {power:.0%} power at two-sided alpha {alpha:g} to detect "
        "the MID, or a {rrr:.0%} relative change in risk from the median control risk for "
        "binary outcomes; 400 when neither is known): very serious when the CI reaches beyond "
        "both MIDs, or includes no effect with fewer participants than the OIS; serious when "
        "the CI includes no effect or there are fewer participants than the OIS; otherwise not "
        "serious."
    ),
    "indirectness": (
        "Indirectness: serious when the analysis includes trials of other devices or with "
        "co-interventions (selection: all); otherwise not serious. Indirectness of population "
        "or outcome is a person's judgement, entered in data/grade.csv."
    ),
    "publication_bias": (
        "Publication bias: with fewer than {min_k} trials not assessable and not rated down "
        "(funnel-plot tests cannot tell asymmetry from chance; Sterne et al. 2011); otherwise "
        "serious when Egger's regression test gives p < 0.10."
    ),
    "mid": (
        "For a continuous outcome without an established MID, inconsistency, imprecision and "
        "the probabilities are judged on the standardised mean difference of the same trials "
        "against {smd_mid} (a small effect by Cohen's rule of thumb)."
    ),
    "statement": (
        "Plain-language statements use GRADE's standard wording (Santesso et al. 2020): high "
        "certainty 'increases/reduces', moderate 'probably increases', low 'may increase', very "
        "low 'the evidence is very uncertain about the effect'; 'slightly' when the estimate "
        "lies between no effect and the MID, 'little to no difference' when the CI lies within "
        "the MIDs."
    ),
}
"""The rules in words (formatted with the config's ``grade`` and ``bayes`` values)."""

SOF_COLUMNS = [
    "outcome",
    "label",
    "direction",
    "week",
    "measure",
    "judged_on",
    "k",
    "participants",
    "estimate",
    "ci_lower",
    "ci_upper",
    "relative_effect",
    "control_risk",
    "absolute_effect",
    *[f"{d}{s}" for d in DOMAINS for s in ("", "_by", "_reason")],
    "downgrades",
    "certainty",
    "certainty_symbols",
    "reasons",
    "p_noticeable_benefit",
    "p_noticeable_harm",
    "statement",
]
"""Columns of ``results/tables/summary_of_findings.csv``."""

RATIO = frozenset({"RR", "OR"})
BINARY_MEASURES = frozenset({"RR", "OR", "RD"})


def rules_text(config: Mapping[str, Any]) -> dict[str, str]:
    """:data:`RULES` with the config's thresholds filled in."""
    g = config.get("grade", {})
    b = config.get("bayes", {})
    values = {
        "i2_serious": g.get("i2_serious", 50),
        "i2_very_serious": g.get("i2_very_serious", 75),
        "power": g.get("ois_power", 0.8),
        "alpha": g.get("ois_alpha", 0.05),
        "rrr": g.get("ois_relative_risk_reduction", 0.25),
        "min_k": g.get("publication_bias_min_k", 10),
        "smd_mid": b.get("smd_mid", 0.2),
    }
    return {k: v.format(**values) for k, v in RULES.items()}


def optimal_information_size(
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    smd: float | None = None,
    control_risk: float | None = None,
    relative_change: float = 0.25,
) -> float:
    """Total participants of one two-arm trial powered for the effect (GRADE's OIS).

    Continuous: ``4 (z_a + z_b)^2 / smd^2`` (two equal arms, effect ``smd`` SDs). Binary: the
    normal-approximation sample size for two proportions, control risk ``p0`` and
    ``p1 = p0 (1 - relative_change)``, times two arms. Neither: 400 (GRADE's rule of thumb).

    Examples
    --------
    >>> round(optimal_information_size(smd=0.2))
    785
    >>> round(optimal_information_size(control_risk=0.2))
    1811
    >>> optimal_information_size()
    400.0
    """
    za, zb = float(scipy.special.ndtri(1 - alpha / 2)), float(scipy.special.ndtri(power))
    if smd is not None and math.isfinite(smd) and smd > 0:
        return 4.0 * (za + zb) ** 2 / smd**2
    if control_risk is not None and math.isfinite(control_risk) and 0 < control_risk < 1:
        p0 = control_risk
        p1 = p0 * (1 - relative_change)
        pbar = (p0 + p1) / 2
        n = (
            za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
        ) ** 2 / (p0 - p1) ** 2
        return 2.0 * n
    return 400.0


def intervention_text(comparison: Mapping[str, Any]) -> str:
    """The comparison in words for the statements.

    Examples
    --------
    >>> intervention_text({"control": "minoxidil", "experimental": "minoxidil_microneedling"})
    'Adding microneedling to minoxidil'
    >>> intervention_text({"control": "placebo", "experimental": "laser"})
    'Laser compared with placebo'
    """
    ctl = str(comparison.get("control", "control")).split("_")
    exp = str(comparison.get("experimental", "experimental")).split("_")
    extra = [p for p in exp if p not in ctl]
    if set(ctl) < set(exp):
        return f"Adding {' + '.join(extra)} to {' + '.join(ctl)}"
    e = " + ".join(exp)
    return f"{e[:1].upper()}{e[1:]} compared with {' + '.join(ctl)}"


def _verb(direction: int, certainty: str, size: str) -> str:
    up = direction > 0
    if size == "none":
        return {
            "high": "results in little to no difference in",
            "moderate": "probably results in little to no difference in",
            "low": "may result in little to no difference in",
        }[certainty]
    base = {
        "high": "increases" if up else "reduces",
        "moderate": "probably increases" if up else "probably reduces",
        "low": "may increase" if up else "may reduce",
    }[certainty]
    if size == "slight":
        parts = base.split(" ")
        parts.insert(len(parts) - 1, "slightly")
        base = " ".join(parts)
    return base


def plain_language(
    certainty: str,
    estimate: float,
    ci: tuple[float, float],
    mids: tuple[float, float],
    *,
    intervention: str,
    outcome: str,
) -> str:
    """GRADE's standard plain-language statement (Santesso et al. 2020).

    Examples
    --------
    >>> plain_language("very low", 30.0, (-52.5, 112.5), (math.nan, math.nan),
    ...                intervention="Adding microneedling", outcome="hair density")
    'The evidence is very uncertain about the effect of adding microneedling on hair density.'
    >>> plain_language("low", 0.8, (0.3, 1.3), (0.2, -0.2),
    ...                intervention="Adding microneedling to minoxidil", outcome="hair density")
    'Adding microneedling to minoxidil may increase hair density.'
    >>> plain_language("moderate", 0.1, (-0.1, 0.15), (0.2, -0.2),
    ...                intervention="Adding microneedling to minoxidil", outcome="hair density")
    'Adding microneedling to minoxidil probably results in little to no difference in hair density.'
    """
    if certainty == "very low":
        return (
            f"The evidence is very uncertain about the effect of {intervention[:1].lower()}"
            f"{intervention[1:]} on {outcome}."
        )
    up, lo = mids
    size = "important"
    if math.isfinite(up) and math.isfinite(lo):
        if lo < ci[0] and ci[1] < up:
            size = "none"
        elif lo < estimate < up:
            size = "slight"
    verb = _verb(1 if estimate >= 0 else -1, certainty, size)
    return f"{intervention} {verb} {outcome}."


def _statement(
    certainty: str, est: float, ci: tuple[float, float], mids, intervention: str, label: str
) -> str:
    outcome = label[:1].lower() + label[1:]
    if not math.isfinite(est):
        return (
            f"The effect of {intervention[:1].lower()}{intervention[1:]} on {outcome} cannot "
            "be estimated from these data (no events in either arm, or no usable trial; see "
            "the meta-analysis notes)."
        )
    return plain_language(certainty, est, ci, mids, intervention=intervention, outcome=outcome)


def _judge(level: str, reason: str) -> dict[str, str]:
    return {"judgement": level, "reason": reason}


def _risk_of_bias(g: pd.DataFrame, rob: Mapping[str, str]) -> dict[str, str]:
    w = g["weight_pct"].to_numpy(float) if "weight_pct" in g.columns else np.ones(len(g))
    w = np.where(np.isfinite(w), w, 0.0)
    if w.sum() <= 0:  # no weights (e.g. a model without them): every trial counts the same
        w = np.ones(len(g))
    total = float(w.sum()) if len(g) else 1.0
    shares = {"high": 0.0, "some": 0.0, "low": 0.0, "not assessed": 0.0}
    for s, wi in zip(g["study"], w, strict=True):
        r = rob.get(s) or "not assessed"
        shares[r if r in shares else "not assessed"] += 100.0 * wi / total
    words = {
        "high": "at high risk",
        "some": "with some concerns",
        "low": "at low risk",
        "not assessed": "not assessed",
    }
    desc = "share of the weight from trials " + ", ".join(
        f"{words[k]} {v:.0f}%" for k, v in shares.items() if v > 0
    )
    if shares["high"] >= 50:
        return _judge("very serious", desc)
    concern = shares["high"] + shares["some"] + shares["not assessed"]
    if concern >= 50:
        extra = (
            " (no trial's risk of bias has been assessed: rated as a serious concern)"
            if shares["not assessed"] >= 99.5
            else ""
        )
        return _judge("serious", desc + extra)
    return _judge("not serious", desc)


def _spans(lo: float, hi: float, mids: tuple[float, float]) -> bool:
    up, down = mids
    return math.isfinite(up) and math.isfinite(down) and lo < down and hi > up


def _fmt(x: float) -> str:
    return f"{x:.3g}".replace("-", "−")


def _inconsistency(row: pd.Series, mids, cfg: Mapping[str, Any]) -> dict[str, str]:
    k = int(row["k"])
    if k < 2:
        return _judge("not serious", "not applicable: one trial")
    i2 = float(row["I2"])
    plo, phi = float(row.get("pi_lower", math.nan)), float(row.get("pi_upper", math.nan))
    if not (math.isfinite(plo) and math.isfinite(phi)):
        # no prediction interval (e.g. Mantel-Haenszel): I² alone
        desc = f"I² = {i2:.0f}% (no prediction interval for this model)"
        if i2 >= cfg.get("i2_very_serious", 75):
            return _judge("very serious", desc)
        if i2 >= cfg.get("i2_serious", 50):
            return _judge("serious", desc)
        return _judge("not serious", desc)
    crosses = plo < 0 < phi
    spans = _spans(plo, phi, mids)
    desc = f"I² = {i2:.0f}%; 95% prediction interval {_fmt(plo)} to {_fmt(phi)}"
    if spans:
        desc += " (reaches beyond both MIDs)"
    elif crosses:
        desc += " (includes no effect)"
    if i2 >= cfg.get("i2_very_serious", 75) and spans:
        return _judge("very serious", desc)
    if (i2 >= cfg.get("i2_serious", 50) and crosses) or spans:
        return _judge("serious", desc)
    return _judge("not serious", desc)


def _imprecision(row: Mapping[str, Any], mids, n: float, ois: float) -> dict[str, str]:
    lo, hi = float(row["ci_lower"]), float(row["ci_upper"])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        desc = f"no CI; {n:.0f} participants, OIS {ois:.0f}"
        return _judge("very serious" if n < ois else "serious", desc)
    includes = lo < 0 < hi
    spans = _spans(lo, hi, mids)
    small = n < ois
    desc = f"95% CI {_fmt(lo)} to {_fmt(hi)}"
    desc += " reaches beyond both MIDs" if spans else (" includes no effect" if includes else "")
    desc += f"; {n:.0f} participants {'<' if small else '>='} OIS {ois:.0f}"
    if spans or (includes and small):
        return _judge("very serious", desc)
    if includes or small:
        return _judge("serious", desc)
    return _judge("not serious", desc)


def _indirectness(config: Mapping[str, Any]) -> dict[str, str]:
    if config.get("selection", {}).get("studies", "primary") == "all":
        return _judge(
            "serious", "includes trials of other devices or with co-interventions (selection: all)"
        )
    return _judge("not serious", "direct comparisons only (selection: primary)")


def _publication_bias(
    key: tuple[str, int, str], k: int, small_study: pd.DataFrame | None, min_k: int
) -> dict[str, str]:
    if k < min_k:
        return _judge("not serious", f"not assessable: {k} trial(s) < {min_k}; not rated down")
    if small_study is not None and len(small_study):
        s = small_study
        sel = s[
            (s["outcome"] == key[0])
            & (s["week"] == key[1])
            & (s["measure"] == key[2])
            & (s["test"].astype(str).str.startswith("regtest"))
        ]
        if len(sel):
            p = float(sel["pvalue"].iloc[0])
            if p < 0.10:
                return _judge("serious", f"Egger's test p = {p:.2g} < 0.10")
            return _judge("not serious", f"Egger's test p = {p:.2g}")
    return _judge("not serious", "no funnel-plot test available")


def primary_rows(meta: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """The primary model's rows of ``meta``: ``meta_analysis.tau2_methods[0]`` and
    ``ci_methods[0]`` for continuous measures, :func:`hairtrial.analyses.binary.primary_method`
    for RR, OR and RD."""
    ma = config["meta_analysis"]
    keep = np.zeros(len(meta), dtype=bool)
    for i, (m, method, ci) in enumerate(
        zip(meta["measure"], meta["method"], meta["ci_method"], strict=True)
    ):
        if m in BINARY_MEASURES:
            want = abinary.primary_method(dict(config), m)
        else:
            want = (ma["tau2_methods"][0], ma["ci_methods"][0])
        keep[i] = (method, ci) == want
    return meta[keep]


def _primary_week(meta: pd.DataFrame, outcome: str) -> int:
    m = meta[meta["outcome"] == outcome]
    k = m.groupby("week")["k"].max()
    best = k[k == k.max()]
    return int(max(best.index))


def _control_risk(g: pd.DataFrame) -> float:
    """GRADE's assumed control risk of the trials in `g` (binary study effects)."""
    if {"events_control", "n_control"} <= set(g.columns):
        return pool.assumed_control_risk(
            pd.to_numeric(g["events_control"], errors="coerce"),
            pd.to_numeric(g["n_control"], errors="coerce"),
        )
    return math.nan


def _per_1000(x: float) -> str:
    if not math.isfinite(x):
        return "not estimable"
    return f"{abs(round(1000 * x)):.0f} {'more' if x >= 0 else 'fewer'}"


def _effects_text(
    measure: str, est: float, lo: float, hi: float, unit: str, cr: float
) -> tuple[str, str]:
    """(relative effect, absolute effect) in the summary-of-findings style."""
    if not math.isfinite(est):
        return "not estimable", ""
    ci = math.isfinite(lo) and math.isfinite(hi)
    if measure in RATIO:
        rel = f"{measure} {math.exp(est):.2f}" + (
            f" ({math.exp(lo):.2f} to {math.exp(hi):.2f})" if ci else ""
        )
        if not math.isfinite(cr):
            return rel, ""
        # the binary tables' own conversion (RR x risk capped at 1; OR to risk)
        ae = pool.absolute_effects(
            math.exp(est), cr, measure=measure,
            ratio_ci=(math.exp(lo), math.exp(hi)) if ci else (math.nan, math.nan),
        )  # fmt: skip
        diff = [x / 1000.0 for x in (ae.difference, ae.difference_ci_lower, ae.difference_ci_upper)]
        ab = f"{round(1000 * cr):.0f} per 1,000 with control; {_per_1000(diff[0])} per 1,000"
        if ci:
            ab += f" (from {_per_1000(diff[1])} to {_per_1000(diff[2])})"
        return rel, ab
    if measure == "RD":
        ab = f"{_per_1000(est)} per 1,000" + (
            f" (from {_per_1000(lo)} to {_per_1000(hi)})" if ci else ""
        )
        return "", ab

    def word(x: float) -> str:
        return f"{abs(x):.3g} {'higher' if x >= 0 else 'lower'}"

    ab = f"MD {word(est).replace(' ', f' {unit} ', 1)}" + (
        f" ({word(lo)} to {word(hi)})" if ci else ""
    )
    return "", ab


def summary_of_findings(
    meta: pd.DataFrame,
    study_effects: pd.DataFrame,
    studies: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    overrides: pd.DataFrame | None,
    config: Mapping[str, Any],
    *,
    bayes_table: pd.DataFrame | None = None,
    small_study: pd.DataFrame | None = None,
    intervention: str | None = None,
) -> pd.DataFrame:
    """The summary-of-findings table (:data:`SOF_COLUMNS`), one row per outcome.

    Parameters
    ----------
    meta, study_effects : pandas.DataFrame
        ``meta_analysis.csv`` and ``study_effects.csv`` as written (continuous and, when the
        run has them, binary rows concatenated; binary ratios on the log scale).
    studies : pandas.DataFrame
        ``studies.csv`` (``rob``).
    outcomes : pandas.DataFrame or None
        ``outcomes.csv`` (label, direction, unit, MID).
    overrides : pandas.DataFrame or None
        :func:`hairtrial.data.grade.read_grade`.
    config : mapping
        The validated config (``grade``, ``bayes``, the primary model, ``selection``).
    bayes_table : pandas.DataFrame, optional
        ``bayes.csv``, for the probabilities of a noticeable benefit and harm.
    small_study : pandas.DataFrame, optional
        ``small_study.csv`` (Egger's test when k is large enough).
    intervention : str, optional
        The intervention in words for the statements.
    """
    gcfg = config.get("grade", {})
    smd_mid = config.get("bayes", {}).get("smd_mid", 0.2)
    if intervention is None:
        intervention = intervention_text(config.get("comparison", {}))
    pm = primary_rows(meta, config)
    rob = {}
    if "rob" in studies.columns:
        rob = {
            s: (r if isinstance(r, str) and r else "")
            for s, r in zip(studies["study"], studies["rob"], strict=True)
        }
    info = {} if outcomes is None else outcomes.set_index("outcome").to_dict("index")
    order = list(info) if info else []
    codes = sorted(set(pm["outcome"]), key=lambda o: (order.index(o) if o in order else 1e9, o))
    rows = []
    for o in codes:
        orow = info.get(o, {})
        week = _primary_week(pm, o)
        here = pm[(pm["outcome"] == o) & (pm["week"] == week)]
        measures = list(here["measure"])
        preferred = ["MD", abinary.primary_measure(dict(config)), "RR", "OR", "RD", "SMD"]
        measure = next((m for m in preferred if m in measures), measures[0])
        row = here[here["measure"] == measure].iloc[0]
        up, lo, _ = abayes.mid_thresholds(measure, orow, None)
        judged = row
        judged_on = measure
        if not (math.isfinite(up) and math.isfinite(lo)) and "SMD" in measures:
            judged_on = "SMD"
            judged = here[here["measure"] == "SMD"].iloc[0]
            up, lo, _ = abayes.mid_thresholds("SMD", orow, smd_mid)
        mids = (up, lo)
        g = study_effects[
            (study_effects["outcome"] == o)
            & (study_effects["week"] == week)
            & (study_effects["measure"] == measure)
        ]
        n = float((g["n_control"] + g["n_experimental"]).sum())
        cr = _control_risk(g)
        if judged_on == "SMD" or (measure in ("MD", "MC") and math.isfinite(up)):
            smd = smd_mid if judged_on == "SMD" else None
            ois = optimal_information_size(
                alpha=gcfg.get("ois_alpha", 0.05), power=gcfg.get("ois_power", 0.8), smd=smd
            )
        else:
            ois = optimal_information_size(
                alpha=gcfg.get("ois_alpha", 0.05),
                power=gcfg.get("ois_power", 0.8),
                control_risk=cr,
                relative_change=gcfg.get("ois_relative_risk_reduction", 0.25),
            )
        # judged on the effect the table shows (a single trial's own CI where nothing is pooled)
        gj = study_effects[
            (study_effects["outcome"] == o)
            & (study_effects["week"] == week)
            & (study_effects["measure"] == judged_on)
        ]
        jest, jlo, jhi, _ = aprimary.effect_shown(judged, gj)
        judgements = {
            "risk_of_bias": _risk_of_bias(g, rob),
            "inconsistency": _inconsistency(judged, mids, gcfg),
            "indirectness": _indirectness(config),
            "imprecision": _imprecision({"ci_lower": jlo, "ci_upper": jhi}, mids, n, ois),
            "publication_bias": _publication_bias(
                (o, week, measure),
                int(row["k"]),
                small_study,
                int(gcfg.get("publication_bias_min_k", 10)),
            ),  # fmt: skip
        }
        out: dict[str, Any] = {}
        total = 0
        reasons = []
        for d in DOMAINS:
            j = judgements[d]
            by = "rule"
            if overrides is not None and len(overrides):
                ov = overrides[(overrides["outcome"] == o) & (overrides["domain"] == d)]
                exact = ov[ov["week"] == week]
                ov = exact if len(exact) else ov[ov["week"].isna()]
                if len(ov):
                    j = _judge(str(ov["judgement"].iloc[0]), str(ov["reason"].iloc[0]))
                    by = "person"
            out[d], out[f"{d}_by"], out[f"{d}_reason"] = j["judgement"], by, j["reason"]
            levels = JUDGEMENTS[j["judgement"]]
            total += levels
            if levels:
                who = "" if by == "rule" else " (a person's judgement)"
                reasons.append(
                    f"{DOMAIN_LABELS[d]} (−{levels}, {j['judgement']}{who}): {j['reason']}"
                )
        certainty = CERTAINTY[max(0, 3 - total)]
        # a single trial's result is its own (the model has no CI or no estimate there)
        est, clo, chi, _ = aprimary.effect_shown(row, g)
        unit = orow.get("unit", "")
        rel, ab = _effects_text(measure, est, clo, chi, UNIT_LABELS.get(unit, unit), cr)
        if measure in RATIO and cr == 0 and math.isfinite(est) and "RD" in measures:
            # no control events: a ratio gives 0 per 1,000 whatever it is; the risk
            # difference says how many more (or fewer) events there were
            rd_est, rd_lo, rd_hi, _ = aprimary.effect_shown(
                here[here["measure"] == "RD"].iloc[0],
                study_effects[
                    (study_effects["outcome"] == o)
                    & (study_effects["week"] == week)
                    & (study_effects["measure"] == "RD")
                ],
            )
            _, rd = _effects_text("RD", rd_est, rd_lo, rd_hi, "", cr)
            ab = (
                "0 per 1,000 with control (no control events: a ratio gives no absolute "
                f"effect); by the risk difference {rd}"
                if rd
                else ab
            )
        pb = ph = math.nan
        if bayes_table is not None and len(bayes_table):
            b = bayes_table[
                (bayes_table["outcome"] == o)
                & (bayes_table["week"] == week)
                & (bayes_table["measure"] == judged_on)
            ]
            if len(b):
                p_up, p_down = float(b["p_mid"].iloc[0]), float(b["p_minus_mid"].iloc[0])
                harm_outcome = orow.get("direction", "benefit") == "harm"
                pb, ph = (p_down, p_up) if harm_outcome else (p_up, p_down)
        label = str(orow.get("label", o.replace("_", " ")))
        jci = (jlo, jhi)
        rows.append(
            {
                "outcome": o,
                "label": label,
                "direction": orow.get("direction", "benefit"),
                "week": week,
                "measure": measure,
                "judged_on": judged_on,
                "k": int(row["k"]),
                "participants": int(n),
                "estimate": est,
                "ci_lower": clo,
                "ci_upper": chi,
                "relative_effect": rel,
                "control_risk": cr,
                "absolute_effect": ab,
                **out,
                "downgrades": total,
                "certainty": certainty,
                "certainty_symbols": SYMBOLS[certainty],
                "reasons": "; ".join(reasons) if reasons else "not rated down",
                "p_noticeable_benefit": pb,
                "p_noticeable_harm": ph,
                "statement": _statement(certainty, jest, jci, mids, intervention, label),
            }
        )
    return pd.DataFrame(rows, columns=SOF_COLUMNS)
