"""Report text about how sure we can be: the summary of findings, the primary answer and the
other intervals, the probabilities of a noticeable benefit and loss, the next trial, and the
methods of the Bayesian model, the next-trial simulation, the GRADE rules and the arm model.

Every sentence is generated from the run's tables (``summary_of_findings``, ``meta_analysis``,
``arm_model_contrasts``, ``bayes``, ``bayes_sensitivity``, ``next_trial_sample_size``) and
config; :mod:`hairtrial.report.document` places them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hairtrial.analyses import grade as agrade
from hairtrial.core import distributions as dist
from hairtrial.core import vocab

__all__ = [
    "SOF_VIEW_COLUMNS",
    "arm_term_labels",
    "intervals_paragraphs",
    "methods_paragraphs",
    "probability_paragraphs",
    "sof_view",
]

SOF_VIEW_COLUMNS = {
    "label": "Outcome (week)",
    "effect": "Effect (95% CI)",
    "participants": "Participants (trials)",
    "certainty": "Certainty of the evidence",
    "reasons": "Why it was rated down",
    "statement": "What happens",
    "p_noticeable_benefit": "P(noticeable benefit)",
    "p_noticeable_harm": "P(noticeable harm or loss)",
}
"""The report's view of ``summary_of_findings.csv`` (column: heading)."""


def _f(x: Any, digits: int = 3) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "—"
    return f"{x:.{digits}g}".replace("-", "−")


def _pct(p: Any) -> str:
    p = float(p)
    if not math.isfinite(p):
        return "—"
    if p > 0.999:
        return "> 99.9%"
    if p < 0.001:
        return "< 0.1%"
    return f"{100 * p:.1f}%"


def _row(df: pd.DataFrame, **keys: Any) -> pd.Series | None:
    if df is None or df.empty:
        return None
    sel = df
    for c, v in keys.items():
        if c not in sel.columns:
            return None
        sel = sel[sel[c].astype(str) == str(v)]
    return None if sel.empty else sel.iloc[0]


def sof_view(sof: pd.DataFrame) -> pd.DataFrame:
    """The summary of findings as the report shows it (:data:`SOF_VIEW_COLUMNS`)."""
    rows = []
    for _, r in sof.iterrows():
        effect = " ".join(
            str(x) for x in (r.get("relative_effect"), r.get("absolute_effect")) if _text(x)
        )
        by_person = [
            d.replace("_", " ") for d in agrade.DOMAIN_LABELS if str(r.get(f"{d}_by")) == "person"
        ]
        certainty = f"{r['certainty_symbols']} {r['certainty']}"
        if by_person:
            certainty += " (a person judged: " + ", ".join(by_person) + ")"
        rows.append(
            {
                "label": f"{r['label']} (week {int(r['week'])})",
                "effect": effect,
                "participants": f"{int(r['participants'])} ({int(r['k'])})",
                "certainty": certainty,
                "reasons": r["reasons"],
                "statement": r["statement"],
                "p_noticeable_benefit": _pct(r["p_noticeable_benefit"]),
                "p_noticeable_harm": _pct(r["p_noticeable_harm"]),
            }
        )
    out = pd.DataFrame(rows, columns=list(SOF_VIEW_COLUMNS))
    return out.rename(columns=SOF_VIEW_COLUMNS)


def _text(x: Any) -> bool:
    return isinstance(x, str) and bool(x.strip()) and x != "nan"


def arm_term_labels(terms: pd.Series, control: str, experimental: str) -> pd.Series:
    """Words for the arm model's coefficient names (``C(week)12:experimental`` ->
    ``experimental minus control, week 12``), from :data:`hairtrial.core.vocab.ARM_TERM_LABELS`.
    """
    return terms.map(lambda t: vocab.arm_term_label(str(t), control, experimental))


