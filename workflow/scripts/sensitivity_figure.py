"""Snakemake script: one sensitivity figure (bubble, subgroups, leave-one-out, cumulative,
Baujat, influence or funnel) in every configured format."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.report import figures

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    w = snakemake.wildcards
    figures.sensitivity_figure(
        snakemake.params.kind,
        snakemake.input.effects,
        config,
        outcome=w.outcome,
        week=int(w.week),
        measure=w.measure,
        moderator=w.get("moderator"),
        stem=Path(snakemake.output[0]).with_suffix(""),
    )
