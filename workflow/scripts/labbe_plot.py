"""Snakemake script: the L'Abbé-style plot of one outcome x week."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.report import figures

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    figures.labbe_figure(
        snakemake.input.meta,
        snakemake.input.studies,
        config,
        outcome=snakemake.wildcards.outcome,
        week=int(snakemake.wildcards.week),
        stem=Path(snakemake.output[0]).with_suffix(""),
    )