def intervals_paragraphs(
    tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any], model: pd.Series | None
) -> list[str]:
    """ "One answer, several intervals": the primary answer and why the others differ."""
    if model is None:
        return []
    o, w, m = str(model["outcome"]), int(model["week"]), str(model["measure"])
    level = float((config.get("meta_analysis") or {}).get("level", 0.95))
    pct = f"{100 * level:g}%"
    k = int(model["k"])
    unit = ""
    se = tables.get("study_effects")
    if se is not None and "unit" in se.columns:
        u = _row(se, outcome=o)
        if u is not None:
            from hairtrial.data.units import UNIT_LABELS

            unit = " " + UNIT_LABELS.get(str(u["unit"]), str(u["unit"])) if m == "MD" else ""
    label = o.replace("_", " ")
    est, lo, hi = model["estimate"], model["ci_lower"], model["ci_upper"]
    df = k - 1
    method, ci_method = str(model["method"]), str(model["ci_method"])
    paras = [
        f"The primary answer is the pre-specified univariate random-effects model of {label} "
        f"at week {w} ({vocab.TAU2_METHOD_LABELS.get(method, method)} estimate of tau², "
        f"{vocab.CI_METHOD_LABELS.get(ci_method, ci_method)} CI): {m} {_f(est)}{unit} ({pct} CI "
        f"{_f(lo)} to {_f(hi)}). Other parts of this report show other intervals for the same "
        "question; they answer it under other assumptions and are not competing answers."
    ]
    if k < 2 or not math.isfinite(float(lo)):
        return paras
    crit = float(dist.t_ppf(0.5 + level / 2, df)) if df > 0 else math.nan
    arm = _row(
        tables.get("arm_model_contrasts", pd.DataFrame()),
        outcome=o,
        week=w,
        contrast="experimental - control",
    )
    if arm is not None and m == "MD":
        adf = float(arm["df"]) if "df" in arm.index else math.nan
        acrit = float(dist.t_ppf(0.5 + level / 2, adf)) if math.isfinite(adf) else math.nan
        same_se = abs(float(arm["se"]) - float(model["se"])) <= 1e-6 * abs(float(model["se"]))
        paras.append(
            f"The arm-based longitudinal model gives {_f(arm['estimate'])}{unit} ({pct} CI "
            f"{_f(arm['ci_lower'])} to {_f(arm['ci_upper'])}) for the same contrast. "
            + (
                f"Its estimate and standard error ({_f(arm['se'])}) are those of the primary "
                "model: with one week and random trial and arm effects it is the same model. "
                if same_se
                else f"Its standard error is {_f(arm['se'])} against {_f(model['se'])}. "
            )
            + f"The intervals differ in the reference distribution: the primary model uses a "
            f"t distribution with k − 1 = {df} degrees of freedom (critical value {crit:.2f}; "
            "the ad hoc Hartung–Knapp CI is never narrower than the Wald CI), the arm model "
            f"metafor's 'contain' degrees of freedom, {adf:g} (critical value {acrit:.2f}), "
            f"which count arm-level rows although the contrast rests on {k} trials. With "
            f"{k} trials the primary model's {df} degrees of freedom are the honest count; the "
            "arm model's narrower interval reflects more degrees of freedom, not more "
            "information."
        )
    b = _row(tables.get("bayes", pd.DataFrame()), outcome=o, week=w, measure=m)
    if b is not None:
        paras.append(_bayes_paragraph(tables, b, unit, k))
    return paras


