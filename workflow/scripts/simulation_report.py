"""Snakemake script: the simulation study's figures and report, from its performance table."""

from pathlib import Path

import pandas as pd

from hairtrial.analyses.simulation import load_study
from hairtrial.core.runlog import logged
from hairtrial.plots.simulation import coverage_by_k, width_vs_coverage
from hairtrial.plots.style import save_figure
from hairtrial.report.simulation import write_report

out = snakemake.output
with logged(snakemake.log[0]) as log:
    plan = load_study(snakemake.input.plan)
    plan["_path"] = snakemake.input.plan
    perf = pd.read_csv(snakemake.input.table)
    level = plan["level"]
    named = [
        s
        for s in dict.fromkeys(
            perf.loc[perf["i2"].isna() & (perf["outcome"] == "continuous"), "scenario"]
        )
        if (perf.loc[perf["scenario"] == s, "rejection_is"] == "power").all()
    ]
    figs = {}
    if perf["i2"].notna().any():
        figs["coverage_by_k"] = coverage_by_k(perf, level)
    if named:
        figs["width_vs_coverage"] = width_vs_coverage(perf, named, level)
    folder = Path(out.report).parent
    for name in ("coverage_by_k", "width_vs_coverage"):
        stem = folder / name
        if name in figs:
            save_figure(figs[name], stem, formats=("png",), dpi=150)
        else:  # nothing to draw in this plan: an empty file says so
            stem.with_suffix(".png").write_bytes(b"")
    write_report(perf, plan, {n: f"{n}.png" for n in figs}, out.report)
    log.info("figures: %s", ", ".join(figs) or "none")
