"""Snakemake script: one robustness figure in every configured format."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.report import figures

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    w = snakemake.wildcards
    figures.robustness_figure(
        snakemake.input[0],
        config,
        outcome=w.outcome,
        week=int(w.week),
        measure=w.measure,
        stem=Path(snakemake.output[0]).with_suffix(""),
    )
