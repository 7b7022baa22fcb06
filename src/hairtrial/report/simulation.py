"""The simulation study's report (``results/simulation/report.md``), from its performance table.

A report of its own rather than a section of the main report: the study is not part of
``make run`` (it has its own target, plan and run time), and the main report shows only what its
own run made.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["headline", "prediction_sentences", "write_report"]

_CI = {
    "z": "Wald",
    "knha": "Hartung-Knapp",
    "adhoc": "ad hoc Hartung-Knapp",
    "posterior": "posterior",
}


def _pct(x: float, se: float) -> str:
    return f"{100 * x:.1f}% (MC SE {100 * se:.1f})"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _method(row: pd.Series) -> str:
    if row["family"] == "bayesian":
        prior, _, scale = str(row["method"]).partition(" x")
        prior = prior.replace("_", "-").replace("cauchy", "Cauchy")
        return f"the Bayesian model with a {prior} prior ({scale} x default scale)"
    if row["family"] == "binary":
        return f"{row['method']} ({_CI.get(row['ci'], row['ci'])})"
    ci = _CI.get(row["ci"], row["ci"])
    return f"{row['method']} with {'an' if ci[0] in 'aeiou' else 'a'} {ci} CI"


def headline(perf: pd.DataFrame, scenario: str, level: float) -> list[str]:
    """Sentences 'under conditions like this evidence, method X covers Y%'."""
    d = perf[(perf["scenario"] == scenario) & perf["coverage"].notna()]
    if d.empty:
        return []
    label = d["label"].iloc[0]
    n = int(d["replicates"].max())
    out = [f"Under conditions like this evidence (scenario `{scenario}`: {label}; {n} replicates):"]
    primary = d[(d["method"] == "REML")]
    for _, row in pd.concat([primary, d[d["family"] == "bayesian"]]).iterrows():
        out.append(
            f"- {_cap(_method(row))} covers {_pct(row['coverage'], row['coverage_mcse'])}, "
            f"mean width {row['width']:.2f}, {row['rejection_is'].replace('_', ' ')} "
            f"{100 * row['rejection']:.1f}%."
        )
    ok = d[d["coverage"] >= level - 2 * d["coverage_mcse"]]
    if not ok.empty:
        best = ok.sort_values(["width", "method", "ci"], kind="stable").iloc[0]
        out.append(
            f"- The narrowest interval whose coverage is within 2 MC SE of {level:.0%} or above: "
            f"{_method(best)} (covers {_pct(best['coverage'], best['coverage_mcse'])}, width "
            f"{best['width']:.2f})."
        )
    reml = d[(d["method"] == "REML")]
    if not reml.empty:
        r = reml.iloc[0]
        out.append(
            f"- Bias of the REML estimate: {r['bias']:+.3f} (MC SE {r['bias_mcse']:.3f}) on an "
            f"effect of {r['effect']:g} ({r['measure']}), about the same for every method: it "
            "comes from the effect sizes as derived from the reports, not from the pooling."
        )
    out += prediction_sentences(d)
    worst = d.sort_values(["coverage", "method", "ci"], kind="stable").iloc[0]
    out.append(
        f"- The lowest coverage: {_method(worst)}, "
        f"{_pct(worst['coverage'], worst['coverage_mcse'])}."
    )
    return out


def _short(row: pd.Series) -> str:
    """The estimator of tau2 of a row: the method, or the Bayesian model's prior."""
    if row["family"] == "bayesian":
        prior, _, scale = str(row["method"]).partition(" x")
        prior = prior.replace("_", "-").replace("cauchy", "Cauchy")
        return f"Bayesian, {prior} prior" + ("" if scale == "1" else f" x {scale}")
    return str(row["method"])


def _pi_list(rows: pd.DataFrame) -> str:
    return "; ".join(
        f"{_method(r)}: {_pct(r['pi_coverage'], r['pi_coverage_mcse'])}" for _, r in rows.iterrows()
    )


def prediction_sentences(d: pd.DataFrame) -> list[str]:
    """Sentences on tau2 and on the prediction intervals of one scenario.

    REML and the Bayesian models of a continuous scenario, every binary method with a tau2.
    """
    d = d[d["pi_coverage"].notna()]
    if d.empty:
        return []
    tau = float(d["tau"].iloc[0])
    sel = d[(d["method"] == "REML") | d["family"].isin(["bayesian", "binary"])]
    sel = sel if not sel.empty else d
    new = (
        f"drawn from the random-effects distribution, tau = {tau:g}"
        if tau > 0
        else "tau = 0: the pooled effect itself"
    )
    out = [
        f"- Prediction intervals for the true effect of a new trial ({new}) cover it in: "
        f"{_pi_list(sel)}."
    ]
    t2 = sel[sel["tau2_bias"].notna()]
    if not t2.empty:
        parts = list(
            dict.fromkeys(
                f"{_short(r)} {r['tau2_bias']:+.3f} (MC SE {r['tau2_bias_mcse']:.3f})"
                for _, r in t2.iterrows()
            )
        )
        bayes = "; Bayesian: posterior median" if (t2["family"] == "bayesian").any() else ""
        out.append(
            f"- Bias of the tau\u00b2 estimate (true tau\u00b2 = {tau**2:.3g}{bayes}): "
            f"{'; '.join(parts)}."
        )
    return out