def probability_paragraphs(
    tables: Mapping[str, pd.DataFrame], config: Mapping[str, Any]
) -> list[str]:
    """How probable a noticeable benefit and a loss are, and what the next trial would do."""
    sof = tables.get("summary_of_findings")
    bayes = tables.get("bayes")
    if sof is None or sof.empty or bayes is None:
        return []
    smd_mid = (config.get("bayes") or {}).get("smd_mid", 0.2)
    paras = []
    for _, r in sof.iterrows():
        o, w, on = str(r["outcome"]), int(r["week"]), str(r["judged_on"])
        b = _row(bayes, outcome=o, week=w, measure=on)
        if b is None:
            continue
        benefit, harm = r["p_noticeable_benefit"], r["p_noticeable_harm"]
        label = str(r["label"])
        harm_outcome = str(r["direction"]) == "harm"
        if not (math.isfinite(float(benefit)) and math.isfinite(float(harm))):
            paras.append(
                f"{label}: no MID is known on the {on} scale, so a noticeable effect cannot be "
                f"judged; the posterior probability of any benefit is "
                f"{_pct(1 - b['p_positive'] if harm_outcome else b['p_positive'])}."
            )
            continue
        threshold = (
            f"an SMD of {smd_mid:g} (a small effect by Cohen's rule of thumb; no MID is "
            "established for this outcome)"
            if on == "SMD"
            else "the MID"
        )
        sens = tables.get("bayes_sensitivity", pd.DataFrame())
        srows = sens[
            (sens["outcome"] == o) & (sens["week"].astype(int) == w) & (sens["measure"] == on)
        ]
        srows = srows[srows["prior_family"] != "fixed"]
        rng = ""
        if len(srows):
            col_b, col_h = ("p_minus_mid", "p_mid") if harm_outcome else ("p_mid", "p_minus_mid")
            rng = (
                f" Under the other priors of tau (the common-effect model aside) they range "
                f"from {_pct(srows[col_b].min())} to {_pct(srows[col_b].max())} and from "
                f"{_pct(srows[col_h].min())} to {_pct(srows[col_h].max())}."
            )
        words = ("fewer", "more") if harm_outcome else ("a noticeable benefit", "a noticeable loss")
        paras.append(
            f"{label} (week {w}): with {threshold} as the threshold of a noticeable effect, the "
            f"Bayesian model gives a probability of {_pct(benefit)} that the average effect is "
            f"{words[0] if not harm_outcome else 'a noticeable reduction'} and of "
            f"{_pct(harm)} that it is {words[1] if not harm_outcome else 'a noticeable harm'}."
            + rng
            + f" These probabilities rest on {int(r['k'])} trials and on numbers that were "
            f"largely derived rather than reported; the certainty of this evidence is "
            f"{r['certainty']} (GRADE), so they describe what these data imply, not what is "
            "known."
        )
    sizes = tables.get("next_trial_sample_size")
    if sizes is not None and len(sizes):
        for (o, w, m), g in sizes.groupby(["outcome", "week", "measure"], sort=False):
            if m != "SMD" and (g["criterion"] != "p_trial_benefit").all():
                continue
            parts = []
            for crit, name in (
                ("p_trial_benefit", "show a benefit by itself (p < 0.05)"),
                ("p_meta_benefit", "make the updated meta-analysis's 95% CI exclude 0"),
                ("p_posterior_mid", "make the updated posterior probability beyond the "
                 "threshold exceed its limit"),
            ):  # fmt: skip
                rows = g[g["criterion"] == crit]
                if rows.empty or rows["note"].astype(str).str.startswith("no MID").all():
                    continue
                vals = []
                for _, r in rows.iterrows():
                    n = float(r["n_per_arm"])
                    if not math.isfinite(n) or str(r["note"]).startswith("already"):
                        vals.append(f"{r['target']:.0%}: {r['note']}")
                    else:
                        vals.append(f"{r['target']:.0%}: {math.ceil(n)} per arm")
                parts.append(f"to {name}, " + "; ".join(vals))
            power = tables.get("next_trial")
            if power is not None and len(power):
                pw = power[
                    (power["outcome"] == o)
                    & (power["week"].astype(int) == int(w))
                    & (power["measure"] == m)
                ]
                if len(pw) and float(pw["p_meta_benefit"].max()) < 0.8:
                    parts.append(
                        "no single trial, however large, gives the updated meta-analysis an 80% "
                        f"chance of a CI excluding 0 (at most {pw['p_meta_benefit'].max():.0%}): "
                        "the disagreement between the existing trials, not their size, limits "
                        "the pooled interval, and one more trial adds only one degree of freedom"
                    )
            if parts:
                paras.append(
                    f"The next trial ({str(o).replace('_', ' ')}, week {int(w)}, {m}): the "
                    "participants per arm a new two-arm trial needs for an 80% or 90% chance, "
                    "simulated from the current evidence: " + "; ".join(parts) + "."
                )
    return paras


