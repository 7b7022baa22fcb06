"""Snakemake script: the trajectory figure of one outcome."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.report import figures

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    figures.trajectory_figure(
        snakemake.input.means,
        snakemake.input.contrasts,
        snakemake.input.data,
        config,
        outcome=snakemake.wildcards.outcome,
        stem=Path(snakemake.output[0]).with_suffix(""),
    )
