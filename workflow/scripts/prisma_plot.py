"""Snakemake script: the PRISMA 2020 flow diagram."""

from pathlib import Path

from hairtrial.analyses.config import validate_config
from hairtrial.core.runlog import logged
from hairtrial.report import figures

with logged(snakemake.log[0]):
    config = validate_config(snakemake.config)
    figures.prisma_figure(
        snakemake.input[0],
        config,
        stem=Path(snakemake.output[0]).with_suffix(""),
    )