def methods_paragraphs(config: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> dict:
    """Methods text: ``arm_model``, ``bayes``, ``next_trial`` paragraphs and the GRADE
    ``grade`` rules (a list of (domain, rule) pairs)."""
    out: dict[str, Any] = {"arm_model": [], "bayes": [], "next_trial": [], "grade": []}
    arm = config.get("arm_model") or {}
    if "arm_model_contrasts" in tables:
        rand = "; ".join(str(r.get("formula")) for r in arm.get("random", []))
        out["arm_model"].append(
            "Arm-based longitudinal model (a multilevel model of the arms' mean change from "
            "baseline at every week, equivalent to metafor's rma.mv): fixed effects "
            f"'{arm.get('mods', '')}' (the control arms' mean change at each week and the "
            "experimental-minus-control difference at each week), random effects "
            f"'{rand}' (trial and arm within trial), the sampling errors of one arm's means at "
            f"two weeks correlated with r = {arm.get('within_arm_correlation', 0.5)}, "
            f"{arm.get('method', 'REML')} estimation and {arm.get('test', 't')} tests with "
            f"'{arm.get('dfs', 'contain')}' degrees of freedom. It uses every arm and week "
            "together; at a single week its contrast equals the univariate model's estimate."
        )
    if "bayes" in tables:
        b = config.get("bayes") or {}
        tp = b.get("tau_prior") or {}
        mp = b.get("mu_prior") or {}
        out["bayes"].append(
            "Bayesian random-effects meta-analysis: the normal-normal hierarchical model "
            "(trial estimates normal around trial effects, trial effects normal around the "
            "mean effect mu with SD tau), for every outcome, week and measure with at least "
            "two trials, binary outcomes on the log scale. The posterior is computed by "
            "numerical integration over tau (adaptive Gauss-Kronrod quadrature; mu is "
            "conditionally normal), as the R package bayesmeta does, without sampling; it "
            "agrees with direct numerical integration in R to 1e-6 relative and with "
            f"bayesmeta 3.4. Priors: tau {tp.get('family', 'half-normal')} with scale "
            f"{tp.get('scale', 'auto')} ('auto': 0.5 for SMD and log ratios, half the "
            "unit-information SD for MD, after Röver et al. 2021); mu "
            + (
                "flat (improper uniform)"
                if mp.get("family", "uniform") == "uniform"
                else f"normal(mean {mp.get('mean')}, SD {mp.get('sd')})"
            )  # fmt: skip
            + ". Reported: the posterior median and central 95% credible interval of mu, the "
            "median and 97.5% quantile of tau, the 95% predictive interval of a new trial's "
            "effect, and the probabilities that mu exceeds 0, the MID, or the MID in the "
            "other direction. The prior sensitivity analysis repeats the fit under "
            "half-normal, half-Cauchy and half-t priors at several multiples of the default "
            "scale, a uniform prior, Turner et al.'s log-normal prior (ratio measures) and "
            "tau fixed at 0."
        )
    if "next_trial" in tables:
        nt = config.get("next_trial") or {}
        out["next_trial"].append(
            "The next trial (Sutton et al. 2007; Roloff et al. 2013): for each size n per arm, "
            f"{nt.get('replicates', 4000)} new trials were simulated (seed {nt.get('seed')}) "
            "from the Bayesian predictive distribution (a draw of tau and mu from their "
            "posterior, then the trial's true effect, then its estimate with the sampling "
            "variance of a trial of 2n participants, from the existing trials' "
            "unit-information SD). Each was judged alone (two-sided test at the CI level, in "
            "the direction of benefit) and added to the existing trials: the updated "
            "meta-analysis (the primary model, fitted to all replicates at once by the batched "
            "engine) is conclusive when its CI excludes 0, and the updated Bayesian analysis "
            "when the posterior probability beyond the MID exceeds "
            f"{nt.get('posterior_threshold', 0.9):g}. The n for 80% and 90% is interpolated on "
            "the log scale of n."
        )
    rules = agrade.rules_text(config)
    names = {
        **agrade.DOMAIN_LABELS,
        "start": "Starting point",
        "mid": "Outcomes without an MID",
        "statement": "Plain-language statements",
    }
    out["grade"] = [(names.get(k, k), v) for k, v in rules.items()]
    return out


_PRIOR_DEPENDENT = 0.5
"""The answer depends on the prior when the posterior median moves, across the priors of the
sensitivity panel (the common-effect model aside), by more than this share of the width of
the primary credible interval."""


def _prior_spread(tables: Mapping[str, pd.DataFrame], o: str, w: int, m: str) -> float | None:
    """Range of the posterior median across the sensitivity priors over the primary credible
    interval's width; None without both tables."""
    b = _row(tables.get("bayes", pd.DataFrame()), outcome=o, week=w, measure=m)
    sens = tables.get("bayes_sensitivity", pd.DataFrame())
    if b is None or sens is None or sens.empty:
        return None
    rows = sens[(sens["outcome"] == o) & (sens["week"].astype(int) == w) & (sens["measure"] == m)]
    if "prior_family" in rows.columns:
        rows = rows[rows["prior_family"] != "fixed"]
    width = float(b["mu_ci_upper"]) - float(b["mu_ci_lower"])
    if rows.empty or not width > 0:
        return None
    return float(rows["mu_median"].max() - rows["mu_median"].min()) / width


def _bayes_paragraph(tables: Mapping[str, pd.DataFrame], b: pd.Series, unit: str, k: int) -> str:
    """The Bayesian answer beside the primary one, and how much it owes to the prior of tau:
    measured on the sensitivity panel, with the trial that sets the MD prior's scale named."""
    o, w, m = str(b["outcome"]), int(b["week"]), str(b["measure"])
    sens = tables.get("bayes_sensitivity", pd.DataFrame())
    rng = ""
    if sens is not None and len(sens):
        srows = sens[
            (sens["outcome"] == o) & (sens["week"].astype(int) == w) & (sens["measure"] == m)
        ]
        if len(srows):
            rng = (
                f"; across the priors of the sensitivity panel its median ranges from "
                f"{_f(srows['mu_median'].min())} to {_f(srows['mu_median'].max())}{unit}"
            )
    text = (
        f"The Bayesian random-effects model (prior {b['prior']} for tau, flat for the mean) "
        f"gives a posterior median of {_f(b['mu_median'])}{unit} (95% credible interval "
        f"{_f(b['mu_ci_lower'])} to {_f(b['mu_ci_upper'])}){rng}."
    )
    spread = _prior_spread(tables, o, w, m)
    if spread is None:
        return text
    if spread <= _PRIOR_DEPENDENT:
        return text + (
            " The prior of the between-trial SD tau moves this answer little (the median "
            f"moves by {spread:.0%} of the credible interval's width across the priors)."
        )
    text += (
        f" It depends on the prior: with {k} trials the data cannot estimate the between-trial "
        "SD tau, so its prior decides how far the trials are pooled towards the most precise "
        f"one (the median moves by {spread:.0%} of the credible interval's width across the "
        "priors)."
    )
    if m == "MD":
        text += (
            " The default scale of that prior (half of the unit-information SD of the trials) "
            f"is {_f(b['tau_prior_scale'])}{unit}"
        )
        eff = tables.get("study_effects")
        if eff is not None and {"yi", "vi"} <= set(eff.columns):
            g = eff[(eff["outcome"] == o) & (eff["week"].astype(int) == w) & (eff["measure"] == m)]
            yi = pd.to_numeric(g["yi"], errors="coerce")
            prec = 1.0 / pd.to_numeric(g["vi"], errors="coerce")
            if yi.notna().sum() >= 2:
                text += f", while the trials' estimates span {_f(yi.max() - yi.min())}{unit}"
            if prec.notna().any() and float(prec.sum()) > 0:
                share = prec / prec.sum()
                top = g.loc[share.idxmax()]
                if float(share.max()) > 0.5:
                    name = top["label"] if _text(top.get("label")) else top["study"]
                    derived = str(top.get("provenance", "reported")) not in ("reported", "nan")
                    text += (
                        f"; {name} carries {float(share.max()):.0%} of the trials' precision "
                        "and so sets that scale"
                        + (" (its numbers were derived rather than reported)" if derived else "")
                    )
        text += "."
        smd = _prior_spread(tables, o, w, "SMD")
        text += " Where the answer depends this much on the prior, it is not an answer in itself"
        text += (
            "; on the standardised scale (below) it depends much less."
            if smd is not None and smd <= _PRIOR_DEPENDENT
            else "."
        )
    return text
