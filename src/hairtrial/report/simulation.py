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

__all__ = ["headline", "write_report"]

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
    worst = d.sort_values(["coverage", "method", "ci"], kind="stable").iloc[0]
    out.append(
        f"- The lowest coverage: {_method(worst)}, "
        f"{_pct(worst['coverage'], worst['coverage_mcse'])}."
    )
    return out


def _table(d: pd.DataFrame) -> str:
    cols = [
        "method",
        "ci",
        "coverage",
        "coverage_mcse",
        "bias",
        "empse",
        "rmse",
        "width",
        "rejection",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in d.iterrows():
        vals = [str(r["method"]), str(r["ci"])]
        vals += ["" if pd.isna(r[c]) else f"{r[c]:.3f}" for c in cols[2:]]
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
    if plan.get("calibrated") and plan["calibrated"] in plan["scenario_list"]:
        parts += ["## Under conditions like the published evidence", ""]
        parts += headline(perf, plan["calibrated"], level) + [""]
    for name, fig in figures.items():
        parts += [f"![{name}]({fig})", ""]
    grid = perf["i2"].notna()
    for scen in dict.fromkeys(perf.loc[~grid, "scenario"]):
        d = perf[perf["scenario"] == scen]
        parts += [f"## Scenario `{scen}`: {d['label'].iloc[0]}", "", _table(d), ""]
    Path(path).write_text("\n".join(parts), encoding="utf-8")