def _grid_sentence(perf: pd.DataFrame) -> list[str]:
    """The range of PI coverage over the heterogeneous grid scenarios, REML and Bayesian."""
    g = perf[perf["i2"].notna() & (perf["i2"] > 0) & perf["pi_coverage"].notna()]
    sel = g[((g["method"] == "REML") & (g["ci"] == "knha")) | (g["family"] == "bayesian")]
    if sel.empty:
        return []
    parts = []
    for _, rows in sel.groupby(["method", "ci"], sort=False):
        lo = rows.sort_values(["pi_coverage", "k"], kind="stable").iloc[0]
        hi = rows.sort_values(["pi_coverage", "k"], kind="stable").iloc[-1]
        parts.append(
            f"{_method(lo)}: from {100 * lo['pi_coverage']:.1f}% (k = {lo['k']}, "
            f"I\u00b2 = {lo['i2']:g}) to {100 * hi['pi_coverage']:.1f}% (k = {hi['k']}, "
            f"I\u00b2 = {hi['i2']:g})"
        )
    return [
        "Prediction intervals over the grid with heterogeneity (I\u00b2 > 0), how often they "
        f"hold the true effect of a new trial: {'; '.join(parts)}.",
        "",
    ]


def _failed(perf: pd.DataFrame) -> list[str]:
    """Where fits failed or did not converge (left out of the measures), or say none did."""
    f = perf[perf["n_failed"] > 0]
    if f.empty:
        return ["No fit failed or did not converge (`n_failed` = 0 throughout).", ""]
    parts = [
        f"{_method(r)} in `{r['scenario']}`: {int(r['n_failed'])} of {int(r['replicates'])}"
        for _, r in f.iterrows()
    ]
    return [
        "Fits that failed or did not converge, left out of the measures (`n_failed`): "
        + "; ".join(parts)
        + ".",
        "",
    ]


def _table(d: pd.DataFrame) -> str:
    cols = [
        "method",
        "ci",
        "n",
        "n_failed",
        "coverage",
        "coverage_mcse",
        "bias",
        "empse",
        "rmse",
        "width",
        "rejection",
        "tau2_bias",
        "pi_coverage",
        "pi_width",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in d.iterrows():
        vals = [str(r["method"]), str(r["ci"]), str(int(r["n"])), str(int(r["n_failed"]))]
        vals += ["" if pd.isna(r[c]) else f"{r[c]:.3f}" for c in cols[4:]]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def write_report(
    perf: pd.DataFrame, plan: dict[str, Any], figures: dict[str, str], path: str | Path
) -> None:
    """Write the study's report: plan, headline, figures and one table per named scenario."""
    level = plan["level"]
    n = plan["replicates"]
    mc = math.sqrt(level * (1 - level) / n)
    parts = [
        "# Simulation study: which interval to trust with a handful of trials",
        "",
        f"Plan: `{plan.get('_path', 'config/simulation_study.yaml')}` (ADEMP, Morris, White & "
        f"Crowther 2019); {len(plan['scenario_list'])} scenarios x {n} replicates, seed "
        f"{plan['seed']}. Monte Carlo SE of a coverage of {level:.0%}: {100 * mc:.2f} percentage "
        "points. Trials are simulated participant by participant and summarised as papers report "
        "them; SDs are derived from levels (assumed correlation "
        f"{plan['assumptions']['change_sd_correlation']:g}), from exact p-values and from p-value "
        "bounds, as the pipeline derives them. All numbers: `performance.csv`.",
        "",
    ]
    glmm = perf[perf["method"] == "GLMM"]
    if not glmm.empty and int(glmm["replicates"].max()) < n:
        g = int(glmm["replicates"].max())
        parts += [
            f"The GLMM, a scalar fit per replicate, is fitted to the first {g} replicates of the "
            f"binary scenarios only (Monte Carlo SE of a coverage of {level:.0%}: "
            f"{100 * math.sqrt(level * (1 - level) / g):.2f} percentage points).",
            "",
        ]
    parts += _failed(perf)
    if plan.get("calibrated") and plan["calibrated"] in plan["scenario_list"]:
        parts += ["## Under conditions like the published evidence", ""]
        parts += headline(perf, plan["calibrated"], level) + [""]
    for name, fig in figures.items():
        parts += [f"![{name}]({fig})", ""]
    parts += _grid_sentence(perf)
    grid = perf["i2"].notna()
    for scen in dict.fromkeys(perf.loc[~grid, "scenario"]):
        d = perf[perf["scenario"] == scen]
        parts += [f"## Scenario `{scen}`: {d['label'].iloc[0]}", "", _table(d), ""]
        if scen != plan.get("calibrated"):
            extra = prediction_sentences(d)
            parts += extra + [""] if extra else []
    Path(path).write_text("\n".join(parts), encoding="utf-8")
