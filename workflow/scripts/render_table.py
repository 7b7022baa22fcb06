"""Snakemake script: CSV table -> Markdown, HTML and LaTeX renderings."""

from hairtrial.core.runlog import logged
from hairtrial.report.tables import write_renderings

with logged(snakemake.log[0]):
    write_renderings(
        snakemake.input[0],
        snakemake.output.md,
        snakemake.output.html,
        snakemake.output.tex,
    )
